package novelty

import (
	"cmp"
	"math"
	"slices"

	"github.com/netsentinel/netsentinel/internal/record"
)

// Contribution is one feature's part in a record's novelty.
type Contribution struct {
	// Feature is the feature's index in record.Features.
	Feature int
	// Share is the feature's fraction of the squared standardised distance
	// to the nearest normal prototype (the shares of all features sum to 1).
	Share float64
}

// Explain tells why x (a row as for Score) is novel: it returns the features
// that contribute most to its distance from the nearest normal prototype of
// its service, largest first, at most n of them. For a service without
// normal rows, the service comes first with share 1 and then the features
// furthest from the normal rows' mean. Unlike Score it allocates; it is
// meant for the few records that get flagged.
func (m *Model) Explain(x []float32, n int) []Contribution {
	var nn Nearest
	return m.ExplainNearest(x, &nn, n)
}

// ExplainNearest is Explain, taking the nearest prototype from nn when nn
// holds a search for x that found it (see Nearest), else searching and
// keeping the search in nn.
func (m *Model) ExplainNearest(x []float32, nn *Nearest, n int) []Contribution {
	if len(x) != record.NumFeatures || n <= 0 {
		return nil
	}
	m.exact(x, nn)
	z, k, bestProto, bestKey := &nn.z, nn.k, nn.proto, nn.protoKey
	var contrib []Contribution
	var total float64
	add := func(feature int, v float64) {
		if v > 0 {
			contrib = append(contrib, Contribution{feature, v})
			total += v
		}
	}
	var p [Dims]float32 // the nearest prototype, or the mean (0) for an unseen service
	if bestProto >= 0 {
		copy(p[:], m.protos[bestProto*Dims:])
		if k.p != bestKey.p {
			add(record.ProtocolType, float64(m.invProto[k.p]*m.invProto[k.p]+m.invProto[bestKey.p]*m.invProto[bestKey.p]))
		}
		if k.f != bestKey.f {
			add(record.Flag, float64(m.invFlag[k.f]*m.invFlag[k.f]+m.invFlag[bestKey.f]*m.invFlag[bestKey.f]))
		}
	}
	for d, j := range numericCols {
		diff := float64(z[d] - p[d])
		add(j, diff*diff)
	}
	slices.SortStableFunc(contrib, func(a, b Contribution) int { return cmp.Compare(b.Share, a.Share) })
	for i := range contrib {
		contrib[i].Share /= total
	}
	if bestProto < 0 {
		contrib = append([]Contribution{{record.Service, 1}}, contrib...)
	}
	return contrib[:min(n, len(contrib))]
}

// Typical writes to out (len record.NumFeatures) the normal traffic most
// like x (a row as for Score): the nearest normal prototype of x's
// service, mapped back to feature values (counts and byte counts back from
// the log scale; a prototype is a mean of normal rows, so counts need not
// be whole). The service is x's; protocol and flag are the prototype's.
// For a service without normal rows it writes the normal rows' mean (on
// the log scale) with x's symbolic features and returns false. It
// allocates nothing.
func (m *Model) Typical(x, out []float32) bool {
	var n Nearest
	return m.TypicalNearest(x, &n, out)
}

// TypicalNearest is Typical, taking the nearest prototype from n when n
// holds a search for x that found it (see Nearest), else searching and
// keeping the search in n.
func (m *Model) TypicalNearest(x []float32, n *Nearest, out []float32) bool {
	if len(x) != record.NumFeatures || len(out) != record.NumFeatures {
		return false
	}
	m.exact(x, n)
	best, bestKey := n.proto, n.protoKey
	var p [Dims]float32 // standardised; the mean is 0
	if best >= 0 {
		copy(p[:], m.protos[best*Dims:])
	}
	for d, j := range numericCols {
		v := float64(p[d]/m.inv[d] + m.mean[d])
		if logCol[d] {
			v = math.Expm1(v)
		}
		out[j] = float32(max(v, 0))
	}
	out[record.Service] = x[record.Service]
	out[record.ProtocolType] = float32(bestKey.p)
	out[record.Flag] = float32(bestKey.f)
	return best >= 0
}
