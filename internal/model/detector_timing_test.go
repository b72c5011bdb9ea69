package model

import (
	"context"
	"testing"

	"github.com/netsentinel/netsentinel/internal/dataset"
	"github.com/netsentinel/netsentinel/internal/model/forest"
	"github.com/netsentinel/netsentinel/internal/record"
)

func benchDetector(b *testing.B) (*Detector, *dataset.Dataset) {
	train, test := kddSlices(b, 15000, 10000)
	d, err := Train(context.Background(), train, TrainOptions{Forest: forest.DefaultConfig()})
	if err != nil {
		b.Fatal(err)
	}
	return d, test
}

// BenchmarkPredict scores one row at a time with the default forest.
func BenchmarkPredict(b *testing.B) {
	d, test := benchDetector(b)
	var x [record.NumFeatures]float32
	b.ResetTimer()
	for i := range b.N {
		test.Row(i%test.Len(), &x)
		d.Predict(x[:])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkPredictBatch scores a dataset with the default forest on all
// cores.
func BenchmarkPredictBatch(b *testing.B) {
	d, test := benchDetector(b)
	b.ResetTimer()
	for range b.N {
		d.PredictBatch(test)
	}
	b.ReportMetric(float64(b.N*test.Len())/b.Elapsed().Seconds(), "records/s")
}
