package model

import (
	"fmt"
	"math"
	"strings"

	"github.com/netsentinel/netsentinel/internal/record"
)

// ContentMask has the bits of KDD's 13 content features (hot through
// is_guest_login): what a connection's payload says about a login session.
// Connections extracted from packets or Zeek logs lack most of them.
const ContentMask uint64 = (1<<(record.IsGuestLogin+1) - 1) &^ (1<<record.Hot - 1)

// Complete fills in the features of r that its input left out (r.Absent,
// see record.DecodePartial), so that the Detector can score a connection
// extracted from packets or a Zeek log with the same model as a full KDD
// record. Only content features (ContentMask) can be filled in: each takes
// the value of the normal traffic nearest to the record among the novelty
// part's prototypes of the record's service, rounded to an integer as
// every content feature is. The classifier then judges the record on what
// its source did show, as if its session content were ordinary. Complete
// clears r.Absent when it succeeds. It returns an error naming the missing
// features when some are not content features, or when the Detector has
// no novelty part to take normal values from.
func (d *Detector) Complete(r *record.Record) error {
	if r.Absent == 0 {
		return nil
	}
	s := d.getScratch()
	defer d.scratch.Put(s)
	for i, v := range r.Features {
		s.x[i] = float32(v)
	}
	return d.complete(r, s)
}

// complete is Complete for a record with absent features whose values are
// in s.x. It updates s.x with r, and keeps the novelty part's search in s
// while it still holds for the completed s.x (when filling in left every
// value as it was).
func (d *Detector) complete(r *record.Record, s *scratch) error {
	if r.Absent&^ContentMask != 0 {
		return fmt.Errorf("%w (only content features can be filled in: %s are not)",
			record.AbsentError(r.Absent), featureNames(r.Absent&^ContentMask))
	}
	tf, ok := d.novelty.(typicalFinder)
	if !ok {
		return fmt.Errorf("%w (the model has no novelty part to fill in content features from)", record.AbsentError(r.Absent))
	}
	x, typ := &s.x, &s.typ
	tf.TypicalNearest(x[:], &s.n, typ[:])
	changed := false
	for i := range record.NumFeatures {
		if r.Absent&(1<<i) != 0 {
			v := math.Round(float64(typ[i]))
			r.Features[i] = v
			if float32(v) != x[i] {
				x[i], changed = float32(v), true
			}
		}
	}
	if changed {
		s.n.Reset()
	}
	r.Absent = 0
	return nil
}

// featureNames lists the names of the features whose bits are set in mask.
func featureNames(mask uint64) string {
	var names []string
	for i := range record.NumFeatures {
		if mask&(1<<i) != 0 {
			names = append(names, record.Features[i].Name)
		}
	}
	return strings.Join(names, ", ")
}
