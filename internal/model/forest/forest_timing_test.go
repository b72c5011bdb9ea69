package forest

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/netsentinel/netsentinel/internal/dataset"
	"github.com/netsentinel/netsentinel/internal/testkit"
)

var kddFull = filepath.Join("..", "..", "..", "data", "KDDTrain+.txt.gz")

// defaultModel is the forest trained with DefaultConfig on all of NSL-KDD
// KDDTrain+, as the train command would build it, and the 20% file's rows
// to score with it.
var defaultModel = sync.OnceValues(func() (*Model, error) {
	d, err := dataset.Load(kddFull, dataset.Options{})
	if err != nil {
		return nil, err
	}
	y, classes := classIndex(d.Labels)
	return Train(context.Background(), d.X[:], y, len(classes), DefaultConfig(), nil)
})

func benchModel(b *testing.B) (*Model, *dataset.Dataset) {
	b.Helper()
	m, err := defaultModel()
	if err != nil {
		b.Fatalf("train default model: %v", err)
	}
	d, err := loadKDD20()
	if err != nil {
		b.Fatalf("load: %v", err)
	}
	return m, d
}

// BenchmarkTrain trains the default forest on the NSL-KDD 20% file
// (25,192 rows) with all cores.
func BenchmarkTrain(b *testing.B) {
	d, err := loadKDD20()
	if err != nil {
		b.Fatalf("load: %v", err)
	}
	y, classes := classIndex(d.Labels)
	c0 := testkit.CPUTime()
	for b.Loop() {
		if _, err := Train(context.Background(), d.X[:], y, len(classes), DefaultConfig(), nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(d.Len())*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	if c := testkit.CPUTime() - c0; c > 0 && c0 > 0 {
		b.ReportMetric(c.Seconds()/float64(b.N), "cpu-s/op")
	}
}

// BenchmarkPredictProba scores one row at a time on one goroutine.
// records/cpu-s is the per-core throughput.
func BenchmarkPredictProba(b *testing.B) {
	m, d := benchModel(b)
	n := d.Len()
	rows := make([][]float32, n)
	for i := range rows {
		x := make([]float32, m.NumFeatures())
		for j := range x {
			x[j] = d.X[j][i]
		}
		rows[i] = x
	}
	out := make([]float32, m.NumClasses())
	c0 := testkit.CPUTime()
	i := 0
	for b.Loop() {
		m.PredictProba(rows[i], out)
		if i++; i == n {
			i = 0
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	reportPerCPU(b, b.N, c0)
}

// reportPerCPU reports records per CPU-second since c0: the throughput of
// one core, even when other processes compete for the cores.
func reportPerCPU(b *testing.B, records int, c0 time.Duration) {
	if c := testkit.CPUTime() - c0; c > 0 && c0 > 0 {
		b.ReportMetric(float64(records)/c.Seconds(), "records/cpu-s")
	}
}

// BenchmarkPredictProbaBatch scores the 20% file in one batch on all cores
// and reports the throughput, in total and per core (records/cpu-s).
func BenchmarkPredictProbaBatch(b *testing.B) {
	m, d := benchModel(b)
	out := make([]float32, d.Len()*m.NumClasses())
	c0 := testkit.CPUTime()
	for b.Loop() {
		m.PredictProbaBatch(d.X[:], out)
	}
	b.ReportMetric(float64(d.Len())*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	reportPerCPU(b, d.Len()*b.N, c0)
}
