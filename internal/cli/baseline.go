package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/netsentinel/netsentinel/internal/conntrack"
	"github.com/netsentinel/netsentinel/internal/dataset"
	"github.com/netsentinel/netsentinel/internal/features"
	"github.com/netsentinel/netsentinel/internal/model"
	"github.com/netsentinel/netsentinel/internal/record"
)

// DefaultBaselineTrim is the attack probability from which a baseline
// record that the model trained without the baseline flags is taken for an
// attack and left out of the baseline.
const DefaultBaselineTrim = 0.95

// baselineStats says what became of a baseline's records.
type baselineStats struct {
	records, added, trimmed, bad int
	// weight is how many times each added record counts.
	weight int
	// trim is the attack probability from which records were left out.
	trim float64
}

// A baseline counts as at least baselineRows training rows: each record is
// added up to maxBaselineWeight times.
const (
	baselineRows      = 5000
	maxBaselineWeight = 50
)

// readBaseline turns each file (a packet capture, a Zeek conn.log, or
// extract's JSON lines; plain or gzip) into connection records. Records
// that do not decode are counted and skipped.
func readBaseline(ctx context.Context, env *Env, paths []string) ([]record.Record, int, error) {
	var recs []record.Record
	bad := 0
	for _, p := range paths {
		data, err := baselineLines(ctx, env, p)
		if err != nil {
			return nil, 0, fmt.Errorf("--baseline %s: %w", p, err)
		}
		_ = dataset.DecodeLinesWith(data, 1, record.DecodePartial, func(line int, rec *record.Record, err error) error {
			if err != nil {
				if bad++; bad <= 5 {
					fmt.Fprintf(env.Stderr, "netsentinel train: --baseline %s:%d: %v (skipped)\n", p, line, err)
				}
				return nil
			}
			recs = append(recs, *rec)
			return nil
		})
	}
	return recs, bad, nil
}

// baselineLines returns the records of one baseline file as JSON or CSV
// lines: extract's output (or any record file) as it is, a capture or a
// Zeek log through the extractor with its default settings.
func baselineLines(ctx context.Context, env *Env, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dr, err := dataset.NewReader(f, path)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReader(dr)
	head, _ := br.Peek(64)
	if first := bytes.TrimLeft(head, " \t\r\n"); len(first) > 0 && first[0] == '{' {
		return io.ReadAll(br) // records already
	}
	var out bytes.Buffer
	x := newExtractor(&out, features.DefaultOptions(), conntrack.DefaultConfig())
	quiet := *env
	quiet.Stderr = io.Discard
	if err := x.file(ctx, &quiet, path, "auto"); err != nil && !errors.Is(err, errBadInput) {
		return nil, err
	}
	if err := x.finish(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// trainFunc trains one model: train shows a progress bar, detect --learn
// logs the progress.
type trainFunc func(ctx context.Context, what string, ds *dataset.Dataset, opts model.TrainOptions) (*model.Detector, error)

// withBaseline is what 'train --baseline' and 'detect --learn' share: it
// trains a first model on ds alone with opts, then adds the baseline
// records to ds as normal rows (addBaseline: completed with the first
// model's normal values, trimmed of what it is sure is an attack, weighted
// when few). The caller trains the final model on ds with the same opts.
// recs is reused for the added rows.
func withBaseline(ctx context.Context, train trainFunc, ds *dataset.Dataset, opts model.TrainOptions, recs []record.Record, trim float64) (first *model.Detector, st baselineStats, err error) {
	first, err = train(ctx, "training without the baseline", ds, opts)
	if err != nil {
		return nil, st, err
	}
	if nov, _ := first.Novelty(); nov == nil {
		return nil, st, Usagef("a baseline needs the novelty part (--novelty) to fill in the content features connections lack")
	}
	st, err = addBaseline(ds, first, recs, trim)
	return first, st, err
}

// String says what became of the baseline's records.
func (st baselineStats) String() string {
	return fmt.Sprintf("%d added as normal (each counted %d times), %d left out as attacks (attack probability >= %v), %d incomplete",
		st.added, st.weight, st.trimmed, st.trim, st.bad)
}

// thin returns a warning when the baseline is too small to cover a site's
// services and habits, or "".
func (st baselineStats) thin() string {
	if st.added >= minBaseline {
		return ""
	}
	return fmt.Sprintf("only %d connections; a baseline this small covers few of the site's services and habits: capture more ordinary traffic (docs/validation.md)", st.added)
}

// sureAttack reports whether m's classifier calls the (complete) record r
// an attack with a probability of at least trim.
func sureAttack(m *model.Detector, r *record.Record, trim float64) bool {
	v := m.PredictRecord(r)
	return v.IsAttack && v.FlaggedBy == "classifier" && v.AttackProbability >= trim
}

// addBaseline adds the baseline records to ds as normal rows, completing
// their absent content features with first's normal values and leaving out
// those first is sure are attacks (attack probability >= trim from the
// classifier).
func addBaseline(ds *dataset.Dataset, first *model.Detector, recs []record.Record, trim float64) (baselineStats, error) {
	st := baselineStats{records: len(recs), trim: trim}
	for i := range recs {
		r := &recs[i]
		if err := first.Complete(r); err != nil {
			st.bad++
			continue
		}
		if sureAttack(first, r, trim) {
			st.trimmed++
			continue
		}
		r.Label = "normal"
		recs[st.added] = *r
		st.added++
	}
	// A small baseline among tens of thousands of training rows would
	// hardly move the forest or the normal prototypes: each of its records
	// counts weight times.
	st.weight = max(1, min(maxBaselineWeight, (baselineRows+st.added-1)/max(st.added, 1)))
	for w := 0; w < st.weight; w++ {
		for i := range st.added {
			ds.Append(&recs[i])
		}
	}
	if st.added == 0 {
		return st, fmt.Errorf("baseline: none of its %d records is usable as normal traffic (%d taken for attacks, %d incomplete)", st.records, st.trimmed, st.bad)
	}
	return st, nil
}
