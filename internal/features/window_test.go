package features

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/netsentinel/netsentinel/internal/record"
)

// reference computes the traffic features of each connection by brute
// force over every earlier connection, straight from the definitions.
type reference struct {
	opt  Options
	all  []entry
	last int64
}

func (r *reference) add(c *Conn) [19]float64 {
	end := max(c.End, r.last)
	r.last = end
	flag := record.Flags[int(c.Values[record.Flag])]
	e := entry{end: end, host: c.Dst, srcPort: c.SrcPort, srv: uint8(c.Values[record.Service]),
		serr: flag == "S0" || flag == "S1" || flag == "S2" || flag == "S3" || flag == "SH",
		rerr: flag == "REJ" || flag == "RSTO" || flag == "RSTR" || flag == "RSTOS0"}
	r.all = append(r.all, e)
	var f [19]float64
	pct := func(a, b int) float64 {
		if b == 0 {
			return 0
		}
		return float64((200*a+b)/(2*b)) / 100
	}
	// Time window: the connections that ended within Span of this end,
	// at most MaxSpanConns of the latest.
	var cnt, srv, hs, hse, hre, sse, sre int
	for i, k := len(r.all)-1, 0; i >= 0 && k < r.opt.MaxSpanConns; i, k = i-1, k+1 {
		d := r.all[i]
		if d.end < end-int64(r.opt.Span) {
			break
		}
		if d.host == e.host {
			cnt++
			if d.serr {
				hse++
			}
			if d.rerr {
				hre++
			}
			if d.srv == e.srv {
				hs++
			}
		}
		if d.srv == e.srv {
			srv++
			if d.serr {
				sse++
			}
			if d.rerr {
				sre++
			}
		}
	}
	f = [19]float64{float64(cnt), float64(srv), pct(hse, cnt), pct(sse, srv), pct(hre, cnt), pct(sre, srv),
		pct(hs, cnt), pct(cnt-hs, cnt), pct(srv-hs, srv)}
	// Host window: the last HostWindow connections.
	cnt, srv, hs, hse, hre, sse, sre = 0, 0, 0, 0, 0, 0, 0
	port := 0
	for i := len(r.all) - 1; i >= 0 && i >= len(r.all)-r.opt.HostWindow; i-- {
		d := r.all[i]
		if d.host == e.host {
			cnt++
			if d.srv == e.srv {
				hs++
			}
			if d.srcPort == e.srcPort {
				port++
			}
			if d.serr {
				hse++
			}
			if d.rerr {
				hre++
			}
		}
		if d.srv == e.srv {
			srv++
			if d.serr {
				sse++
			}
			if d.rerr {
				sre++
			}
		}
	}
	copy(f[9:], []float64{float64(cnt), float64(srv), pct(hs, cnt), pct(cnt-hs, cnt), pct(port, cnt),
		pct(srv-hs, srv), pct(hse, cnt), pct(sse, srv), pct(hre, cnt), pct(sre, srv)})
	return f
}

// gen makes the i-th connection of a test sequence.
type gen func(i int, rng *rand.Rand) Conn

func conn(end int64, host byte, srv, flag int, port uint16) Conn {
	var c Conn
	c.End = end
	c.Dst = netip.AddrFrom4([4]byte{10, 0, 0, host})
	c.SrcPort = port
	c.Set(record.Service, float64(srv))
	c.Set(record.Flag, float64(flag))
	return c
}

func checkAgainstReference(t *testing.T, opt Options, n int, g gen) {
	t.Helper()
	opt = opt.withDefaults()
	w := NewWindow(opt)
	ref := &reference{opt: opt}
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	for i := range n {
		c := g(i, rng)
		want := ref.add(&c)
		w.Add(&c)
		for j := range 19 {
			if got := c.Values[22+j]; got != want[j] || !c.Present(22+j) {
				t.Fatalf("connection %d: %s = %v, want %v", i, record.Features[22+j].Name, got, want[j])
			}
		}
	}
	if len(w.spanG.host) > w.span.size || len(w.histG.host) > opt.HostWindow {
		t.Errorf("maps hold more hosts than the windows: span %d/%d, hist %d", len(w.spanG.host), w.span.size, len(w.histG.host))
	}
}

func TestWindowMatchesReference(t *testing.T) {
	ms := int64(time.Millisecond)
	tests := []struct {
		name string
		opt  Options
		n    int
		g    gen
	}{
		{"random", Options{}, 20000, func(i int, r *rand.Rand) Conn {
			return conn(int64(i)*30*ms+r.Int64N(10*ms), byte(r.IntN(12)), r.IntN(8), r.IntN(len(record.Flags)), uint16(r.IntN(5)))
		}},
		{"ties", Options{}, 5000, func(i int, r *rand.Rand) Conn {
			return conn(int64(i/500)*2000*ms, byte(r.IntN(3)), r.IntN(3), r.IntN(len(record.Flags)), uint16(r.IntN(3)))
		}},
		{"exactly span apart", Options{}, 3000, func(i int, r *rand.Rand) Conn {
			return conn(int64(i)*1000*ms, byte(r.IntN(2)), r.IntN(2), r.IntN(len(record.Flags)), 1)
		}},
		{"out of order ends", Options{}, 20000, func(i int, r *rand.Rand) Conn {
			return conn(int64(i)*5*ms-r.Int64N(3000*ms), byte(r.IntN(5)), r.IntN(70), r.IntN(len(record.Flags)), uint16(r.IntN(1000)))
		}},
		{"span cap", Options{MaxSpanConns: 50}, 5000, func(i int, r *rand.Rand) Conn {
			return conn(int64(i)*ms, byte(r.IntN(4)), r.IntN(4), r.IntN(len(record.Flags)), uint16(r.IntN(4)))
		}},
		{"host window 255", Options{HostWindow: 255}, 10000, func(i int, r *rand.Rand) Conn {
			return conn(int64(i)*ms, byte(r.IntN(30)), r.IntN(20), r.IntN(len(record.Flags)), uint16(r.IntN(40)))
		}},
		{"one host 1e5", Options{}, 100000, func(i int, r *rand.Rand) Conn {
			return conn(int64(i)*2*ms, 7, r.IntN(3), r.IntN(len(record.Flags)), uint16(i))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if testing.Short() && tt.n > 20000 {
				t.Skip("long sequence")
			}
			checkAgainstReference(t, tt.opt, tt.n, tt.g)
		})
	}
}

// TestWindowExample checks a hand-computed case.
func TestWindowExample(t *testing.T) {
	s0 := 5 // index of S0 in record.Flags
	sf := 9
	if record.Flags[s0] != "S0" || record.Flags[sf] != "SF" {
		t.Fatal("flag vocabulary changed")
	}
	http, _ := ServiceIndex("http")
	smtp, _ := ServiceIndex("smtp")
	w := NewWindow(Options{})
	sec := int64(time.Second)
	cs := []Conn{
		conn(0, 1, http, sf, 1000),
		conn(sec, 1, http, s0, 1001),
		conn(sec, 2, http, sf, 1002),
		conn(3*sec, 1, smtp, sf, 1000),
	}
	for i := range cs {
		w.Add(&cs[i])
	}
	last := cs[3].Values
	// Within 2s of t=3: the two at t=1 and the current one.
	if last[22] != 2 || last[23] != 1 || last[24] != 0.5 || last[28] != 0.5 || last[29] != 0.5 {
		t.Errorf("count..diff_srv_rate = %v, want 2 1 0.5 .. 0.5 0.5", last[22:30])
	}
	if last[31] != 3 || last[32] != 1 || last[33] != 0.33 || last[35] != 0.67 || last[37] != 0.33 {
		t.Errorf("dst_host_* = %v", last[31:41])
	}
}

func TestWindowMemoryBounded(t *testing.T) {
	w := NewWindow(Options{MaxSpanConns: 1000})
	for i := range 200000 {
		c := conn(int64(i), byte(i), i%70, i%len(record.Flags), uint16(i))
		c.Dst = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		w.Add(&c)
	}
	if w.span.size > 1000 || len(w.spanG.host) > 1000 || len(w.spanG.hostSrv) > 1000 || len(w.histG.host) > 100 || len(w.histG.hostPort) > 100 {
		t.Errorf("state not bounded: span %d hosts %d/%d hist hosts %d", w.span.size, len(w.spanG.host), len(w.spanG.hostSrv), len(w.histG.host))
	}
	if got := w.Stats().SpanEvicted; got != 200000-1000 {
		t.Errorf("SpanEvicted = %d, want %d", got, 200000-1000)
	}
}

func BenchmarkWindowAdd(b *testing.B) {
	w := NewWindow(Options{})
	cs := make([]Conn, 4096)
	for i := range cs {
		cs[i] = conn(0, byte(i%50), i%20, i%len(record.Flags), uint16(i))
	}
	b.ResetTimer()
	for i := range b.N {
		c := cs[i%len(cs)]
		c.End = int64(i) * int64(100*time.Microsecond)
		w.Add(&c)
	}
}
