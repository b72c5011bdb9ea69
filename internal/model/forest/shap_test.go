package forest

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

// TestContributionsExact compares Contributions with Shapley values
// computed by brute force over every coalition of a small forest's
// features, and checks that they sum to the change in probability.
func TestContributionsExact(t *testing.T) {
	const nf, n = 5, 400
	rng := rand.New(rand.NewPCG(3, 4))
	X := make([][]float32, nf)
	for j := range X {
		X[j] = make([]float32, n)
	}
	y := make([]int32, n)
	for i := range n {
		for j := range nf {
			X[j][i] = float32(rng.IntN(6))
		}
		switch {
		case X[0][i]+X[1][i] > 6:
			y[i] = 1
		case X[2][i] > 3 && X[3][i] < 2:
			y[i] = 2
		}
		if rng.IntN(10) == 0 {
			y[i] = int32(rng.IntN(3))
		}
	}
	m, err := Train(context.Background(), X, y, 3, Config{Trees: 7, MaxFeatures: 3, Seed: 9}, nil)
	if err != nil {
		t.Fatal(err)
	}
	prob := func(row []float32, class int) float64 {
		p := make([]float32, 3)
		m.PredictProba(row, p)
		return float64(p[class])
	}
	fact := func(k int) float64 {
		r := 1.0
		for i := 2; i <= k; i++ {
			r *= float64(i)
		}
		return r
	}
	for trial := range 20 {
		x, ref := make([]float32, nf), make([]float32, nf)
		for j := range nf {
			x[j], ref[j] = float32(rng.IntN(6)), float32(rng.IntN(6))
		}
		class := trial % 3
		got := m.Contributions(x, ref, class)
		var sum float64
		for i := range nf {
			sum += got[i]
			var want float64
			for mask := range 1 << nf {
				if mask&(1<<i) != 0 {
					continue
				}
				mixed := make([]float32, nf)
				for j := range nf {
					mixed[j] = ref[j]
					if mask&(1<<j) != 0 {
						mixed[j] = x[j]
					}
				}
				without := prob(mixed, class)
				mixed[i] = x[i]
				with := prob(mixed, class)
				s := bitCount(mask)
				want += fact(s) * fact(nf-s-1) / fact(nf) * (with - without)
			}
			if math.Abs(got[i]-want) > 1e-5 {
				t.Errorf("trial %d feature %d: contribution %.6f, brute force %.6f", trial, i, got[i], want)
			}
		}
		if d := prob(x, class) - prob(ref, class); math.Abs(sum-d) > 1e-5 {
			t.Errorf("trial %d: contributions sum to %.6f, P(x)-P(ref) = %.6f", trial, sum, d)
		}
	}
}

func bitCount(v int) int {
	c := 0
	for ; v != 0; v &= v - 1 {
		c++
	}
	return c
}
