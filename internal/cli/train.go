package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/netsentinel/netsentinel/internal/dataset"
	"github.com/netsentinel/netsentinel/internal/model"
	"github.com/netsentinel/netsentinel/internal/model/forest"
	"github.com/netsentinel/netsentinel/internal/model/logistic"
	"github.com/netsentinel/netsentinel/internal/model/novelty"
	"github.com/netsentinel/netsentinel/internal/record"
)

var cmdTrain = &Command{
	Name:      "train",
	UsageLine: "train --data FILE [--data FILE...] [--algo forest|logistic] [flags] --out MODEL",
	Short:     "train a detection model on labelled connection records",
	Long: `
Train reads labelled connection records (CSV lines of 41 features and a
label, as in KDD'99 and NSL-KDD, or JSON objects; plain or .gz) from one or
more --data files, trains a random forest (or a logistic regression with
--algo logistic) and writes one self-describing model file to --out.

By default (--novelty) the model also holds a novelty part trained on the
normal rows: it flags a record the classifier calls normal as an "unknown"
attack when the record is unlike any normal traffic, so attack types
missing from the training data can still be caught. Its threshold lets
--novelty-fpr of held-out normal rows through as false alarms, and the
binary threshold then defaults to P(normal) < 0.8. Records the classifier
calls normal with P(normal) >= --novelty-confident get a stricter novelty
threshold, --novelty-confident-fpr. These defaults were chosen by holding
whole attack types out of training and by imitating normal traffic unlike
the training file's (docs/validation.md).

--baseline adds a site's own traffic (a capture, a Zeek conn.log or
extract's output; unlabelled, assumed mostly normal) as normal rows, so that
the model learns what ordinary traffic looks like where it is deployed. A
model is first trained without it; baseline connections that this model
flags with an attack probability of at least --baseline-trim are taken for
attacks and left out (the summary says how many), the content features the
connections lack are filled in with normal values, and each connection
counts as several rows when the baseline is small (so that it weighs at
least as much as 5,000 rows). Under 1,000 connections train warns that the
baseline is thin. Traffic present while the baseline was captured is taken
for normal: an attacker active then is learned as normal, except what the
first model is sure of.

It prints a summary: rows, classes, training time and, with --validate,
the accuracy on a stratified held-out fraction of the rows (the model is
then trained on the rest).

A malformed line stops training with its file and line number, unless
--skip-bad is given: then bad lines are counted and skipped, and the
command exits with code 3 after writing the model.
`,
	Flags: trainFlags,
}

func trainFlags(fs *flag.FlagSet) RunFunc {
	def := forest.DefaultConfig()
	ldef := logistic.DefaultConfig()
	var data stringList
	fs.Var(&data, "data", "training `file` (CSV or JSON lines, plain or .gz); repeat for several")
	algo := fs.String("algo", model.AlgoForest, "algorithm: forest or logistic")
	out := fs.String("out", "", "`path` of the model file to write (required)")
	trees := fs.Int("trees", def.Trees, "forest: number of trees")
	maxDepth := fs.Int("max-depth", def.MaxDepth, "forest: maximum tree depth (0 = unlimited)")
	minLeaf := fs.Int("min-leaf", def.MinLeaf, "forest: minimum rows in a leaf")
	maxFeatures := fs.Int("max-features", def.MaxFeatures, "forest: features tried per split (0 = round(sqrt(41)) = 6)")
	bins := fs.Int("bins", def.Bins, "forest: histogram bins per feature (2..256)")
	sample := fs.Float64("sample", def.Sample, "forest: bootstrap sample size as a fraction of the rows")
	l2 := fs.Float64("l2", ldef.L2, "logistic: L2 penalty")
	maxIter := fs.Int("max-iter", ldef.MaxIter, "logistic: maximum L-BFGS iterations")
	seed := fs.Uint64("seed", def.Seed, "random seed (forest and --validate split)")
	classWeight := fs.String("class-weight", "none", "class weights: none or balanced (inverse class frequency)")
	threshold := fs.Float64("threshold", 0, fmt.Sprintf("binary threshold: a record is an attack when P(normal) is below it (0 = %v with --novelty, %v without)", model.DefaultNoveltyThreshold, model.DefaultThreshold))
	noveltyOn := fs.Bool("novelty", true, "add a novelty part trained on the normal rows, which flags records unlike any normal traffic as \"unknown\" attacks")
	noveltyFPR := fs.Float64("novelty-fpr", model.DefaultNoveltyFPR, "novelty: share of held-out normal rows it may flag (sets its threshold; 0..0.2)")
	noveltyConfident := fs.Float64("novelty-confident", model.DefaultConfident, "novelty: P(normal) from which the classifier counts as confident and --novelty-confident-fpr applies (0 = one novelty threshold for all)")
	noveltyConfidentFPR := fs.Float64("novelty-confident-fpr", model.DefaultConfidentFPR, "novelty: share of held-out normal rows it may flag among records the classifier is confident about (at most --novelty-fpr)")
	noveltyProtos := fs.Int("novelty-prototypes", novelty.DefaultConfig().Prototypes, "novelty: k-means prototypes of normal traffic (more: finer, slower)")
	skipBad := fs.Bool("skip-bad", false, "skip malformed lines (counted; exit code 3) instead of failing")
	var baseline stringList
	fs.Var(&baseline, "baseline", "`file` of the site's own traffic, unlabelled and mostly normal (a pcap/pcapng capture, a Zeek conn.log or extract's output); its connections are added as normal rows; repeat for several")
	baselineTrim := fs.Float64("baseline-trim", DefaultBaselineTrim, "baseline connections that a model trained without the baseline flags with at least this attack `probability` are taken for attacks and left out")
	validate := fs.Float64("validate", 0, "hold out this `fraction` of each class (0..0.9) and report accuracy on it (0 = train on all rows)")
	return func(ctx context.Context, env *Env, args []string) error {
		if len(args) > 0 {
			return Usagef("unexpected arguments %q", args)
		}
		if len(data) == 0 {
			return Usagef("--data is required")
		}
		if *out == "" {
			return Usagef("--out is required")
		}
		if *algo != model.AlgoForest && *algo != model.AlgoLogistic {
			return Usagef("--algo %q: want forest or logistic", *algo)
		}
		if *classWeight != "none" && *classWeight != "balanced" {
			return Usagef("--class-weight %q: want none or balanced", *classWeight)
		}
		if !(*validate >= 0 && *validate <= 0.9) {
			return Usagef("--validate %v: want a fraction in [0, 0.9]", *validate)
		}
		if *threshold == 0 {
			*threshold = model.DefaultThreshold
			if *noveltyOn {
				*threshold = model.DefaultNoveltyThreshold
			}
		}
		if !(*threshold > 0 && *threshold <= 1) {
			return Usagef("--threshold %v: want a value in (0, 1]", *threshold)
		}
		if !(*noveltyFPR > 0 && *noveltyFPR <= 0.2) {
			return Usagef("--novelty-fpr %v: want a fraction in (0, 0.2]", *noveltyFPR)
		}
		if !(*noveltyConfident >= 0 && *noveltyConfident <= 1) {
			return Usagef("--novelty-confident %v: want a probability in [0, 1]", *noveltyConfident)
		}
		if !(*noveltyConfidentFPR > 0 && *noveltyConfidentFPR <= *noveltyFPR) {
			return Usagef("--novelty-confident-fpr %v: want a fraction in (0, --novelty-fpr]", *noveltyConfidentFPR)
		}
		if *noveltyProtos < 1 {
			return Usagef("--novelty-prototypes %d: want at least 1", *noveltyProtos)
		}
		ds, err := loadData(env, data, *skipBad)
		if err != nil {
			return err
		}
		opts := model.TrainOptions{
			Algo: *algo,
			Forest: forest.Config{
				Trees: *trees, MaxDepth: *maxDepth, MinLeaf: *minLeaf, MaxFeatures: *maxFeatures,
				Bins: *bins, Sample: *sample, Seed: *seed,
			},
			Logistic:            logistic.Config{L2: *l2, MaxIter: *maxIter},
			BalancedClassWeight: *classWeight == "balanced",
			Threshold:           *threshold,
			Sources:             baseNames(data),
		}
		if *noveltyOn {
			opts.Novelty = &model.NoveltyOptions{
				Config:       novelty.Config{Prototypes: *noveltyProtos, Seed: *seed},
				FPR:          *noveltyFPR,
				Confident:    *noveltyConfident,
				ConfidentFPR: *noveltyConfidentFPR,
			}
		}
		train := ds
		if *validate > 0 {
			train, opts.Validation = model.StratifiedSplit(ds, *validate, *seed)
		}
		start := time.Now()
		if len(baseline) > 0 {
			if !(*baselineTrim > 0 && *baselineTrim <= 1) {
				return Usagef("--baseline-trim %v: want a probability in (0, 1]", *baselineTrim)
			}
			recs, bad, err := readBaseline(ctx, env, baseline)
			if err != nil {
				return err
			}
			_, st, err := withBaseline(ctx, func(ctx context.Context, what string, ds *dataset.Dataset, opts model.TrainOptions) (*model.Detector, error) {
				return trainWithProgress(ctx, env, what, ds, opts)
			}, train, opts, recs, *baselineTrim)
			if err != nil {
				return err
			}
			opts.Sources = append(opts.Sources, baseNames(baseline)...)
			fmt.Fprintf(env.Stdout, "baseline: %d connections from %d files (%d lines skipped): %s\n", st.records, len(baseline), bad, st)
			if w := st.thin(); w != "" {
				fmt.Fprintf(env.Stdout, "baseline: %s\n", w)
			}
		}
		det, err := trainWithProgress(ctx, env, "training", train, opts)
		if err != nil {
			return err
		}
		elapsed := time.Since(start)
		if err := det.SaveFile(*out); err != nil {
			return err
		}
		st, err := os.Stat(*out)
		if err != nil {
			return err
		}
		printTrainSummary(env.Stdout, det, train, ds.Skipped, elapsed, *out, st.Size())
		if ds.Skipped > 0 {
			return fmt.Errorf("skipped %d malformed lines: %w", ds.Skipped, ErrBadData)
		}
		return nil
	}
}

// minBaseline is the number of baseline connections under which train
// warns that the baseline is thin.
const minBaseline = 1000

// trainWithProgress trains a model with a progress bar on a terminal.
func trainWithProgress(ctx context.Context, env *Env, what string, ds *dataset.Dataset, opts model.TrainOptions) (*model.Detector, error) {
	bar := newProgress(env.Stderr, what, false)
	if bar != nil {
		opts.Progress = bar.ints
	}
	det, err := model.Train(ctx, ds, opts)
	bar.done()
	return det, err
}

func printTrainSummary(w io.Writer, det *model.Detector, train *dataset.Dataset, skipped int, elapsed time.Duration, out string, size int64) {
	info := det.Info()
	fmt.Fprintf(w, "trained %s on %d rows, %d classes, from %s in %s\n",
		info.Algorithm, train.Len(), len(info.Labels), strings.Join(info.Training.Sources, ", "), elapsed.Round(time.Millisecond))
	if skipped > 0 {
		fmt.Fprintf(w, "skipped %d malformed lines\n", skipped)
	}
	if n := info.Metrics["validation_rows"]; n > 0 {
		fmt.Fprintf(w, "validation on %d held-out rows: attack %.2f%%, category %.2f%%, binary %.2f%%\n", int(n),
			100*info.Metrics["validation_attack_accuracy"], 100*info.Metrics["validation_category_accuracy"],
			100*info.Metrics["validation_binary_accuracy"])
	}
	if nov, thr := det.Novelty(); nov != nil {
		fmt.Fprintf(w, "novelty part %s: flags records the classifier calls normal with novelty >= %.3f; binary threshold P(normal) < %.2f\n",
			nov.Kind(), thr, det.Threshold())
		if c, ct := det.NoveltyConfident(); c > 0 {
			fmt.Fprintf(w, "  (novelty >= %.3f when P(normal) >= %.3f)\n", ct, c)
		}
	}
	if imp := det.FeatureImportance(); imp != nil {
		idx := make([]int, len(imp))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return imp[idx[a]] > imp[idx[b]] })
		fmt.Fprintf(w, "most important features:")
		for _, j := range idx[:min(5, len(idx))] {
			fmt.Fprintf(w, " %s %.3f", record.Features[j].Name, imp[j])
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "wrote %s (%s, data sha256 %.12s)\n", out, sizeString(size), info.Training.SHA256)
}

func baseNames(paths []string) []string {
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = filepath.Base(p)
	}
	return names
}

func sizeString(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// loadData loads and concatenates files of records, with a progress bar per
// file on a terminal.
func loadData(env *Env, paths []string, skipBad bool) (*dataset.Dataset, error) {
	var all *dataset.Dataset
	for _, p := range paths {
		bar := newProgress(env.Stderr, "loading "+filepath.Base(p), true)
		opts := dataset.Options{SkipBad: skipBad}
		if bar != nil {
			opts.Progress = bar.update
		}
		d, err := dataset.Load(p, opts)
		bar.done()
		if err != nil {
			var pe *dataset.ParseError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("%w (use --skip-bad to skip bad lines)", err)
			}
			return nil, err
		}
		if all == nil {
			all = d
		} else {
			all.Concat(d)
		}
	}
	return all, nil
}
