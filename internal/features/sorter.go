package features

import "container/heap"

// Sorter puts connections that arrive roughly in order of end (as the
// lines of a Zeek log do: Zeek writes a connection when it expires) into
// order of end, holding at most Max of them: past Max the earliest is
// released even if a later arrival ends before it. A Sorter is not safe
// for concurrent use.
type Sorter struct {
	// Max is the number of connections held back (default 1<<16).
	Max int
	h   sortHeap
	seq uint64
}

type sorted struct {
	c   Conn
	seq uint64
}

type sortHeap []sorted

func (h sortHeap) Len() int { return len(h) }
func (h sortHeap) Less(i, j int) bool {
	return h[i].c.End < h[j].c.End || h[i].c.End == h[j].c.End && h[i].seq < h[j].seq
}
func (h sortHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *sortHeap) Push(x any)   { *h = append(*h, x.(sorted)) }
func (h *sortHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Push adds a copy of c and passes the connections it displaces to emit.
func (s *Sorter) Push(c *Conn, emit func(*Conn)) {
	limit := s.Max
	if limit <= 0 {
		limit = 1 << 16
	}
	s.seq++
	heap.Push(&s.h, sorted{c: *c, seq: s.seq})
	for len(s.h) > limit {
		x := heap.Pop(&s.h).(sorted)
		emit(&x.c)
	}
}

// Flush passes every held connection to emit, in order of end.
func (s *Sorter) Flush(emit func(*Conn)) {
	for len(s.h) > 0 {
		x := heap.Pop(&s.h).(sorted)
		emit(&x.c)
	}
}

// Len returns the number of connections held.
func (s *Sorter) Len() int { return len(s.h) }
