package model

import (
	"cmp"
	"math"
	"slices"
	"strconv"

	"github.com/netsentinel/netsentinel/internal/model/forest"
	"github.com/netsentinel/netsentinel/internal/model/novelty"
	"github.com/netsentinel/netsentinel/internal/record"
)

// Reason is one feature that drove a verdict.
type Reason struct {
	// Feature is the feature's name (record.Features).
	Feature string `json:"feature"`
	// Value is the record's value of the feature (a vocabulary code for
	// protocol_type, service and flag).
	Value float64 `json:"value"`
	// Typical is the value typical of normal traffic of the record's
	// service: the nearest normal prototype's (see novelty.Model.Typical).
	Typical float64 `json:"typical"`
	// Contribution is the feature's part in the verdict. For a record the
	// classifier flagged, it is how much the record's value, instead of
	// the typical one, raised the forest's probability of an attack (the
	// feature's Shapley value; the contributions of all features add up
	// to the attack probability of the record minus that of the typical
	// normal record). For a record the novelty part flagged, it is the
	// feature's share of the distance to the nearest normal prototype.
	Contribution float64 `json:"contribution"`
}

// typicalFinder is what Explain and Complete need from a novelty part
// (package novelty's).
type typicalFinder interface {
	TypicalNearest(x []float32, n *novelty.Nearest, out []float32) bool
	ExplainNearest(x []float32, n *novelty.Nearest, k int) []novelty.Contribution
}

// Explain returns up to n features that drove the verdict v on the row x (as
// for Predict), most telling first, or nil for a normal verdict or when the
// Detector cannot explain it: classifier-flagged verdicts need a forest and
// a novelty part (it supplies the typical normal record), novelty-flagged
// ones a novelty part. It allocates and walks every tree along the paths of
// x and the typical record, about as costly as ten Predict calls, so it is
// meant for alerts only. Analyze scores and explains a record for less.
func (d *Detector) Explain(x []float32, v Verdict, n int) []Reason {
	s := d.getScratch()
	defer d.scratch.Put(s)
	return d.explain(x, v, n, s)
}

// explain is Explain with the scratch s, whose search (for x) it uses.
func (d *Detector) explain(x []float32, v Verdict, n int, s *scratch) []Reason {
	if len(x) != record.NumFeatures || n <= 0 || !v.IsAttack {
		return nil
	}
	tf, ok := d.novelty.(typicalFinder)
	if !ok {
		return nil
	}
	typ := &s.typ
	tf.TypicalNearest(x, &s.n, typ[:])
	var rs []Reason
	switch v.FlaggedBy {
	case "novelty":
		cs := tf.ExplainNearest(x, &s.n, n)
		if len(cs) > 0 {
			rs = make([]Reason, 0, len(cs))
		}
		for _, c := range cs {
			rs = append(rs, Reason{Feature: record.Features[c.Feature].Name,
				Value: float64(x[c.Feature]), Typical: float64(typ[c.Feature]), Contribution: c.Share})
		}
	case "classifier":
		f, ok := d.clf.(*forest.Model)
		if !ok || d.normal < 0 {
			return nil
		}
		phi := f.Contributions(x, typ[:], d.normal)
		all := s.reasons[:0]
		for j, p := range phi {
			if p < 0 { // lowered P(normal): raised P(attack)
				all = append(all, Reason{Feature: record.Features[j].Name,
					Value: float64(x[j]), Typical: float64(typ[j]), Contribution: -p})
			}
		}
		slices.SortStableFunc(all, func(a, b Reason) int { return cmp.Compare(b.Contribution, a.Contribution) })
		if len(all) > 0 {
			rs = slices.Clone(all[:min(n, len(all))])
		}
	}
	return rs
}

// Analyze fills in the features r left out (as Complete does), scores r
// (as PredictRecord) and, when the verdict is an attack and n > 0, explains
// it with up to n reasons (as Explain): the same results as those three
// calls, for less, because it searches for the normal traffic nearest to r
// once where they would search up to three times (twice when filling in
// changed r's values). The reasons of a novelty verdict name the features
// NoveltyFeatures would, in the same order. It fails, leaving r as it was,
// when Complete would.
func (d *Detector) Analyze(r *record.Record, n int) (Verdict, []Reason, error) {
	s := d.getScratch()
	defer d.scratch.Put(s)
	for j, v := range r.Features {
		s.x[j] = float32(v)
	}
	if r.Absent != 0 {
		if err := d.complete(r, s); err != nil {
			return Verdict{}, nil, err
		}
	}
	v := d.predict(s.x[:], s)
	var rs []Reason
	if n > 0 && v.IsAttack {
		rs = d.explain(s.x[:], v, n, s)
	}
	return v, rs, nil
}

// AppendReasons appends rs as a JSON array of Reason objects (as
// encoding/json would write them, numbers rounded to 6 significant digits)
// without reflection, for writers of alerts.
func AppendReasons(dst []byte, rs []Reason) []byte {
	dst = append(dst, '[')
	for i, r := range rs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"feature":`...)
		dst = strconv.AppendQuote(dst, r.Feature)
		dst = append(dst, `,"value":`...)
		dst = appendNumber(dst, r.Value)
		dst = append(dst, `,"typical":`...)
		dst = appendNumber(dst, r.Typical)
		dst = append(dst, `,"contribution":`...)
		dst = appendNumber(dst, r.Contribution)
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

func appendNumber(dst []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(dst, "null"...)
	}
	return strconv.AppendFloat(dst, v, 'g', 6, 64)
}
