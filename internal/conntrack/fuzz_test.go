package conntrack

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/netsentinel/netsentinel/internal/features"
)

// FuzzTracker feeds arbitrary frame sequences (each frame: a 2-byte length,
// a 1-byte time step in ms, then the bytes, as Ethernet or raw IP) and
// checks the invariants: no panic, bounded state, every packet accounted
// for, every connection released by Flush.
func FuzzTracker(f *testing.F) {
	seq := func(frames ...[]byte) []byte {
		var b []byte
		for _, fr := range frames {
			b = binary.BigEndian.AppendUint16(b, uint16(len(fr)))
			b = append(b, 3)
			b = append(b, fr...)
		}
		return b
	}
	for _, ps := range [][]pkt{
		tcp(80, "o:S", "r:SA", "o:A", "o:PA:GET /", "r:PA:200", "o:FA", "r:FA"),
		tcp(21, "o:S", "r:SA", "o:PA:USER ftp\r\n", "r:PA:230 ok\r\n", "o:R"),
		{{src: cli, dst: srv, proto: "icmp", icmpType: 8, payload: "x"}, {src: "::1", dst: "::2", sport: 1, dport: 53, proto: "udp", vlan: true}},
	} {
		var frames [][]byte
		for _, p := range ps {
			frames = append(frames, frame(f, p))
		}
		f.Add(seq(frames...), false)
		f.Add(seq(frames...), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, raw bool) {
		const limit = 8
		var released, late uint64
		var lastEnd int64
		cfg := Config{MaxConns: limit, MaxPending: limit, MaxFragDatagrams: 4}
		if len(data)%2 == 1 {
			cfg.MaxDelay = 20 * time.Millisecond // as a live sensor
		}
		tr := New(cfg, func(c *features.Conn) {
			released++
			if c.Values[0] < 0 || c.Values[4] < 0 || c.Values[5] < 0 {
				t.Fatalf("negative feature in %+v", c.Values)
			}
			if c.End < lastEnd {
				late++
			} else {
				lastEnd = c.End
			}
		})
		link := LinkEthernet
		if raw {
			link = LinkRaw
		}
		ts := int64(1e18)
		for len(data) >= 3 {
			n := int(binary.BigEndian.Uint16(data))
			ts += int64(data[2]) * int64(time.Millisecond)
			data = data[3:]
			n = min(n, len(data))
			_ = tr.Packet(ts, link, data[:n])
			data = data[n:]
			if len(tr.m) > limit || len(tr.pending) > limit+1 || len(tr.frags.m) > 4 {
				t.Fatalf("state beyond its bounds: %d open, %d pending, %d datagrams", len(tr.m), len(tr.pending), len(tr.frags.m))
			}
		}
		s := tr.Stats()
		if s.Packets != s.Tracked+s.NotIP+s.Unsupported+s.Corrupt+s.FragHeld+s.FragDropped {
			t.Fatalf("packets not accounted for: %+v", s)
		}
		tr.Flush()
		s = tr.Stats()
		if s.Open != 0 || s.FragHeld != 0 || len(tr.pending) != 0 || released != s.Conns {
			t.Fatalf("after Flush: %+v, %d pending, %d released", s, len(tr.pending), released)
		}
		if late != s.Reordered {
			t.Fatalf("%d connections released out of order, Reordered = %d", late, s.Reordered)
		}
		if s.Packets != s.Tracked+s.NotIP+s.Unsupported+s.Corrupt+s.FragDropped {
			t.Fatalf("packets not accounted for after Flush: %+v", s)
		}
	})
}
