package forest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Binary format, version 2, all integers little-endian:
//
//	magic    "NSRF"
//	version  uint16 (formatVersion), reserved uint16 (0)
//	counts   uint32 × 5: features, classes, trees, nodes, leaf entries
//	importance  float64 × features
//	roots       uint32 × trees        index of each tree's first node
//	nodes       (float32 threshold, int32 feature, int32 next) × nodes
//	leaves      (uint32 class, float32 probability) × leaf entries
//
// There is no checksum: the model file holds a SHA-256 of all its sections.
// Version 1 had the same layout followed by a CRC-32C of it; UnmarshalBinary
// reads it and ignores the CRC, which the model file's SHA-256 covers.
const (
	magic         = "NSRF"
	formatVersion = 2
	headerSize    = 4 + 2 + 2 + 5*4
	nodeSize      = 12
	leafSize      = 8
	v1SumSize     = 4 // the CRC-32C after a version 1 forest
)

// Limits on what UnmarshalBinary accepts, far above any real model. Node and
// leaf indexes are int32.
const (
	maxFeatures = 1 << 16
	maxClasses  = 1 << 16
	maxIndex    = math.MaxInt32
)

// ErrFormat is wrapped by every error UnmarshalBinary returns for input that
// is not a valid forest: truncated, corrupted, or from a newer version.
var ErrFormat = errors.New("invalid forest data")

// MarshalBinary encodes the model in the compact binary format that
// UnmarshalBinary reads.
func (m *Model) MarshalBinary() ([]byte, error) {
	size := headerSize + 8*len(m.importance) + 4*len(m.roots) + nodeSize*len(m.nodes) + leafSize*len(m.leaves)
	b := make([]byte, 0, size)
	b = append(b, magic...)
	b = binary.LittleEndian.AppendUint16(b, formatVersion)
	b = binary.LittleEndian.AppendUint16(b, 0)
	for _, v := range []int{m.nFeatures, m.nClasses, len(m.roots), len(m.nodes), len(m.leaves)} {
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	for _, v := range m.importance {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	for _, r := range m.roots {
		b = binary.LittleEndian.AppendUint32(b, uint32(r))
	}
	for _, nd := range m.nodes {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(nd.thr))
		b = binary.LittleEndian.AppendUint32(b, uint32(nd.feat))
		b = binary.LittleEndian.AppendUint32(b, uint32(nd.next))
	}
	for _, e := range m.leaves {
		b = binary.LittleEndian.AppendUint32(b, uint32(e.class))
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(e.p))
	}
	return b, nil
}

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrFormat}, args...)...)
}

// UnmarshalBinary decodes a model written by MarshalBinary (or a version 1
// forest), replacing m. It checks the counts against the length before it
// allocates, and every node, feature, class and probability, so the decoded
// model cannot index out of range or loop; any problem yields an error
// wrapping ErrFormat. Time and memory are linear in len(data).
func (m *Model) UnmarshalBinary(data []byte) error {
	le := binary.LittleEndian
	if len(data) < headerSize {
		return formatErr("%d bytes, shorter than the %d-byte header", len(data), headerSize)
	}
	if string(data[:4]) != magic {
		return formatErr("bad magic %q", data[:4])
	}
	switch v := le.Uint16(data[4:]); {
	case v > formatVersion:
		return formatErr("format version %d is newer than this program's %d", v, formatVersion)
	case v == 1:
		if len(data) < headerSize+v1SumSize {
			return formatErr("%d bytes, shorter than a version 1 header", len(data))
		}
		data = data[:len(data)-v1SumSize]
	case v != formatVersion:
		return formatErr("unknown format version %d", v)
	}
	var cnt [5]uint64
	for k := range cnt {
		cnt[k] = uint64(le.Uint32(data[8+4*k:]))
	}
	nf, nc, nt, nn, nl := cnt[0], cnt[1], cnt[2], cnt[3], cnt[4]
	switch {
	case nf < 1 || nf > maxFeatures:
		return formatErr("%d features", nf)
	case nc < 1 || nc > maxClasses:
		return formatErr("%d classes", nc)
	case nt < 1:
		return formatErr("no trees")
	case nn < nt:
		return formatErr("%d nodes for %d trees", nn, nt)
	case nn > maxIndex || nl > maxIndex:
		return formatErr("%d nodes and %d leaf entries, more than %d", nn, nl, maxIndex)
	}
	want := uint64(headerSize) + 8*nf + 4*nt + nodeSize*nn + leafSize*nl
	if uint64(len(data)) != want {
		return formatErr("%d bytes, want %d for %d features, %d trees, %d nodes and %d leaf entries (truncated?)", len(data), want, nf, nt, nn, nl)
	}

	out := Model{nFeatures: int(nf), nClasses: int(nc)}
	p := data[headerSize:]
	out.importance = make([]float64, nf)
	for j := range out.importance {
		v := math.Float64frombits(le.Uint64(p))
		if !(v >= 0 && v <= 1) {
			return formatErr("importance of feature %d is %v", j, v)
		}
		out.importance[j] = v
		p = p[8:]
	}
	out.roots = make([]int32, nt)
	for t := range out.roots {
		r := uint64(le.Uint32(p))
		p = p[4:]
		switch {
		case t == 0 && r != 0:
			return formatErr("tree 0 starts at node %d, want 0", r)
		case t > 0 && r <= uint64(out.roots[t-1]):
			return formatErr("tree %d starts at node %d, before the end of tree %d", t, r, t-1)
		case r >= nn:
			return formatErr("tree %d starts at node %d of %d", t, r, nn)
		}
		out.roots[t] = int32(r)
	}
	out.nodes = make([]node, nn)
	for i := range out.nodes {
		out.nodes[i] = node{
			thr:  math.Float32frombits(le.Uint32(p)),
			feat: int32(le.Uint32(p[4:])),
			next: int32(le.Uint32(p[8:])),
		}
		p = p[nodeSize:]
	}
	out.leaves = make([]leafEntry, nl)
	for k := range out.leaves {
		e := leafEntry{class: int32(le.Uint32(p)), p: math.Float32frombits(le.Uint32(p[4:]))}
		p = p[leafSize:]
		if e.class < 0 || uint64(e.class) >= nc {
			return formatErr("leaf entry %d: class %d of %d", k, e.class, nc)
		}
		if !(e.p >= 0 && e.p <= 1) {
			return formatErr("leaf entry %d: probability %v", k, e.p)
		}
		out.leaves[k] = e
	}
	for t, root := range out.roots {
		end := int64(nn)
		if t+1 < len(out.roots) {
			end = int64(out.roots[t+1])
		}
		for i := int64(root); i < end; i++ {
			nd := out.nodes[i]
			if nd.feat >= 0 {
				// Children after the parent and inside the tree: every
				// path ends at a leaf.
				if uint64(nd.feat) >= nf {
					return formatErr("tree %d node %d: feature %d of %d", t, i, nd.feat, nf)
				}
				if nd.thr != nd.thr {
					return formatErr("tree %d node %d: threshold is NaN", t, i)
				}
				if c := int64(nd.next); c <= i || c+1 >= end {
					return formatErr("tree %d node %d: children %d,%d outside nodes %d..%d", t, i, c, c+1, i+1, end-1)
				}
				continue
			}
			n := -int64(nd.feat)
			if s := int64(nd.next); s < 0 || s+n > int64(nl) {
				return formatErr("tree %d node %d: leaf entries %d..%d of %d", t, i, s, s+n-1, nl)
			}
		}
	}
	out.buildWalk()
	*m = out
	return nil
}
