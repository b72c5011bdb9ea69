package forest

import (
	"fmt"
)

// Contributions explains the forest's probability of class for the row x
// relative to a reference row ref (say, typical normal traffic): it returns
// one value per feature, the feature's exact Shapley value in the game
// whose players are the features and whose value for a set S of them is
// the probability the forest gives a row taking the features of S from x
// and the others from ref ("baseline Shapley"). The values sum to
// P(class | x) - P(class | ref); a positive value means that x's value of
// the feature raised the probability.
//
// Each tree is walked once along the paths that x, ref and their mixtures
// take (branching only where x and ref part ways on a feature not yet
// decided), so the cost grows with the number of features on which x and
// ref disagree along a path, not with 2^features. It allocates and is
// meant for the few rows worth explaining, not for scoring. It panics if a
// length or class is out of range.
func (m *Model) Contributions(x, ref []float32, class int) []float64 {
	if len(x) != m.nFeatures || len(ref) != m.nFeatures || class < 0 || class >= m.nClasses {
		panic(fmt.Sprintf("forest: Contributions with %d and %d features, class %d; model has %d features, %d classes",
			len(x), len(ref), class, m.nFeatures, m.nClasses))
	}
	// A feature is decided at most once on a path: fromX and fromRef
	// never outgrow nFeatures.
	from := make([]int32, 2*m.nFeatures)
	s := shapWalk{m: m, x: x, ref: ref, class: int32(class),
		phi: make([]float64, m.nFeatures), side: make([]int8, m.nFeatures),
		fromX: from[:0:m.nFeatures], fromRef: from[m.nFeatures:m.nFeatures],
		mask: m.classes, bit: 1 << min(class, 63)}
	for _, r := range m.roots {
		s.node(r, 0, 0)
	}
	scale := 1 / float64(len(m.roots))
	for j := range s.phi {
		s.phi[j] *= scale
	}
	return s.phi
}

// shapWalk is the state of Contributions' walk.
type shapWalk struct {
	m      *Model
	x, ref []float32
	class  int32
	phi    []float64
	// side[j] is +1 when feature j is taken from x on the current path,
	// -1 when from ref, 0 when undecided; fromX and fromRef list them.
	side           []int8
	fromX, fromRef []int32
	// mask is Model.classes and bit the class's bit in it: a subtree
	// without the bit adds nothing.
	mask []uint64
	bit  uint64
}

// node walks the subtree of node i; a and b are len(fromX), len(fromRef).
// It follows the path down to a leaf in a loop and recurses only where the
// path splits in two.
func (s *shapWalk) node(i int32, a, b int) {
	nodes, x, ref := s.m.nodes, s.x, s.ref
	for {
		if s.mask[i]&s.bit == 0 {
			return // every leaf below gives the class probability 0
		}
		nd := nodes[i]
		if nd.feat < 0 {
			s.leaf(nd, a, b)
			return
		}
		f := nd.feat
		gx, gr := x[f] > nd.thr, ref[f] > nd.thr
		switch {
		case gx == gr, s.side[f] > 0:
			i = nd.next + b2i(gx)
		case s.side[f] < 0:
			i = nd.next + b2i(gr)
		default:
			s.side[f] = 1
			s.fromX = append(s.fromX, f)
			s.node(nd.next+b2i(gx), a+1, b)
			s.fromX = s.fromX[:len(s.fromX)-1]
			s.side[f] = -1
			s.fromRef = append(s.fromRef, f)
			s.node(nd.next+b2i(gr), a, b+1)
			s.fromRef = s.fromRef[:len(s.fromRef)-1]
			s.side[f] = 0
			return
		}
	}
}

// leaf adds the leaf's share: its probability v of the class counts for
// the coalitions holding every feature of fromX and none of fromRef, so
// (over random orders of these a+b features) a feature of fromX gains v
// when it comes last of fromX and before all of fromRef, with probability
// (a-1)! b! / (a+b)!, and a feature of fromRef loses v with probability
// a! (b-1)! / (a+b)!.
func (s *shapWalk) leaf(nd node, a, b int) {
	if a+b == 0 {
		return
	}
	var v float64
	for _, e := range s.m.leaves[nd.next : nd.next-nd.feat] {
		if e.class == s.class {
			v = float64(e.p)
		}
	}
	if v == 0 {
		return
	}
	if a > 0 {
		w := v * share(a-1, b)
		for _, f := range s.fromX {
			s.phi[f] += w
		}
	}
	if b > 0 {
		w := v * share(a, b-1)
		for _, f := range s.fromRef {
			s.phi[f] -= w
		}
	}
}

// shares[p][q] is orderShare(p, q, p+q+1) for the p and q of paths that
// decide fewer than maxShared features.
const maxShared = 64

var shares = func() (t [maxShared][maxShared]float64) {
	for p := range maxShared {
		for q := range maxShared - p {
			t[p][q] = orderShare(p, q, p+q+1)
		}
	}
	return t
}()

// share returns p! q! / (p+q+1)!.
func share(p, q int) float64 {
	if p+q < maxShared {
		return shares[p][q]
	}
	return orderShare(p, q, p+q+1)
}

// orderShare returns p! q! / n!.
func orderShare(p, q, n int) float64 {
	r := 1.0
	// p! q! / n! with n = p+q+1: divide n! by p! step by step.
	for k := p + 1; k <= n; k++ {
		r /= float64(k)
	}
	for k := 2; k <= q; k++ {
		r *= float64(k)
	}
	return r
}
