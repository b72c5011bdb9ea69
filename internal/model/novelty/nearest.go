package novelty

import (
	"math"

	"github.com/netsentinel/netsentinel/internal/record"
)

// Nearest carries what a search for the normal prototype nearest to one row
// found, so that scoring the row, filling in its absent features from
// typical normal traffic and explaining its verdict search once between
// them. Pass the same Nearest with the same row to ScoreNearest,
// TypicalNearest and ExplainNearest; each searches only when the ones
// before have not found what it needs. Reset it before using it for
// another row (or for the same row with changed values). The zero value is
// ready for use.
type Nearest struct {
	state nearestState
	z     [Dims]float32 // the row standardised
	k     key           // the row's symbolic codes
	// d2 is the squared distance to proto (mismatch included), or the
	// search's bound when proto < 0.
	d2       float32
	proto    int // -1 when none was found below the bound
	protoKey key
}

type nearestState uint8

const (
	// searchNone: nothing searched yet.
	searchNone nearestState = iota
	// searchSaturated: searched up to the saturation distance (what a
	// score needs); proto is the nearest prototype when it is >= 0.
	searchSaturated
	// searchExact: searched without a bound; proto is the nearest
	// prototype, or -1 when the service has none.
	searchExact
)

// Reset makes n empty, as for a new row.
func (n *Nearest) Reset() { n.state = searchNone }

// standardise sets n's vector and key from x and empties its search.
func (m *Model) standardise(x []float32, n *Nearest) {
	raw((*[record.NumFeatures]float32)(x), &n.z)
	for d := range n.z {
		n.z[d] = (n.z[d] - m.mean[d]) * m.inv[d]
	}
	n.k = keyOf(x)
	n.state, n.proto = searchNone, -1
}

// ScoreNearest is Score, keeping its search in n (or taking it from n when
// n holds one for x).
func (m *Model) ScoreNearest(x []float32, n *Nearest) float64 {
	if len(x) != record.NumFeatures {
		return 1
	}
	m.saturated(x, n)
	return m.fromDistance(m.saturate(&n.z, n.k, n.d2))
}

// saturated makes n hold at least a search up to the saturation distance.
func (m *Model) saturated(x []float32, n *Nearest) {
	if n.state != searchNone {
		return
	}
	m.standardise(x, n)
	sat := saturation * m.scale
	n.d2, n.proto, n.protoKey = m.search(&n.z, n.k, sat*sat)
	n.state = searchSaturated
}

// exact makes n hold the nearest prototype, searching without a bound if
// the search it holds stopped short of it. A saturated search that found a
// prototype found the nearest one: the pruning is exact.
func (m *Model) exact(x []float32, n *Nearest) {
	switch {
	case n.state == searchExact, n.state == searchSaturated && n.proto >= 0:
		return
	case n.state == searchNone:
		m.standardise(x, n)
	}
	n.d2, n.proto, n.protoKey = m.search(&n.z, n.k, math.MaxFloat32)
	n.state = searchExact
}
