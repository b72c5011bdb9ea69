// Package novelty scores how unlike normal traffic a connection record is.
// It is trained on normal rows only, so it can flag attacks no classifier
// has seen.
//
// # Model
//
// Each record is mapped to a dense vector of 52 values: the 38 numeric
// features, counts and durations on a log scale (log1p) and rates and flags
// as they are, then one-hot protocol_type (3) and flag (11), each value
// standardised by the normal rows' mean and standard deviation (with a floor,
// so near-constant features do not explode). The service is not a dimension
// but a partition: the normal rows of each service are summarised by k-means
// prototypes (a total budget shared by the services in proportion to the
// square root of their row counts), so every service gets its own profile of
// normal behaviour.
//
// The novelty of a record is d, the distance to the nearest prototype of its
// service (a service without normal rows: the nearest prototype of any
// service plus a penalty), mapped to [0,1) as d/(d+scale), where scale is a
// quantile (by default the 99th percentile) of d on normal rows held out from
// the k-means fit. A score of 0.5 is thus as strange as the 1% strangest
// held-out normal rows.
//
// This is a fast approximation of the distance to the nearest normal row,
// the best novelty score found in the leave-attack-types-out validation of
// docs/validation.md, at a fraction of its cost: Score examines only the
// prototypes of one service and abandons a prototype as soon as its partial
// distance exceeds the best so far.
package novelty

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"

	"github.com/netsentinel/netsentinel/internal/record"
)

// Kind names this novelty model in model files.
const Kind = "service-prototypes"

// Dims is the length of the dense vector of numeric features a record is
// mapped to.
const Dims = record.NumFeatures - 3

const (
	numProtocols = 3
	numServices  = 70
	numFlags     = 11
	numBuckets   = numServices * numProtocols * numFlags
	sdFloor      = 0.05
)

// numericCols lists the numeric features in dense order and logCol says
// which of them are put on a log scale.
var numericCols, logCol = func() (cols [Dims]int, logs [Dims]bool) {
	k := 0
	for j, f := range record.Features {
		switch j {
		case record.ProtocolType, record.Service, record.Flag:
			continue
		}
		cols[k] = j
		logs[k] = f.Kind == record.KindCount || f.Kind == record.KindContinuous
		k++
	}
	return cols, logs
}()

func init() {
	// The layout assumes the record vocabularies' sizes.
	if len(record.Protocols) != numProtocols || len(record.Flags) != numFlags || len(record.Services) != numServices {
		panic("novelty: record vocabularies changed size")
	}
}

// Config configures Train. The zero value of a field selects its default.
type Config struct {
	// Prototypes is the total number of k-means prototypes shared by the
	// (service, protocol, flag) groups of normal rows (default 1024). More
	// prototypes follow the normal rows more closely but score more slowly.
	Prototypes int `json:"prototypes"`
	// MaxRows caps the rows of one group used for k-means (a random
	// sample; default 20000).
	MaxRows int `json:"max_rows"`
	// Iterations is the number of k-means (Lloyd) iterations (default 20).
	Iterations int `json:"iterations"`
	// Holdout is the fraction of rows held out from k-means to calibrate
	// the score (default 0.1; at least one row is held out).
	Holdout float64 `json:"holdout"`
	// Quantile is the quantile of the held-out rows' distances that maps to
	// score 0.5 (default 0.99).
	Quantile float64 `json:"quantile"`
	// Seed seeds sampling and k-means.
	Seed uint64 `json:"seed"`
}

// DefaultConfig returns the default settings (chosen by validation; see
// docs/validation.md).
func DefaultConfig() Config {
	return Config{Prototypes: 1024, MaxRows: 20000, Iterations: 20, Holdout: 0.1, Quantile: 0.99, Seed: 1}
}

func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	c.Prototypes = cmp.Or(c.Prototypes, d.Prototypes)
	c.MaxRows = cmp.Or(c.MaxRows, d.MaxRows)
	c.Iterations = cmp.Or(c.Iterations, d.Iterations)
	c.Holdout = cmp.Or(c.Holdout, d.Holdout)
	c.Quantile = cmp.Or(c.Quantile, d.Quantile)
	var errs []error
	if c.Prototypes < 1 || c.Prototypes > 1<<20 {
		errs = append(errs, fmt.Errorf("prototypes %d: must be in [1, %d]", c.Prototypes, 1<<20))
	}
	if c.MaxRows < 1 {
		errs = append(errs, fmt.Errorf("max rows %d: must be positive", c.MaxRows))
	}
	if c.Iterations < 1 {
		errs = append(errs, fmt.Errorf("iterations %d: must be positive", c.Iterations))
	}
	if !(c.Holdout > 0 && c.Holdout < 1) {
		errs = append(errs, fmt.Errorf("holdout %v: must be in (0, 1)", c.Holdout))
	}
	if !(c.Quantile > 0 && c.Quantile < 1) {
		errs = append(errs, fmt.Errorf("quantile %v: must be in (0, 1)", c.Quantile))
	}
	return c, errors.Join(errs...)
}

// ErrNoData is returned (wrapped) by Train when there are too few rows.
var ErrNoData = errors.New("novelty: too few training rows")

// Model is a trained novelty model. It is safe for concurrent use.
type Model struct {
	// mean and inv standardise the dense numeric vector: (v-mean)*inv.
	mean, inv [Dims]float32
	// invProto and invFlag are the inverse standard deviations of the
	// one-hot protocol and flag columns: two rows that differ in protocol
	// p1, p2 are invProto[p1]^2+invProto[p2]^2 apart in squared distance
	// on those columns (likewise for flags).
	invProto [numProtocols]float32
	invFlag  [numFlags]float32
	// start[b]..start[b+1] are the indexes of the prototypes of bucket b
	// (see bucketOf).
	start  [numBuckets + 1]int32
	protos []float32 // len = Dims * prototypes, row-major
	// radius[c] is prototype c's distance to the first prototype of its
	// bucket (the pivot); a bucket's prototypes are sorted by it.
	radius []float32
	// scale maps a distance d to the score d/(d+scale); penalty is added to
	// the distance of a record whose service has no prototypes.
	scale, penalty float32
	// calib holds the largest scores of the held-out normal rows, in
	// decreasing order, and calibN their number (for Threshold).
	calib  []float32
	calibN int64
}

// bucketOf returns the bucket of a (service, protocol, flag) triple.
func bucketOf(s, p, f int) int { return (s*numProtocols+p)*numFlags + f }

// key holds a row's symbolic codes, mapped into range.
type key struct{ s, p, f int }

func keyOf(x []float32) key {
	return key{
		s: code(x[record.Service], numServices, otherService),
		p: code(x[record.ProtocolType], numProtocols, 0),
		f: code(x[record.Flag], numFlags, 0), // 0 is "OTH", as record maps unseen flags
	}
}

func code(v float32, n, def int) int {
	if !(v >= 0 && v < float32(n)) {
		return def
	}
	return int(v)
}

var otherService = slices.Index(record.Services, "other")

// Train fits a model to rows of normal traffic. X is column-major:
// record.NumFeatures columns of equal length, X[j][i] being feature j of row
// i (as in dataset.Dataset.X), symbolic features as vocabulary codes. It
// needs at least two rows, and returns ctx's error if ctx is cancelled.
func Train(ctx context.Context, X [][]float32, cfg Config) (*Model, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("novelty: train: %w", err)
	}
	if len(X) != record.NumFeatures {
		return nil, fmt.Errorf("novelty: train: %d columns, want %d", len(X), record.NumFeatures)
	}
	n := len(X[0])
	for j, c := range X {
		if len(c) != n {
			return nil, fmt.Errorf("novelty: train: column %d has %d rows, column 0 has %d", j, len(c), n)
		}
	}
	if n < 2 {
		return nil, fmt.Errorf("novelty: train: %w: %d rows", ErrNoData, n)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6e6f76656c7479))

	// Dense vectors and keys of every row.
	Z := make([]float32, n*Dims)
	keys := make([]key, n)
	var x [record.NumFeatures]float32
	for i := range n {
		for j := range x {
			x[j] = X[j][i]
		}
		raw(&x, (*[Dims]float32)(Z[i*Dims:]))
		keys[i] = keyOf(x[:])
	}
	m := &Model{}
	m.standardize(Z, keys)

	// Hold out rows for calibration.
	perm := rng.Perm(n)
	nHold := max(1, int(float64(n)*cfg.Holdout))
	hold, fit := perm[:nHold], perm[nHold:]

	// Rows of each bucket.
	byBucket := make([][]int, numBuckets)
	for _, i := range fit {
		k := keys[i]
		b := bucketOf(k.s, k.p, k.f)
		byBucket[b] = append(byBucket[b], i)
	}
	alloc := allocate(byBucket, cfg.Prototypes)

	// k-means per bucket, in parallel, largest first.
	var todo []int
	for b, k := range alloc {
		if k > 0 {
			todo = append(todo, b)
		}
	}
	slices.SortFunc(todo, func(a, b int) int { return len(byBucket[b]) - len(byBucket[a]) })
	protos := make([][]float32, numBuckets)
	seeds := make([]uint64, numBuckets)
	for b := range seeds {
		seeds[b] = rng.Uint64()
	}
	var (
		wg   sync.WaitGroup
		next = make(chan int)
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for b := range next {
				protos[b] = kmeans(ctx, Z, byBucket[b], alloc[b], cfg, seeds[b])
			}
		})
	}
	for _, b := range todo {
		if ctx.Err() != nil {
			break
		}
		next <- b
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("novelty: train: %w", err)
	}
	for b := range numBuckets {
		m.radius = append(m.radius, sortByPivot(protos[b])...)
		m.start[b+1] = m.start[b] + int32(len(protos[b])/Dims)
		m.protos = append(m.protos, protos[b]...)
	}

	// Calibrate on the held-out rows (with exact distances: no saturation).
	m.scale, m.penalty = 1e18, 0
	d := make([]float64, len(hold))
	for k, i := range hold {
		d[k] = m.distance((*[Dims]float32)(Z[i*Dims:]), keys[i])
	}
	slices.Sort(d)
	q := d[min(len(d)-1, int(cfg.Quantile*float64(len(d))))]
	m.scale = float32(max(q, 1e-3))
	m.penalty = m.scale
	scores := make([]float64, len(d))
	for k, v := range d {
		scores[k] = m.fromDistance(v)
	}
	m.setCalibration(scores)
	return m, nil
}

// maxCalibFraction bounds the calibration scores kept: enough for
// false-positive rates up to 20%.
const maxCalibFraction = 0.2

func (m *Model) setCalibration(scores []float64) {
	slices.SortFunc(scores, func(a, b float64) int { return cmp.Compare(b, a) })
	keep := int(math.Ceil(maxCalibFraction*float64(len(scores)))) + 1
	keep = min(keep, len(scores))
	m.calib = make([]float32, keep)
	for i := range keep {
		m.calib[i] = float32(scores[i])
	}
	m.calibN = int64(len(scores))
}

// raw maps a row to its dense numeric vector before standardisation.
func raw(x *[record.NumFeatures]float32, z *[Dims]float32) {
	for k, j := range numericCols {
		v := x[j]
		if !(v >= 0) { // negative or NaN: not a valid record; treat as 0
			v = 0
		}
		if logCol[k] {
			v = float32(math.Log1p(float64(v)))
		}
		z[k] = min(v, math.MaxFloat32)
	}
}

// standardize sets the scaling from the rows of Z and their keys and
// standardises Z in place.
func (m *Model) standardize(Z []float32, keys []key) {
	n := len(keys)
	var sum, sq [Dims]float64
	for i := range n {
		z := Z[i*Dims : (i+1)*Dims]
		for k, v := range z {
			sum[k] += float64(v)
			sq[k] += float64(v) * float64(v)
		}
	}
	for k := range Dims {
		mu := sum[k] / float64(n)
		sd := math.Sqrt(max(sq[k]/float64(n)-mu*mu, 0))
		m.mean[k] = float32(mu)
		m.inv[k] = float32(1 / max(sd, sdFloor))
	}
	for i := range n {
		z := Z[i*Dims : (i+1)*Dims]
		for k := range z {
			z[k] = (z[k] - m.mean[k]) * m.inv[k]
		}
	}
	var protoN [numProtocols]int
	var flagN [numFlags]int
	for _, k := range keys {
		protoN[k.p]++
		flagN[k.f]++
	}
	oneHot := func(c int) float32 {
		p := float64(c) / float64(n)
		return float32(1 / max(math.Sqrt(p*(1-p)), sdFloor))
	}
	for p, c := range protoN {
		m.invProto[p] = oneHot(c)
	}
	for f, c := range flagN {
		m.invFlag[f] = oneHot(c)
	}
}

// allocate shares budget prototypes among the buckets in proportion to the
// square root of their row counts, at least one for each bucket with rows
// and at most one per row.
func allocate(byBucket [][]int, budget int) []int {
	var total float64
	for _, rows := range byBucket {
		total += math.Sqrt(float64(len(rows)))
	}
	alloc := make([]int, len(byBucket))
	for s, rows := range byBucket {
		if len(rows) == 0 {
			continue
		}
		k := int(math.Round(float64(budget) * math.Sqrt(float64(len(rows))) / total))
		alloc[s] = min(max(k, 1), len(rows))
	}
	return alloc
}

// sortByPivot sorts the prototypes P (row-major) after the first (the
// pivot) by their distance to the pivot, and returns those distances.
func sortByPivot(P []float32) []float32 {
	n := len(P) / Dims
	if n == 0 {
		return nil
	}
	type proto struct {
		r float32
		v []float32
	}
	ps := make([]proto, n)
	for c := range ps {
		v := slices.Clone(P[c*Dims : (c+1)*Dims])
		ps[c] = proto{float32(math.Sqrt(dist2(v, P[:Dims]))), v}
	}
	slices.SortStableFunc(ps[1:], func(a, b proto) int { return cmp.Compare(a.r, b.r) })
	r := make([]float32, n)
	for c, p := range ps {
		copy(P[c*Dims:], p.v)
		r[c] = p.r
	}
	return r
}

// kmeans returns up to k prototypes (row-major) of the rows of Z, ordered
// by decreasing cluster size. It returns nil if ctx is cancelled.
//
// It is Lloyd's algorithm after k-means++ seeding, made fast with exact
// triangle-inequality pruning that does not change the result: seeding
// skips a row when the new centre is at least twice as far from the row's
// nearest centre as the row itself, and the iterations keep Hamerly's bounds
// (an upper bound on a row's distance to its centre, a lower bound on its
// distance to any other centre) so that most rows are not compared with any
// centre once the centres settle.
func kmeans(ctx context.Context, Z []float32, rows []int, k int, cfg Config, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 1))
	if len(rows) > cfg.MaxRows {
		rows = slices.Clone(rows)
		rng.Shuffle(len(rows), func(a, b int) { rows[a], rows[b] = rows[b], rows[a] })
		rows = rows[:cfg.MaxRows]
	}
	n := len(rows)
	X := make([]float32, n*Dims) // the rows, contiguous
	for i, r := range rows {
		copy(X[i*Dims:(i+1)*Dims], Z[r*Dims:(r+1)*Dims])
	}
	row := func(i int) []float32 { return X[i*Dims : (i+1)*Dims] }
	centre := func(C []float32, c int32) []float32 { return C[int(c)*Dims : (int(c)+1)*Dims] }

	// k-means++ seeding; stops early when every row sits on a centre.
	// d2[i] is row i's squared distance to its nearest centre so far,
	// assign[i] that centre.
	C := make([]float32, 0, k*Dims)
	C = append(C, row(rng.IntN(n))...)
	d2 := make([]float64, n)
	assign := make([]int32, n)
	for i := range n {
		d2[i] = dist2(row(i), C[:Dims])
	}
	cc := make([]float64, 0, k) // squared distances from the new centre to the others
	for len(C) < k*Dims {
		var total float64
		for _, v := range d2 {
			total += v
		}
		if total <= 0 {
			break
		}
		r := rng.Float64() * total
		pick := n - 1
		for i, v := range d2 {
			if r -= v; r < 0 {
				pick = i
				break
			}
		}
		if d2[pick] == 0 {
			continue
		}
		C = append(C, row(pick)...)
		nc := int32(len(C)/Dims - 1)
		c := centre(C, nc)
		cc = cc[:0]
		for j := range nc {
			cc = append(cc, dist2(c, centre(C, j)))
		}
		for i := range n {
			// |x-c| >= |c-a| - |x-a| >= |x-a| when |c-a| >= 2|x-a|.
			if cc[assign[i]] >= 4*d2[i] {
				continue
			}
			if d := dist2(row(i), c); d < d2[i] {
				d2[i], assign[i] = d, nc
			}
		}
	}
	nc := len(C) / Dims
	upper := make([]float64, n) // >= distance to the assigned centre
	lower := make([]float64, n) // <= distance to any other centre
	for i := range n {
		upper[i] = math.Sqrt(d2[i])
	}
	counts := make([]int, nc)
	sums := make([]float64, nc*Dims)
	move := make([]float64, nc)
	half := make([]float64, nc)       // half the distance to the nearest other centre
	between := make([]float64, nc*nc) // distances between centres
	old := make([]float32, Dims)
	for it := 1; it <= cfg.Iterations; it++ {
		if ctx.Err() != nil {
			return nil
		}
		// Move every centre to the mean of its rows.
		clear(counts)
		clear(sums)
		for i, c := range assign {
			counts[c]++
			s := sums[int(c)*Dims : (int(c)+1)*Dims]
			for k, v := range row(i) {
				s[k] += float64(v)
			}
		}
		var maxMove, secondMove float64
		argMax := -1
		for c := range nc {
			move[c] = 0
			if counts[c] == 0 {
				continue // keep an empty cluster's centre
			}
			p := C[c*Dims : (c+1)*Dims]
			copy(old, p)
			for k := range Dims {
				p[k] = float32(sums[c*Dims+k] / float64(counts[c]))
			}
			move[c] = math.Sqrt(dist2(old, p))
			if move[c] > maxMove {
				maxMove, secondMove, argMax = move[c], maxMove, c
			} else if move[c] > secondMove {
				secondMove = move[c]
			}
		}
		for c := range nc {
			half[c] = math.Inf(1)
		}
		for c := range nc {
			for o := c + 1; o < nc; o++ {
				d := math.Sqrt(dist2(C[c*Dims:(c+1)*Dims], C[o*Dims:(o+1)*Dims]))
				between[c*nc+o], between[o*nc+c] = d, d
				half[c], half[o] = min(half[c], d/2), min(half[o], d/2)
			}
		}
		// Reassign the rows whose bounds do not rule out a change.
		changed := false
		for i := range n {
			a := assign[i]
			upper[i] += move[a]
			if int(a) == argMax {
				lower[i] -= secondMove
			} else {
				lower[i] -= maxMove
			}
			bound := max(half[a], lower[i])
			if upper[i] <= bound {
				continue
			}
			upper[i] = math.Sqrt(dist2(row(i), centre(C, a)))
			if upper[i] <= bound {
				continue
			}
			// Search the other centres; |x-c| >= |a-c| - |x-a| skips
			// those that cannot be nearer, and still bounds their
			// distance from below for lower[i].
			u := upper[i]
			best, bd, sd := a, u, math.Inf(1)
			between := between[int(a)*nc : (int(a)+1)*nc]
			for c := range int32(nc) {
				if c == a {
					continue
				}
				if lb := between[c] - u; lb >= bd {
					sd = min(sd, lb)
					continue
				}
				d := math.Sqrt(dist2(row(i), centre(C, c)))
				if d < bd {
					best, bd, sd = c, d, min(sd, bd)
				} else {
					sd = min(sd, d)
				}
			}
			if best != a {
				changed = true
			}
			assign[i], upper[i], lower[i] = best, bd, sd
		}
		if !changed {
			break
		}
	}
	clear(counts)
	for _, c := range assign {
		counts[c]++
	}
	order := make([]int, nc)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return counts[b] - counts[a] })
	out := make([]float32, 0, nc*Dims)
	for _, c := range order {
		if counts[c] > 0 {
			out = append(out, C[c*Dims:(c+1)*Dims]...)
		}
	}
	return out
}

func dist2(a, b []float32) float64 {
	var s float32
	b = b[:len(a)]
	for k, v := range a {
		d := v - b[k]
		s += d * d
	}
	return float64(s)
}

// NumPrototypes returns the number of prototypes.
func (m *Model) NumPrototypes() int { return len(m.protos) / Dims }

// Kind returns Kind; with Score and MarshalBinary it makes a Model a
// model.Novelty.
func (m *Model) Kind() string { return Kind }

// Score returns the novelty of one row of record.NumFeatures values in
// schema order (symbolic features as vocabulary codes): a number in [0,1),
// higher meaning stranger; 0.5 is the strangeness of the calibration
// quantile of normal rows. It does not allocate. It returns 1 when x has the
// wrong length.
func (m *Model) Score(x []float32) float64 {
	var n Nearest
	return m.ScoreNearest(x, &n)
}

func (m *Model) fromDistance(d float64) float64 {
	if math.IsNaN(d) || math.IsInf(d, 1) {
		return 1
	}
	return d / (d + float64(m.scale))
}

// mismatch returns the squared distance on the one-hot protocol and flag
// columns between rows with keys a and b.
func (m *Model) mismatch(a, b key) float32 {
	var d float32
	if a.p != b.p {
		d += m.invProto[a.p]*m.invProto[a.p] + m.invProto[b.p]*m.invProto[b.p]
	}
	if a.f != b.f {
		d += m.invFlag[a.f]*m.invFlag[a.f] + m.invFlag[b.f]*m.invFlag[b.f]
	}
	return d
}

// saturation is the distance, in units of scale, beyond which Score stops
// looking for the nearest prototype: such a record is far stranger than any
// threshold in use (its score is at least saturation/(saturation+1) = 0.75)
// and searching on would cost the most for the strangest records.
const saturation = 3

// distance returns the distance from the standardised vector z with key k
// to the nearest prototype of the same service (all columns but the service
// count). Past saturation*scale, or when the service has no prototypes, it
// returns instead the distance to the normal rows' mean, but at least
// saturation*scale (plus the penalty for an unseen service).
func (m *Model) distance(z *[Dims]float32, k key) float64 {
	sat := saturation * m.scale
	best, _, _ := m.search(z, k, sat*sat)
	return m.saturate(z, k, best)
}

// saturate returns the distance of the standardised vector z with key k
// from its service's normal traffic given best, the smallest squared
// distance to a prototype of the service, or any value from
// (saturation*scale)^2 on when it is at least that (see distance).
func (m *Model) saturate(z *[Dims]float32, k key, best float32) float64 {
	sat := saturation * m.scale
	if best < sat*sat {
		return math.Sqrt(float64(best))
	}
	var norm float32
	for _, v := range z {
		norm += v * v
	}
	d := max(math.Sqrt(float64(norm)), float64(sat))
	if m.start[bucketOf(k.s, 0, 0)] == m.start[bucketOf(k.s+1, 0, 0)] {
		d += float64(m.penalty)
	}
	return d
}

// search returns the smallest squared distance below bound from z (key k)
// to a prototype of k's service, one-hot mismatch included, with that
// prototype and its key; or bound, -1 and k when none is below bound. The
// record's own bucket comes first: its bound prunes most of the others,
// and a bucket whose mismatch alone reaches the bound is skipped. The
// pruning is exact: it finds the distance an exhaustive search finds.
func (m *Model) search(z *[Dims]float32, k key, bound float32) (d2 float32, best int, bestKey key) {
	d2, best = m.nearest(z, bucketOf(k.s, k.p, k.f), 0, bound)
	bestKey = k
	for p := range numProtocols {
		for f := range numFlags {
			o := key{k.s, p, f}
			b := bucketOf(k.s, p, f)
			if o == k || m.start[b] == m.start[b+1] {
				continue
			}
			if off := m.mismatch(k, o); off < d2 {
				if d, c := m.nearest(z, b, off, d2); c >= 0 {
					d2, best, bestKey = d, c, o
				}
			}
		}
	}
	return d2, best, bestKey
}

// nearest returns min(bound, off + the smallest squared distance from z to
// a prototype of bucket b), and the index of that prototype when it is
// below bound (else -1).
//
// The bucket's first prototype is its pivot, and the prototypes are sorted
// by their distance r to it. By the triangle inequality a prototype is at
// least |dz - r| from z, dz being z's distance to the pivot, so the search
// starts at r = dz and walks outwards, stopping on each side once that
// bound rules out the rest.
func (m *Model) nearest(z *[Dims]float32, b int, off, bound float32) (float32, int) {
	lo, hi := int(m.start[b]), int(m.start[b+1])
	if lo == hi {
		return bound, -1
	}
	best := -1
	d0 := dist2(z[:], m.protos[lo*Dims:(lo+1)*Dims])
	if off+float32(d0) < bound {
		bound, best = off+float32(d0), lo
	}
	dz := float32(math.Sqrt(d0))
	r := m.radius
	// First prototype whose radius is >= dz.
	i, j := lo+1, hi
	for i < j {
		h := int(uint(i+j) >> 1)
		if r[h] < dz {
			i = h + 1
		} else {
			j = h
		}
	}
	up, down := i, i-1
	for up < hi || down > lo {
		var c int
		var gap float32
		gu, gd := float32(math.MaxFloat32), float32(math.MaxFloat32)
		if up < hi {
			gu = r[up] - dz
		}
		if down > lo {
			gd = dz - r[down]
		}
		if gu <= gd {
			c, gap = up, gu
			up++
		} else {
			c, gap = down, gd
			down--
		}
		if off+gap*gap >= bound {
			break // the nearer side is ruled out, hence both are
		}
		p := (*[Dims]float32)(m.protos[c*Dims:])
		if d := off + partialDist2(z, p, bound-off); d < bound {
			bound, best = d, c
		}
	}
	return bound, best
}

// partialDist2 returns the squared distance between z and p, or a value at
// least bound as soon as the partial sum reaches bound.
func partialDist2(z, p *[Dims]float32, bound float32) float32 {
	var s float32
	for k := 0; k < Dims; k += Dims / 4 { // Dims = 38 = 4*9 + 2
		for i := k; i < min(k+Dims/4, Dims); i++ {
			d := z[i] - p[i]
			s += d * d
		}
		if s >= bound {
			return s
		}
	}
	return s
}

// Threshold returns the score from which the model flags at most a fraction
// fpr of the held-out normal rows it was calibrated on: flagging scores >=
// the returned value. fpr must be in (0, 0.2].
func (m *Model) Threshold(fpr float64) (float64, error) {
	if !(fpr > 0 && fpr <= maxCalibFraction) {
		return 0, fmt.Errorf("novelty: false-positive rate %v: must be in (0, %v]", fpr, maxCalibFraction)
	}
	k := int(fpr * float64(m.calibN)) // scores allowed at or above the threshold
	if k >= len(m.calib) {
		k = len(m.calib) - 1
	}
	if k < 0 {
		return 1, nil
	}
	return thresholdAbove(float64(m.calib[k])), nil
}

// Threshold returns the smallest score t such that at most a fraction fpr
// of scores (say, of held-out normal rows) are >= t, for a rule that flags
// scores >= t. fpr must be in [0, 1); scores is not modified.
func Threshold(scores []float64, fpr float64) (float64, error) {
	if !(fpr >= 0 && fpr < 1) {
		return 0, fmt.Errorf("novelty: false-positive rate %v: must be in [0, 1)", fpr)
	}
	if len(scores) == 0 {
		return 0, fmt.Errorf("novelty: threshold: %w: no scores", ErrNoData)
	}
	s := slices.Clone(scores)
	slices.SortFunc(s, func(a, b float64) int { return cmp.Compare(b, a) })
	k := int(fpr * float64(len(s)))
	return thresholdAbove(s[k]), nil
}

// thresholdAbove returns the smallest threshold that leaves v below it.
func thresholdAbove(v float64) float64 {
	return math.Nextafter(v, math.Inf(1))
}
