package model

import (
	"bytes"
	"context"
	"testing"

	"github.com/netsentinel/netsentinel/internal/dataset"
	"github.com/netsentinel/netsentinel/internal/model/forest"
	"github.com/netsentinel/netsentinel/internal/model/novelty"
	"github.com/netsentinel/netsentinel/internal/record"
	"github.com/netsentinel/netsentinel/internal/testkit"
)

// TestNoveltyPart trains a forest with the novelty part of package novelty
// on all but three attack types, and checks that the novelty part catches
// records of those types the forest calls normal, that it survives a save
// and load, and that it flags few unseen normal rows.
func TestNoveltyPart(t *testing.T) {
	train, test := kddSlices(t, 15000, 10000)
	unseen := map[string]bool{"satan": true, "portsweep": true, "warezclient": true}
	var keep []int
	for i, l := range train.Labels {
		if !unseen[l] {
			keep = append(keep, i)
		}
	}
	opts := smallForest()
	opts.Threshold = DefaultNoveltyThreshold
	opts.Novelty = &NoveltyOptions{Config: novelty.Config{Prototypes: 256}}
	d, err := Train(context.Background(), train.Subset(keep), opts)
	if err != nil {
		t.Fatal(err)
	}
	nov, thr := d.Novelty()
	if nov == nil || nov.Kind() != novelty.Kind || !(thr > 0 && thr < 1) {
		t.Fatalf("novelty part %v, threshold %v", nov, thr)
	}
	var buf bytes.Buffer
	if err := d.Save(&buf); err != nil {
		t.Fatal(err)
	}
	d2, err := Unmarshal(buf.Bytes())
	if err != nil {
		t.Fatalf("load a model with a novelty part: %v", err)
	}
	if _, thr2 := d2.Novelty(); thr2 != thr {
		t.Errorf("novelty threshold %v after load, want %v", thr2, thr)
	}
	v1, v2 := d.PredictBatch(test), d2.PredictBatch(test)
	var normals, fp, unseenN, caught, byNovelty, forestOnly int
	// The forest alone, with the threshold it has without a novelty part.
	d.SetNovelty(nil, 0)
	if err := d.SetThreshold(DefaultThreshold); err != nil {
		t.Fatal(err)
	}
	v0 := d.PredictBatch(test)
	for i, v := range v1 {
		if unseen[test.Labels[i]] && v0[i].IsAttack {
			forestOnly++
		}
		if v != v2[i] {
			t.Fatalf("row %d: verdict %+v after load, want %+v", i, v2[i], v)
		}
		switch l := test.Labels[i]; {
		case l == "normal":
			normals++
			if v.IsAttack {
				fp++
			}
		case unseen[l]:
			unseenN++
			if v.IsAttack {
				caught++
			}
			if v.FlaggedBy == "novelty" {
				byNovelty++
				if byNovelty == 1 {
					var x [record.NumFeatures]float32
					test.Row(i, &x)
					if names := d2.NoveltyFeatures(x[:], 3); len(names) != 3 {
						t.Errorf("NoveltyFeatures of row %d = %q, want 3 names", i, names)
					}
				}
				if v.Attack != "unknown" || v.Category != record.CategoryUnknown {
					t.Errorf("row %d flagged by novelty: %+v", i, v)
				}
			}
		}
	}
	t.Logf("unseen types: %d of %d flagged (%d by novelty; %d by the forest alone at P(normal) < 0.5); normal: %d of %d flagged",
		caught, unseenN, byNovelty, forestOnly, fp, normals)
	if unseenN == 0 || float64(caught) < 0.7*float64(unseenN) || caught-forestOnly < unseenN/10 {
		t.Errorf("unseen attack types: %d of %d flagged, %d by the forest alone; want >= 70%% and 10 points more than the forest",
			caught, unseenN, forestOnly)
	}
	if float64(fp) > 0.06*float64(normals) {
		t.Errorf("%d of %d unseen normal rows flagged, want <= 6%%", fp, normals)
	}
}

// defaultDetector trains the default detector (DefaultTrainOptions, what
// netsentinel train makes) on all of KDDTrain+.
func defaultDetector(b *testing.B) (*dataset.Dataset, *Detector) {
	b.Helper()
	if testing.Short() {
		b.Skip("trains on all of KDDTrain+")
	}
	ds, err := dataset.Load(trainFile, dataset.Options{})
	if err != nil {
		b.Fatal(err)
	}
	d, err := Train(context.Background(), ds, DefaultTrainOptions())
	if err != nil {
		b.Fatal(err)
	}
	return ds, d
}

// BenchmarkPredictDefault scores rows one at a time with the default
// combined detector (forest and novelty part, as netsentinel train makes
// it) trained on all of KDDTrain+; records/cpu-s is the
// per-core throughput. The sub-benchmarks compare with the forest alone.
func BenchmarkPredictDefault(b *testing.B) {
	ds, d := defaultDetector(b)
	nov, thr := d.Novelty()
	rows := make([][record.NumFeatures]float32, 8192)
	for k := range rows {
		ds.Row(k*ds.Len()/len(rows), &rows[k])
	}
	for _, tc := range []struct {
		name string
		nov  Novelty
	}{{"forest+novelty", nov}, {"forest", nil}} {
		b.Run(tc.name, func(b *testing.B) {
			d.SetNovelty(tc.nov, thr)
			c0 := testkit.CPUTime()
			for i := 0; b.Loop(); i++ {
				d.Predict(rows[i%len(rows)][:])
			}
			if c := testkit.CPUTime() - c0; c > 0 && c0 > 0 {
				b.ReportMetric(float64(b.N)/c.Seconds(), "records/cpu-s")
			}
		})
	}
}

// BenchmarkPredictBatchDefault is BenchmarkPredictDefault for PredictBatch
// (all cores; records/cpu-s is still per core).
func BenchmarkPredictBatchDefault(b *testing.B) {
	ds, d := defaultDetector(b)
	nov, thr := d.Novelty()
	for _, tc := range []struct {
		name string
		nov  Novelty
	}{{"forest+novelty", nov}, {"forest", nil}} {
		b.Run(tc.name, func(b *testing.B) {
			d.SetNovelty(tc.nov, thr)
			c0 := testkit.CPUTime()
			for b.Loop() {
				d.PredictBatch(ds)
			}
			if c := testkit.CPUTime() - c0; c > 0 && c0 > 0 {
				b.ReportMetric(float64(b.N*ds.Len())/c.Seconds(), "records/cpu-s")
			}
		})
	}
}

// TestDefaultTrainOptions checks that the default options are those of the
// validated default detector, so that every caller (train, demo) gets it.
func TestDefaultTrainOptions(t *testing.T) {
	o := DefaultTrainOptions()
	if o.Algo != AlgoForest || o.Forest.MaxFeatures != forest.DefaultMaxFeatures || o.Forest.Trees != forest.DefaultTrees {
		t.Errorf("forest options = %s %+v, want the forest's DefaultConfig", o.Algo, o.Forest)
	}
	if o.Novelty == nil || o.Novelty.FPR != DefaultNoveltyFPR || o.Threshold != DefaultNoveltyThreshold {
		t.Errorf("novelty %+v threshold %v, want FPR %v and threshold %v", o.Novelty, o.Threshold, DefaultNoveltyFPR, DefaultNoveltyThreshold)
	}
}
