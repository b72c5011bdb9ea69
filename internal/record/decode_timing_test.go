package record

import (
	"testing"
	"time"

	"github.com/netsentinel/netsentinel/internal/testkit"
)

// benchLines are real records of different shapes.
var benchLines = []string{nslLine, kdd99Line, smurfLine,
	"0,udp,private,SF,105,146,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,1,0.00,0.00,0.00,0.00,1.00,0.00,0.00,255,254,1.00,0.01,0.00,0.00,0.00,0.00,0.00,0.00,snmpgetattack.",
	"0,tcp,private,S0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,123,6,1.00,1.00,0.00,0.00,0.05,0.07,0.00,255,26,0.10,0.05,0.00,0.00,1.00,1.00,0.00,0.00,neptune,19",
}

func benchRecords(b *testing.B) []Record {
	recs := make([]Record, len(benchLines))
	for i, l := range benchLines {
		if err := DecodeCSV([]byte(l), &recs[i]); err != nil {
			b.Fatal(err)
		}
	}
	return recs
}

// reportRecords reports records per wall-clock second and, because the
// cores are often shared, records per CPU-second of the process (start is
// testkit.CPUTime() at b.ResetTimer).
func reportRecords(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	if cpu := testkit.CPUTime() - start; cpu > 0 && start > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "records/cpu-s")
	}
}

func BenchmarkDecodeCSV(b *testing.B) {
	in := make([][]byte, len(benchLines))
	for i, l := range benchLines {
		in[i] = []byte(l)
	}
	var r Record
	b.ReportAllocs()
	b.ResetTimer()
	start := testkit.CPUTime()
	for i := 0; i < b.N; i++ {
		if err := DecodeCSV(in[i%len(in)], &r); err != nil {
			b.Fatal(err)
		}
	}
	reportRecords(b, start)
}

func BenchmarkDecodeJSON(b *testing.B) {
	recs := benchRecords(b)
	in := make([][]byte, len(recs))
	for i := range recs {
		in[i] = recs[i].AppendJSON(nil)
	}
	in = append(in, []byte(prototypeJSON))
	var r Record
	b.ReportAllocs()
	b.ResetTimer()
	start := testkit.CPUTime()
	for i := 0; i < b.N; i++ {
		if err := DecodeJSON(in[i%len(in)], &r); err != nil {
			b.Fatal(err)
		}
	}
	reportRecords(b, start)
}

func BenchmarkAppendCSV(b *testing.B) {
	recs := benchRecords(b)
	var buf []byte
	b.ReportAllocs()
	b.ResetTimer()
	start := testkit.CPUTime()
	for i := 0; i < b.N; i++ {
		buf = recs[i%len(recs)].AppendCSV(buf[:0])
	}
	reportRecords(b, start)
}

func BenchmarkAppendJSON(b *testing.B) {
	recs := benchRecords(b)
	var buf []byte
	b.ReportAllocs()
	b.ResetTimer()
	start := testkit.CPUTime()
	for i := 0; i < b.N; i++ {
		buf = recs[i%len(recs)].AppendJSON(buf[:0])
	}
	reportRecords(b, start)
}
