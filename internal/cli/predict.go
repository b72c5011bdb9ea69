package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/bits"
	"runtime"
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
Predict reads connection records, one per line, from FILE or standard input
("-" or no argument), plain or gzip (recognised by its first bytes; a gzip
stream cut short is an error naming the line). Verdicts are written as the
lines arrive, so "tail -f conn.csv | netsentinel predict --model M" shows
each verdict as its line comes. Each line may be a CSV line of 41
features, optionally followed by a label and a difficulty, or a JSON object
keyed by feature name (optionally with "label"); the format is detected
line by line. Blank lines are skipped.

For each record it prints one JSON object on its own line, in input order:

  {"line":1,"attack":"neptune","category":"dos","binary":"attack",
   "is_attack":true,"probability":0.99,"category_probability":1,
   "attack_probability":1,"novelty":0,"flagged_by":"classifier"}

"line" is the input line number, "attack" the predicted type ("normal", an
attack name, or "unknown"), "probability" its probability,
"attack_probability" the probability that the record is not normal,
"novelty" the novelty score (0 without a novelty part; a probability that
is not a number is null) and "flagged_by" which part flagged the record. For a record flagged by the novelty part
("attack":"unknown"), "novelty_features" names the (up to 3) features that
set it furthest apart from normal traffic. Every attack verdict also
carries "explanation": the (up to 3) features that drove it, each as
{"feature","value","typical","contribution"}: the record's value, the value
typical of normal traffic of its service (the nearest normal prototype),
and for classifier verdicts how much that value raised the attack
probability (exact Shapley values on the forest's trees), for novelty
verdicts the feature's share of the distance to normal traffic. When the input carries a label
it is echoed as "label", and the connection's identity (the keys "ts",
"src_ip", "src_port", "dst_ip", "dst_port" and "uid" that extract writes)
is passed through under the same keys.

A malformed line prints {"line":N,"error":"..."} instead and processing
continues; the command then exits with code 3.

With --summary, predict prints instead one line per source address (the
record's "src_ip"; records without one are grouped under "-"): the
connections seen, how many were flagged, their share, and the flagged ones'
categories with their counts, sorted by flagged connections, most first.
The table is plain text; --json prints one JSON object per source:

  {"source":"10.0.0.7","connections":1200,"flagged":1187,"share":0.989,
   "categories":{"dos":1180,"unknown":7}}

Malformed lines are then reported on standard error, one JSON line each.
`,
	Flags: predictFlags,
}

func predictFlags(fs *flag.FlagSet) RunFunc {
	modelPath := fs.String("model", "", "model `file` written by train (required)")
	summary := fs.Bool("summary", false, "print one line per source address instead of one per record")
	asJSON := fs.Bool("json", false, "with --summary: print one JSON object per source instead of a table")
	return func(ctx context.Context, env *Env, args []string) error {
		if *modelPath == "" {
			return Usagef("--model is required")
		}
		if *asJSON && !*summary {
			return Usagef("--json goes with --summary (the verdicts are JSON already)")
		}
		if len(args) > 1 {
			return Usagef("at most one input file, got %d", len(args))
		}
		det, err := model.LoadFile(*modelPath)
		if err != nil {
			return err
		}
		var in *dataset.Reader
		if len(args) == 1 && args[0] != "-" {
			in, err = dataset.Open(args[0])
		} else {
			in, err = dataset.NewReader(env.Stdin, "stdin")
		}
		if err != nil {
			return err
		}
		defer in.Close()
		name := "stdin"
		if len(args) == 1 && args[0] != "-" {
			name = args[0]
		}
		var (
			lines, bad int
			sum        *sourceSummary
		)
		if *summary {
			sum = newSourceSummary()
			w := bufio.NewWriterSize(env.Stderr, 1<<12)
			lines, bad, err = runPredict(ctx, det, in, w, sum)
			if err == nil {
				err = sum.write(env.Stdout, *asJSON)
			}
		} else {
			w := bufio.NewWriterSize(env.Stdout, 1<<16)
			lines, bad, err = predictStream(ctx, det, in, w)
		}
		if err != nil {
			var re *dataset.ReadError
			if errors.As(err, &re) {
				return err // it names the input and the position
			}
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
	data      []byte // the lines, each ending in '\n' (the last may not)
	out       []byte
	records   int
	bad       int
	// tally, when not nil, receives the verdicts by source; out then holds
	// only the error lines.
	tally *sourceSummary
	done  chan struct{}
}

const (
	// predictBatchBytes caps a batch: large batches score fastest.
	predictBatchBytes = 256 << 10
	// predictReadBytes is the most one read takes from the input.
	predictReadBytes = 64 << 10
)

// predictStream scores the lines of r on all cores and writes the verdicts
// to w in input order. Input that arrives slowly (a pipe from tail -f) is
// scored as it arrives: a batch holds what has been read so far, and w is
// flushed whenever no further batch is waiting. It returns the number of
// records read and of bad ones; w is flushed before it returns.
func predictStream(ctx context.Context, det *model.Detector, r io.Reader, w *bufio.Writer) (records, bad int, err error) {
	return runPredict(ctx, det, r, w, nil)
}

// runPredict is predictStream; with a non-nil sum it adds the verdicts to
// sum by source instead of writing them, and writes only the error lines.
func runPredict(ctx context.Context, det *model.Detector, r io.Reader, w *bufio.Writer, sum *sourceSummary) (records, bad int, err error) {
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
	readErr := make(chan error, 1)
	go func() {
		defer close(order)
		defer close(work)
		readErr <- readBatches(ctx, r, func(b *predictBatch) {
			if sum != nil {
				b.tally = newSourceSummary()
			}
			order <- b
			work <- b
		})
	}()
	var werr error
	for b := range order {
		<-b.done
		records += b.records
		bad += b.bad
		if sum != nil {
			sum.merge(b.tally)
		}
		if werr == nil {
			_, werr = w.Write(b.out)
			if werr == nil && len(order) == 0 {
				werr = w.Flush()
			}
			if werr != nil {
				cancel() // stop reading; drain what is in flight
			}
		}
	}
	wg.Wait()
	if werr == nil {
		werr = w.Flush()
	}
	if werr != nil {
		return records, bad, werr
	}
	return records, bad, <-readErr
}

// readBatches cuts r into batches of whole lines and emits them in order.
// One goroutine reads; the batcher takes what it has read so far (up to
// predictBatchBytes), so a slow input yields a batch per line and a fast
// one large batches. It returns after the reading goroutine has ended.
func readBatches(ctx context.Context, r io.Reader, emit func(*predictBatch)) error {
	pieces := make(chan []byte, 8)
	stop := make(chan struct{})
	readErr := make(chan error, 1)
	go func() {
		defer close(pieces)
		for {
			buf := make([]byte, predictReadBytes)
			n, err := r.Read(buf)
			if n > 0 {
				select {
				case pieces <- buf[:n]:
				case <-stop:
					readErr <- nil
					return
				}
			}
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				readErr <- err
				return
			}
		}
	}()
	defer func() {
		close(stop)
		for range pieces { // let the reader finish its read and end
		}
	}()
	line := 1
	var carry []byte
	for eof := false; !eof; {
		var data []byte
		select {
		case <-ctx.Done():
			return ctx.Err()
		case p, ok := <-pieces:
			data, eof = append(carry, p...), !ok
		}
		for !eof && len(data) < predictBatchBytes {
			select {
			case p, ok := <-pieces:
				data, eof = append(data, p...), !ok
				continue
			default:
			}
			break
		}
		cut := len(data)
		if !eof {
			cut = bytes.LastIndexByte(data, '\n') + 1
		}
		carry = bytes.Clone(data[cut:])
		if cut > 0 {
			emit(&predictBatch{firstLine: line, data: data[:cut], done: make(chan struct{})})
			line += bytes.Count(data[:cut], []byte{'\n'})
		}
	}
	return <-readErr
}

// scoreBatch decodes, scores and explains the lines of b and encodes the
// verdicts and errors in line order.
func scoreBatch(det *model.Detector, b *predictBatch) {
	explain := predictExplain
	var out []byte
	if b.tally != nil {
		explain = 0 // the summary shows no explanations
	} else {
		out = make([]byte, 0, 200*(bytes.Count(b.data, []byte{'\n'})+1))
	}
	_ = dataset.DecodeLinesWith(b.data, b.firstLine, record.DecodePartial, func(line int, rec *record.Record, err error) error {
		b.records++
		filled := bits.OnesCount64(rec.Absent)
		var (
			v   model.Verdict
			why []model.Reason
		)
		if err == nil {
			v, why, err = det.Analyze(rec, explain)
		}
		if err != nil {
			b.bad++
			out = (&predictLine{Line: line, Error: err.Error()}).AppendJSON(out)
			return nil
		}
		if b.tally != nil {
			b.tally.add(rec.ID.SrcIP, &v)
			return nil
		}
		var novel []string
		if v.FlaggedBy == "novelty" {
			for _, r := range why {
				novel = append(novel, r.Feature)
			}
		}
		pl := newPredictLine(line, rec.ID, rec.Label, &v, novel)
		pl.Explanation = why
		pl.FilledIn = filled
		out = pl.AppendJSON(out)
		return nil
	})
	b.out = out
	b.data = nil
}

// predictExplain is how many features explain each attack verdict (and
// name what made a novelty verdict novel).
const predictExplain = 3
