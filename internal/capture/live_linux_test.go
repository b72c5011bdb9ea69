package capture

import (
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"
)

// TestLiveLoopback captures UDP datagrams this test sends to itself on lo
// (needs CAP_NET_RAW; skipped without).
func TestLiveLoopback(t *testing.T) {
	live, err := OpenLive("lo", 65535, 50*time.Millisecond)
	if err != nil {
		t.Skipf("no live capture here: %v", err)
	}
	defer live.Close()
	rc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	port := uint16(rc.LocalAddr().(*net.UDPAddr).Port)
	sc, err := net.DialUDP("udp4", nil, rc.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	const n = 5
	for range n {
		if _, err := sc.Write([]byte("netsentinel live capture test")); err != nil {
			t.Fatal(err)
		}
	}
	seen := 0
	deadline := time.Now().Add(10 * time.Second)
	for seen < n && time.Now().Before(deadline) {
		f, err := live.Next()
		if errors.Is(err, ErrNoPacket) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		// Ethernet (zero MACs on lo), IPv4, UDP to our port.
		d := f.Data
		if f.Link == 1 && len(d) >= 42 && d[12] == 8 && d[13] == 0 && d[23] == 17 && binary.BigEndian.Uint16(d[36:]) == port {
			seen++
		}
	}
	if seen != n {
		t.Fatalf("captured %d of our %d datagrams (each must be seen once)", seen, n)
	}
	// Nothing more of ours: the outgoing copies were skipped.
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		f, err := live.Next()
		if errors.Is(err, ErrNoPacket) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if d := f.Data; len(d) >= 38 && d[23] == 17 && binary.BigEndian.Uint16(d[36:]) == port {
			t.Fatal("a datagram was captured twice")
		}
	}
	s, err := live.Stats()
	if err != nil || s.Packets < n {
		t.Errorf("Stats = %+v, %v; want at least %d packets", s, err, n)
	}
}
