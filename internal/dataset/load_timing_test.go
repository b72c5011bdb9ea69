package dataset

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/netsentinel/netsentinel/internal/testkit"
)

// BenchmarkLoad measures parse + encode (lines to the column matrix) of the
// KDD'99 10% file, decompressed beforehand. rows/s is over all GOMAXPROCS
// cores and rows/s/core divides by them (run with -cpu 1 for one core);
// rows/cpu-s divides by the CPU time the process used, which is the
// per-core figure even when other processes share the machine.
func BenchmarkLoad(b *testing.B) {
	raw := gunzip(b, dataDir+"kddcup.data_10_percent.gz")
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	b.ResetTimer()
	start := testkit.CPUTime()
	rows := 0
	for i := 0; i < b.N; i++ {
		d, err := Read(bytes.NewReader(raw), "kddcup.data_10_percent", Options{})
		if err != nil {
			b.Fatal(err)
		}
		rows += d.Len()
	}
	perSec := float64(rows) / b.Elapsed().Seconds()
	b.ReportMetric(perSec, "rows/s")
	b.ReportMetric(perSec/float64(runtime.GOMAXPROCS(0)), "rows/s/core")
	if cpu := testkit.CPUTime() - start; cpu > 0 && start > 0 {
		b.ReportMetric(float64(rows)/cpu.Seconds(), "rows/cpu-s")
	}
}

// BenchmarkLoadGzip is BenchmarkLoad from the gzip file on disk, which adds
// decompression on the reader goroutine.
func BenchmarkLoadGzip(b *testing.B) {
	b.ReportAllocs()
	start := testkit.CPUTime()
	rows := 0
	for i := 0; i < b.N; i++ {
		d, err := Load(dataDir+"kddcup.data_10_percent.gz", Options{})
		if err != nil {
			b.Fatal(err)
		}
		rows += d.Len()
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
	if cpu := testkit.CPUTime() - start; cpu > 0 && start > 0 {
		b.ReportMetric(float64(rows)/cpu.Seconds(), "rows/cpu-s")
	}
}
