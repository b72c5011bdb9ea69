package conntrack

import (
	"runtime"
	"testing"

	"github.com/netsentinel/netsentinel/internal/features"
)

// BenchmarkSYNFlood feeds b.N SYNs of distinct connections (run it with
// -benchtime 1000000x for a flood of 10^6) to a tracker capped at 10,000
// open connections, and reports the heap in use at the end and the
// evictions.
func BenchmarkSYNFlood(b *testing.B) {
	f := frame(b, pkt{src: cli, dst: srv, sport: 1, dport: 80, flags: "S"})
	tr := New(Config{MaxConns: 10000, MaxPending: 10000}, func(*features.Conn) {})
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		f[14+12+2], f[14+12+3] = byte(i>>16), byte(i>>8)
		f[34], f[35] = byte(i), byte(i>>8)
		_ = tr.Packet(t0.UnixNano()+int64(i)*1000, LinkEthernet, f)
	}
	b.StopTimer()
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MB")
	b.ReportMetric(float64(tr.Stats().Evicted), "evicted")
	b.ReportMetric(float64(len(tr.m)), "open")
}
