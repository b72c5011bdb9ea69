package conntrack

import "net/netip"

// Fragment reassembly is bounded: the tracker keeps only what it needs of a
// fragmented datagram (the first fragment's transport header and the byte
// ranges seen), at most Config.MaxFragDatagrams datagrams of at most
// maxFragPieces fragments each, for at most Config.FragTimeout.
//
// A fragment is "wrong" (KDD's wrong_fragment) when it overlaps one seen
// before, ends beyond the 65,535 bytes an IP datagram can hold (ping of
// death), is not the last yet is not a multiple of 8 bytes long, or comes
// after the datagram's end is known and lies beyond it.

const (
	maxFragPieces = 64
	maxIPDatagram = 65535
	fragHeadBytes = 64 // enough for a TCP header with options
)

type fragKey struct {
	src, dst [16]byte
	id       uint32
	proto    uint8
}

type fragment struct {
	key      fragKey
	src, dst netip.Addr
	first    int64 // time of the first fragment
	ranges   [][2]int
	end      int // total payload length once the last fragment is seen; -1 before
	head     []byte
	wrong    int
	pieces   int // fragments received
	prev     *fragment
	next     *fragment
}

// fragTable holds the datagrams being reassembled, oldest first.
type fragTable struct {
	m          map[fragKey]*fragment
	head, tail *fragment
}

func (t *fragTable) unlink(f *fragment) {
	if f.prev != nil {
		f.prev.next = f.next
	} else {
		t.head = f.next
	}
	if f.next != nil {
		f.next.prev = f.prev
	} else {
		t.tail = f.prev
	}
	f.prev, f.next = nil, nil
	delete(t.m, f.key)
}

func (t *fragTable) push(f *fragment) {
	f.prev = t.tail
	if t.tail != nil {
		t.tail.next = f
	} else {
		t.head = f
	}
	t.tail = f
	t.m[f.key] = f
}

// add records fragment p. It returns the datagram when it is complete.
func (t *fragTable) add(p *Packet, limit int) (f *fragment, evicted *fragment) {
	k := fragKey{src: p.Src.As16(), dst: p.Dst.As16(), id: p.FragID, proto: p.Proto}
	f = t.m[k]
	if f == nil {
		if len(t.m) >= limit && t.head != nil {
			evicted = t.head
			t.unlink(evicted)
		}
		f = &fragment{key: k, src: p.Src, dst: p.Dst, first: p.TS, end: -1}
		t.push(f)
	}
	f.pieces++
	start, n := p.FragOff, p.Len
	stop := start + n
	wrong := false
	if stop+20 > maxIPDatagram || (p.More && n%8 != 0) || (f.end >= 0 && stop > f.end) {
		wrong = true
	}
	for _, r := range f.ranges {
		if start < r[1] && r[0] < stop {
			wrong = true
			break
		}
	}
	if wrong {
		f.wrong++
	}
	if !p.More {
		if f.end < 0 || stop > f.end {
			f.end = stop
		}
	}
	if start == 0 && f.head == nil {
		f.head = make([]byte, min(len(p.FragData), fragHeadBytes))
		copy(f.head, p.FragData)
	}
	if len(f.ranges) < maxFragPieces {
		f.ranges = append(f.ranges, [2]int{start, stop})
	} else {
		f.wrong++ // more pieces than any sane sender makes
	}
	if f.end >= 0 && f.head != nil && covered(f.ranges, f.end) {
		t.unlink(f)
		return f, evicted
	}
	return nil, evicted
}

// covered reports whether ranges cover [0, end).
func covered(ranges [][2]int, end int) bool {
	at := 0
	for {
		next := at
		for _, r := range ranges {
			if r[0] <= at && r[1] > next {
				next = r[1]
			}
		}
		if next >= end {
			return true
		}
		if next == at {
			return false
		}
		at = next
	}
}

// expire removes the datagrams whose first fragment is older than before
// and calls f for each.
func (t *fragTable) expire(before int64, f func(*fragment)) {
	for t.head != nil && t.head.first < before {
		d := t.head
		t.unlink(d)
		f(d)
	}
}

// packet turns a datagram into the packet it carried, from its first
// fragment's transport header; ok is false when that header is missing or
// corrupt.
func (d *fragment) packet(ts int64, p *Packet) bool {
	*p = Packet{TS: ts, Src: d.src, Dst: d.dst}
	if d.head == nil {
		return false
	}
	total := d.end
	if total < 0 { // incomplete: the ranges seen
		for _, r := range d.ranges {
			total = max(total, r[1])
		}
	}
	if decodeTransport(d.key.proto, d.head, total, p) != nil {
		return false
	}
	p.Payload = nil // only the first fragment's head is kept
	p.WrongFrag = d.wrong
	return true
}
