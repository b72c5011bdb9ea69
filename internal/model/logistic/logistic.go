// Package logistic trains and scores multinomial logistic regression models
// on column-major float32 matrices.
//
// Inputs are transformed before the linear model sees them, as each column's
// Column spec says: numeric columns are standardized (zero mean, unit
// variance on the training data), Log columns are log1p-transformed first,
// and OneHot columns (small non-negative integer codes) are one-hot encoded
// and left unscaled so that a row touches one weight per symbolic column.
//
// Training minimizes the class-weighted mean cross-entropy plus an L2 penalty
// on the weights (not the intercepts) with gonum's L-BFGS. The objective and
// its gradient are evaluated by Config.Workers goroutines over disjoint row
// ranges; all of them have ended when Train returns.
package logistic

import (
	"errors"
	"fmt"
	"math"
	"runtime"

	"github.com/netsentinel/netsentinel/internal/parallel"
)

// ColumnKind says how an input column is transformed.
type ColumnKind uint8

const (
	// Numeric columns are standardized.
	Numeric ColumnKind = iota
	// Log columns are log1p-transformed (negative values count as 0), then
	// standardized. Use it for heavy-tailed counts such as byte counts.
	Log
	// OneHot columns hold integer codes in [0, Levels); each code gets its
	// own weight. Codes outside the range activate no weight.
	OneHot
	numColumnKinds
)

// String returns the kind's name.
func (k ColumnKind) String() string {
	switch k {
	case Numeric:
		return "numeric"
	case Log:
		return "log"
	case OneHot:
		return "onehot"
	}
	return fmt.Sprintf("ColumnKind(%d)", uint8(k))
}

// MarshalText implements encoding.TextMarshaler.
func (k ColumnKind) MarshalText() ([]byte, error) {
	if k >= numColumnKinds {
		return nil, fmt.Errorf("logistic: invalid column kind %d", uint8(k))
	}
	return []byte(k.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *ColumnKind) UnmarshalText(b []byte) error {
	for c := range numColumnKinds {
		if c.String() == string(b) {
			*k = c
			return nil
		}
	}
	return fmt.Errorf("logistic: unknown column kind %q", b)
}

// Column describes one input column.
type Column struct {
	Kind ColumnKind `json:"kind"`
	// Levels is the number of codes of a OneHot column.
	Levels int `json:"levels,omitempty"`
}

// Config holds the training settings. The zero value of a field means its
// default (see DefaultConfig).
type Config struct {
	// L2 is the penalty on the squared weights, relative to the mean loss.
	L2 float64 `json:"l2"`
	// MaxIter caps the L-BFGS iterations.
	MaxIter int `json:"max_iter"`
	// Tolerance stops training when the objective improves by less than
	// this (relative) over 10 iterations.
	Tolerance float64 `json:"tolerance"`
	// ClassWeight weighs each class's examples; nil means 1 for all.
	ClassWeight []float64 `json:"class_weight,omitempty"`
	// Columns describes the input columns; nil means all Numeric.
	Columns []Column `json:"columns,omitempty"`
	// Workers is the number of goroutines computing the gradient;
	// 0 means GOMAXPROCS.
	Workers int `json:"-"`
}

// DefaultConfig returns the default settings.
func DefaultConfig() Config {
	return Config{L2: 1e-5, MaxIter: 300, Tolerance: 1e-7}
}

// WithDefaults returns c with its zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	c.fill()
	return c
}

func (c *Config) fill() {
	d := DefaultConfig()
	if c.L2 == 0 {
		c.L2 = d.L2
	}
	if c.MaxIter == 0 {
		c.MaxIter = d.MaxIter
	}
	if c.Tolerance == 0 {
		c.Tolerance = d.Tolerance
	}
	if c.Workers <= 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
}

// Errors returned by Train and UnmarshalBinary.
var (
	// ErrInput is returned (wrapped) by Train for inconsistent inputs.
	ErrInput = errors.New("logistic: invalid input")
	// ErrFormat is returned (wrapped) by UnmarshalBinary for bad data.
	ErrFormat = errors.New("logistic: invalid model data")
)

// Model is a trained multinomial logistic regression. Its methods are safe
// for concurrent use.
type Model struct {
	nIn      int
	nClasses int
	cols     []Column
	dense    []int     // input column of each dense feature
	logT     []bool    // whether dense feature j is log1p-transformed
	mean     []float32 // per dense feature
	scale    []float32 // 1/std per dense feature
	oneHot   []int     // input column of each one-hot block
	offset   []int     // start of each one-hot block in the expanded vector
	levels   []int
	dim      int       // expanded features; a class's weight row has dim+1 entries (bias last)
	w        []float32 // nClasses × (dim+1)
}

// NumClasses returns the number of classes.
func (m *Model) NumClasses() int { return m.nClasses }

// NumInputs returns the number of input columns.
func (m *Model) NumInputs() int { return m.nIn }

func newModel(cols []Column, nClasses int) (*Model, error) {
	m := &Model{nIn: len(cols), nClasses: nClasses, cols: cols}
	for i, c := range cols {
		switch c.Kind {
		case Numeric, Log:
			m.dense = append(m.dense, i)
			m.logT = append(m.logT, c.Kind == Log)
		case OneHot:
			if c.Levels <= 0 || c.Levels > 1<<20 {
				return nil, fmt.Errorf("column %d: one-hot levels %d out of range", i, c.Levels)
			}
			m.oneHot = append(m.oneHot, i)
			m.levels = append(m.levels, c.Levels)
		default:
			return nil, fmt.Errorf("column %d: unknown kind %v", i, c.Kind)
		}
	}
	m.dim = len(m.dense)
	for _, l := range m.levels {
		m.offset = append(m.offset, m.dim)
		m.dim += l
	}
	m.mean = make([]float32, len(m.dense))
	m.scale = make([]float32, len(m.dense))
	for j := range m.scale {
		m.scale[j] = 1
	}
	return m, nil
}

func transform(v float32, log bool) float32 {
	if v != v { // NaN
		return 0
	}
	if log {
		if v <= 0 {
			return 0
		}
		return float32(math.Log1p(float64(v)))
	}
	return v
}

// oneHotIndex returns the expanded index activated by one-hot block h for
// code v, or -1.
func (m *Model) oneHotIndex(h int, v float32) int {
	if !(v >= 0) || v >= float32(m.levels[h]) {
		return -1
	}
	return m.offset[h] + int(v)
}

// PredictProba writes the class probabilities of one row x (one value per
// input column) into out, which must hold NumClasses values. It does not
// allocate for models of up to 64 numeric and 16 one-hot columns.
func (m *Model) PredictProba(x []float32, out []float32) {
	if len(x) < m.nIn || len(out) < m.nClasses {
		panic(fmt.Sprintf("logistic: PredictProba with %d inputs and %d outputs, want %d and %d", len(x), len(out), m.nIn, m.nClasses))
	}
	// Transform the row once; small models (all real ones) use the stack.
	var zbuf [64]float32
	var obuf [16]int
	z, act := zbuf[:0], obuf[:0]
	for j, c := range m.dense {
		z = append(z, (transform(x[c], m.logT[j])-m.mean[j])*m.scale[j])
	}
	for h, c := range m.oneHot {
		if i := m.oneHotIndex(h, x[c]); i >= 0 {
			act = append(act, i)
		}
	}
	stride := m.dim + 1
	maxS := math.Inf(-1)
	for k := 0; k < m.nClasses; k++ {
		row := m.w[k*stride : (k+1)*stride]
		s := float64(row[m.dim])
		var dot float32
		for j, zj := range z {
			dot += row[j] * zj
		}
		s += float64(dot)
		for _, i := range act {
			s += float64(row[i])
		}
		out[k] = float32(s)
		maxS = math.Max(maxS, s)
	}
	softmax32(out[:m.nClasses], maxS)
}

func softmax32(s []float32, maxS float64) {
	var sum float64
	for k, v := range s {
		e := math.Exp(float64(v) - maxS)
		s[k] = float32(e)
		sum += e
	}
	for k := range s {
		s[k] = float32(float64(s[k]) / sum)
	}
}

// PredictProbaBatch writes the class probabilities of every row of the
// column-major matrix X (X[j][i] is column j of row i) into out, row-major:
// out[i*NumClasses()+k] is the probability of class k for row i. out must
// hold rows×NumClasses values. It uses GOMAXPROCS goroutines.
func (m *Model) PredictProbaBatch(X [][]float32, out []float32) {
	if len(X) < m.nIn {
		panic(fmt.Sprintf("logistic: PredictProbaBatch with %d columns, want %d", len(X), m.nIn))
	}
	n := 0
	if m.nIn > 0 {
		n = len(X[0])
	}
	if len(out) < n*m.nClasses {
		panic(fmt.Sprintf("logistic: PredictProbaBatch output holds %d values, want %d", len(out), n*m.nClasses))
	}
	parallel.Ranges(n, runtime.GOMAXPROCS(0), func(_, lo, hi int) {
		x := make([]float32, m.nIn)
		for i := lo; i < hi; i++ {
			for j := range x {
				x[j] = X[j][i]
			}
			m.PredictProba(x, out[i*m.nClasses:(i+1)*m.nClasses])
		}
	})
}

// Coefficients returns a copy of the weights of class k over the expanded
// features (standardized dense features first, then the one-hot blocks) and
// its intercept.
func (m *Model) Coefficients(k int) (w []float32, intercept float32) {
	stride := m.dim + 1
	row := m.w[k*stride : (k+1)*stride]
	return append([]float32(nil), row[:m.dim]...), row[m.dim]
}
