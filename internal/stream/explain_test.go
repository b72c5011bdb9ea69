package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netsentinel/netsentinel/internal/dataset"
	"github.com/netsentinel/netsentinel/internal/event"
	"github.com/netsentinel/netsentinel/internal/model"
	"github.com/netsentinel/netsentinel/internal/record"
)

// TestAlertsExplainedOnce checks the alerts of a real model, which scores,
// fills in and explains each record in one pass (model.Detector.Analyze):
// their explanations and novelty features are those the model gives when
// asked apart, for full records and for records without content features.
func TestAlertsExplainedOnce(t *testing.T) {
	m := smallDetector(t)
	d, err := New(Options{Client: ClientConfig{Brokers: []string{"127.0.0.1:1"}}, Topic: "in", Group: "g", Scorer: m, AlertsTopic: "alerts"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	var rec record.Record
	for i, l := range kddLines(t, 12000)[8000:] {
		if err := record.DecodeCSV(l, &rec); err != nil {
			t.Fatal(err)
		}
		value := l
		if i%2 == 1 { // as extracted from packets: no content features
			rec.Absent = model.ContentMask
			value = rec.AppendJSON(nil)
		}
		v, why, explained, err := d.scoreRecord(value, &rec)
		if err != nil || !explained {
			t.Fatalf("record %d: explained %v, %v", i, explained, err)
		}
		if !v.IsAttack {
			continue
		}
		seen[v.FlaggedBy]++
		var a event.Alert
		r := &kgo.Record{Topic: "in", Offset: int64(i), Timestamp: time.Now()}
		if err := json.Unmarshal(d.appendAlert(nil, r, &rec, &v, why, explained), &a); err != nil {
			t.Fatal(err)
		}
		var x [record.NumFeatures]float32
		for j, f := range rec.Features {
			x[j] = float32(f)
		}
		var want []event.Reason
		for _, r := range m.Explain(x[:], v, alertReasons) {
			want = append(want, event.Reason(r))
		}
		if !reflect.DeepEqual(a.Explanation, want) {
			t.Fatalf("record %d (%s): explanation %+v, model.Explain %+v", i, v.FlaggedBy, a.Explanation, want)
		}
		if wantNF := m.NoveltyFeatures(x[:], alertReasons); v.FlaggedBy == "novelty" && !slices.Equal(a.NoveltyFeatures, wantNF) {
			t.Fatalf("record %d: novelty features %q, model %q", i, a.NoveltyFeatures, wantNF)
		}
	}
	if seen["classifier"] == 0 || seen["novelty"] == 0 {
		t.Errorf("alerts by part %v, want some of each", seen)
	}
}

// smallDetector trains the default detector, with 8 trees, on the first
// 8,000 rows of the shipped 20% file (kddLines' first 8,000 lines).
func smallDetector(t *testing.T) *model.Detector {
	t.Helper()
	ds, err := dataset.Load("../../data/KDDTrain+_20Percent.txt.gz", dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts := model.DefaultTrainOptions()
	opts.Forest.Trees = 8
	m, err := model.Train(context.Background(), ds.Subset(rowsUpTo(8000)), opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func rowsUpTo(n int) []int {
	r := make([]int, n)
	for i := range r {
		r[i] = i
	}
	return r
}

// counting scores with a model and counts the records it analyses; it
// does not learn, so the detector may reuse a verdict for an equal record.
type counting struct {
	m     *model.Detector
	calls *atomic.Int64
}

func (c counting) PredictRecord(r *record.Record) model.Verdict { return c.m.PredictRecord(r) }
func (c counting) Analyze(r *record.Record, n int) (model.Verdict, []model.Reason, error) {
	c.calls.Add(1)
	return c.m.Analyze(r, n)
}
func (c counting) Learns() bool { return false }

// apart scores, fills in and explains with a model in separate calls, and
// does not say whether it learns: every record is scored.
type apart struct{ m *model.Detector }

func (a apart) PredictRecord(r *record.Record) model.Verdict { return a.m.PredictRecord(r) }
func (a apart) Complete(r *record.Record) error              { return a.m.Complete(r) }
func (a apart) Explain(x []float32, v model.Verdict, n int) []model.Reason {
	return a.m.Explain(x, v, n)
}
func (a apart) NoveltyFeatures(x []float32, n int) []string { return a.m.NoveltyFeatures(x, n) }

// TestScoreRangeRepeats scores a batch with runs of identical records and
// records seen earlier twice: with a scorer that lets the detector reuse
// the verdict of a record scored recently (it analyses far fewer), and with
// the model
// behind a scorer that does not (every record scored and explained apart); the
// outcomes and the alerts' bytes must be the same.
func TestScoreRangeRepeats(t *testing.T) {
	m := smallDetector(t)
	var in []*kgo.Record
	ts := time.Unix(1000, 0)
	for i, l := range kddLines(t, 8600)[8000:] {
		for range 1 + i%4 { // runs of 1 to 4 equal records
			in = append(in, &kgo.Record{Topic: "in", Offset: int64(len(in)), Timestamp: ts, Value: l})
		}
		if i%50 == 0 {
			in = append(in, &kgo.Record{Topic: "in", Offset: int64(len(in)), Timestamp: ts, Value: []byte("not,a,record")})
		}
	}
	// Records seen a little earlier, in between others.
	for i := range 600 {
		in = append(in, &kgo.Record{Topic: "in", Offset: int64(len(in)), Timestamp: ts, Value: in[i].Value},
			&kgo.Record{Topic: "in", Offset: int64(len(in) + 1), Timestamp: ts, Value: in[i+3].Value})
	}
	run := func(s Scorer) (*Detector, []string) {
		d, err := New(Options{Client: ClientConfig{Brokers: []string{"127.0.0.1:1"}}, Topic: "in", Group: "g", Scorer: s,
			AlertsTopic: "alerts", DeadLetterTopic: "dead", Instance: "x"})
		if err != nil {
			t.Fatal(err)
		}
		d.in = in
		d.startScoring()
		d.score(0, len(in))
		var out []string
		for i := range in {
			res := &d.results[i]
			out = append(out, fmt.Sprintf("%d %s %s %s", res.kind, res.category, res.attack, d.workers[res.w].buf[res.start:res.end]))
		}
		return d, out
	}
	var calls atomic.Int64
	_, memo := run(counting{m, &calls})
	_, plain := run(apart{m})
	if n := calls.Load(); n >= int64(len(in)*2/3) {
		t.Errorf("%d records analysed of %d, want repeated records reused", n, len(in))
	}
	for i := range in {
		if memo[i] != plain[i] {
			t.Fatalf("record %d: reused %q, scored %q", i, memo[i], plain[i])
		}
	}
}
