package forest

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
)

// maxBinSample is the number of values per feature used to place the bin
// edges; larger inputs are subsampled (the codes still cover every row).
const maxBinSample = 200_000

// binEdges returns at most maxBins-1 increasing thresholds that cut the
// values of col into bins of roughly equal counts. Every distinct value gets
// its own bin when there are at most maxBins of them. A threshold lies
// strictly between two neighbouring distinct values (their midpoint where
// float32 allows), so a value v falls in bin b iff
// edges[b-1] < v <= edges[b].
func binEdges(col []float32, maxBins int, rng *rand.Rand) []float32 {
	var vals []float32
	if len(col) > maxBinSample {
		vals = make([]float32, maxBinSample)
		for i := range vals {
			vals[i] = col[rng.IntN(len(col))]
		}
	} else {
		vals = slices.Clone(col)
	}
	vals = slices.DeleteFunc(vals, func(v float32) bool { return v != v })
	radixSort(vals)
	// Distinct values and their counts.
	distinct := vals[:0:0]
	var counts []int
	for i, v := range vals {
		if i > 0 && v == vals[i-1] {
			counts[len(counts)-1]++
			continue
		}
		distinct = append(distinct, v)
		counts = append(counts, 1)
	}
	if len(distinct) <= 1 {
		return nil
	}
	if len(distinct) <= maxBins {
		edges := make([]float32, len(distinct)-1)
		for i := range edges {
			edges[i] = midpoint(distinct[i], distinct[i+1])
		}
		return edges
	}
	// Greedy quantiles: close a bin once it holds its share of the values
	// not yet binned. Frequent values end up alone in their bin.
	edges := make([]float32, 0, maxBins-1)
	remaining := len(vals)
	acc := 0
	for i := 0; i < len(distinct)-1 && len(edges) < maxBins-1; i++ {
		acc += counts[i]
		binsLeft := maxBins - len(edges)
		target := float64(remaining) / float64(binsLeft)
		if float64(acc) >= target || float64(acc+counts[i+1]) > 1.5*target && acc > 0 {
			edges = append(edges, midpoint(distinct[i], distinct[i+1]))
			remaining -= acc
			acc = 0
		}
	}
	return edges
}

// midpoint returns a float32 t with a <= t < b, halfway where possible.
func midpoint(a, b float32) float32 {
	m := float32((float64(a) + float64(b)) / 2)
	if m >= b || math.IsInf(float64(m), 0) {
		return a
	}
	return m
}

// binColumn writes the bin code of every value of col into codes: the
// number of edges below the value. NaN goes to bin 0, as it goes left when
// scoring.
func binColumn(col []float32, edges []float32, codes []uint8) {
	top := 0
	if len(edges) > 0 {
		top = 1 << (bits.Len(uint(len(edges))) - 1)
	}
	for i, v := range col {
		// Branch-free binary search for the number of edges < v.
		lo := 0
		for step := top; step > 0; step >>= 1 {
			if j := lo + step; j <= len(edges) && edges[j-1] < v {
				lo = j
			}
		}
		codes[i] = uint8(lo)
	}
}

// radixSort sorts finite float32 values in increasing order (-0 and +0 are
// equal and may come in either order).
func radixSort(vals []float32) {
	if len(vals) < 2 {
		return
	}
	keys := make([]uint32, len(vals))
	for i, v := range vals {
		k := math.Float32bits(v)
		if k>>31 != 0 {
			k = ^k
		} else {
			k |= 1 << 31
		}
		keys[i] = k
	}
	tmp := make([]uint32, len(keys))
	for shift := 0; shift < 32; shift += 8 {
		var count [257]int
		for _, k := range keys {
			count[(k>>shift)&0xff+1]++
		}
		if count[(keys[0]>>shift)&0xff+1] == len(keys) {
			continue // all keys share this byte
		}
		for b := 1; b < len(count); b++ {
			count[b] += count[b-1]
		}
		for _, k := range keys {
			b := (k >> shift) & 0xff
			tmp[count[b]] = k
			count[b]++
		}
		keys, tmp = tmp, keys
	}
	for i, k := range keys {
		if k>>31 != 0 {
			k &^= 1 << 31
		} else {
			k = ^k
		}
		vals[i] = math.Float32frombits(k)
	}
}
