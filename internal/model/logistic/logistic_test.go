package logistic

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
)

// blobs returns n rows of 3 separable classes: two numeric columns centred
// per class, one heavy-tailed Log column and a OneHot column that agrees
// with the class 80% of the time.
func blobs(n int, seed uint64) ([][]float32, []int32) {
	r := rand.New(rand.NewPCG(seed, 1))
	X := make([][]float32, 4)
	for j := range X {
		X[j] = make([]float32, n)
	}
	y := make([]int32, n)
	for i := range n {
		c := int32(r.IntN(3))
		y[i] = c
		X[0][i] = float32(float64(c)*3 + r.NormFloat64())
		X[1][i] = float32(float64(c%2)*3 + r.NormFloat64())
		X[2][i] = float32(r.ExpFloat64() * 1e6)
		code := c
		if r.Float64() < 0.2 {
			code = int32(r.IntN(4))
		}
		X[3][i] = float32(code)
	}
	return X, y
}

var testCols = []Column{{Kind: Numeric}, {Kind: Numeric}, {Kind: Log}, {Kind: OneHot, Levels: 4}}

func accuracy(m *Model, X [][]float32, y []int32) float64 {
	out := make([]float32, len(y)*m.NumClasses())
	m.PredictProbaBatch(X, out)
	right := 0
	for i, c := range y {
		p := out[i*m.NumClasses() : (i+1)*m.NumClasses()]
		best := 0
		for k := range p {
			if p[k] > p[best] {
				best = k
			}
		}
		if int32(best) == c {
			right++
		}
	}
	return float64(right) / float64(len(y))
}

func TestTrainSeparable(t *testing.T) {
	X, y := blobs(3000, 1)
	calls := 0
	m, err := Train(context.Background(), X, y, 3, Config{Columns: testCols}, func(done, total int) { calls++ })
	if err != nil {
		t.Fatal(err)
	}
	if calls == 0 {
		t.Error("progress never called")
	}
	Xt, yt := blobs(2000, 2)
	if acc := accuracy(m, Xt, yt); acc < 0.9 {
		t.Errorf("held-out accuracy = %.3f, want >= 0.9", acc)
	}
	// Probabilities sum to 1.
	out := make([]float32, 3)
	x := []float32{Xt[0][0], Xt[1][0], Xt[2][0], 17} // out-of-range code
	m.PredictProba(x, out)
	if s := out[0] + out[1] + out[2]; s < 0.999 || s > 1.001 {
		t.Errorf("probabilities sum to %v", s)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	X, y := blobs(500, 3)
	m, err := Train(context.Background(), X, y, 3, Config{Columns: testCols, MaxIter: 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var m2 Model
	if err := m2.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	p1, p2 := make([]float32, 3), make([]float32, 3)
	row := make([]float32, 4)
	for i := range y {
		for j := range row {
			row[j] = X[j][i]
		}
		m.PredictProba(row, p1)
		m2.PredictProba(row, p2)
		if p1[0] != p2[0] || p1[1] != p2[1] || p1[2] != p2[2] {
			t.Fatalf("row %d: %v before, %v after round trip", i, p1, p2)
		}
	}
	for n := 0; n < len(b); n += 7 {
		if err := new(Model).UnmarshalBinary(b[:n]); !errors.Is(err, ErrFormat) {
			t.Errorf("UnmarshalBinary(%d of %d bytes) = %v, want ErrFormat", n, len(b), err)
		}
	}
}

func TestTrainErrors(t *testing.T) {
	X, y := blobs(50, 4)
	ctx := context.Background()
	tests := []struct {
		name string
		X    [][]float32
		y    []int32
		k    int
		cfg  Config
	}{
		{"no rows", [][]float32{{}}, nil, 2, Config{}},
		{"short column", [][]float32{X[0], X[1][:10]}, y, 3, Config{}},
		{"class out of range", X, y, 2, Config{}},
		{"column specs", X, y, 3, Config{Columns: testCols[:2]}},
		{"class weights", X, y, 3, Config{ClassWeight: []float64{1}}},
		{"one-hot levels", X, y, 3, Config{Columns: []Column{{}, {}, {}, {Kind: OneHot}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Train(ctx, tt.X, tt.y, tt.k, tt.cfg, nil); !errors.Is(err, ErrInput) {
				t.Errorf("Train = %v, want ErrInput", err)
			}
		})
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Train(cctx, X, y, 3, Config{}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Train with cancelled context = %v, want context.Canceled", err)
	}
}

func FuzzUnmarshal(f *testing.F) {
	X, y := blobs(100, 5)
	m, err := Train(context.Background(), X, y, 3, Config{Columns: testCols, MaxIter: 5}, nil)
	if err != nil {
		f.Fatal(err)
	}
	b, _ := m.MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var m Model
		if err := m.UnmarshalBinary(data); err != nil {
			return
		}
		out := make([]float32, m.NumClasses())
		m.PredictProba(make([]float32, m.NumInputs()), out)
	})
}
