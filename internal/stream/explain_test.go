package stream

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
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

func rowsUpTo(n int) []int {
	r := make([]int, n)
	for i := range r {
		r[i] = i
	}
	return r
}
