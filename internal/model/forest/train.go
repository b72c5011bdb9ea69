package forest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
)

// Train fits a forest. X is column-major: X[j][i] is feature j of row i
// (len(X) features, all of the same length); y[i] is row i's class in
// [0, nClasses). progress, if not nil, is called after each tree with the
// number of trees done and the total; calls are serialised.
//
// When ctx is cancelled, Train stops after the trees in progress and returns
// an error wrapping ctx.Err().
func Train(ctx context.Context, X [][]float32, y []int32, nClasses int, cfg Config, progress func(done, total int)) (*Model, error) {
	if len(X) == 0 {
		return nil, errors.New("train forest: no features")
	}
	n := len(X[0])
	if n == 0 {
		return nil, errors.New("train forest: no rows")
	}
	for j, col := range X {
		if len(col) != n {
			return nil, fmt.Errorf("train forest: feature %d has %d rows, feature 0 has %d", j, len(col), n)
		}
	}
	if len(y) != n {
		return nil, fmt.Errorf("train forest: %d labels for %d rows", len(y), n)
	}
	if nClasses < 1 || nClasses > maxClasses {
		return nil, fmt.Errorf("train forest: %d classes, want 1..%d", nClasses, maxClasses)
	}
	if len(X) > maxFeatures {
		return nil, fmt.Errorf("train forest: %d features, at most %d supported", len(X), maxFeatures)
	}
	if n > math.MaxInt32/2 {
		return nil, fmt.Errorf("train forest: %d rows, at most %d supported", n, math.MaxInt32/2)
	}
	for i, c := range y {
		if c < 0 || int(c) >= nClasses {
			return nil, fmt.Errorf("train forest: row %d: class %d not in [0,%d)", i, c, nClasses)
		}
	}
	cfg, err := cfg.withDefaults(len(X), nClasses)
	if err != nil {
		return nil, fmt.Errorf("train forest: %w", err)
	}
	rowWeight := make([]float64, n)
	anyWeight := false
	for i, c := range y {
		w := 1.0
		if cfg.ClassWeight != nil {
			w = cfg.ClassWeight[c]
		}
		rowWeight[i] = w
		anyWeight = anyWeight || w > 0
	}
	if !anyWeight {
		return nil, errors.New("train forest: every row has weight 0")
	}

	workers := cfg.Workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(1, min(workers, cfg.Trees))

	d := binData(X, cfg.Bins, cfg.Seed, workers)
	d.rowWeight = rowWeight
	d.nClasses = nClasses
	d.dedupe(y)

	trees := make([]*grownTree, cfg.Trees)
	var (
		next    atomic.Int64
		mu      sync.Mutex
		done    int
		wg      sync.WaitGroup
		stopped atomic.Bool
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := newBuilder(d, cfg)
			for !stopped.Load() {
				t := int(next.Add(1) - 1)
				if t >= cfg.Trees {
					return
				}
				if ctx.Err() != nil {
					stopped.Store(true)
					return
				}
				trees[t] = b.grow(rand.New(rand.NewPCG(cfg.Seed, uint64(t)+1)))
				mu.Lock()
				done++
				if progress != nil {
					progress(done, cfg.Trees)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("train forest: %w", err)
	}
	var nodes, leaves int
	for _, t := range trees {
		nodes += len(t.nodes)
		leaves += len(t.leaves)
	}
	if nodes > math.MaxInt32 || leaves > math.MaxInt32 {
		return nil, fmt.Errorf("train forest: %d nodes and %d leaf entries, more than a model holds; use fewer trees or a depth limit", nodes, leaves)
	}
	m := assemble(trees, len(X), nClasses)
	m.buildWalk()
	return m, nil
}

// binned is the training data after binning. Rows with the same bins in
// every feature and the same class are indistinguishable to a tree, so they
// are stored once ("unique rows"); a bootstrap sample is still drawn over
// the original rows and adds up their weights per unique row.
type binned struct {
	codes     [][]uint8   // codes[j][u]: bin of feature j in unique row u
	edges     [][]float32 // edges[j][b]: upper bound (inclusive) of bin b
	y         []int32     // y[u]: class of unique row u
	unique    []int32     // unique[i]: unique row of original row i
	rowWeight []float64   // per original row
	nClasses  int
}

// dedupe replaces the per-row codes with per-unique-row codes.
func (d *binned) dedupe(y []int32) {
	n := len(y)
	h := make([]uint64, n)
	for i, c := range y {
		h[i] = uint64(c) + 1
	}
	for _, col := range d.codes {
		for i, c := range col {
			h[i] = (h[i] ^ uint64(c)) * 0x100000001b3
		}
	}
	same := func(a, b int32) bool {
		if y[a] != y[b] {
			return false
		}
		for _, col := range d.codes {
			if col[a] != col[b] {
				return false
			}
		}
		return true
	}
	first := make(map[uint64]int32, n/2)
	var reps []int32 // reps[u]: an original row of unique row u
	d.unique = make([]int32, n)
	for i := range n {
		// Open addressing over the hash values: a collision between
		// different rows moves on to the next value.
		for k := h[i]; ; k++ {
			u, ok := first[k]
			if !ok {
				u = int32(len(reps))
				first[k] = u
				reps = append(reps, int32(i))
			} else if !same(reps[u], int32(i)) {
				continue
			}
			d.unique[i] = u
			break
		}
	}
	d.y = make([]int32, len(reps))
	for u, i := range reps {
		d.y[u] = y[i]
	}
	for j, col := range d.codes {
		uc := make([]uint8, len(reps))
		for u, i := range reps {
			uc[u] = col[i]
		}
		d.codes[j] = uc
	}
}

func binData(X [][]float32, bins int, seed uint64, workers int) *binned {
	d := &binned{codes: make([][]uint8, len(X)), edges: make([][]float32, len(X))}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, len(X)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j := int(next.Add(1) - 1)
				if j >= len(X) {
					return
				}
				rng := rand.New(rand.NewPCG(seed, 1<<32+uint64(j)))
				d.edges[j] = binEdges(X[j], bins, rng)
				d.codes[j] = make([]uint8, len(X[j]))
				binColumn(X[j], d.edges[j], d.codes[j])
			}
		}()
	}
	wg.Wait()
	return d
}

// grownTree is one tree as grown, with indexes relative to its own arrays.
type grownTree struct {
	nodes      []node
	leaves     []leafEntry
	importance []float64 // unnormalised impurity decrease per feature
}

// sample is one distinct bootstrap row in a node.
type sample struct {
	row   int32
	class int32
	w     float64
}

// task is a node waiting to be split.
type task struct {
	slot       int32 // index of the node in the tree
	start, end int   // its rows: samples[start:end]
	depth      int
	w          float64 // total weight
}

// builder grows trees; each worker owns one and reuses its buffers.
type builder struct {
	d   *binned
	cfg Config
	nf  int
	nc  int

	draws   []uint16  // bootstrap draws of each original row
	uw      []float64 // bootstrap weight of each unique row
	samples []sample
	scratch []sample

	stack    []task
	totArena []float64 // class totals of stack[k] at [k*nc:(k+1)*nc]
	cstArena []uint64  // constant-feature bitset of stack[k]
	words    int

	hist   []float64 // [bin*nc + class]
	hist2  []float64 // same, for odd rows
	histB  []float64 // second feature of histogramPair
	hist2B []float64 // same, for odd rows
	binNB  []int32
	binN   []int32
	left   []float64
	bestL  []float64
	tot    []float64
	cst    []uint64
	feats  []int32
	// present lists the classes with weight in the node being split: the
	// only ones its histograms can hold.
	present []int32
}

func newBuilder(d *binned, cfg Config) *builder {
	nf, nc := len(d.codes), d.nClasses
	words := (nf + 63) / 64
	return &builder{
		d: d, cfg: cfg, nf: nf, nc: nc, words: words,
		draws:   make([]uint16, len(d.unique)),
		uw:      make([]float64, len(d.y)),
		samples: make([]sample, 0, len(d.y)),
		scratch: make([]sample, len(d.y)),
		hist:    make([]float64, 256*nc),
		hist2:   make([]float64, 256*nc),
		histB:   make([]float64, 256*nc),
		hist2B:  make([]float64, 256*nc),
		binNB:   make([]int32, 256),
		binN:    make([]int32, 256),
		left:    make([]float64, nc),
		bestL:   make([]float64, nc),
		tot:     make([]float64, nc),
		cst:     make([]uint64, words),
		feats:   make([]int32, 0, nf),
	}
}

// push adds a task with class totals tot and constant set cst.
func (b *builder) push(t task, tot []float64, cst []uint64) {
	k := len(b.stack)
	b.stack = append(b.stack, t)
	if need := (k + 1) * b.nc; need > len(b.totArena) {
		b.totArena = append(b.totArena, make([]float64, need-len(b.totArena))...)
	}
	if need := (k + 1) * b.words; need > len(b.cstArena) {
		b.cstArena = append(b.cstArena, make([]uint64, need-len(b.cstArena))...)
	}
	copy(b.totArena[k*b.nc:], tot)
	copy(b.cstArena[k*b.words:], cst)
}

// grow grows one tree on a fresh bootstrap sample drawn with rng.
func (b *builder) grow(rng *rand.Rand) *grownTree {
	d, nc := b.d, b.nc
	n := len(d.unique)
	// Count the draws per row (a small array: random increments stay in
	// cache), then add the weights up per unique row in one pass.
	clear(b.draws)
	draws := max(1, int(math.Round(b.cfg.Sample*float64(n))))
	for range draws {
		i := rng.IntN(n)
		if c := b.draws[i]; c < math.MaxUint16 {
			b.draws[i] = c + 1
		}
	}
	clear(b.uw)
	for i, c := range b.draws {
		if c != 0 {
			b.uw[d.unique[i]] += float64(c) * d.rowWeight[i]
		}
	}
	b.samples = b.samples[:0]
	clear(b.tot)
	var total float64
	for u, w := range b.uw {
		if w <= 0 {
			continue
		}
		cls := d.y[u]
		b.samples = append(b.samples, sample{row: int32(u), class: cls, w: w})
		b.tot[cls] += w
		total += w
	}
	t := &grownTree{importance: make([]float64, b.nf)}
	t.nodes = append(t.nodes, node{})
	b.stack = b.stack[:0]
	clear(b.cst)
	b.push(task{slot: 0, start: 0, end: len(b.samples), depth: 0, w: total}, b.tot, b.cst)

	for len(b.stack) > 0 {
		k := len(b.stack) - 1
		tk := b.stack[k]
		copy(b.tot, b.totArena[k*nc:(k+1)*nc])
		copy(b.cst, b.cstArena[k*b.words:(k+1)*b.words])
		b.stack = b.stack[:k]

		split, ok := b.findSplit(tk, rng)
		if !ok {
			t.nodes[tk.slot] = b.leaf(t, tk.w)
			continue
		}
		// Partition the rows: bin <= split.bin to the left, stably.
		codes := d.codes[split.feat]
		l, r := tk.start, 0
		for i := tk.start; i < tk.end; i++ {
			s := b.samples[i]
			if codes[s.row] <= split.bin {
				b.samples[l] = s
				l++
			} else {
				b.scratch[r] = s
				r++
			}
		}
		copy(b.samples[l:tk.end], b.scratch[:r])

		child := int32(len(t.nodes))
		t.nodes = append(t.nodes, node{}, node{})
		t.nodes[tk.slot] = node{thr: d.edges[split.feat][split.bin], feat: split.feat, next: child}
		t.importance[split.feat] += split.gain

		// Push right then left so the left subtree is grown first.
		// With fractional class weights the subtraction can leave
		// rounding residue for classes that all went left; zero it so
		// the right child is not mistaken for impure.
		for c := range nc {
			b.left[c] = b.tot[c] - split.left[c]
			if b.left[c] <= 1e-9*tk.w {
				b.left[c] = 0
			}
		}
		b.push(task{slot: child + 1, start: l, end: tk.end, depth: tk.depth + 1, w: tk.w - split.wl}, b.left, b.cst)
		b.push(task{slot: child, start: tk.start, end: l, depth: tk.depth + 1, w: split.wl}, split.left, b.cst)
	}
	return t
}

// leaf turns the class totals in b.tot into a leaf of t.
func (b *builder) leaf(t *grownTree, w float64) node {
	start := int32(len(t.leaves))
	for c, v := range b.tot {
		if v > 0 && w > 0 {
			t.leaves = append(t.leaves, leafEntry{class: int32(c), p: float32(v / w)})
		}
	}
	if int32(len(t.leaves)) == start {
		// No weight reached this leaf: predict the uniform distribution.
		for c := range b.tot {
			t.leaves = append(t.leaves, leafEntry{class: int32(c), p: 1 / float32(b.nc)})
		}
	}
	return node{feat: -(int32(len(t.leaves)) - start), next: start}
}

type split struct {
	feat int32
	bin  uint8
	gain float64   // weighted impurity decrease
	wl   float64   // weight going left
	left []float64 // class totals going left (b.bestL)
}

// findSplit looks for the best split of the node among MaxFeatures random
// non-constant features (more if the ones drawn first turn out constant
// in this node, as scikit-learn does). Features found constant are marked in
// b.cst, which the children inherit.
func (b *builder) findSplit(tk task, rng *rand.Rand) (split, bool) {
	n := tk.end - tk.start
	if tk.depth == b.cfg.MaxDepth && b.cfg.MaxDepth > 0 || n < 2*b.cfg.MinLeaf || n < 2 {
		return split{}, false
	}
	var sq float64
	b.present = b.present[:0]
	for k, v := range b.tot {
		sq += v * v
		if v > 0 {
			b.present = append(b.present, int32(k))
		}
	}
	if len(b.present) <= 1 {
		return split{}, false // pure
	}
	b.feats = b.feats[:0]
	for j := range b.nf {
		if b.cst[j>>6]&(1<<(j&63)) == 0 {
			b.feats = append(b.feats, int32(j))
		}
	}
	sc := scan{best: split{gain: math.Inf(-1), left: b.bestL}, n: int32(n), w: tk.w, sq: sq, minLeaf: int32(b.cfg.MinLeaf)}
	rows := b.samples[tk.start:tk.end]
	tried := 0
	for k := 0; k < len(b.feats) && tried < b.cfg.MaxFeatures; {
		// Draw the next feature(s) without replacement. When two or more
		// are still wanted, two are histogrammed in one pass over the
		// rows; this tries exactly the features a one-at-a-time loop
		// would.
		take := 1
		if b.cfg.MaxFeatures-tried >= 2 && k+1 < len(b.feats) {
			take = 2
		}
		for i := k; i < k+take; i++ {
			r := i + rng.IntN(len(b.feats)-i)
			b.feats[i], b.feats[r] = b.feats[r], b.feats[i]
		}
		fa := b.feats[k]
		if take == 2 {
			fb := b.feats[k+1]
			b.histogramPair(rows, b.d.codes[fa], b.d.codes[fb])
			for _, e := range [2]struct {
				f    int32
				h, g []float64
				cnt  []int32
			}{{fa, b.hist, b.hist2, b.binN}, {fb, b.histB, b.hist2B, b.binNB}} {
				if b.evalFeature(&sc, e.f, e.h, e.g, e.cnt) {
					tried++
				}
			}
		} else {
			b.histogram(rows, b.d.codes[fa])
			if b.evalFeature(&sc, fa, b.hist, b.hist2, b.binN) {
				tried++
			}
		}
		k += take
	}
	best, found := sc.best, sc.found
	if !found {
		return split{}, false
	}
	best.gain = max(best.gain, 0)
	return best, true
}

// scan is the state of the split search in one node.
type scan struct {
	best    split
	found   bool
	n       int32   // rows in the node
	w       float64 // weight of the node
	sq      float64 // sum of squared class weights of the node
	minLeaf int32
}

// histogram adds the rows to b.hist (even rows) and b.hist2 (odd rows) at
// their bin in codes, and counts them per bin in b.binN. Two histograms make
// two independent read-modify-write chains when consecutive rows hit the
// same bin, as they often do.
func (b *builder) histogram(rows []sample, codes []uint8) {
	nc := b.nc
	hist, hist2, binN := b.hist, b.hist2, b.binN
	k := 0
	for ; k+1 < len(rows); k += 2 {
		s0, s1 := &rows[k], &rows[k+1]
		c0, c1 := int(codes[s0.row]), int(codes[s1.row])
		hist[c0*nc+int(s0.class)] += s0.w
		hist2[c1*nc+int(s1.class)] += s1.w
		binN[c0]++
		binN[c1]++
	}
	if k < len(rows) {
		s := &rows[k]
		c := int(codes[s.row])
		hist[c*nc+int(s.class)] += s.w
		binN[c]++
	}
}

// histogramPair builds the histograms of two features in one pass: feature
// a into b.hist, b.hist2 and b.binN, feature b into b.histB, b.hist2B and
// b.binNB (even and odd rows apart, as in histogram).
func (b *builder) histogramPair(rows []sample, codesA, codesB []uint8) {
	nc := b.nc
	histA, histA2, binNA := b.hist, b.hist2, b.binN
	histB, histB2, binNB := b.histB, b.hist2B, b.binNB
	k := 0
	for ; k+1 < len(rows); k += 2 {
		s0, s1 := &rows[k], &rows[k+1]
		cls0, cls1 := int(s0.class), int(s1.class)
		a0, a1 := int(codesA[s0.row]), int(codesA[s1.row])
		b0, b1 := int(codesB[s0.row]), int(codesB[s1.row])
		histA[a0*nc+cls0] += s0.w
		histA2[a1*nc+cls1] += s1.w
		histB[b0*nc+cls0] += s0.w
		histB2[b1*nc+cls1] += s1.w
		binNA[a0]++
		binNA[a1]++
		binNB[b0]++
		binNB[b1]++
	}
	if k < len(rows) {
		s := &rows[k]
		cls := int(s.class)
		ca, cb := int(codesA[s.row]), int(codesB[s.row])
		histA[ca*nc+cls] += s.w
		histB[cb*nc+cls] += s.w
		binNA[ca]++
		binNB[cb]++
	}
}

// evalFeature scans the histogram of feature f (the sum of hist and hist2,
// row counts in binN) for the best split, updates sc, and clears the
// histogram. It reports whether f varies in the node; if not, f is marked
// constant for this node and its descendants.
func (b *builder) evalFeature(sc *scan, f int32, hist, hist2 []float64, binN []int32) bool {
	nc, n := b.nc, sc.n
	nb := len(b.d.edges[f]) + 1
	first := 0
	for binN[first] == 0 {
		first++
	}
	if binN[first] == n {
		b.cst[f>>6] |= 1 << (f & 63)
		clear(hist[first*nc : (first+1)*nc])
		clear(hist2[first*nc : (first+1)*nc])
		binN[first] = 0
		return false
	}
	// Scan the bins left to right, clearing them; the split after bin c
	// sends bins <= c left.
	left := b.left
	clear(left)
	var wl, sqL float64
	sqR := sc.sq
	var nl int32
	for c := first; c < nb; c++ {
		if binN[c] == 0 {
			continue
		}
		h, h2 := hist[c*nc:(c+1)*nc], hist2[c*nc:(c+1)*nc]
		for _, k := range b.present {
			v := h[k] + h2[k]
			if v != 0 {
				h2[k] = 0
				l := left[k]
				r := b.tot[k] - l
				sqL += v * (2*l + v)
				sqR += v * (v - 2*r)
				left[k] = l + v
				wl += v
				h[k] = 0
			}
		}
		nl += binN[c]
		binN[c] = 0
		if nl == n {
			break // last non-empty bin: nothing on the right
		}
		wr := sc.w - wl
		if nl < sc.minLeaf || n-nl < sc.minLeaf || wl <= 0 || wr <= 0 {
			continue
		}
		gain := sqL/wl + sqR/wr - sc.sq/sc.w
		if gain > sc.best.gain {
			sc.best.gain, sc.best.feat, sc.best.bin, sc.best.wl = gain, f, uint8(c), wl
			copy(sc.best.left, left)
			sc.found = true
		}
	}
	return true
}

// assemble joins the trees into one model and normalises importances.
func assemble(trees []*grownTree, nFeatures, nClasses int) *Model {
	m := &Model{nFeatures: nFeatures, nClasses: nClasses, importance: make([]float64, nFeatures)}
	for _, t := range trees {
		base, lbase := int32(len(m.nodes)), int32(len(m.leaves))
		m.roots = append(m.roots, base)
		for _, nd := range t.nodes {
			if nd.feat >= 0 {
				nd.next += base
			} else {
				nd.next += lbase
			}
			m.nodes = append(m.nodes, nd)
		}
		m.leaves = append(m.leaves, t.leaves...)
		var sum float64
		for _, v := range t.importance {
			sum += v
		}
		if sum > 0 {
			for j, v := range t.importance {
				m.importance[j] += v / sum
			}
		}
	}
	var sum float64
	for _, v := range m.importance {
		sum += v
	}
	if sum > 0 {
		for j := range m.importance {
			m.importance[j] /= sum
		}
	}
	return m
}
