package forest

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/netsentinel/netsentinel/internal/dataset"
	"github.com/netsentinel/netsentinel/internal/record"
)

var kdd20 = filepath.Join("..", "..", "..", "data", "KDDTrain+_20Percent.txt.gz")

// loadKDD20 loads the NSL-KDD 20% training file once per test binary.
var loadKDD20 = sync.OnceValues(func() (*dataset.Dataset, error) {
	return dataset.Load(kdd20, dataset.Options{})
})

// labelled is a data set in the form Train takes.
type labelled struct {
	X       [][]float32
	y       []int32
	classes []string
}

// classIndex maps labels to class indexes, in sorted label order.
func classIndex(labels []string) ([]int32, []string) {
	classes := slices.Clone(labels)
	slices.Sort(classes)
	classes = slices.Compact(classes)
	y := make([]int32, len(labels))
	for i, l := range labels {
		k, _ := slices.BinarySearch(classes, l)
		y[i] = int32(k)
	}
	return y, classes
}

// kddSplit returns disjoint train and test slices of the 20% file, taken
// from a seeded shuffle of its rows, with classes indexed over the whole
// file.
func kddSplit(tb testing.TB, nTrain, nTest int) (train, test labelled) {
	tb.Helper()
	d, err := loadKDD20()
	if err != nil {
		tb.Fatalf("load %s: %v", kdd20, err)
	}
	y, classes := classIndex(d.Labels)
	perm := rand.New(rand.NewPCG(7, 7)).Perm(d.Len())
	if nTrain+nTest > len(perm) {
		tb.Fatalf("want %d rows, file has %d", nTrain+nTest, len(perm))
	}
	pick := func(rows []int) labelled {
		l := labelled{X: make([][]float32, record.NumFeatures), y: make([]int32, len(rows)), classes: classes}
		for j := range l.X {
			col := make([]float32, len(rows))
			for k, i := range rows {
				col[k] = d.X[j][i]
			}
			l.X[j] = col
		}
		for k, i := range rows {
			l.y[k] = y[i]
		}
		return l
	}
	return pick(perm[:nTrain]), pick(perm[nTrain : nTrain+nTest])
}

// accuracy returns the fraction of rows whose most probable class is y.
func accuracy(m *Model, X [][]float32, y []int32) float64 {
	nc := m.NumClasses()
	out := make([]float32, len(y)*nc)
	m.PredictProbaBatch(X, out)
	right := 0
	for i, c := range y {
		if argmax(out[i*nc:(i+1)*nc]) == int(c) {
			right++
		}
	}
	return float64(right) / float64(len(y))
}

func argmax(p []float32) int {
	best := 0
	for k, v := range p {
		if v > p[best] {
			best = k
		}
	}
	return best
}

// majorityShare is the accuracy of always predicting the most frequent class.
func majorityShare(y []int32, nClasses int) float64 {
	counts := make([]int, nClasses)
	for _, c := range y {
		counts[c]++
	}
	return float64(slices.Max(counts)) / float64(len(y))
}

// TestAccuracyKDD trains on 15,000 rows of the NSL-KDD 20% file and tests on
// 10,000 other rows. The bar, 0.97 attack-type accuracy, is far above what a
// broken model reaches: predicting the majority class ("normal") scores
// about 0.53, and a forest that ignores a feature, mixes up class indexes or
// sends rows down the wrong branch loses whole attack types (neptune alone
// is about a third of the rows). A working forest scores about 0.99.
func TestAccuracyKDD(t *testing.T) {
	nTrain, nTest := 15000, 10000
	if testing.Short() {
		nTrain, nTest = 5000, 5000
	}
	train, test := kddSplit(t, nTrain, nTest)
	nc := len(train.classes)
	cfg := DefaultConfig()
	cfg.Trees = 30
	m, err := Train(context.Background(), train.X, train.y, nc, cfg, nil)
	if err != nil {
		t.Fatalf("Train: %v", err)
	}
	acc := accuracy(m, test.X, test.y)
	base := majorityShare(test.y, nc)
	t.Logf("accuracy %.4f on %d rows (majority class %.4f), %d nodes", acc, nTest, base, m.NumNodes())
	if acc < 0.97 {
		t.Errorf("accuracy = %.4f, want >= 0.97 (majority class alone gives %.4f)", acc, base)
	}
	imp := m.FeatureImportance()
	var sum float64
	for _, v := range imp {
		sum += v
	}
	if math.Abs(sum-1) > 1e-9 {
		t.Errorf("feature importances sum to %v, want 1", sum)
	}
}

// TestSeparable checks a two-feature problem a single split solves, and
// one only a depth-2 tree solves (XOR).
func TestSeparable(t *testing.T) {
	tests := []struct {
		name  string
		label func(a, b float32) int32
	}{
		{"threshold", func(a, b float32) int32 {
			if a > 0.3 {
				return 1
			}
			return 0
		}},
		{"xor", func(a, b float32) int32 {
			if (a > 0.5) != (b > 0.5) {
				return 1
			}
			return 0
		}},
		{"three classes", func(a, b float32) int32 {
			switch {
			case a < 0.25:
				return 0
			case b < 0.5:
				return 1
			}
			return 2
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			gen := func(n int) ([][]float32, []int32) {
				X := [][]float32{make([]float32, n), make([]float32, n), make([]float32, n)}
				y := make([]int32, n)
				for i := range n {
					a, b := rng.Float32(), rng.Float32()
					X[0][i], X[1][i], X[2][i] = a, b, rng.Float32() // feature 2 is noise
					y[i] = tt.label(a, b)
				}
				return X, y
			}
			X, y := gen(2000)
			cfg := DefaultConfig()
			cfg.Trees = 20
			cfg.MaxFeatures = 3
			m, err := Train(context.Background(), X, y, 3, cfg, nil)
			if err != nil {
				t.Fatalf("Train: %v", err)
			}
			tx, ty := gen(1000)
			if acc := accuracy(m, tx, ty); acc < 0.98 {
				t.Errorf("accuracy = %.4f, want >= 0.98", acc)
			}
			if imp := m.FeatureImportance(); imp[2] > 0.2 {
				t.Errorf("importance of the noise feature = %.3f, want < 0.2 (all: %.3f)", imp[2], imp)
			}
		})
	}
}

// TestPredictProbaBatchMatchesSingle checks both scoring paths agree and
// that probabilities sum to 1, for batch sizes around the lane and block
// sizes.
func TestPredictProbaBatchMatchesSingle(t *testing.T) {
	train, test := kddSplit(t, 3000, 2100)
	nc := len(train.classes)
	cfg := DefaultConfig()
	cfg.Trees = 15 // walked 8 + 4 + 1 + 1 + 1 by PredictProba
	m, err := Train(context.Background(), train.X, train.y, nc, cfg, nil)
	if err != nil {
		t.Fatalf("Train: %v", err)
	}
	for _, n := range []int{0, 1, 3, laneRows + 1, blockRows - 1, blockRows + 3, 2100} {
		X := make([][]float32, len(test.X))
		for j := range X {
			X[j] = test.X[j][:n]
		}
		batch := make([]float32, n*nc)
		m.PredictProbaBatch(X, batch)
		x, p := make([]float32, len(X)), make([]float32, nc)
		for i := range n {
			for j := range x {
				x[j] = X[j][i]
			}
			m.PredictProba(x, p)
			var sum float32
			for k, v := range p {
				sum += v
				if v != batch[i*nc+k] {
					t.Fatalf("batch of %d, row %d class %d: PredictProba = %v, PredictProbaBatch = %v", n, i, k, v, batch[i*nc+k])
				}
			}
			if math.Abs(float64(sum)-1) > 1e-4 {
				t.Fatalf("row %d: probabilities sum to %v, want 1", i, sum)
			}
		}
	}
}

// TestDeterministic checks the same seed gives the same model whatever the
// number of workers, and another seed a different one.
func TestDeterministic(t *testing.T) {
	train, _ := kddSplit(t, 3000, 0)
	nc := len(train.classes)
	encode := func(seed uint64, workers int) []byte {
		cfg := DefaultConfig()
		cfg.Trees, cfg.Seed, cfg.Workers = 8, seed, workers
		m, err := Train(context.Background(), train.X, train.y, nc, cfg, nil)
		if err != nil {
			t.Fatalf("Train: %v", err)
		}
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary: %v", err)
		}
		return b
	}
	a := encode(1, 1)
	if b := encode(1, 1); !bytes.Equal(a, b) {
		t.Error("two runs with seed 1 and 1 worker differ")
	}
	if b := encode(1, 2); !bytes.Equal(a, b) {
		t.Error("seed 1 with 1 and 2 workers differ")
	}
	if b := encode(2, 1); bytes.Equal(a, b) {
		t.Error("seeds 1 and 2 give the same model")
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	train, test := kddSplit(t, 3000, 1000)
	nc := len(train.classes)
	cfg := DefaultConfig()
	cfg.Trees = 10
	m, err := Train(context.Background(), train.X, train.y, nc, cfg, nil)
	if err != nil {
		t.Fatalf("Train: %v", err)
	}
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary: %v", err)
	}
	var m2 Model
	if err := m2.UnmarshalBinary(b); err != nil {
		t.Fatalf("UnmarshalBinary: %v", err)
	}
	if m2.NumFeatures() != m.NumFeatures() || m2.NumClasses() != m.NumClasses() || m2.NumTrees() != m.NumTrees() {
		t.Fatalf("decoded shape %d/%d/%d, want %d/%d/%d", m2.NumFeatures(), m2.NumClasses(), m2.NumTrees(),
			m.NumFeatures(), m.NumClasses(), m.NumTrees())
	}
	want, got := make([]float32, len(test.y)*nc), make([]float32, len(test.y)*nc)
	m.PredictProbaBatch(test.X, want)
	m2.PredictProbaBatch(test.X, got)
	if !slices.Equal(want, got) {
		t.Error("decoded model predicts differently")
	}
	if !slices.Equal(m.FeatureImportance(), m2.FeatureImportance()) {
		t.Error("decoded model has different feature importances")
	}
	b2, _ := m2.MarshalBinary()
	if !bytes.Equal(b, b2) {
		t.Error("re-encoding the decoded model gives different bytes")
	}
}

func TestUnmarshalBinaryErrors(t *testing.T) {
	m := tinyModel(t)
	good, err := m.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary: %v", err)
	}
	nodeOff := headerSize + 8*m.NumFeatures() + 4*m.NumTrees()
	leafOff := nodeOff + nodeSize*m.NumNodes()
	set32 := func(off int, v uint32) func([]byte) []byte {
		return func(b []byte) []byte {
			b = slices.Clone(b)
			b[off], b[off+1], b[off+2], b[off+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
			return b
		}
	}
	tests := []struct {
		name   string
		mutate func([]byte) []byte
	}{
		{"empty", func([]byte) []byte { return nil }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-5] }},
		{"extra byte", func(b []byte) []byte { return append(slices.Clone(b), 0) }},
		{"bad magic", func(b []byte) []byte { b = slices.Clone(b); b[0] = 'X'; return b }},
		{"newer version", func(b []byte) []byte { b = slices.Clone(b); b[4] = 9; return b }},
		{"version 1 without its CRC", func(b []byte) []byte { b = slices.Clone(b); b[4] = 1; return b }},
		{"zero features", set32(8, 0)},
		{"zero trees", set32(16, 0)},
		{"huge node count", set32(20, 1<<31)},
		{"huge leaf count", set32(24, 1<<32-1)},
		{"root feature out of range", set32(nodeOff+4, 99)},
		{"child before parent", set32(nodeOff+8, 0)},
		{"child past the end", set32(nodeOff+8, 1000)},
		{"NaN threshold", set32(nodeOff, 0x7fc00000)},
		{"leaf class out of range", set32(leafOff, 7)},
		{"leaf probability > 1", set32(leafOff+4, 0x40000000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Model
			err := got.UnmarshalBinary(tt.mutate(good))
			if err == nil {
				t.Fatal("UnmarshalBinary succeeded, want error")
			}
			if !isFormatErr(err) {
				t.Errorf("error %v does not wrap ErrFormat", err)
			}
			t.Log(err)
		})
	}
}

// tinyModel trains a small model on synthetic data.
func tinyModel(t testing.TB) *Model {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	n := 200
	X := [][]float32{make([]float32, n), make([]float32, n)}
	y := make([]int32, n)
	for i := range n {
		X[0][i], X[1][i] = rng.Float32(), rng.Float32()
		if X[0][i] > 0.5 {
			y[i] = 1
		}
		if X[1][i] > 0.8 {
			y[i] = 2
		}
	}
	cfg := DefaultConfig()
	cfg.Trees = 3
	m, err := Train(context.Background(), X, y, 3, cfg, nil)
	if err != nil {
		t.Fatalf("Train: %v", err)
	}
	return m
}

func FuzzUnmarshalBinary(f *testing.F) {
	m := tinyModel(f)
	good, err := m.MarshalBinary()
	if err != nil {
		f.Fatalf("MarshalBinary: %v", err)
	}
	f.Add(good)
	f.Add(good[:headerSize+4])
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, data []byte) {
		var m Model
		if err := m.UnmarshalBinary(data); err != nil {
			if !isFormatErr(err) {
				t.Errorf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		// A model that decodes must score any row without panicking.
		out := make([]float32, m.NumClasses())
		for _, v := range []float32{0, -1, 1e30, float32(math.NaN())} {
			x := make([]float32, m.NumFeatures())
			for j := range x {
				x[j] = v
			}
			m.PredictProba(x, out)
		}
	})
}

func isFormatErr(err error) bool { return errors.Is(err, ErrFormat) }

func TestTrainErrors(t *testing.T) {
	X := [][]float32{{1, 2, 3, 4}, {0, 1, 0, 1}}
	y := []int32{0, 1, 0, 1}
	cfgWith := func(f func(*Config)) Config {
		c := DefaultConfig()
		f(&c)
		return c
	}
	tests := []struct {
		name     string
		X        [][]float32
		y        []int32
		nClasses int
		cfg      Config
	}{
		{"no features", nil, y, 2, DefaultConfig()},
		{"no rows", [][]float32{{}}, nil, 2, DefaultConfig()},
		{"ragged columns", [][]float32{{1, 2, 3, 4}, {1}}, y, 2, DefaultConfig()},
		{"label count", X, y[:3], 2, DefaultConfig()},
		{"class out of range", X, []int32{0, 1, 2, 0}, 2, DefaultConfig()},
		{"negative class", X, []int32{0, -1, 0, 0}, 2, DefaultConfig()},
		{"no classes", X, y, 0, DefaultConfig()},
		{"negative trees", X, y, 2, cfgWith(func(c *Config) { c.Trees = -1 })},
		{"too many bins", X, y, 2, cfgWith(func(c *Config) { c.Bins = 257 })},
		{"one bin", X, y, 2, cfgWith(func(c *Config) { c.Bins = 1 })},
		{"sample above 1", X, y, 2, cfgWith(func(c *Config) { c.Sample = 1.5 })},
		{"NaN sample", X, y, 2, cfgWith(func(c *Config) { c.Sample = math.NaN() })},
		{"class weight count", X, y, 2, cfgWith(func(c *Config) { c.ClassWeight = []float64{1} })},
		{"negative class weight", X, y, 2, cfgWith(func(c *Config) { c.ClassWeight = []float64{1, -1} })},
		{"all weights zero", X, y, 2, cfgWith(func(c *Config) { c.ClassWeight = []float64{0, 0} })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Train(context.Background(), tt.X, tt.y, tt.nClasses, tt.cfg, nil)
			if err == nil {
				t.Fatalf("Train succeeded with %d trees, want error", m.NumTrees())
			}
			t.Log(err)
		})
	}
}

func TestTrainCancel(t *testing.T) {
	train, _ := kddSplit(t, 2000, 0)
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	_, err := Train(ctx, train.X, train.y, len(train.classes), Config{Trees: 50, Workers: 1}, func(done, total int) {
		calls++
		if done == 3 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Train after cancel: err = %v, want context.Canceled", err)
	}
	if calls != 3 {
		t.Errorf("progress called %d times, want 3 (training should stop after cancel)", calls)
	}
}

func TestBalancedWeights(t *testing.T) {
	got := BalancedWeights([]int32{0, 0, 0, 1}, 3)
	want := []float64{4.0 / 9, 4.0 / 3, 0}
	for k := range want {
		if math.Abs(got[k]-want[k]) > 1e-12 {
			t.Errorf("BalancedWeights = %v, want %v", got, want)
			break
		}
	}
}

// TestClassWeights checks that balanced class weights still give an
// accurate forest, and leaves without rounding residue: every leaf
// probability is either 0 (absent) or at least 1e-6.
func TestClassWeights(t *testing.T) {
	train, test := kddSplit(t, 5000, 3000)
	nc := len(train.classes)
	cfg := DefaultConfig()
	cfg.Trees = 10
	cfg.ClassWeight = BalancedWeights(train.y, nc)
	m, err := Train(context.Background(), train.X, train.y, nc, cfg, nil)
	if err != nil {
		t.Fatalf("Train: %v", err)
	}
	if acc := accuracy(m, test.X, test.y); acc < 0.95 {
		t.Errorf("accuracy with balanced weights = %.4f, want >= 0.95", acc)
	}
	for k, e := range m.leaves {
		if e.p < 1e-6 {
			t.Fatalf("leaf entry %d: class %d with probability %g (rounding residue)", k, e.class, e.p)
		}
	}
}
