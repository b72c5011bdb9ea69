// Package capturetest writes synthetic packet captures for tests and
// benchmarks: a reproducible mix of interleaved HTTP sessions, DNS
// queries, SYN probes (refused or unanswered) and pings, as Ethernet/IPv4
// frames in a classic pcap file. Checksums are left zero.
package capturetest

import (
	"bufio"
	"encoding/binary"
	"io"
	"math/rand/v2"
)

// Start is the capture time of the first packet, in nanoseconds since the
// Unix epoch (2026-01-02 03:04:05 UTC).
const Start = int64(1767323045) * 1e9

// Counts says what a written capture holds.
type Counts struct {
	Packets int
	Conns   int // TCP connections, UDP flows and ICMP messages started
}

// Options shapes the traffic. The zero value of a field means its default.
type Options struct {
	Seed uint64
	// Concurrent is the number of sessions in progress at once (default 64).
	Concurrent int
	// Step is the time between packets (default 20µs).
	Step int64
}

// WritePcap writes a pcap file of at least packets packets to w (whole
// sessions, cut at the count).
func WritePcap(w io.Writer, packets int, opt Options) (Counts, error) {
	if opt.Concurrent <= 0 {
		opt.Concurrent = 64
	}
	if opt.Step <= 0 {
		opt.Step = 20_000
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	var hdr [24]byte
	binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], 65535)
	binary.LittleEndian.PutUint32(hdr[20:], 1)
	if _, err := bw.Write(hdr[:]); err != nil {
		return Counts{}, err
	}
	g := &gen{rng: rand.New(rand.NewPCG(opt.Seed, 42)), w: bw, ts: Start, step: opt.Step}
	sessions := make([]*session, opt.Concurrent)
	for i := range sessions {
		sessions[i] = g.newSession()
	}
	for g.counts.Packets < packets {
		i := g.rng.IntN(len(sessions))
		if !sessions[i].next(g) {
			sessions[i] = g.newSession()
		}
		if g.err != nil {
			return g.counts, g.err
		}
	}
	if err := bw.Flush(); err != nil {
		return g.counts, err
	}
	return g.counts, nil
}

type gen struct {
	rng    *rand.Rand
	w      *bufio.Writer
	ts     int64
	step   int64
	port   uint16
	counts Counts
	err    error
	buf    [1600]byte
}

type session struct {
	kind       int
	step, end  int
	cli, srv   [4]byte
	cport      uint16
	sport      uint16
	dataChunks int
}

const (
	kindHTTP = iota
	kindDNS
	kindSYN
	kindPing
)

func (g *gen) newSession() *session {
	g.port++
	if g.port < 1024 {
		g.port = 1024
	}
	s := &session{cli: [4]byte{10, 1, byte(g.rng.IntN(4)), byte(1 + g.rng.IntN(200))}, srv: [4]byte{10, 2, 0, byte(1 + g.rng.IntN(20))}, cport: g.port}
	switch r := g.rng.IntN(100); {
	case r < 70:
		s.kind, s.sport = kindHTTP, 80
		s.dataChunks = 1 + g.rng.IntN(12)
		s.end = 8 + 2*s.dataChunks
	case r < 85:
		s.kind, s.sport, s.end = kindDNS, 53, 2
	case r < 95:
		s.kind, s.sport, s.end = kindSYN, uint16(1+g.rng.IntN(2000)), 1+g.rng.IntN(2)
	default:
		s.kind, s.end = kindPing, 2
	}
	g.counts.Conns++
	return s
}

// next writes the session's next packet; false when it is over.
func (s *session) next(g *gen) bool {
	if s.step >= s.end {
		return false
	}
	i := s.step
	s.step++
	switch s.kind {
	case kindHTTP:
		switch {
		case i == 0:
			g.tcp(s, true, 0x02, 0)
		case i == 1:
			g.tcp(s, false, 0x12, 0)
		case i == 2:
			g.tcp(s, true, 0x10, 0)
		case i == 3:
			g.tcp(s, true, 0x18, 200+g.rng.IntN(300))
		case i < 4+2*s.dataChunks:
			if (i-4)%2 == 0 {
				g.tcp(s, false, 0x18, 1460)
			} else {
				g.tcp(s, true, 0x10, 0)
			}
		case i == s.end-4:
			g.tcp(s, true, 0x11, 0)
		case i == s.end-3:
			g.tcp(s, false, 0x10, 0)
		case i == s.end-2:
			g.tcp(s, false, 0x11, 0)
		default:
			g.tcp(s, true, 0x10, 0)
		}
	case kindDNS:
		g.udp(s, i == 0, 30+g.rng.IntN(20)+i*60)
	case kindSYN:
		if i == 0 {
			g.tcp(s, true, 0x02, 0)
		} else {
			g.tcp(s, false, 0x14, 0)
		}
	case kindPing:
		g.icmp(s, i == 0)
	}
	return true
}

func (g *gen) ip(s *session, fromCli bool, proto byte, l4 int) []byte {
	b := g.buf[:14+20+l4]
	copy(b[0:6], []byte{2, 0, 0, 0, 0, 2})
	copy(b[6:12], []byte{2, 0, 0, 0, 0, 1})
	b[12], b[13] = 0x08, 0x00
	h := b[14:34]
	clear(h)
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(20+l4))
	h[8] = 64
	h[9] = proto
	src, dst := s.cli, s.srv
	if !fromCli {
		src, dst = dst, src
	}
	copy(h[12:16], src[:])
	copy(h[16:20], dst[:])
	return b
}

func (g *gen) tcp(s *session, fromCli bool, flags byte, payload int) {
	b := g.ip(s, fromCli, 6, 20+payload)
	t := b[34:]
	clear(t[:20])
	sp, dp := s.cport, s.sport
	if !fromCli {
		sp, dp = dp, sp
	}
	binary.BigEndian.PutUint16(t[0:], sp)
	binary.BigEndian.PutUint16(t[2:], dp)
	t[12] = 5 << 4
	t[13] = flags
	binary.BigEndian.PutUint16(t[14:], 65535)
	for i := 20; i < 20+payload; i++ {
		t[i] = 'a' + byte(i%26)
	}
	g.write(b)
}

func (g *gen) udp(s *session, fromCli bool, payload int) {
	b := g.ip(s, fromCli, 17, 8+payload)
	u := b[34:]
	sp, dp := s.cport, s.sport
	if !fromCli {
		sp, dp = dp, sp
	}
	binary.BigEndian.PutUint16(u[0:], sp)
	binary.BigEndian.PutUint16(u[2:], dp)
	binary.BigEndian.PutUint16(u[4:], uint16(8+payload))
	u[6], u[7] = 0, 0
	g.write(b)
}

func (g *gen) icmp(s *session, fromCli bool) {
	b := g.ip(s, fromCli, 1, 64)
	c := b[34:]
	clear(c[:8])
	if fromCli {
		c[0] = 8
	}
	g.write(b)
}

func (g *gen) write(frame []byte) {
	g.ts += g.step/2 + g.rng.Int64N(g.step)
	var rec [16]byte
	binary.LittleEndian.PutUint32(rec[0:], uint32(g.ts/1e9))
	binary.LittleEndian.PutUint32(rec[4:], uint32(g.ts%1e9/1e3))
	binary.LittleEndian.PutUint32(rec[8:], uint32(len(frame)))
	binary.LittleEndian.PutUint32(rec[12:], uint32(len(frame)))
	if _, err := g.w.Write(rec[:]); err != nil && g.err == nil {
		g.err = err
	}
	if _, err := g.w.Write(frame); err != nil && g.err == nil {
		g.err = err
	}
	g.counts.Packets++
}
