package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/netsentinel/netsentinel/internal/eval"
	"github.com/netsentinel/netsentinel/internal/model"
	"github.com/netsentinel/netsentinel/internal/model/novelty"
	"github.com/netsentinel/netsentinel/internal/record"
)

var cmdEval = &Command{
	Name:      "eval",
	UsageLine: "eval --model MODEL --data FILE [--data FILE...] [--adapt] [--json] [--skip-bad]",
	Short:     "score a model on labelled connection records",
	Long: `
Eval scores a model on labelled records (CSV or JSON lines, plain or .gz)
and prints accuracy, detection and false positive rates, AUC, the KDD'99
cost per example, per-category recall and precision and the category
confusion matrix.

With --json it prints exactly one JSON object instead:

  {"records": N, "skipped": N,
   "binary":   {"accuracy", "detection_rate", "false_positive_rate", "auc"},
   "category": {"accuracy", "cost_per_example", "recall": {...},
                "precision": {...}, "confusion": {"<true>": {"<predicted>": n}}},
   "attack":   {"accuracy"},
   "novelty":  {"auc"}, "adapted": true}

"novelty" appears for a model with a novelty part: the AUC of the novelty
score alone for telling attacks from normal records.

With --adapt the novelty part learns the normal traffic of the data as
"detect --adapt" does: the records are scored one at a time in file order,
and those the classifier calls normal with high confidence teach it the
site's normal traffic (with forgetting, a bounded rate and a cap per
service; see docs/validation.md). "adapted" is then true. Compare with a
run without --adapt to see what adapting changes.

An undefined metric (e.g. the detection rate of a file without attacks) is
null. With --skip-bad malformed lines are counted as "skipped" and the
command exits with code 3 after printing.
`,
	Flags: evalFlags,
}

func evalFlags(fs *flag.FlagSet) RunFunc {
	modelPath := fs.String("model", "", "model `file` written by train (required)")
	var data stringList
	fs.Var(&data, "data", "labelled `file` to score (CSV or JSON lines, plain or .gz); repeat for several")
	asJSON := fs.Bool("json", false, "print one JSON object instead of tables")
	skipBad := fs.Bool("skip-bad", false, "skip malformed lines (counted; exit code 3) instead of failing")
	adapt := fs.Bool("adapt", false, "let the novelty part learn the data's normal traffic while scoring the records in file order (as detect --adapt)")
	return func(ctx context.Context, env *Env, args []string) error {
		if len(args) > 0 {
			return Usagef("unexpected arguments %q", args)
		}
		if *modelPath == "" {
			return Usagef("--model is required")
		}
		if len(data) == 0 {
			return Usagef("--data is required")
		}
		det, err := model.LoadFile(*modelPath)
		if err != nil {
			return err
		}
		ds, err := loadData(env, data, *skipBad)
		if err != nil {
			return err
		}
		for i, l := range ds.Labels {
			if l == "" {
				return fmt.Errorf("%s: record %d has no label; eval needs labelled records", ds.Source, i+1)
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		start := time.Now()
		var verdicts []model.Verdict
		if *adapt {
			if err := det.Adapt(novelty.AdaptConfig{}, 0); err != nil {
				return err
			}
			// In order, one at a time: what is learned from a record
			// bears on the records after it.
			verdicts = make([]model.Verdict, ds.Len())
			var x [record.NumFeatures]float32
			for i := range verdicts {
				ds.Row(i, &x)
				verdicts[i] = det.Predict(x[:])
			}
		} else {
			verdicts = det.PredictBatch(ds)
		}
		elapsed := time.Since(start)
		ev := eval.New()
		if nov, _ := det.Novelty(); nov != nil {
			ev.TrackNovelty()
		}
		for i, v := range verdicts {
			ev.Add(ds.Labels[i], v)
		}
		ev.AddSkipped(ds.Skipped)
		rep := ev.Report()
		rep.Adapted = *adapt
		if *asJSON {
			b, err := json.Marshal(rep)
			if err != nil {
				return fmt.Errorf("encode report: %w", err)
			}
			b = append(b, '\n')
			if _, err := env.Stdout.Write(b); err != nil {
				return err
			}
		} else {
			info := det.Info()
			fmt.Fprintf(env.Stdout, "model %s (%s, %d classes, trained on %d rows of %s)\ndata  %s, scored in %s (%.0f records/s)\n\n",
				*modelPath, info.Algorithm, len(info.Labels), info.Training.Rows, strings.Join(info.Training.Sources, ", "),
				ds.Source, elapsed.Round(time.Millisecond), float64(ds.Len())/max(elapsed.Seconds(), 1e-9))
			if *adapt {
				fmt.Fprintf(env.Stdout, "novelty part adapted to the data while scoring it in file order (--adapt)\n\n")
			}
			if err := rep.WriteTable(env.Stdout); err != nil {
				return err
			}
		}
		if ds.Skipped > 0 {
			return fmt.Errorf("skipped %d malformed lines: %w", ds.Skipped, ErrBadData)
		}
		return nil
	}
}
