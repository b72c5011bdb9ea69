package forest

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestRadixSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	tests := map[string][]float32{
		"empty":     {},
		"one":       {3},
		"negatives": {-1, 2, -3.5, 0, 7, -0.25, 1e-30, -1e30},
		"constant":  {2, 2, 2, 2},
	}
	random := make([]float32, 10000)
	for i := range random {
		random[i] = float32(rng.NormFloat64() * 1000)
	}
	tests["random"] = random
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			got, want := slices.Clone(in), slices.Clone(in)
			radixSort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("radixSort(%v) = %v, want %v", in, got, want)
			}
		})
	}
}

// TestBinning checks that a value's bin agrees with the thresholds used
// for scoring: v is in a bin <= b exactly when v <= edges[b].
func TestBinning(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	skewed := make([]float32, 5000)
	for i := range skewed {
		if i%2 == 0 {
			skewed[i] = 0 // half the values in one spot, as KDD counters
		} else {
			skewed[i] = float32(math.Exp(rng.NormFloat64() * 3))
		}
	}
	few := make([]float32, 1000)
	for i := range few {
		few[i] = float32(rng.IntN(5))
	}
	tests := []struct {
		name     string
		col      []float32
		maxBins  int
		wantBins int // exact number of bins, 0 = don't check
	}{
		{"few distinct values", few, 255, 5},
		{"two bins", few, 2, 2},
		{"skewed", skewed, 255, 0},
		{"skewed, 16 bins", skewed, 16, 16},
		{"constant", []float32{1, 1, 1}, 255, 1},
		{"adjacent floats", []float32{1, math.Nextafter32(1, 2)}, 255, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			edges := binEdges(tt.col, tt.maxBins, rand.New(rand.NewPCG(1, 1)))
			if len(edges)+1 > tt.maxBins {
				t.Fatalf("%d bins, want at most %d", len(edges)+1, tt.maxBins)
			}
			if tt.wantBins > 0 && len(edges)+1 != tt.wantBins {
				t.Errorf("%d bins, want %d", len(edges)+1, tt.wantBins)
			}
			if !slices.IsSorted(edges) || len(slices.Compact(slices.Clone(edges))) != len(edges) {
				t.Fatalf("edges %v not strictly increasing", edges)
			}
			codes := make([]uint8, len(tt.col))
			binColumn(tt.col, edges, codes)
			for i, v := range tt.col {
				c := int(codes[i])
				if c > len(edges) || c < len(edges) && v > edges[c] || c > 0 && v <= edges[c-1] {
					t.Fatalf("value %v in bin %d, edges %v", v, c, edges)
				}
			}
			// With room for every distinct value, no two distinct values
			// share a bin.
			if tt.wantBins > 0 && len(edges)+1 == len(slices.Compact(slices.Sorted(slices.Values(tt.col)))) {
				seen := map[uint8]float32{}
				for i, v := range tt.col {
					if w, ok := seen[codes[i]]; ok && w != v {
						t.Fatalf("values %v and %v share bin %d", v, w, codes[i])
					}
					seen[codes[i]] = v
				}
			}
		})
	}
}
