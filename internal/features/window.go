package features

import (
	"net/netip"
	"time"

	"github.com/netsentinel/netsentinel/internal/record"
)

// Options configures a Window. The zero value of a field means its default.
type Options struct {
	// Span is the time window of count, srv_count and their rates
	// (default 2s).
	Span time.Duration
	// HostWindow is the number of most recent connections the dst_host_*
	// features look at (default 100, Lee & Stolfo's definition). The KDD
	// files themselves hold dst_host_count values up to 255 (17,393 rows of
	// KDDTrain+ between 101 and 254, 74,099 at 255), so the 1999 extraction
	// looked further back; 255 reproduces that range.
	HostWindow int
	// MaxSpanConns caps the connections held for the time window (default
	// 1<<20). Past it the oldest is dropped early and counted in
	// Stats.SpanEvicted, so a flood cannot exhaust memory; the counts of
	// such a flood are then at most MaxSpanConns.
	MaxSpanConns int
}

// DefaultOptions returns the default options.
func DefaultOptions() Options {
	return Options{Span: 2 * time.Second, HostWindow: 100, MaxSpanConns: 1 << 20}
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.Span <= 0 {
		o.Span = d.Span
	}
	if o.HostWindow <= 0 {
		o.HostWindow = d.HostWindow
	}
	if o.MaxSpanConns <= 0 {
		o.MaxSpanConns = d.MaxSpanConns
	}
	return o
}

// Stats counts what a Window did beyond the definition.
type Stats struct {
	// Conns is the number of connections added.
	Conns uint64
	// SpanEvicted counts connections dropped from the time window before
	// their time because it held Options.MaxSpanConns.
	SpanEvicted uint64
	// Clamped counts connections whose End was before an earlier
	// connection's; they are placed at the latest End seen.
	Clamped uint64
}

// counts aggregates connections: how many, with a SYN error, with a REJ
// error.
type counts struct{ n, serr, rerr int32 }

func (c *counts) add(e *entry, d int32) {
	c.n += d
	if e.serr {
		c.serr += d
	}
	if e.rerr {
		c.rerr += d
	}
}

type entry struct {
	end        int64
	host       netip.Addr
	srcPort    uint16
	srv        uint8
	serr, rerr bool
}

type hostSrv struct {
	host netip.Addr
	srv  uint8
}

type hostPort struct {
	host netip.Addr
	port uint16
}

// group is the aggregate state of a set of connections (the time window or
// the last HostWindow connections).
type group struct {
	host     map[netip.Addr]counts
	srv      []counts
	hostSrv  map[hostSrv]int32
	hostPort map[hostPort]int32 // only kept for the host window
}

func newGroup(ports bool) group {
	g := group{
		host:    map[netip.Addr]counts{},
		srv:     make([]counts, len(record.Services)),
		hostSrv: map[hostSrv]int32{},
	}
	if ports {
		g.hostPort = map[hostPort]int32{}
	}
	return g
}

// update adds (d = 1) or removes (d = -1) e; map entries that reach zero are
// deleted, so the maps hold only hosts present in the window.
func (g *group) update(e *entry, d int32) {
	h := g.host[e.host]
	h.add(e, d)
	if h.n == 0 {
		delete(g.host, e.host)
	} else {
		g.host[e.host] = h
	}
	g.srv[e.srv].add(e, d)
	hs := hostSrv{e.host, e.srv}
	if n := g.hostSrv[hs] + d; n == 0 {
		delete(g.hostSrv, hs)
	} else {
		g.hostSrv[hs] = n
	}
	if g.hostPort != nil {
		hp := hostPort{e.host, e.srcPort}
		if n := g.hostPort[hp] + d; n == 0 {
			delete(g.hostPort, hp)
		} else {
			g.hostPort[hp] = n
		}
	}
}

// ring is a FIFO of entries on a growable circular buffer.
type ring struct {
	buf        []entry
	head, size int
}

func (r *ring) push(e entry) {
	if r.size == len(r.buf) {
		nb := make([]entry, max(16, 2*len(r.buf)))
		for i := 0; i < r.size; i++ {
			nb[i] = r.buf[(r.head+i)%len(r.buf)]
		}
		r.buf, r.head = nb, 0
	}
	r.buf[(r.head+r.size)%len(r.buf)] = e
	r.size++
}

func (r *ring) front() *entry { return &r.buf[r.head] }

func (r *ring) pop() entry {
	e := r.buf[r.head]
	r.buf[r.head] = entry{}
	r.head = (r.head + 1) % len(r.buf)
	r.size--
	return e
}

// Window computes the KDD'99 traffic features of connections added in order
// of their end. Each Add costs amortised O(1); memory is bounded by the
// connections of the last Span (at most MaxSpanConns) plus HostWindow.
//
// The definitions (Lee & Stolfo; the rates as the KDD files show them):
// the current connection is part of its own windows; "same host" is the
// same responder address; "same service" the same KDD service name; a SYN
// error is a flag of S0, S1, S2, S3 or SH and a REJ error one of REJ, RSTO,
// RSTR or RSTOS0 (in KDDTrain+, rows with count 1 have serror_rate 1 for
// exactly the first set and rerror_rate 1 for exactly the second). The time
// window holds the connections that ended at most Span before the current
// one's end; dst_host_same_src_port_rate is the share of the same-host
// connections with the current one's source port (it is 1 in every
// KDDTrain+ row with dst_host_count 1). Rates are rounded to two decimals.
//
// A Window is not safe for concurrent use.
type Window struct {
	opt   Options
	last  int64
	span  ring
	hist  ring
	spanG group
	histG group
	stats Stats
}

// NewWindow returns an empty Window.
func NewWindow(opt Options) *Window {
	opt = opt.withDefaults()
	return &Window{opt: opt, spanG: newGroup(false), histG: newGroup(true)}
}

// Stats returns the window's counters.
func (w *Window) Stats() Stats { return w.stats }

var (
	serrorFlag, rerrorFlag [16]bool
)

func init() {
	for i, f := range record.Flags {
		switch f {
		case "S0", "S1", "S2", "S3", "SH":
			serrorFlag[i] = true
		case "REJ", "RSTO", "RSTR", "RSTOS0":
			rerrorFlag[i] = true
		}
	}
}

// Add computes the 19 traffic features of c from the connections added
// before it and from c itself, stores them in c (marking them present) and
// adds c to the window. c must have service and flag set.
func (w *Window) Add(c *Conn) {
	w.stats.Conns++
	end := c.End
	if end < w.last {
		end = w.last
		w.stats.Clamped++
	}
	w.last = end
	flag := int(c.Values[record.Flag])
	e := entry{
		end:     end,
		host:    c.Dst,
		srcPort: c.SrcPort,
		srv:     uint8(c.Values[record.Service]),
		serr:    flag >= 0 && flag < len(serrorFlag) && serrorFlag[flag],
		rerr:    flag >= 0 && flag < len(rerrorFlag) && rerrorFlag[flag],
	}
	if int(e.srv) >= len(record.Services) {
		e.srv = uint8(symbolIndex(record.Service, "other"))
	}
	// Time window: drop what ended more than Span before this end.
	limit := end - int64(w.opt.Span)
	for w.span.size > 0 && w.span.front().end < limit {
		old := w.span.pop()
		w.spanG.update(&old, -1)
	}
	if w.span.size >= w.opt.MaxSpanConns {
		old := w.span.pop()
		w.spanG.update(&old, -1)
		w.stats.SpanEvicted++
	}
	w.span.push(e)
	w.spanG.update(&e, 1)
	// Host window: the last HostWindow connections.
	if w.hist.size >= w.opt.HostWindow {
		old := w.hist.pop()
		w.histG.update(&old, -1)
	}
	w.hist.push(e)
	w.histG.update(&e, 1)

	g := &w.spanG
	h := g.host[e.host]
	s := g.srv[e.srv]
	hs := g.hostSrv[hostSrv{e.host, e.srv}]
	c.Set(22, float64(h.n))      // count
	c.Set(23, float64(s.n))      // srv_count
	c.Set(24, rate(h.serr, h.n)) // serror_rate
	c.Set(25, rate(s.serr, s.n)) // srv_serror_rate
	c.Set(26, rate(h.rerr, h.n)) // rerror_rate
	c.Set(27, rate(s.rerr, s.n)) // srv_rerror_rate
	c.Set(28, rate(hs, h.n))     // same_srv_rate
	c.Set(29, rate(h.n-hs, h.n)) // diff_srv_rate
	c.Set(30, rate(s.n-hs, s.n)) // srv_diff_host_rate
	g = &w.histG
	h = g.host[e.host]
	s = g.srv[e.srv]
	hs = g.hostSrv[hostSrv{e.host, e.srv}]
	hp := g.hostPort[hostPort{e.host, e.srcPort}]
	c.Set(31, float64(h.n))      // dst_host_count
	c.Set(32, float64(s.n))      // dst_host_srv_count
	c.Set(33, rate(hs, h.n))     // dst_host_same_srv_rate
	c.Set(34, rate(h.n-hs, h.n)) // dst_host_diff_srv_rate
	c.Set(35, rate(hp, h.n))     // dst_host_same_src_port_rate
	c.Set(36, rate(s.n-hs, s.n)) // dst_host_srv_diff_host_rate
	c.Set(37, rate(h.serr, h.n)) // dst_host_serror_rate
	c.Set(38, rate(s.serr, s.n)) // dst_host_srv_serror_rate
	c.Set(39, rate(h.rerr, h.n)) // dst_host_rerror_rate
	c.Set(40, rate(s.rerr, s.n)) // dst_host_srv_rerror_rate
}

// rate returns num/den rounded to two decimals, as the KDD files give
// rates; den is never 0 here because the current connection is counted.
func rate(num, den int32) float64 {
	if den <= 0 {
		return 0
	}
	// Integer rounding of 100*num/den, half up, exact for every count.
	return float64((200*int64(num)+int64(den))/(2*int64(den))) / 100
}
