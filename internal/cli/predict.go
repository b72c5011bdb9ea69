package cli

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/netsentinel/netsentinel/internal/dataset"
	"github.com/netsentinel/netsentinel/internal/model"
	"github.com/netsentinel/netsentinel/internal/record"
)

var cmdPredict = &Command{
	Name:      "predict",
	UsageLine: "predict --model MODEL [FILE|-]",
	Short:     "print a verdict for each connection record of a file or stdin",
	Long: `
Predict reads connection records, one per line, from FILE (plain or .gz) or
standard input ("-" or no argument). Each line may be a CSV line of 41
features, optionally followed by a label and a difficulty, or a JSON object
keyed by feature name (optionally with "label"); the format is detected line by line. Blank
lines are skipped.

For each record it prints one JSON object on its own line, in input order:

  {"line":1,"attack":"neptune","category":"dos","binary":"attack",
   "is_attack":true,"probability":0.99,"category_probability":1,
   "attack_probability":1,"novelty":0,"flagged_by":"classifier"}

"line" is the input line number, "attack" the predicted type ("normal", an
attack name, or "unknown"), "probability" its probability,
"attack_probability" the probability that the record is not normal,
"novelty" the novelty score (0 without a novelty part) and "flagged_by"
which part flagged the record. For a record flagged by the novelty part
("attack":"unknown"), "novelty_features" names the (up to 3) features that
set it furthest apart from normal traffic. When the input carries a label
it is echoed as "label", and the connection's identity (the keys "ts",
"src_ip", "src_port", "dst_ip", "dst_port" and "uid" that extract writes)
is passed through under the same keys.

A malformed line prints {"line":N,"error":"..."} instead and processing
continues; the command then exits with code 3.
`,
	Flags: predictFlags,
}

func predictFlags(fs *flag.FlagSet) RunFunc {
	modelPath := fs.String("model", "", "model `file` written by train (required)")
	return func(ctx context.Context, env *Env, args []string) error {
		if *modelPath == "" {
			return Usagef("--model is required")
		}
		if len(args) > 1 {
			return Usagef("at most one input file, got %d", len(args))
		}
		det, err := model.LoadFile(*modelPath)
		if err != nil {
			return err
		}
		in, name := env.Stdin, "stdin"
		if len(args) == 1 && args[0] != "-" {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			in, name = f, args[0]
			if strings.HasSuffix(name, ".gz") {
				zr, err := gzip.NewReader(f)
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				defer zr.Close()
				in = zr
			}
		}
		w := bufio.NewWriterSize(env.Stdout, 1<<16)
		lines, bad, err := predictStream(ctx, det, in, w)
		if ferr := w.Flush(); err == nil && ferr != nil {
			err = ferr
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if bad > 0 {
			return fmt.Errorf("%s: %d of %d records invalid: %w", name, bad, lines, ErrBadData)
		}
		return nil
	}
}

// predictBatch is a run of input lines scored by one worker.
type predictBatch struct {
	firstLine int
	data      []byte // the lines, each ending in '\n'
	out       []byte
	records   int
	bad       int
	done      chan struct{}
}

const predictBatchBytes = 256 << 10

// predictStream scores the lines of r on all cores and writes the verdicts
// to w in input order. It returns the number of records read and of bad
// ones.
func predictStream(ctx context.Context, det *model.Detector, r io.Reader, w io.Writer) (records, bad int, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := runtime.GOMAXPROCS(0)
	work := make(chan *predictBatch, workers)
	order := make(chan *predictBatch, 2*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				scoreBatch(det, b)
				close(b.done)
			}
		}()
	}
	// The reader cuts the input into batches of whole lines.
	readErr := make(chan error, 1)
	go func() {
		defer close(order)
		defer close(work)
		readErr <- readBatches(ctx, r, func(b *predictBatch) {
			order <- b
			work <- b
		})
	}()
	var werr error
	for b := range order {
		<-b.done
		records += b.records
		bad += b.bad
		if werr == nil {
			if _, werr = w.Write(b.out); werr != nil {
				cancel() // stop reading; drain what is in flight
			}
		}
	}
	wg.Wait()
	if werr != nil {
		return records, bad, werr
	}
	return records, bad, <-readErr
}

func readBatches(ctx context.Context, r io.Reader, emit func(*predictBatch)) error {
	c := dataset.NewChunker(r, predictBatchBytes)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		data, line, err := c.Next(nil)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		emit(&predictBatch{firstLine: line, data: data, done: make(chan struct{})})
	}
}

// scoreBatch decodes the lines of b into columns, scores them together
// (much faster than row by row) and encodes the verdicts and errors in line
// order.
func scoreBatch(det *model.Detector, b *predictBatch) {
	type lineInfo struct {
		line  int
		label string          // for a good line
		id    record.Identity // for a good line
		err   error           // for a bad one
	}
	n := bytes.Count(b.data, []byte{'\n'}) + 1
	var cols [record.NumFeatures][]float32
	for j := range cols {
		cols[j] = make([]float32, 0, n)
	}
	infos := make([]lineInfo, 0, n)
	_ = dataset.DecodeLines(b.data, b.firstLine, func(line int, rec *record.Record, err error) error {
		if err != nil {
			b.bad++
			infos = append(infos, lineInfo{line: line, err: err})
			return nil
		}
		for j, v := range rec.Features {
			cols[j] = append(cols[j], float32(v))
		}
		infos = append(infos, lineInfo{line: line, label: rec.Label, id: rec.ID})
		return nil
	})
	b.records = len(infos)
	verdicts := make([]model.Verdict, len(cols[0]))
	if len(verdicts) > 0 {
		det.PredictColumns(cols[:], verdicts)
	}
	out := make([]byte, 0, len(infos)*200)
	k := 0
	for _, in := range infos {
		if in.err != nil {
			out = appendErrorLine(out, in.line, in.err)
			continue
		}
		var why []string
		if verdicts[k].FlaggedBy == "novelty" {
			var x [record.NumFeatures]float32
			for j := range x {
				x[j] = cols[j][k]
			}
			why = det.NoveltyFeatures(x[:], 3)
		}
		out = appendVerdict(out, in.line, in.id, in.label, verdicts[k], why)
		k++
	}
	b.out = out
	b.data = nil
}

func appendErrorLine(b []byte, line int, err error) []byte {
	msg, _ := json.Marshal(err.Error())
	b = append(b, `{"line":`...)
	b = strconv.AppendInt(b, int64(line), 10)
	b = append(b, `,"error":`...)
	b = append(b, msg...)
	return append(b, "}\n"...)
}

// appendVerdict appends v as one JSON line, with the features that made the
// record novel when there are any. Labels and attack names are plain
// identifiers, but they are quoted safely anyway.
func appendVerdict(b []byte, line int, id record.Identity, label string, v model.Verdict, noveltyFeatures []string) []byte {
	b = append(b, `{"line":`...)
	b = strconv.AppendInt(b, int64(line), 10)
	b = record.AppendJSONIdentity(b, id)
	if label != "" {
		b = append(b, `,"label":`...)
		b = appendString(b, label)
	}
	b = append(b, `,"attack":`...)
	b = appendString(b, v.Attack)
	b = append(b, `,"category":"`...)
	b = append(b, v.Category.String()...)
	if v.IsAttack {
		b = append(b, `","binary":"attack","is_attack":true`...)
	} else {
		b = append(b, `","binary":"normal","is_attack":false`...)
	}
	b = append(b, `,"probability":`...)
	b = appendProb(b, v.Probability)
	b = append(b, `,"category_probability":`...)
	b = appendProb(b, v.CategoryProbability)
	b = append(b, `,"attack_probability":`...)
	b = appendProb(b, v.AttackProbability)
	b = append(b, `,"novelty":`...)
	b = appendProb(b, v.Novelty)
	if v.FlaggedBy != "" {
		b = append(b, `,"flagged_by":`...)
		b = appendString(b, v.FlaggedBy)
	}
	if len(noveltyFeatures) > 0 {
		b = append(b, `,"novelty_features":[`...)
		for i, f := range noveltyFeatures {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, f)
		}
		b = append(b, ']')
	}
	return append(b, "}\n"...)
}

// appendProb appends a probability with float32 precision, which is what
// the models compute in.
func appendProb(b []byte, p float64) []byte {
	if p != p || p > 1e300 || p < -1e300 {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, p, 'g', 6, 64)
}

func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
