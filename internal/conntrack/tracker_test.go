package conntrack

import (
	"runtime"
	"testing"
	"time"

	"github.com/netsentinel/netsentinel/internal/features"
	"github.com/netsentinel/netsentinel/internal/record"
)

const (
	cli = "10.0.0.1"
	srv = "10.0.0.2"
	ms  = time.Millisecond
)

// tcp returns packets of one TCP connection from cli:40000 to srv:port;
// each step is "o:FLAGS[:payload]" (originator) or "r:FLAGS[:payload]".
func tcp(port uint16, steps ...string) []pkt {
	var ps []pkt
	for i, s := range steps {
		p := pkt{at: time.Duration(i) * 10 * ms, src: cli, dst: srv, sport: 40000, dport: port}
		if s[0] == 'r' {
			p.src, p.dst, p.sport, p.dport = srv, cli, port, 40000
		}
		rest := s[2:]
		for j := 0; j < len(rest); j++ {
			if rest[j] == ':' {
				p.payload = rest[j+1:]
				rest = rest[:j]
				break
			}
		}
		p.flags = rest
		ps = append(ps, p)
	}
	return ps
}

func TestConnState(t *testing.T) {
	tests := []struct {
		name  string
		ps    []pkt
		state string // Zeek's
		flag  string // KDD's
	}{
		{"S0 syn only", tcp(80, "o:S", "o:S"), "S0", "S0"},
		{"REJ", tcp(80, "o:S", "r:RA"), "REJ", "REJ"},
		{"SF", tcp(80, "o:S", "r:SA", "o:A", "o:PA:GET /", "r:PA:200 OK", "o:FA", "r:FA", "o:A"), "SF", "SF"},
		{"S1", tcp(80, "o:S", "r:SA", "o:A", "o:PA:hi"), "S1", "S1"},
		{"S1 no final ack", tcp(80, "o:S", "r:SA"), "S1", "S1"},
		{"S2", tcp(80, "o:S", "r:SA", "o:A", "o:FA"), "S2", "S2"},
		{"S3", tcp(80, "o:S", "r:SA", "o:A", "r:FA"), "S3", "S3"},
		{"RSTO", tcp(80, "o:S", "r:SA", "o:A", "o:RA"), "RSTO", "RSTO"},
		{"RSTR", tcp(80, "o:S", "r:SA", "o:A", "r:RA"), "RSTR", "RSTR"},
		{"RSTOS0", tcp(80, "o:S", "o:R"), "RSTOS0", "RSTOS0"},
		{"SH", tcp(80, "o:S", "o:F"), "SH", "SH"},
		{"RSTRH", tcp(80, "r:SA", "r:R"), "RSTRH", "RSTR"},
		{"SHR", tcp(80, "r:SA", "r:F"), "SHR", "OTH"},
		{"OTH midstream", tcp(80, "o:A", "r:A", "o:PA:x"), "OTH", "OTH"},
		{"orig reset no syn", tcp(80, "o:A", "o:R"), "OTH", "OTH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, tr := run(t, Config{}, tt.ps)
			if len(out) != 1 {
				t.Fatalf("got %d connections, want 1: %+v", len(out), out)
			}
			c := &out[0]
			if got := sym(c, record.Flag); got != tt.flag {
				t.Errorf("flag = %s, want %s", got, tt.flag)
			}
			if c.ID.SrcIP != cli || c.ID.DstIP != srv || c.ID.SrcPort != 40000 || c.ID.DstPort != 80 {
				t.Errorf("identity = %+v, want %s:40000 -> %s:80", c.ID, cli, srv)
			}
			if s := tr.Stats(); s.Tracked != uint64(len(tt.ps)) || s.Conns != 1 || s.Open != 0 {
				t.Errorf("stats = %+v", s)
			}
		})
	}
	// The Zeek state itself, through the endpoint machine.
	for _, tt := range tests {
		tr := New(Config{}, func(*features.Conn) {})
		var c *conn
		for _, p := range tt.ps {
			_ = tr.Packet(t0.Add(p.at).UnixNano(), LinkEthernet, frame(t, p))
		}
		for _, x := range tr.m {
			c = x
		}
		if c == nil {
			t.Errorf("%s: connection already finished", tt.name)
			continue
		}
		if got := c.state(); got != tt.state {
			t.Errorf("%s: conn_state = %s, want %s", tt.name, got, tt.state)
		}
	}
}

func TestIntrinsicFeatures(t *testing.T) {
	ps := tcp(80, "o:S", "r:SA", "o:A", "o:PAU:GET / HTTP/1.0\r\n\r\n", "r:PA:HTTP/1.0 200 OK\r\n\r\nhello", "o:FA", "r:FA", "o:A")
	ps[len(ps)-1].at = 2500 * ms
	out, _ := run(t, Config{}, ps)
	c := &out[0]
	checks := map[string]float64{"duration": 2, "src_bytes": 18, "dst_bytes": 24, "land": 0, "wrong_fragment": 0, "urgent": 1, "logged_in": 1}
	for name, want := range checks {
		if got := val(c, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if sym(c, record.ProtocolType) != "tcp" || sym(c, record.Service) != "http" {
		t.Errorf("protocol/service = %s/%s", sym(c, record.ProtocolType), sym(c, record.Service))
	}
	for _, name := range []string{"hot", "num_failed_logins", "is_guest_login", "root_shell", "count"} {
		if c.Present(featureIndex(name)) {
			t.Errorf("%s present, want absent", name)
		}
	}
	if c.ID.TS != float64(t0.UnixNano())/1e9 {
		t.Errorf("ts = %v, want %v", c.ID.TS, float64(t0.Unix()))
	}
}

func TestUDPICMPAndLand(t *testing.T) {
	ps := []pkt{
		{at: 0, src: cli, dst: srv, sport: 5353, dport: 53, proto: "udp", payload: "query"},
		{at: 1 * ms, src: srv, dst: cli, sport: 53, dport: 5353, proto: "udp", payload: "answer!"},
		{at: 2 * ms, src: cli, dst: srv, proto: "icmp", icmpType: 8, payload: "12345678"},
		{at: 3 * ms, src: srv, dst: cli, proto: "icmp", icmpType: 0, payload: "12345678"},
		{at: 4 * ms, src: srv, dst: cli, proto: "icmp", icmpType: 3, icmpCode: 3, payload: "x"},
		{at: 5 * ms, src: "fe80::1", dst: "fe80::2", proto: "icmp6", icmpType: 128, payload: "abcd"},
		{at: 6 * ms, src: srv, dst: srv, sport: 139, dport: 139, flags: "S"},
		{at: 7 * ms, src: cli, dst: srv, sport: 999, dport: 4444, proto: "udp", payload: "z", vlan: true},
		{at: 8 * ms, src: "2001:db8::1", dst: "2001:db8::2", sport: 1234, dport: 21, flags: "S", vlan: true},
	}
	out, tr := run(t, Config{}, ps)
	if s := tr.Stats(); s.Tracked != uint64(len(ps)) || s.Corrupt != 0 {
		t.Fatalf("stats = %+v", s)
	}
	type want struct {
		proto, service, flag string
		src, dst             float64
		land                 float64
	}
	byService := map[string]want{
		"domain_u":    {"udp", "domain_u", "SF", 5, 7, 0},
		"eco_i":       {"icmp", "eco_i", "SF", 16, 0, 0},
		"ecr_i":       {"icmp", "ecr_i", "SF", 16, 0, 0},
		"urp_i":       {"icmp", "urp_i", "SF", 9, 0, 0},
		"netbios_ssn": {"tcp", "netbios_ssn", "S0", 0, 0, 1},
		"private":     {"udp", "private", "SF", 1, 0, 0},
		"ftp":         {"tcp", "ftp", "S0", 0, 0, 0},
	}
	seen := map[string]int{}
	for i := range out {
		c := &out[i]
		s := sym(c, record.Service)
		seen[s]++
		w, ok := byService[s]
		if s == "eco_i" && c.ID.SrcIP == "fe80::1" {
			w.src = 8 // ICMPv6's header is 4 bytes, then the 4 of payload
		}
		if !ok {
			t.Errorf("unexpected connection %s %+v", s, c.ID)
			continue
		}
		if sym(c, record.ProtocolType) != w.proto || sym(c, record.Flag) != w.flag ||
			val(c, "src_bytes") != w.src || val(c, "dst_bytes") != w.dst || val(c, "land") != w.land {
			t.Errorf("%s: got %s %s src %v dst %v land %v, want %+v", s, sym(c, record.ProtocolType), sym(c, record.Flag),
				val(c, "src_bytes"), val(c, "dst_bytes"), val(c, "land"), w)
		}
	}
	if seen["eco_i"] != 2 || len(out) != 8 {
		t.Errorf("connections by service = %v (%d), want 8 with eco_i twice (v4 and v6)", seen, len(out))
	}
}

func TestFTPContent(t *testing.T) {
	ps := tcp(21, "o:S", "r:SA", "o:A", "r:PA:220 hi\r\n",
		"o:PA:USER anonymous\r\n", "r:PA:331 pw?\r\n", "o:PA:PASS x\r\n", "r:PA:530 Login incorrect.\r\n",
		"o:PA:USER anonymous\r\n", "r:PA:331 pw?\r\n", "o:PA:PASS y\r\n", "r:PA:530-no\r\n530 Login incorrect.\r\n",
		"o:PA:PASS z\r\n", "r:PA:230 Login successful.\r\n", "o:FA", "r:FA")
	out, _ := run(t, Config{}, ps)
	c := &out[0]
	if val(c, "num_failed_logins") != 2 || val(c, "logged_in") != 1 || val(c, "is_guest_login") != 1 {
		t.Errorf("failed %v logged_in %v guest %v, want 2 1 1", val(c, "num_failed_logins"), val(c, "logged_in"), val(c, "is_guest_login"))
	}
	out, _ = run(t, Config{}, tcp(21, "o:S", "r:SA", "o:A", "o:PA:USER bob\r\n", "r:PA:530 no\r\n", "o:FA", "r:FA"))
	c = &out[0]
	if val(c, "num_failed_logins") != 1 || val(c, "logged_in") != 0 || val(c, "is_guest_login") != 0 {
		t.Errorf("failed %v logged_in %v guest %v, want 1 0 0", val(c, "num_failed_logins"), val(c, "logged_in"), val(c, "is_guest_login"))
	}
}

func TestTimeoutsAndOrder(t *testing.T) {
	// A UDP flow (ends at 0), an S0 attempt (ends at 1ms) and an HTTP
	// connection closing at 3s: the output is in order of end even though
	// the UDP flow times out last.
	ps := []pkt{{at: 0, src: cli, dst: srv, sport: 1, dport: 53, proto: "udp", payload: "q"}}
	ps = append(ps, pkt{at: 1 * ms, src: cli, dst: srv, sport: 2, dport: 80, flags: "S"})
	h := tcp(80, "o:S", "r:SA", "o:A", "o:FA", "r:FA")
	for i := range h {
		h[i].at = 3*time.Second + time.Duration(i)*ms
	}
	ps = append(ps, h...)
	// Much later traffic makes everything time out.
	ps = append(ps, pkt{at: 10 * time.Minute, src: cli, dst: srv, sport: 3, dport: 123, proto: "udp", payload: "t"})
	var ends []int64
	var services []string
	tr := New(Config{}, func(c *features.Conn) {
		ends = append(ends, c.End)
		services = append(services, c.Symbol(record.Service))
	})
	for i, p := range ps {
		_ = tr.Packet(t0.Add(p.at).UnixNano(), LinkEthernet, frame(t, p))
		if i == len(ps)-2 && len(ends) != 1 {
			// By 3s the attempt (5s timeout) and UDP flow (60s) are open,
			// so nothing but... the attempt cannot be released yet either.
			t.Logf("released before the last packet: %v", services)
		}
	}
	if len(ends) != 3 {
		t.Fatalf("released %d before the flush, want 3 (timed out): %v", len(ends), services)
	}
	tr.Flush()
	want := []string{"domain_u", "http", "http", "ntp_u"}
	if len(services) != len(want) {
		t.Fatalf("services = %v, want %v", services, want)
	}
	for i := range want {
		if services[i] != want[i] {
			t.Errorf("services = %v, want %v", services, want)
			break
		}
	}
	for i := 1; i < len(ends); i++ {
		if ends[i] < ends[i-1] {
			t.Errorf("ends not in order: %v", ends)
		}
	}
}

func TestFragments(t *testing.T) {
	// An ICMP echo of 3000 bytes in three fragments, one of them
	// overlapping: one connection with one wrong fragment.
	full := frame(t, pkt{src: cli, dst: srv, proto: "icmp", icmpType: 8, payload: string(make([]byte, 2992))})
	ip := full[14:]
	payload := ip[20:] // 3000 bytes of ICMP
	mk := func(off, n int, more bool) []byte {
		f := make([]byte, 14+20+n)
		copy(f, full[:14])
		copy(f[14:], ip[:20])
		h := f[14:]
		h[2], h[3] = byte((20+n)>>8), byte(20+n)
		fo := off / 8
		if more {
			fo |= 0x2000
		}
		h[6], h[7] = byte(fo>>8), byte(fo)
		h[4], h[5] = 0x12, 0x34
		copy(f[34:], payload[off:off+n])
		return f
	}
	tr := New(Config{}, func(c *features.Conn) {
		if c.Values[7] != 1 || c.Values[record.SrcBytes] != 3000 || c.Symbol(record.Service) != "eco_i" {
			t.Errorf("wrong_fragment %v src_bytes %v service %s, want 1 3000 eco_i", c.Values[7], c.Values[record.SrcBytes], c.Symbol(record.Service))
		}
	})
	ts := t0.UnixNano()
	for _, f := range [][]byte{mk(1480, 1480, true), mk(0, 1480, true), mk(1400, 160, true), mk(2960, 40, false)} {
		if err := tr.Packet(ts, LinkEthernet, f); err != nil {
			t.Fatal(err)
		}
	}
	tr.Flush()
	if s := tr.Stats(); s.Conns != 1 || s.Datagrams != 1 || s.Tracked != 4 {
		t.Errorf("stats = %+v, want 1 connection from 1 datagram of 4 fragments", s)
	}
	// A lone middle fragment is dropped, and counted, at the flush.
	tr = New(Config{}, func(*features.Conn) { t.Error("connection from a headless fragment") })
	_ = tr.Packet(ts, LinkEthernet, mk(1480, 1480, true))
	if s := tr.Stats(); s.FragHeld != 1 {
		t.Errorf("FragHeld = %d, want 1", s.FragHeld)
	}
	tr.Flush()
	if s := tr.Stats(); s.FragDropped != 1 || s.FragHeld != 0 {
		t.Errorf("stats = %+v, want the fragment dropped", s)
	}
}

func TestCorruptCounted(t *testing.T) {
	good := frame(t, pkt{src: cli, dst: srv, sport: 1, dport: 80, flags: "S"})
	tr := New(Config{}, func(*features.Conn) {})
	bad := append([]byte(nil), good[:14+10]...) // IP header cut short
	arp := append([]byte(nil), good...)
	arp[12], arp[13] = 0x08, 0x06
	_ = tr.Packet(1, LinkEthernet, bad)
	_ = tr.Packet(2, LinkEthernet, arp)
	_ = tr.Packet(3, LinkEthernet, good)
	_ = tr.Packet(4, 9999, good)
	tr.Flush()
	s := tr.Stats()
	if s.Corrupt != 1 || s.NotIP != 1 || s.Tracked != 1 || s.Unsupported != 1 || s.Conns != 1 {
		t.Errorf("stats = %+v", s)
	}
}

// TestSYNFlood: a million half-open connections from distinct ports stay
// within MaxConns; every one is released, the excess counted as evicted.
func TestSYNFlood(t *testing.T) {
	n := 1000000
	if testing.Short() || raceEnabled {
		n = 200000
	}
	const limit = 10000
	base := frame(t, pkt{src: cli, dst: srv, sport: 1, dport: 80, flags: "S"})
	var released uint64
	tr := New(Config{MaxConns: limit, MaxPending: limit}, func(*features.Conn) { released++ })
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f := append([]byte(nil), base...)
	for i := range n {
		// Vary source address and port: distinct connections.
		f[14+12+2], f[14+12+3] = byte(i>>16), byte(i>>8)
		f[34], f[35] = byte(i), byte(i>>8)
		_ = tr.Packet(t0.UnixNano()+int64(i)*1000, LinkEthernet, f)
		if len(tr.m) > limit || len(tr.pending) > limit+1 {
			t.Fatalf("packet %d: %d open, %d pending; want at most %d", i, len(tr.m), len(tr.pending), limit)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	tr.Flush()
	s := tr.Stats()
	if released != uint64(n) || s.Conns != uint64(n) || s.Evicted == 0 {
		t.Errorf("released %d, stats %+v; want %d released with evictions", released, s, n)
	}
	if grow := int64(after.HeapInuse) - int64(before.HeapInuse); grow > 64<<20 {
		t.Errorf("heap grew by %d MB during the flood, want < 64 MB", grow>>20)
	}
}

func TestMaxDelay(t *testing.T) {
	// An answered TCP connection idle from 0 (it times out after 5
	// minutes) and a short one closed at 1s: the short one waits for the
	// idle one unless MaxDelay lets it go.
	idle := tcp(22, "o:S", "r:SA", "o:A")
	short := tcp(80, "o:S", "r:SA", "o:A", "o:FA", "r:FA", "o:A")
	for i := range short {
		short[i].at += time.Second
		if short[i].src == cli {
			short[i].sport = 40001
		} else {
			short[i].dport = 40001
		}
	}
	later := pkt{at: 10 * time.Second, src: cli, dst: srv, sport: 5, dport: 53, proto: "udp", payload: "q"}
	for _, c := range []struct {
		delay    time.Duration
		released int // before the flush
	}{{0, 0}, {3 * time.Second, 1}} {
		var services []string
		tr := New(Config{MaxDelay: c.delay}, func(fc *features.Conn) { services = append(services, fc.Symbol(record.Service)) })
		for _, p := range append(append(append([]pkt{}, idle...), short...), later) {
			_ = tr.Packet(t0.Add(p.at).UnixNano(), LinkEthernet, frame(t, p))
		}
		if len(services) != c.released {
			t.Errorf("MaxDelay %v: released %v before the flush, want %d connection(s)", c.delay, services, c.released)
		}
		tr.Flush()
		if len(services) != 3 {
			t.Errorf("MaxDelay %v: released %v in all, want 3 connections", c.delay, services)
		}
		// The idle connection came after the short one that ended later.
		if got := tr.Stats().Reordered; got != uint64(c.released) {
			t.Errorf("MaxDelay %v: Reordered = %d, want %d", c.delay, got, c.released)
		}
	}
}
