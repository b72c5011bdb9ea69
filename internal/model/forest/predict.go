package forest

import (
	"fmt"
	"runtime"
	"sync"
)

// blockRows is the number of rows PredictProbaBatch scores together, tree by
// tree, so that a tree stays in cache while it scores the whole block.
const blockRows = 64

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
	nodes, leaves := m.nodes, m.leaves
	for _, i := range m.roots {
		nd := nodes[i]
		for nd.feat >= 0 {
			i = nd.next
			if !(x[nd.feat] <= nd.thr) {
				i++
			}
			nd = nodes[i]
		}
		for _, e := range leaves[nd.next : nd.next-nd.feat] {
			out[e.class] += e.p
		}
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
		buf := make([]float32, blockRows*m.nFeatures)
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
			buf := make([]float32, blockRows*m.nFeatures)
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
// NumFeatures) for the rows in row-major order.
func (m *Model) scoreBlock(X [][]float32, start, end int, buf, out []float32) {
	nf, nc := m.nFeatures, m.nClasses
	rows := end - start
	for j, col := range X {
		for r, v := range col[start:end] {
			buf[r*nf+j] = v
		}
	}
	o := out[start*nc : end*nc]
	clear(o)
	nodes, leaves := m.nodes, m.leaves
	for _, root := range m.roots {
		for r := range rows {
			x := buf[r*nf : (r+1)*nf]
			i := root
			nd := nodes[i]
			for nd.feat >= 0 {
				i = nd.next
				if !(x[nd.feat] <= nd.thr) {
					i++
				}
				nd = nodes[i]
			}
			p := o[r*nc : (r+1)*nc]
			for _, e := range leaves[nd.next : nd.next-nd.feat] {
				p[e.class] += e.p
			}
		}
	}
	scale := 1 / float32(len(m.roots))
	for k := range o {
		o[k] *= scale
	}
}
