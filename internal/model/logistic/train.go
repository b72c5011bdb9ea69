package logistic

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/netsentinel/netsentinel/internal/parallel"

	"gonum.org/v1/gonum/optimize"
)

// Train fits a model to the column-major matrix X (X[j][i] is column j of
// row i) and the class labels y in [0, nClasses). progress, if not nil, is
// called after each optimizer iteration with the iterations done and
// cfg.MaxIter. Train stops early with ctx's error when ctx is cancelled.
func Train(ctx context.Context, X [][]float32, y []int32, nClasses int, cfg Config, progress func(done, total int)) (*Model, error) {
	cfg.fill()
	n := len(y)
	if n == 0 {
		return nil, fmt.Errorf("%w: no rows", ErrInput)
	}
	if nClasses < 1 {
		return nil, fmt.Errorf("%w: %d classes", ErrInput, nClasses)
	}
	cols := cfg.Columns
	if cols == nil {
		cols = make([]Column, len(X))
	}
	if len(cols) != len(X) {
		return nil, fmt.Errorf("%w: %d column specs for %d columns", ErrInput, len(cols), len(X))
	}
	for j, c := range X {
		if len(c) != n {
			return nil, fmt.Errorf("%w: column %d has %d rows, want %d", ErrInput, j, len(c), n)
		}
	}
	for i, c := range y {
		if c < 0 || int(c) >= nClasses {
			return nil, fmt.Errorf("%w: row %d: class %d out of range [0,%d)", ErrInput, i, c, nClasses)
		}
	}
	if cfg.ClassWeight != nil && len(cfg.ClassWeight) != nClasses {
		return nil, fmt.Errorf("%w: %d class weights for %d classes", ErrInput, len(cfg.ClassWeight), nClasses)
	}
	if cfg.L2 < 0 || math.IsNaN(cfg.L2) {
		return nil, fmt.Errorf("%w: L2 %v", ErrInput, cfg.L2)
	}
	m, err := newModel(slices.Clone(cols), nClasses)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	p := newProblem(m, X, y, cfg)
	settings := &optimize.Settings{
		MajorIterations: cfg.MaxIter,
		Converger:       &optimize.FunctionConverge{Relative: cfg.Tolerance, Iterations: 10},
		Recorder:        &recorder{progress: progress, total: cfg.MaxIter},
	}
	problem := optimize.Problem{
		Func: p.fun,
		Grad: p.grad,
		Status: func() (optimize.Status, error) {
			if err := ctx.Err(); err != nil {
				return optimize.Failure, err
			}
			return optimize.NotTerminated, nil
		},
	}
	res, err := optimize.Minimize(problem, make([]float64, p.nParams()), settings, &optimize.LBFGS{})
	if cerr := ctx.Err(); cerr != nil {
		return nil, cerr
	}
	if res == nil {
		return nil, fmt.Errorf("logistic: optimize: %w", err)
	}
	// An error with a result (for example a line search that cannot make
	// progress near the optimum) still leaves the best point found.
	m.w = make([]float32, len(res.X))
	for i, v := range res.X {
		m.w[i] = float32(v)
	}
	return m, nil
}

type recorder struct {
	progress func(done, total int)
	total    int
	iter     int
}

func (r *recorder) Init() error { return nil }

func (r *recorder) Record(_ *optimize.Location, op optimize.Operation, _ *optimize.Stats) error {
	if op == optimize.MajorIteration {
		r.iter++
		if r.progress != nil {
			r.progress(min(r.iter, r.total), r.total)
		}
	}
	return nil
}

// problem holds the transformed training matrix and evaluates the
// objective and its gradient.
type problem struct {
	m       *Model
	n       int
	z       []float32 // n × nDense, standardized
	oh      []int32   // n × nOneHot, expanded index or -1
	y       []int32
	w       []float64 // per-row weight, normalized to sum 1
	l2      float64
	workers int

	lastX    []float64
	lastF    float64
	lastGrad []float64
	parts    []part
}

type part struct {
	loss float64
	grad []float64
	s    []float64
}

func newProblem(m *Model, X [][]float32, y []int32, cfg Config) *problem {
	n := len(y)
	nd, no := len(m.dense), len(m.oneHot)
	p := &problem{m: m, n: n, y: y, l2: cfg.L2, workers: cfg.Workers,
		z: make([]float32, n*nd), oh: make([]int32, n*no), w: make([]float64, n)}
	// Standardize the dense features.
	for j, c := range m.dense {
		var sum, sq float64
		for i, v := range X[c] {
			t := float64(transform(v, m.logT[j]))
			p.z[i*nd+j] = float32(t)
			sum += t
			sq += t * t
		}
		mean := sum / float64(n)
		std := math.Sqrt(math.Max(sq/float64(n)-mean*mean, 0))
		scale := 1.0
		if std > 1e-12 {
			scale = 1 / std
		}
		m.mean[j], m.scale[j] = float32(mean), float32(scale)
		for i := range n {
			p.z[i*nd+j] = (p.z[i*nd+j] - m.mean[j]) * m.scale[j]
		}
	}
	for h, c := range m.oneHot {
		for i, v := range X[c] {
			p.oh[i*no+h] = int32(m.oneHotIndex(h, v))
		}
	}
	var total float64
	for i, c := range y {
		w := 1.0
		if cfg.ClassWeight != nil {
			w = cfg.ClassWeight[c]
		}
		p.w[i] = w
		total += w
	}
	if total > 0 {
		for i := range p.w {
			p.w[i] /= total
		}
	}
	p.parts = make([]part, p.workers)
	for i := range p.parts {
		p.parts[i] = part{grad: make([]float64, p.nParams()), s: make([]float64, m.nClasses)}
	}
	return p
}

func (p *problem) nParams() int { return p.m.nClasses * (p.m.dim + 1) }

func (p *problem) fun(x []float64) float64 {
	p.eval(x)
	return p.lastF
}

func (p *problem) grad(grad, x []float64) {
	p.eval(x)
	copy(grad, p.lastGrad)
}

// eval computes the objective and gradient at x unless x is the last point.
func (p *problem) eval(x []float64) {
	if p.lastX != nil && slices.Equal(p.lastX, x) {
		return
	}
	p.lastX = append(p.lastX[:0], x...)
	if p.lastGrad == nil {
		p.lastGrad = make([]float64, len(x))
	}
	for i := range p.parts {
		clear(p.parts[i].grad)
		p.parts[i].loss = 0
	}
	parallel.Ranges(p.n, len(p.parts), func(w, lo, hi int) {
		p.partial(x, lo, hi, &p.parts[w])
	})
	g := p.lastGrad
	clear(g)
	f := 0.0
	for i := range p.parts {
		pt := &p.parts[i]
		f += pt.loss
		for j, v := range pt.grad {
			g[j] += v
		}
	}
	stride := p.m.dim + 1
	for k := 0; k < p.m.nClasses; k++ {
		for j := 0; j < p.m.dim; j++ {
			v := x[k*stride+j]
			f += 0.5 * p.l2 * v * v
			g[k*stride+j] += p.l2 * v
		}
	}
	p.lastF = f
}

// partial accumulates the loss and gradient of rows [lo,hi) into pt.
func (p *problem) partial(x []float64, lo, hi int, pt *part) {
	m := p.m
	nd, no, K, stride := len(m.dense), len(m.oneHot), m.nClasses, m.dim+1
	s := pt.s
	for i := lo; i < hi; i++ {
		z := p.z[i*nd : (i+1)*nd]
		oh := p.oh[i*no : (i+1)*no]
		maxS := math.Inf(-1)
		for k := range K {
			row := x[k*stride : (k+1)*stride]
			v := row[m.dim]
			for j, zj := range z {
				v += row[j] * float64(zj)
			}
			for _, o := range oh {
				if o >= 0 {
					v += row[o]
				}
			}
			s[k] = v
			maxS = math.Max(maxS, v)
		}
		var sum float64
		for k := range K {
			s[k] = math.Exp(s[k] - maxS)
			sum += s[k]
		}
		yi, wi := int(p.y[i]), p.w[i]
		pt.loss -= wi * math.Log(math.Max(s[yi]/sum, 1e-300))
		for k := range K {
			r := s[k] / sum
			if k == yi {
				r--
			}
			r *= wi
			if r == 0 {
				continue
			}
			g := pt.grad[k*stride : (k+1)*stride]
			for j, zj := range z {
				g[j] += r * float64(zj)
			}
			for _, o := range oh {
				if o >= 0 {
					g[o] += r
				}
			}
			g[m.dim] += r
		}
	}
}
