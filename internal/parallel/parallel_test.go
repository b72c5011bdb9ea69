package parallel

import (
	"sync/atomic"
	"testing"
)

// TestRanges checks that every index is visited once, by a valid worker,
// for sizes around the worker count.
func TestRanges(t *testing.T) {
	for _, tc := range []struct{ n, workers int }{{0, 4}, {1, 4}, {3, 4}, {4, 4}, {1000, 4}, {1000, 1}, {7, 0}} {
		seen := make([]atomic.Int32, tc.n)
		var bad atomic.Int32
		Ranges(tc.n, tc.workers, func(w, lo, hi int) {
			if w < 0 || (tc.workers > 0 && w >= tc.workers) || lo > hi {
				bad.Add(1)
			}
			for i := lo; i < hi; i++ {
				seen[i].Add(1)
			}
		})
		if bad.Load() != 0 {
			t.Errorf("Ranges(%d, %d): %d calls with a bad worker or range", tc.n, tc.workers, bad.Load())
		}
		for i := range seen {
			if c := seen[i].Load(); c != 1 {
				t.Errorf("Ranges(%d, %d): index %d visited %d times, want 1", tc.n, tc.workers, i, c)
			}
		}
	}
}
