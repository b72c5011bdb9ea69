package conntrack

import (
	"container/heap"
	"net/netip"
	"strconv"
	"time"

	"github.com/netsentinel/netsentinel/internal/features"
	"github.com/netsentinel/netsentinel/internal/record"
)

// Config configures a Tracker. A zero field means its default.
type Config struct {
	// MaxConns caps the open connections (default 1<<18). When it is
	// reached the oldest half-open attempt (or, without one, the connection
	// idle longest) is finished early and counted in Stats.Evicted.
	MaxConns int
	// MaxPending caps the finished connections waiting to be released in
	// order of their end (default 1<<17); past it the earliest is released
	// at once, and a connection that then ends earlier is counted in
	// Stats.Reordered.
	MaxPending int
	// MaxDelay, when positive, bounds how long (on the tracker's clock) a
	// finished connection waits for open ones that could still end before
	// it: an idle long-lived connection would otherwise hold every later
	// record until it times out (5 minutes for an established TCP
	// connection). Past MaxDelay the waiting connections are released;
	// the idle one, when it ends, comes after them and is counted in
	// Stats.Reordered. Zero (the default, for captures read from files) keeps the
	// exact order of connection end; a live sensor sets it.
	MaxDelay time.Duration
	// MaxFragDatagrams caps the IP datagrams being reassembled (default
	// 4096); past it the oldest is given up.
	MaxFragDatagrams int
	// AttemptTimeout finishes a TCP connection whose responder never
	// answered after this long without packets (default 5s, Zeek's
	// tcp_attempt_delay).
	AttemptTimeout time.Duration
	// EstablishedTimeout finishes an answered TCP connection after this
	// long without packets (default 5m, Zeek's tcp_inactivity_timeout).
	EstablishedTimeout time.Duration
	// ClosedDelay finishes a closed or reset TCP connection this long after
	// its last packet, so that the final ACKs still belong to it (default
	// 5s, Zeek's tcp_close_delay).
	ClosedDelay time.Duration
	// UDPTimeout finishes a UDP flow after this long without packets
	// (default 1m, Zeek's udp_inactivity_timeout).
	UDPTimeout time.Duration
	// FragTimeout gives up reassembling a datagram this long after its
	// first fragment (default 30s).
	FragTimeout time.Duration
}

// DefaultConfig returns the default configuration.
func DefaultConfig() Config {
	return Config{
		MaxConns:           1 << 18,
		MaxPending:         1 << 17,
		MaxFragDatagrams:   4096,
		AttemptTimeout:     5 * time.Second,
		EstablishedTimeout: 5 * time.Minute,
		ClosedDelay:        5 * time.Second,
		UDPTimeout:         time.Minute,
		FragTimeout:        30 * time.Second,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	set := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	setD := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&c.MaxConns, d.MaxConns)
	set(&c.MaxPending, d.MaxPending)
	set(&c.MaxFragDatagrams, d.MaxFragDatagrams)
	setD(&c.AttemptTimeout, d.AttemptTimeout)
	setD(&c.EstablishedTimeout, d.EstablishedTimeout)
	setD(&c.ClosedDelay, d.ClosedDelay)
	setD(&c.UDPTimeout, d.UDPTimeout)
	setD(&c.FragTimeout, d.FragTimeout)
	return c
}

// Stats counts what a Tracker saw. Every packet given to Packet is counted
// in exactly one of Tracked, NotIP, Unsupported, Corrupt, FragDropped or
// (while its datagram is incomplete) FragHeld.
type Stats struct {
	Packets     uint64 // frames given to Packet
	Tracked     uint64 // packets (fragments included) that went into a connection
	NotIP       uint64 // frames without IPv4/IPv6
	Unsupported uint64 // IP packets of other protocols, or an unknown link type
	Corrupt     uint64 // truncated or inconsistent headers
	FragHeld    uint64 // fragments of datagrams still being reassembled
	FragDropped uint64 // fragments of datagrams given up without a first fragment
	Datagrams   uint64 // fragmented datagrams turned into a packet
	Conns       uint64 // connections released
	Open        uint64 // connections open now
	Evicted     uint64 // connections finished early because MaxConns was reached
	Reordered   uint64 // connections released after one that ended later (MaxPending reached, or MaxDelay passed)
}

// TCP endpoint states, after Zeek's.
const (
	stInactive uint8 = iota
	stSynSent
	stSynAckSent
	stPartial
	stEstablished
	stClosed
	stReset
)

// Timeout classes; each has a list of its connections, least recently
// active first.
const (
	clsAttempt = iota
	clsEstablished
	clsClosed
	clsUDP
	numClasses
)

type key struct {
	a, b   [16]byte
	pa, pb uint16
	proto  uint8
}

type conn struct {
	key           key
	orig, resp    netip.Addr
	origPort      uint16
	respPort      uint16
	proto         uint8
	os, rs        uint8 // endpoint states
	origAckFin    bool  // the originator sent ACK or FIN (not RSTOS0)
	cls           uint8
	start, last   int64
	origBytes     int64
	respBytes     int64
	urgent, wrong int
	ftpLoggedIn   bool
	ftpGuest      bool
	ftpFailed     int
	seq           uint64
	prev, next    *conn
	listed        bool
}

type list struct{ head, tail *conn }

// Tracker turns packets into connections. Feed it frames in capture order
// with Packet; each finished connection is passed to the emit function
// given to New, in order of connection end (see Config.MaxPending), with
// its intrinsic and content features set and its traffic features absent.
//
// TCP follows Zeek's conn_state rules (see flag); UDP flows end after
// UDPTimeout; every ICMP message is a connection of its own, as in the KDD
// files (all their ICMP rows have duration 0 and dst_bytes 0).
//
// A Tracker is not safe for concurrent use.
type Tracker struct {
	cfg     Config
	emit    func(*features.Conn)
	m       map[key]*conn
	lists   [numClasses]list
	frags   fragTable
	pending pendingHeap
	lastEnd int64 // end of the latest connection released
	now     int64
	seq     uint64
	free    []*conn
	fcFree  []*features.Conn
	stats   Stats
	pkt     Packet
	// timeout holds each class's timeout in nanoseconds; deadline the
	// earliest time a connection or datagram can time out.
	timeout  [numClasses]int64
	deadline int64
}

// New returns a Tracker that passes finished connections to emit. The
// *features.Conn is only valid during the call.
func New(cfg Config, emit func(*features.Conn)) *Tracker {
	cfg = cfg.withDefaults()
	return &Tracker{
		cfg:      cfg,
		emit:     emit,
		m:        map[key]*conn{},
		frags:    fragTable{m: map[fragKey]*fragment{}},
		timeout:  [numClasses]int64{int64(cfg.AttemptTimeout), int64(cfg.EstablishedTimeout), int64(cfg.ClosedDelay), int64(cfg.UDPTimeout)},
		deadline: 1<<63 - 1,
	}
}

// Stats returns the tracker's counters.
func (t *Tracker) Stats() Stats {
	s := t.stats
	s.Open = uint64(len(t.m))
	for f := t.frags.head; f != nil; f = f.next {
		s.FragHeld += uint64(f.pieces)
	}
	return s
}

// Packet decodes one captured frame of the given link type, captured at ts
// (nanoseconds since the epoch), and adds it to its connection. Timestamps
// going backwards are treated as the latest time seen. It returns Decode's
// error, which is also counted.
func (t *Tracker) Packet(ts int64, link int, data []byte) error {
	t.stats.Packets++
	t.advance(ts)
	p := &t.pkt
	p.TS = t.now
	if err := Decode(link, data, p); err != nil {
		switch err {
		case ErrNotIP:
			t.stats.NotIP++
		case ErrUnsupported:
			t.stats.Unsupported++
		default:
			t.stats.Corrupt++
		}
		return err
	}
	if p.Frag {
		d, ev := t.frags.add(p, t.cfg.MaxFragDatagrams)
		if ev != nil {
			t.giveUp(ev)
		}
		if h := t.frags.head; h != nil {
			t.deadline = min(t.deadline, h.first+int64(t.cfg.FragTimeout))
		}
		if d != nil {
			if d.packet(t.now, p) {
				t.stats.Tracked += uint64(d.pieces)
				t.stats.Datagrams++
				t.track(p)
			} else {
				t.stats.Corrupt += uint64(d.pieces)
			}
		}
	} else {
		t.stats.Tracked++
		t.track(p)
	}
	t.release(false)
	return nil
}

// Advance moves the tracker's clock to ts (if later) and finishes the
// connections that timed out by then, as a packet at ts would. A live
// capture calls it when no packet came for a while.
func (t *Tracker) Advance(ts int64) {
	t.advance(ts)
	t.release(false)
}

// Flush finishes every open connection and releases all, as at the end of
// a capture.
func (t *Tracker) Flush() {
	t.frags.expire(1<<63-1, t.giveUp)
	for {
		var oldest *conn
		for i := range t.lists {
			if h := t.lists[i].head; h != nil && (oldest == nil || h.last < oldest.last) {
				oldest = h
			}
		}
		if oldest == nil {
			break
		}
		t.finish(oldest)
	}
	t.release(true)
}

// advance moves the clock to ts and finishes what timed out. The earliest
// time anything can time out (deadline) is kept, so most packets skip the
// scan: list heads only get later, and touch lowers the deadline when a
// connection enters an empty list.
func (t *Tracker) advance(ts int64) {
	if ts > t.now {
		t.now = ts
	}
	if t.now <= t.deadline {
		return
	}
	t.deadline = 1<<63 - 1
	for i := range t.lists {
		lim := t.now - t.timeout[i]
		for h := t.lists[i].head; h != nil && h.last < lim; h = t.lists[i].head {
			t.finish(h)
		}
		if h := t.lists[i].head; h != nil {
			t.deadline = min(t.deadline, h.last+t.timeout[i])
		}
	}
	t.frags.expire(t.now-int64(t.cfg.FragTimeout), t.giveUp)
	if h := t.frags.head; h != nil {
		t.deadline = min(t.deadline, h.first+int64(t.cfg.FragTimeout))
	}
}

// giveUp handles a datagram whose reassembly did not complete: with its
// first fragment it still tells the connection (with the wrong fragments
// seen), without it its fragments are dropped.
func (t *Tracker) giveUp(d *fragment) {
	var p Packet
	if d.packet(t.now, &p) {
		t.stats.Tracked += uint64(d.pieces)
		t.stats.Datagrams++
		t.track(&p)
		return
	}
	t.stats.FragDropped += uint64(d.pieces)
}

func makeKey(p *Packet) key {
	a, b := p.Src.As16(), p.Dst.As16()
	pa, pb := p.SrcPort, p.DstPort
	if string(a[:]) > string(b[:]) || (a == b && pa > pb) {
		a, b, pa, pb = b, a, pb, pa
	}
	return key{a: a, b: b, pa: pa, pb: pb, proto: p.Proto}
}

func (t *Tracker) newConn() *conn {
	if n := len(t.free); n > 0 {
		c := t.free[n-1]
		t.free = t.free[:n-1]
		*c = conn{}
		return c
	}
	return &conn{}
}

func (t *Tracker) track(p *Packet) {
	if p.Proto == ProtoICMP || p.Proto == ProtoICMPv6 {
		t.icmp(p)
		return
	}
	k := makeKey(p)
	c := t.m[k]
	syn := p.Proto == ProtoTCP && p.TCPFlags&(FlagSYN|FlagACK|FlagRST) == FlagSYN
	if c != nil && syn && c.cls == clsClosed {
		// A new connection on the same ports after the old one closed.
		t.finish(c)
		c = nil
	}
	if c == nil {
		if len(t.m) >= t.cfg.MaxConns {
			t.evict()
		}
		c = t.newConn()
		c.key = k
		c.proto = p.Proto
		c.orig, c.resp, c.origPort, c.respPort = p.Src, p.Dst, p.SrcPort, p.DstPort
		if p.Proto == ProtoTCP && p.TCPFlags&(FlagSYN|FlagACK) == FlagSYN|FlagACK {
			// The first packet is a SYN-ACK: its receiver opened the connection.
			c.orig, c.resp, c.origPort, c.respPort = p.Dst, p.Src, p.DstPort, p.SrcPort
		}
		c.start = p.TS
		t.seq++
		c.seq = t.seq
		t.m[k] = c
	}
	fromOrig := p.Src == c.orig && p.SrcPort == c.origPort
	if fromOrig {
		c.origBytes += int64(p.Len)
	} else {
		c.respBytes += int64(p.Len)
	}
	c.wrong += p.WrongFrag
	c.last = p.TS
	cls := uint8(clsUDP)
	if p.Proto == ProtoTCP {
		if p.TCPFlags&FlagURG != 0 {
			c.urgent++
		}
		c.tcp(fromOrig, p.TCPFlags)
		if c.respPort == 21 && len(p.Payload) > 0 {
			c.ftp(fromOrig, p.Payload)
		}
		cls = c.class()
	}
	t.touch(c, cls)
}

// evict finishes the oldest half-open attempt, or else the connection idle
// longest.
func (t *Tracker) evict() {
	v := t.lists[clsAttempt].head
	if v == nil {
		for i := range t.lists {
			if h := t.lists[i].head; h != nil && (v == nil || h.last < v.last) {
				v = h
			}
		}
	}
	if v != nil {
		t.stats.Evicted++
		t.finish(v)
	}
}

func (t *Tracker) unlist(c *conn) {
	if !c.listed {
		return
	}
	l := &t.lists[c.cls]
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		l.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		l.tail = c.prev
	}
	c.prev, c.next, c.listed = nil, nil, false
}

// touch moves c to the end of its class's list (lists stay sorted by last
// activity because the clock never goes back).
func (t *Tracker) touch(c *conn, cls uint8) {
	t.unlist(c)
	c.cls = cls
	l := &t.lists[cls]
	c.prev = l.tail
	if l.tail != nil {
		l.tail.next = c
	} else {
		l.head = c
		t.deadline = min(t.deadline, c.last+t.timeout[cls])
	}
	l.tail = c
	c.listed = true
}

// tcp applies one packet's flags to the endpoint states.
func (c *conn) tcp(fromOrig bool, flags uint8) {
	ep, peer := &c.os, &c.rs
	if !fromOrig {
		ep, peer = peer, ep
	}
	if fromOrig && flags&FlagRST == 0 && flags&(FlagACK|FlagFIN) != 0 {
		c.origAckFin = true
	}
	if flags&FlagRST != 0 {
		*ep = stReset
		return
	}
	if *ep == stReset {
		return
	}
	if flags&FlagSYN != 0 {
		if flags&FlagACK == 0 {
			if *ep == stInactive {
				*ep = stSynSent
			}
		} else if *peer == stSynSent || *peer == stPartial {
			// SYN-ACK answering a SYN: Zeek's connection_established.
			if *ep != stClosed {
				*ep = stEstablished
			}
			if *peer == stSynSent {
				*peer = stEstablished
			}
		} else if *ep == stInactive {
			*ep = stSynAckSent
		}
	} else if *ep == stInactive {
		*ep = stPartial
	}
	if flags&FlagFIN != 0 {
		*ep = stClosed
	}
}

// class returns the timeout class of a TCP connection.
func (c *conn) class() uint8 {
	switch {
	case c.os == stReset || c.rs == stReset || (c.os == stClosed && c.rs == stClosed):
		return clsClosed
	case c.rs == stInactive || c.os == stInactive:
		return clsAttempt
	}
	return clsEstablished
}

// state returns Zeek's conn_state for a TCP connection.
func (c *conn) state() string {
	os, rs := c.os, c.rs
	oInactive := os == stInactive || os == stPartial
	rInactive := rs == stInactive || rs == stPartial
	switch {
	case rs == stReset:
		if os == stSynSent || os == stSynAckSent || (os == stReset && c.origBytes == 0 && c.respBytes == 0) {
			return "REJ"
		}
		if oInactive {
			return "RSTRH"
		}
		return "RSTR"
	case os == stReset:
		if rInactive {
			if !c.origAckFin && c.respBytes == 0 && c.origBytes == 0 {
				return "RSTOS0"
			}
			return "OTH"
		}
		return "RSTO"
	case rs == stClosed && os == stClosed:
		return "SF"
	case os == stClosed:
		if rInactive {
			return "SH"
		}
		return "S2"
	case rs == stClosed:
		if oInactive {
			return "SHR"
		}
		return "S3"
	case os == stSynSent && rs == stInactive:
		return "S0"
	case os == stEstablished && rs == stEstablished:
		return "S1"
	}
	return "OTH"
}

// ftp reads FTP control lines: the server's 230 (logged in) and 530 (login
// failed) replies and the client's USER name. Each packet is read from its
// start and after each line end; a line split over two packets is missed.
func (c *conn) ftp(fromOrig bool, data []byte) {
	for len(data) > 0 {
		line := data
		if i := indexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if fromOrig {
			if len(line) > 5 && upperEq(line[:5], "USER ") {
				u := trimCRSpace(line[5:])
				c.ftpGuest = upperEq(u, "ANONYMOUS") || upperEq(u, "FTP")
			}
			continue
		}
		// The last line of a reply: three digits, then a space or the end.
		if len(line) < 3 || len(line) > 3 && line[3] != ' ' && line[3] != '\r' {
			continue
		}
		switch string(line[:3]) {
		case "230":
			c.ftpLoggedIn = true
		case "530":
			c.ftpFailed++
		}
	}
}

func indexByte(b []byte, x byte) int {
	for i, c := range b {
		if c == x {
			return i
		}
	}
	return -1
}

func trimCRSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// upperEq reports whether b equals the upper-case ASCII s, ignoring case.
func upperEq(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		x := b[i]
		if x >= 'a' && x <= 'z' {
			x -= 'a' - 'A'
		}
		if x != s[i] {
			return false
		}
	}
	return true
}

func (t *Tracker) icmp(p *Packet) {
	t.seq++
	c := conn{proto: p.Proto, orig: p.Src, resp: p.Dst, origPort: p.SrcPort, respPort: p.DstPort,
		start: p.TS, last: p.TS, origBytes: int64(p.Len), wrong: p.WrongFrag, seq: t.seq}
	t.pend(&c)
}

// finish ends c and queues it for release.
func (t *Tracker) finish(c *conn) {
	t.unlist(c)
	delete(t.m, c.key)
	t.pend(c)
	t.free = append(t.free, c)
}

// pend converts c to its record and queues it.
func (t *Tracker) pend(c *conn) {
	var fc *features.Conn
	if n := len(t.fcFree); n > 0 {
		fc = t.fcFree[n-1]
		t.fcFree = t.fcFree[:n-1]
		*fc = features.Conn{}
	} else {
		fc = new(features.Conn)
	}
	fill(fc, c)
	heap.Push(&t.pending, pendingConn{end: c.last, seq: c.seq, fc: fc})
}

// release emits the queued connections that no open connection can end
// before: those ending at or before the earliest last activity of any
// open connection (all of them when flushing).
func (t *Tracker) release(all bool) {
	mark := int64(1<<63 - 1)
	if !all {
		for i := range t.lists {
			if h := t.lists[i].head; h != nil && h.last < mark {
				mark = h.last
			}
		}
	}
	// With MaxDelay, what ended that long ago goes even before an open
	// connection idle since earlier.
	late := mark
	if t.cfg.MaxDelay > 0 {
		late = max(mark, t.now-int64(t.cfg.MaxDelay))
	}
	for len(t.pending) > 0 {
		top := t.pending[0]
		if top.end > late && len(t.pending) <= t.cfg.MaxPending {
			return
		}
		heap.Pop(&t.pending)
		if top.end < t.lastEnd {
			t.stats.Reordered++
		} else {
			t.lastEnd = top.end
		}
		t.stats.Conns++
		t.emit(top.fc)
		t.fcFree = append(t.fcFree, top.fc)
	}
}

type pendingConn struct {
	end int64
	seq uint64
	fc  *features.Conn
}

type pendingHeap []pendingConn

func (h pendingHeap) Len() int { return len(h) }
func (h pendingHeap) Less(i, j int) bool {
	return h[i].end < h[j].end || h[i].end == h[j].end && h[i].seq < h[j].seq
}
func (h pendingHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pendingHeap) Push(x any)   { *h = append(*h, x.(pendingConn)) }
func (h *pendingHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

var protoNames = map[uint8]string{ProtoTCP: "tcp", ProtoUDP: "udp", ProtoICMP: "icmp", ProtoICMPv6: "icmp"}

// fill sets the record of connection c: identity, intrinsic features and
// the content features packets show. duration is in whole seconds as in
// the KDD files; src_bytes and dst_bytes count transport payload bytes
// (retransmissions included) and, for ICMP, the whole message.
func fill(fc *features.Conn, c *conn) {
	fc.ID = record.Identity{
		TS:      float64(c.start) / 1e9,
		SrcIP:   c.orig.String(),
		DstIP:   c.resp.String(),
		SrcPort: int32(c.origPort),
		DstPort: int32(c.respPort),
		UID:     "C" + strconv.FormatInt(c.start, 36) + strconv.FormatUint(c.seq, 36),
	}
	fc.End = c.last
	fc.Dst = c.resp
	fc.SrcPort = c.origPort
	proto := protoNames[c.proto]
	var service, flag string
	switch c.proto {
	case ProtoICMP, ProtoICMPv6:
		service = features.ICMPService(c.proto == ProtoICMPv6, uint8(c.origPort), uint8(c.respPort))
		flag = "SF"
	case ProtoUDP:
		service = features.PortService(ProtoUDP, c.respPort)
		flag = "SF"
	default:
		service = features.PortService(ProtoTCP, c.respPort)
		flag = features.ZeekFlag("tcp", c.state())
	}
	fc.Set(record.Duration, float64((c.last-c.start)/1e9))
	fc.SetSymbol(record.ProtocolType, proto)
	fc.SetSymbol(record.Service, service)
	fc.SetSymbol(record.Flag, flag)
	fc.Set(record.SrcBytes, float64(c.origBytes))
	fc.Set(record.DstBytes, float64(c.respBytes))
	land := 0.0
	if c.orig == c.resp && c.origPort == c.respPort {
		land = 1
	}
	fc.Set(6, land)
	fc.Set(7, float64(c.wrong))
	fc.Set(8, float64(c.urgent))
	if service == "ftp" {
		fc.Set(10, float64(c.ftpFailed)) // num_failed_logins
		fc.Set(11, b2f(c.ftpLoggedIn))
		fc.Set(21, b2f(c.ftpLoggedIn && c.ftpGuest)) // is_guest_login
	} else {
		fc.Set(11, b2f(features.LoggedIn(proto, service, flag, float64(c.origBytes))))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
