// Package dataset loads files of connection records (CSV lines or JSON
// objects, plain or gzip-compressed) into a column-major matrix for training
// and evaluation.
//
// Loading runs one reader goroutine that cuts the input into chunks at line
// boundaries and a pool of GOMAXPROCS parser goroutines; all of them have
// ended when Load returns.
package dataset

import (
	"fmt"
	"math"
	"strconv"

	"github.com/netsentinel/netsentinel/internal/record"
)

// Dataset is a column-major matrix of records: X[j][i] is feature j of row
// i. Symbolic features hold their vocabulary index.
type Dataset struct {
	X [record.NumFeatures][]float32
	// Labels holds each row's label ("normal" or an attack name), or "" when
	// the input had none.
	Labels []string
	// Skipped counts malformed lines skipped under Options.SkipBad.
	Skipped int
	// Source names where the rows came from, for messages and model files.
	Source string
}

// Len returns the number of rows.
func (d *Dataset) Len() int { return len(d.Labels) }

// Row copies the features of row i into dst.
func (d *Dataset) Row(i int, dst *[record.NumFeatures]float32) {
	for j := range dst {
		dst[j] = d.X[j][i]
	}
}

// Append adds one decoded record as a row.
func (d *Dataset) Append(r *record.Record) {
	for j := range d.X {
		d.X[j] = append(d.X[j], float32(r.Features[j]))
	}
	d.Labels = append(d.Labels, r.Label)
}

// Subset returns a new dataset holding the given rows, in that order.
func (d *Dataset) Subset(rows []int) *Dataset {
	s := &Dataset{Labels: make([]string, len(rows)), Source: d.Source}
	for j := range s.X {
		col, src := make([]float32, len(rows)), d.X[j]
		for k, i := range rows {
			col[k] = src[i]
		}
		s.X[j] = col
	}
	for k, i := range rows {
		s.Labels[k] = d.Labels[i]
	}
	return s
}

// Concat appends the rows of other to d.
func (d *Dataset) Concat(other *Dataset) {
	for j := range d.X {
		d.X[j] = append(d.X[j], other.X[j]...)
	}
	d.Labels = append(d.Labels, other.Labels...)
	d.Skipped += other.Skipped
	if d.Source == "" {
		d.Source = other.Source
	} else if other.Source != "" {
		d.Source += "+" + other.Source
	}
}

// Record returns row i as a record (label included; difficulty and
// identity unknown).
// A non-integer value becomes the float64 of its shortest float32 decimal,
// so a rate read as 0.17 comes back as 0.17, not 0.17000000178813934, and
// encodes as it was read.
func (d *Dataset) Record(i int) record.Record {
	// A Dataset keeps neither difficulty nor identity: both unknown, as a
	// decoder leaves them for a line without them.
	r := record.Record{Label: d.Labels[i], Difficulty: -1, ID: record.Identity{SrcPort: -1, DstPort: -1}}
	for j := range r.Features {
		r.Features[j] = widen(d.X[j][i])
	}
	return r
}

// widen converts x to the float64 nearest to the shortest decimal that
// reads back as x.
func widen(x float32) float64 {
	f := float64(x)
	if f == math.Trunc(f) || math.IsInf(f, 0) || math.IsNaN(f) {
		return f
	}
	var buf [32]byte
	w, err := strconv.ParseFloat(string(strconv.AppendFloat(buf[:0], f, 'g', -1, 32)), 64)
	if err != nil {
		return f
	}
	return w
}

// ParseError is a malformed line in a file.
type ParseError struct {
	File string
	Line int
	Err  error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }
