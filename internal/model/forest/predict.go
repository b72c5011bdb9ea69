package forest

import (
	"fmt"
	"math"
	"runtime"
	"sync"
)

// blockRows is the number of rows PredictProbaBatch scores together, tree by
// tree, so that a tree stays in cache while it scores the whole block. With
// 64-row blocks a 100-tree model (about 1 MB of nodes) was streamed from L3
// for every block; 1024-row blocks (256 KB of features at 64 per row)
// scored 1.5-2x faster.
const blockRows = 1024

// PredictProba writes the class probabilities of one row x (len
// NumFeatures) into out (len NumClasses): the mean of the class
// distributions of the leaves the row reaches. It panics if a length is
// wrong.
func (m *Model) PredictProba(x []float32, out []float32) {
	if len(x) != m.nFeatures || len(out) != m.nClasses {
		panic(fmt.Sprintf("forest: PredictProba with %d features and %d outputs, model has %d and %d",
			len(x), len(out), m.nFeatures, m.nClasses))
	}
	clear(out)
	// Walk 8 (or 4) trees at a time in lock step. The leaves are added in
	// tree order, as scoreBlock does, so both give identical sums.
	walk, roots := m.walk, m.roots
	t := 0
	if m.nFeatures <= rowStride {
		var xa [rowStride]float32
		copy(xa[:], x)
		for ; t+8 <= len(roots); t += 8 {
			for _, i := range walk8Trees(walk, (*[8]int32)(roots[t:]), &xa) {
				m.addLeafAt(out, i)
			}
		}
		for ; t+4 <= len(roots); t += 4 {
			i0, i1, i2, i3 := walk4FixedRoots(walk, roots[t], roots[t+1], roots[t+2], roots[t+3], &xa, &xa, &xa, &xa)
			m.addLeafAt(out, i0)
			m.addLeafAt(out, i1)
			m.addLeafAt(out, i2)
			m.addLeafAt(out, i3)
		}
	} else {
		for ; t+4 <= len(roots); t += 4 {
			i0, i1, i2, i3 := walk4Roots(walk, roots[t], roots[t+1], roots[t+2], roots[t+3], x, x, x, x)
			m.addLeafAt(out, i0)
			m.addLeafAt(out, i1)
			m.addLeafAt(out, i2)
			m.addLeafAt(out, i3)
		}
	}
	for _, i := range roots[t:] {
		for {
			nd := &walk[i]
			j := nd.next + b2i(x[nd.feat] > nd.thr)
			if j == i {
				break
			}
			i = j
		}
		m.addLeafAt(out, i)
	}
	scale := 1 / float32(len(m.roots))
	for k := range out {
		out[k] *= scale
	}
}

// PredictProbaBatch scores the rows of the column-major matrix X (X[j][i] is
// feature j of row i, len(X) == NumFeatures) and writes row i's class
// probabilities to out[i*NumClasses : (i+1)*NumClasses]. Blocks of rows are
// scored in parallel by up to GOMAXPROCS goroutines, each with its own
// scratch buffer and writing to disjoint parts of out. It panics if a length
// is wrong.
func (m *Model) PredictProbaBatch(X [][]float32, out []float32) {
	if len(X) != m.nFeatures {
		panic(fmt.Sprintf("forest: PredictProbaBatch with %d features, model has %d", len(X), m.nFeatures))
	}
	n := 0
	if len(X) > 0 {
		n = len(X[0])
	}
	for j, col := range X {
		if len(col) != n {
			panic(fmt.Sprintf("forest: PredictProbaBatch: feature %d has %d rows, feature 0 has %d", j, len(col), n))
		}
	}
	if len(out) != n*m.nClasses {
		panic(fmt.Sprintf("forest: PredictProbaBatch: out has %d values, want %d rows × %d classes", len(out), n, m.nClasses))
	}
	blocks := (n + blockRows - 1) / blockRows
	workers := min(runtime.GOMAXPROCS(0), blocks)
	if workers <= 1 {
		buf := make([]float32, min(blockRows, n)*m.stride())
		for start := 0; start < n; start += blockRows {
			m.scoreBlock(X, start, min(start+blockRows, n), buf, out)
		}
		return
	}
	tasks := make(chan int, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]float32, min(blockRows, n)*m.stride())
			for start := range tasks {
				m.scoreBlock(X, start, min(start+blockRows, n), buf, out)
			}
		}()
	}
	for start := 0; start < n; start += blockRows {
		tasks <- start
	}
	close(tasks)
	wg.Wait()
}

// scoreBlock scores rows [start, end) of X into out, using buf (blockRows ×
// m.stride()) for the rows in row-major order.
//
// Rows are walked down each tree in groups of 8 (models with at most
// rowStride features; then groups of laneRows) in lock step and without
// branches on the split comparisons (leaves loop to themselves in m.walk),
// so the CPU overlaps the independent walks instead of waiting on one chain
// of loads and mispredicted branches. 8 lanes scored 35% faster than 4;
// more would not fit in the registers.
func (m *Model) scoreBlock(X [][]float32, start, end int, buf, out []float32) {
	nf, nc := m.stride(), m.nClasses
	rows := end - start
	for j, col := range X {
		for r, v := range col[start:end] {
			buf[r*nf+j] = v
		}
	}
	o := out[start*nc : end*nc]
	clear(o)
	walk := m.walk
	for _, root := range m.roots {
		r := 0
		if nf == rowStride {
			for ; r+8 <= rows; r += 8 {
				is := walk8Fixed(walk, root, (*[8 * rowStride]float32)(buf[r*nf:]))
				for l, i := range is {
					m.addLeafAt(o[(r+l)*nc:(r+l+1)*nc], i)
				}
			}
		}
		for ; r+laneRows <= rows; r += laneRows {
			var i0, i1, i2, i3 int32
			if nf == rowStride {
				i0, i1, i2, i3 = walk4Fixed(walk, root,
					(*[rowStride]float32)(buf[(r+0)*nf:]), (*[rowStride]float32)(buf[(r+1)*nf:]),
					(*[rowStride]float32)(buf[(r+2)*nf:]), (*[rowStride]float32)(buf[(r+3)*nf:]))
			} else {
				i0, i1, i2, i3 = walk4(walk, root,
					buf[(r+0)*nf:(r+1)*nf], buf[(r+1)*nf:(r+2)*nf],
					buf[(r+2)*nf:(r+3)*nf], buf[(r+3)*nf:(r+4)*nf])
			}
			m.addLeafAt(o[(r+0)*nc:(r+1)*nc], i0)
			m.addLeafAt(o[(r+1)*nc:(r+2)*nc], i1)
			m.addLeafAt(o[(r+2)*nc:(r+3)*nc], i2)
			m.addLeafAt(o[(r+3)*nc:(r+4)*nc], i3)
		}
		for ; r < rows; r++ {
			x := buf[r*nf : (r+1)*nf]
			i := root
			for {
				nd := &walk[i]
				j := nd.next + b2i(x[nd.feat] > nd.thr)
				if j == i {
					break
				}
				i = j
			}
			m.addLeafAt(o[r*nc:(r+1)*nc], i)
		}
	}
	scale := 1 / float32(len(m.roots))
	for k := range o {
		o[k] *= scale
	}
}

// rowStride is the row length in scoreBlock's buffer for models with at
// most rowStride features: a fixed-size array whose index is masked needs
// no bounds check.
const rowStride = 64

// stride returns the row length of scoreBlock's buffer.
func (m *Model) stride() int {
	if m.nFeatures <= rowStride {
		return rowStride
	}
	return m.nFeatures
}

// walk4 walks four rows down the tree at root in lock step and returns the
// leaves they reach.
func walk4(walk []node, root int32, x0, x1, x2, x3 []float32) (i0, i1, i2, i3 int32) {
	return walk4Roots(walk, root, root, root, root, x0, x1, x2, x3)
}

// walk4Roots walks row x0 from root r0, x1 from r1 and so on, in lock step.
func walk4Roots(walk []node, r0, r1, r2, r3 int32, x0, x1, x2, x3 []float32) (i0, i1, i2, i3 int32) {
	i0, i1, i2, i3 = r0, r1, r2, r3
	for {
		n0, n1, n2, n3 := &walk[i0], &walk[i1], &walk[i2], &walk[i3]
		j0 := n0.next + b2i(x0[n0.feat] > n0.thr)
		j1 := n1.next + b2i(x1[n1.feat] > n1.thr)
		j2 := n2.next + b2i(x2[n2.feat] > n2.thr)
		j3 := n3.next + b2i(x3[n3.feat] > n3.thr)
		if j0 == i0 && j1 == i1 && j2 == i2 && j3 == i3 {
			return
		}
		i0, i1, i2, i3 = j0, j1, j2, j3
	}
}

// walk4Fixed is walk4 for rows of rowStride values (feature indexes are
// below rowStride, so the mask changes nothing but drops bounds checks).
func walk4Fixed(walk []node, root int32, x0, x1, x2, x3 *[rowStride]float32) (i0, i1, i2, i3 int32) {
	return walk4FixedRoots(walk, root, root, root, root, x0, x1, x2, x3)
}

// walk4FixedRoots is walk4Roots for rows of rowStride values.
func walk4FixedRoots(walk []node, r0, r1, r2, r3 int32, x0, x1, x2, x3 *[rowStride]float32) (i0, i1, i2, i3 int32) {
	i0, i1, i2, i3 = r0, r1, r2, r3
	for {
		n0, n1, n2, n3 := &walk[i0], &walk[i1], &walk[i2], &walk[i3]
		j0 := n0.next + b2i(x0[n0.feat&(rowStride-1)] > n0.thr)
		j1 := n1.next + b2i(x1[n1.feat&(rowStride-1)] > n1.thr)
		j2 := n2.next + b2i(x2[n2.feat&(rowStride-1)] > n2.thr)
		j3 := n3.next + b2i(x3[n3.feat&(rowStride-1)] > n3.thr)
		if j0 == i0 && j1 == i1 && j2 == i2 && j3 == i3 {
			return
		}
		i0, i1, i2, i3 = j0, j1, j2, j3
	}
}

// laneRows is the number of rows scoreBlock walks down a tree together.
const laneRows = 4

// addLeafAt adds the class distribution of the leaf at node i to p.
func (m *Model) addLeafAt(p []float32, i int32) {
	if c := m.pure[i]; c >= 0 {
		p[c]++
		return
	}
	addLeaf(p, m.leaves, m.nodes[i])
}

// addLeaf adds the class distribution of leaf nd to p.
func addLeaf(p []float32, leaves []leafEntry, nd node) {
	if nd.feat == -1 {
		// Pure leaf, the common case.
		e := leaves[nd.next]
		p[e.class] += e.p
		return
	}
	for _, e := range leaves[nd.next : nd.next-nd.feat] {
		p[e.class] += e.p
	}
}

func b2i(b bool) int32 {
	var i int32
	if b {
		i = 1
	}
	return i
}

// buildWalk derives m.walk from m.nodes: the same tree with each leaf
// turned into a node that loops to itself (feature 0, threshold +Inf), so
// a walk can take fixed steps without testing for leaves; and m.pure and
// m.classes.
func (m *Model) buildWalk() {
	m.walk = make([]node, len(m.nodes))
	m.pure = make([]int32, len(m.nodes))
	for i, nd := range m.nodes {
		m.pure[i] = -1
		if nd.feat == -1 && m.leaves[nd.next].p == 1 {
			m.pure[i] = m.leaves[nd.next].class
		}
		if nd.feat < 0 {
			nd = node{thr: float32(math.Inf(1)), feat: 0, next: int32(i)}
		}
		m.walk[i] = nd
	}
	m.classes = make([]uint64, len(m.nodes))
	// Children come after their parent: fill the sets bottom-up.
	for i := len(m.nodes) - 1; i >= 0; i-- {
		nd := m.nodes[i]
		if nd.feat >= 0 {
			m.classes[i] = m.classes[nd.next] | m.classes[nd.next+1]
			continue
		}
		for _, e := range m.leaves[nd.next : nd.next-nd.feat] {
			if e.p != 0 {
				m.classes[i] |= 1 << min(e.class, 63)
			}
		}
	}
}

// walk8Fixed walks the 8 rows of xs (rowStride values each) down the tree at
// root in lock step.
func walk8Fixed(walk []node, root int32, xs *[8 * rowStride]float32) [8]int32 {
	const s = rowStride
	i0, i1, i2, i3, i4, i5, i6, i7 := root, root, root, root, root, root, root, root
	for {
		n0, n1, n2, n3 := &walk[i0], &walk[i1], &walk[i2], &walk[i3]
		n4, n5, n6, n7 := &walk[i4], &walk[i5], &walk[i6], &walk[i7]
		j0 := n0.next + b2i(xs[0*s+n0.feat&(s-1)] > n0.thr)
		j1 := n1.next + b2i(xs[1*s+n1.feat&(s-1)] > n1.thr)
		j2 := n2.next + b2i(xs[2*s+n2.feat&(s-1)] > n2.thr)
		j3 := n3.next + b2i(xs[3*s+n3.feat&(s-1)] > n3.thr)
		j4 := n4.next + b2i(xs[4*s+n4.feat&(s-1)] > n4.thr)
		j5 := n5.next + b2i(xs[5*s+n5.feat&(s-1)] > n5.thr)
		j6 := n6.next + b2i(xs[6*s+n6.feat&(s-1)] > n6.thr)
		j7 := n7.next + b2i(xs[7*s+n7.feat&(s-1)] > n7.thr)
		if j0 == i0 && j1 == i1 && j2 == i2 && j3 == i3 && j4 == i4 && j5 == i5 && j6 == i6 && j7 == i7 {
			return [8]int32{i0, i1, i2, i3, i4, i5, i6, i7}
		}
		i0, i1, i2, i3, i4, i5, i6, i7 = j0, j1, j2, j3, j4, j5, j6, j7
	}
}

// walk8Trees walks one row x down the 8 trees at roots in lock step.
func walk8Trees(walk []node, roots *[8]int32, x *[rowStride]float32) [8]int32 {
	const s = rowStride
	i0, i1, i2, i3, i4, i5, i6, i7 := roots[0], roots[1], roots[2], roots[3], roots[4], roots[5], roots[6], roots[7]
	for {
		n0, n1, n2, n3 := &walk[i0], &walk[i1], &walk[i2], &walk[i3]
		n4, n5, n6, n7 := &walk[i4], &walk[i5], &walk[i6], &walk[i7]
		j0 := n0.next + b2i(x[n0.feat&(s-1)] > n0.thr)
		j1 := n1.next + b2i(x[n1.feat&(s-1)] > n1.thr)
		j2 := n2.next + b2i(x[n2.feat&(s-1)] > n2.thr)
		j3 := n3.next + b2i(x[n3.feat&(s-1)] > n3.thr)
		j4 := n4.next + b2i(x[n4.feat&(s-1)] > n4.thr)
		j5 := n5.next + b2i(x[n5.feat&(s-1)] > n5.thr)
		j6 := n6.next + b2i(x[n6.feat&(s-1)] > n6.thr)
		j7 := n7.next + b2i(x[n7.feat&(s-1)] > n7.thr)
		if j0 == i0 && j1 == i1 && j2 == i2 && j3 == i3 && j4 == i4 && j5 == i5 && j6 == i6 && j7 == i7 {
			return [8]int32{i0, i1, i2, i3, i4, i5, i6, i7}
		}
		i0, i1, i2, i3, i4, i5, i6, i7 = j0, j1, j2, j3, j4, j5, j6, j7
	}
}
