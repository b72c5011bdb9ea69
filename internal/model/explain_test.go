package model

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/netsentinel/netsentinel/internal/model/novelty"
	"github.com/netsentinel/netsentinel/internal/record"
)

// TestExplain trains a forest with a novelty part and checks the
// explanations of classifier- and novelty-flagged verdicts: at most n
// reasons, largest first, each naming a feature whose value differs from
// the typical normal value (a feature equal to it cannot move the forest),
// and none for normal verdicts. It also checks that the confident-record
// novelty threshold survives a save and load.
func TestExplain(t *testing.T) {
	train, test := kddSlices(t, 15000, 4000)
	var keep []int
	for i, l := range train.Labels {
		if l != "satan" && l != "warezclient" {
			keep = append(keep, i)
		}
	}
	opts := smallForest()
	opts.Threshold = DefaultNoveltyThreshold
	opts.Novelty = &NoveltyOptions{Config: novelty.Config{Prototypes: 256}, Confident: DefaultConfident}
	d, err := Train(context.Background(), train.Subset(keep), opts)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := d.Save(&buf); err != nil {
		t.Fatal(err)
	}
	d2, err := Unmarshal(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	c1, t1 := d.NoveltyConfident()
	c2, t2 := d2.NoveltyConfident()
	_, thr := d.Novelty()
	if c1 != DefaultConfident || !(t1 > thr && t1 < 1) || c2 != c1 || t2 != t1 {
		t.Errorf("confident threshold: P(normal) %v novelty %v (others %v); after load %v %v", c1, t1, thr, c2, t2)
	}
	seen := map[string]int{}
	for i, v := range d.PredictBatch(test) {
		var x [record.NumFeatures]float32
		test.Row(i, &x)
		rs := d.Explain(x[:], v, 3)
		if !v.IsAttack {
			if rs != nil {
				t.Fatalf("row %d: normal verdict explained: %+v", i, rs)
			}
			continue
		}
		if seen[v.FlaggedBy] >= 50 {
			continue
		}
		seen[v.FlaggedBy]++
		if len(rs) == 0 || len(rs) > 3 {
			t.Fatalf("row %d (%s, flagged by %s): %d reasons, want 1..3", i, test.Labels[i], v.FlaggedBy, len(rs))
		}
		for k, r := range rs {
			if !(r.Contribution > 0) || (k > 0 && r.Contribution > rs[k-1].Contribution) {
				t.Errorf("row %d: reasons not positive and decreasing: %+v", i, rs)
			}
			if v.FlaggedBy == "classifier" && r.Value == r.Typical {
				t.Errorf("row %d: reason %+v has the typical value", i, r)
			}
		}
		if seen[v.FlaggedBy] == 1 {
			b := AppendReasons(nil, rs)
			var back []Reason
			if err := json.Unmarshal(b, &back); err != nil || len(back) != len(rs) || back[0].Feature != rs[0].Feature {
				t.Errorf("AppendReasons = %s (%v), want %+v", b, err, rs)
			}
			t.Logf("%s flagged by %s: %s", test.Labels[i], v.FlaggedBy, b)
		}
	}
	if seen["classifier"] == 0 || seen["novelty"] == 0 {
		t.Errorf("explained %v verdicts, want some of each part", seen)
	}
}

// BenchmarkExplain explains attack verdicts of the default detector
// trained on the 20% file (a cost paid per alert, not per record).
func BenchmarkExplain(b *testing.B) {
	ds, _ := kddSlices(b, 25000, 0)
	d, err := Train(context.Background(), ds, DefaultTrainOptions())
	if err != nil {
		b.Fatal(err)
	}
	var rows [][record.NumFeatures]float32
	var vs []Verdict
	for i, v := range d.PredictBatch(ds) {
		if v.IsAttack && len(rows) < 2048 {
			var x [record.NumFeatures]float32
			ds.Row(i, &x)
			rows, vs = append(rows, x), append(vs, v)
		}
	}
	for i := 0; b.Loop(); i++ {
		k := i % len(rows)
		d.Explain(rows[k][:], vs[k], 3)
	}
}

// TestAnalyze checks that Analyze, which shares one search for the nearest
// normal prototype between filling in, scoring and explaining, gives what
// Complete, PredictRecord and Explain give with a search each: the same
// completed record, verdict and reasons, on full rows and on rows without
// their content features, with a static and an adapting novelty part.
func TestAnalyze(t *testing.T) {
	train, test := kddSlices(t, 12000, 6000)
	opts := DefaultTrainOptions()
	opts.Forest.Trees = 10
	d, err := Train(context.Background(), train, opts)
	if err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, d, sep *Detector) {
		explained := map[string]int{}
		for i := range test.Len() {
			full := test.Record(i)
			for _, absent := range []uint64{0, ContentMask &^ (1<<11 | 1<<10), ContentMask} {
				r := full
				r.Absent = absent
				for j := range record.NumFeatures {
					if absent&(1<<j) != 0 {
						r.Features[j] = 0
					}
				}
				want := r
				if err := sep.Complete(&want); err != nil {
					t.Fatalf("row %d: Complete: %v", i, err)
				}
				wantV := sep.PredictRecord(&want)
				var x [record.NumFeatures]float32
				for j, v := range want.Features {
					x[j] = float32(v)
				}
				wantR := sep.Explain(x[:], wantV, 3)
				v, rs, err := d.Analyze(&r, 3)
				if err != nil {
					t.Fatalf("row %d: Analyze: %v", i, err)
				}
				if r != want || v != wantV || !slices.Equal(rs, wantR) {
					t.Fatalf("row %d, absent %x: Analyze = %+v, %+v, record %v; separately %+v, %+v, record %v",
						i, absent, v, rs, r.Features, wantV, wantR, want.Features)
				}
				if v.FlaggedBy == "novelty" && !slices.Equal(reasonNames(rs), sep.NoveltyFeatures(x[:], 3)) {
					t.Fatalf("row %d: novelty reasons %+v, NoveltyFeatures %v", i, rs, sep.NoveltyFeatures(x[:], 3))
				}
				explained[v.FlaggedBy]++
			}
		}
		if explained["classifier"] == 0 || explained["novelty"] == 0 {
			t.Errorf("verdicts by part %v, want some of each", explained)
		}
	}
	t.Run("static", func(t *testing.T) { check(t, d, d) })
	t.Run("adapting", func(t *testing.T) {
		// Two adapting detectors fed the same records in the same order
		// learn the same profile: one analyses, the other calls apart.
		a, b := adapted(t, d), adapted(t, d)
		check(t, a, b)
	})
}

func reasonNames(rs []Reason) []string {
	var names []string
	for _, r := range rs {
		names = append(names, r.Feature)
	}
	return names
}

// adapted returns a copy of d whose novelty part adapts.
func adapted(t *testing.T, d *Detector) *Detector {
	t.Helper()
	var buf bytes.Buffer
	if err := d.Save(&buf); err != nil {
		t.Fatal(err)
	}
	c, err := Unmarshal(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Adapt(novelty.AdaptConfig{}, 0); err != nil {
		t.Fatal(err)
	}
	return c
}
