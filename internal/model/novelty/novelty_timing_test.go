package novelty

import (
	"context"
	"testing"

	"github.com/netsentinel/netsentinel/internal/record"
	"github.com/netsentinel/netsentinel/internal/testkit"
)

// BenchmarkScore scores rows of the 20% file (normal and attacks) one at a
// time with the default configuration; records/cpu-s is the per-core
// throughput (robust to other processes sharing the machine).
func BenchmarkScore(b *testing.B) {
	ds := load(b)
	train, _, _ := split(ds)
	m, err := Train(context.Background(), ds.Subset(train).X[:], DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	rows := make([][record.NumFeatures]float32, 4096)
	for k := range rows {
		ds.Row(k*ds.Len()/len(rows), &rows[k])
	}
	b.ReportAllocs()
	b.ResetTimer()
	var sink float64
	c0 := testkit.CPUTime()
	for i := 0; b.Loop(); i++ {
		sink += m.Score(rows[i%len(rows)][:])
	}
	if c := testkit.CPUTime() - c0; c > 0 && c0 > 0 {
		b.ReportMetric(float64(b.N)/c.Seconds(), "records/cpu-s")
	}
	_ = sink
}

func BenchmarkTrain(b *testing.B) {
	ds := load(b)
	train, _, _ := split(ds)
	X := ds.Subset(train).X[:]
	for b.Loop() {
		if _, err := Train(context.Background(), X, DefaultConfig()); err != nil {
			b.Fatal(err)
		}
	}
}
