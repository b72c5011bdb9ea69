package cli

import (
	"math"
	"strconv"

	"github.com/netsentinel/netsentinel/internal/model"
	"github.com/netsentinel/netsentinel/internal/record"
)

// predictLine is one line of predict's output: a verdict, or the error of
// a malformed input line (Line and Error only). AppendJSON writes it; the
// struct tags say the same for encoding/json, which decodes it.
type predictLine struct {
	Line                int            `json:"line"`
	Error               string         `json:"error,omitempty"`
	TS                  float64        `json:"ts,omitempty"`
	SrcIP               string         `json:"src_ip,omitempty"`
	SrcPort             *int32         `json:"src_port,omitempty"`
	DstIP               string         `json:"dst_ip,omitempty"`
	DstPort             *int32         `json:"dst_port,omitempty"`
	UID                 string         `json:"uid,omitempty"`
	Label               string         `json:"label,omitempty"`
	Attack              string         `json:"attack,omitempty"`
	Category            string         `json:"category,omitempty"`
	Binary              string         `json:"binary,omitempty"`
	IsAttack            *bool          `json:"is_attack,omitempty"`
	Probability         *float64       `json:"probability,omitempty"`
	CategoryProbability *float64       `json:"category_probability,omitempty"`
	AttackProbability   *float64       `json:"attack_probability,omitempty"`
	Novelty             *float64       `json:"novelty,omitempty"`
	FlaggedBy           string         `json:"flagged_by,omitempty"`
	NoveltyFeatures     []string       `json:"novelty_features,omitempty"`
	Explanation         []model.Reason `json:"explanation,omitempty"`
	// FilledIn counts the content features the input left out and the
	// model filled in with normal values (model.Detector.Complete).
	FilledIn int `json:"filled_in,omitempty"`
}

// newPredictLine returns the output line of verdict v on input line line,
// with the record's own label (if any) and the features that made it novel
// (if any).
func newPredictLine(line int, id record.Identity, label string, v *model.Verdict, noveltyFeatures []string) *predictLine {
	binary := "normal"
	if v.IsAttack {
		binary = "attack"
	}
	l := &predictLine{
		Line: line, Label: label, Attack: v.Attack, Category: v.Category.String(), Binary: binary,
		IsAttack: &v.IsAttack, Probability: &v.Probability, CategoryProbability: &v.CategoryProbability,
		AttackProbability: &v.AttackProbability, Novelty: &v.Novelty, FlaggedBy: v.FlaggedBy,
		NoveltyFeatures: noveltyFeatures,
		TS:              id.TS, SrcIP: id.SrcIP, DstIP: id.DstIP, UID: id.UID,
	}
	if id.SrcPort >= 0 {
		l.SrcPort = &id.SrcPort
	}
	if id.DstPort >= 0 {
		l.DstPort = &id.DstPort
	}
	return l
}

// identity returns the connection identity l carries (ports -1 when absent).
func (l *predictLine) identity() record.Identity {
	id := record.Identity{TS: l.TS, SrcIP: l.SrcIP, DstIP: l.DstIP, UID: l.UID, SrcPort: -1, DstPort: -1}
	if l.SrcPort != nil {
		id.SrcPort = *l.SrcPort
	}
	if l.DstPort != nil {
		id.DstPort = *l.DstPort
	}
	return id
}

// AppendJSON appends l as one JSON object and a newline. An error line
// holds only "line" and "error". The probabilities and the novelty score
// are written with 6 significant digits (the models compute in float32);
// NaN and ±Inf, which JSON cannot hold, are written as null. For a verdict
// every field is written except the empty label, flagged_by and
// novelty_features.
func (l *predictLine) AppendJSON(b []byte) []byte {
	b = append(b, `{"line":`...)
	b = strconv.AppendInt(b, int64(l.Line), 10)
	if l.Error != "" {
		b = append(b, `,"error":`...)
		b = record.AppendJSONString(b, l.Error)
		return append(b, "}\n"...)
	}
	b = record.AppendJSONIdentity(b, l.identity())
	if l.Label != "" {
		b = append(b, `,"label":`...)
		b = record.AppendJSONString(b, l.Label)
	}
	b = append(b, `,"attack":`...)
	b = record.AppendJSONString(b, l.Attack)
	b = append(b, `,"category":`...)
	b = record.AppendJSONString(b, l.Category)
	b = append(b, `,"binary":`...)
	b = record.AppendJSONString(b, l.Binary)
	b = append(b, `,"is_attack":`...)
	b = strconv.AppendBool(b, l.IsAttack != nil && *l.IsAttack)
	for _, f := range []struct {
		key string
		v   *float64
	}{{`,"probability":`, l.Probability}, {`,"category_probability":`, l.CategoryProbability},
		{`,"attack_probability":`, l.AttackProbability}, {`,"novelty":`, l.Novelty}} {
		b = append(b, f.key...)
		b = appendJSONFloat(b, f.v)
	}
	if l.FilledIn > 0 {
		b = append(b, `,"filled_in":`...)
		b = strconv.AppendInt(b, int64(l.FilledIn), 10)
	}
	if l.FlaggedBy != "" {
		b = append(b, `,"flagged_by":`...)
		b = record.AppendJSONString(b, l.FlaggedBy)
	}
	if len(l.NoveltyFeatures) > 0 {
		b = append(b, `,"novelty_features":[`...)
		for i, f := range l.NoveltyFeatures {
			if i > 0 {
				b = append(b, ',')
			}
			b = record.AppendJSONString(b, f)
		}
		b = append(b, ']')
	}
	if len(l.Explanation) > 0 {
		b = append(b, `,"explanation":`...)
		b = model.AppendReasons(b, l.Explanation)
	}
	return append(b, "}\n"...)
}

// appendJSONFloat appends *p with 6 significant digits, or null for a nil
// pointer, NaN or an infinity.
func appendJSONFloat(b []byte, p *float64) []byte {
	if p == nil || math.IsNaN(*p) || math.IsInf(*p, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, *p, 'g', 6, 64)
}
