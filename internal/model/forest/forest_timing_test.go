package forest

import (
	"context"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/netsentinel/netsentinel/internal/dataset"
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
	b.ResetTimer()
	for b.Loop() {
		if _, err := Train(context.Background(), d.X[:], y, len(classes), DefaultConfig(), nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(d.Len())*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkPredictProba scores one row at a time on one goroutine.
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
	b.ResetTimer()
	i := 0
	for b.Loop() {
		m.PredictProba(rows[i], out)
		if i++; i == n {
			i = 0
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s/core")
}

// BenchmarkPredictProbaBatch scores the 20% file in one batch on all cores
// and reports the throughput per core.
func BenchmarkPredictProbaBatch(b *testing.B) {
	m, d := benchModel(b)
	out := make([]float32, d.Len()*m.NumClasses())
	b.ResetTimer()
	for b.Loop() {
		m.PredictProbaBatch(d.X[:], out)
	}
	perSec := float64(d.Len()) * float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(perSec, "records/s")
	b.ReportMetric(perSec/float64(runtime.GOMAXPROCS(0)), "records/s/core")
}
