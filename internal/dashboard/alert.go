package dashboard

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/netsentinel/netsentinel/internal/event"
	"github.com/netsentinel/netsentinel/internal/record"
)

// storedAlert is one alert in the ring: the fields the table shows and the
// filters test, and the message as it came, for the detail view.
type storedAlert struct {
	id                         uint64
	time                       time.Time
	attack, category           string
	flaggedBy, instance, label string
	probability, novelty       float64
	attackProbability          float64
	src, dst, uid              string
	srcPort, dstPort           int32
	topic                      string
	partition                  int32
	offset                     int64
	// search is the lower-cased text the text filter looks in.
	search string
	raw    []byte
	// drivers names the features that drove the verdict, from decoding to
	// addAlert, which counts them and drops the list.
	drivers []string
}

// alertHead is the part of an alert message decoded on arrival. The
// connection's identity (event.Connection's keys, which these fields hide)
// is decoded field by field so that a producer writing a port as a string
// does not lose the alert.
type alertHead struct {
	event.Alert
	Features json.RawMessage `json:"features"`
	SrcIP    json.RawMessage `json:"src_ip"`
	DstIP    json.RawMessage `json:"dst_ip"`
	SrcPort  json.RawMessage `json:"src_port"`
	DstPort  json.RawMessage `json:"dst_port"`
	TS       json.RawMessage `json:"ts"`
	UID      json.RawMessage `json:"uid"`
	// NoveltyFeatures and Explanation are read by featureNames and
	// reasons, which skip entries of other shapes.
	NoveltyFeatures json.RawMessage `json:"novelty_features"`
	Explanation     json.RawMessage `json:"explanation"`
}

// maxDrivers is how many of an alert's explanation features count toward
// the spikes' features.
const maxDrivers = 3

// errNotObject is returned for alert messages that are not JSON objects.
var errNotObject = errors.New("not a JSON object")

// decodeAlert decodes an alert message. The identity fields are optional
// and read leniently: an address must be a string, a port a number or a
// numeric string; anything else leaves that field unknown (the detail view
// still shows the message as it came).
func decodeAlert(raw []byte, intern func(string) string) (*storedAlert, error) {
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, errNotObject
	}
	var h alertHead
	if err := json.Unmarshal(raw, &h); err != nil {
		return nil, err
	}
	a := &storedAlert{
		time:              h.Time,
		attack:            intern(h.Attack),
		category:          intern(h.Category),
		flaggedBy:         intern(h.FlaggedBy),
		instance:          intern(h.Instance),
		label:             intern(h.Label),
		probability:       finite(h.Probability),
		novelty:           finite(h.Novelty),
		attackProbability: finite(h.AttackProbability),
		src:               jsonString(h.SrcIP),
		dst:               jsonString(h.DstIP),
		srcPort:           jsonPort(h.SrcPort),
		dstPort:           jsonPort(h.DstPort),
		uid:               jsonString(h.UID),
		topic:             intern(h.Topic),
		partition:         h.Partition,
		offset:            h.Offset,
		raw:               raw,
	}
	if a.category == "" {
		a.category = intern(record.CategoryOf(a.attack).String())
	}
	var sb strings.Builder
	for _, s := range []string{a.attack, a.category, a.flaggedBy, a.label, a.instance, a.src, a.dst, a.uid} {
		sb.WriteString(strings.ToLower(s))
		sb.WriteByte('\n')
	}
	novel := featureNames(h.NoveltyFeatures)
	for _, s := range novel {
		sb.WriteString(strings.ToLower(s))
		sb.WriteByte('\n')
	}
	a.search = sb.String()
	a.drivers = featureNames(h.Explanation)
	if len(a.drivers) == 0 {
		a.drivers = novel
	}
	a.drivers = a.drivers[:min(len(a.drivers), maxDrivers)]
	return a, nil
}

func finite(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return x
}

// jsonString returns the string a raw JSON value holds, or "" when it is
// absent or not a string.
func jsonString(v json.RawMessage) string {
	var s string
	if len(v) == 0 || json.Unmarshal(v, &s) != nil {
		return ""
	}
	return s
}

// jsonPort returns the port a raw JSON value holds (a number or a numeric
// string in [0, 65535]), or -1.
func jsonPort(v json.RawMessage) int32 {
	if len(v) == 0 {
		return -1
	}
	s := string(v)
	if len(s) >= 2 && s[0] == '"' {
		if err := json.Unmarshal(v, &s); err != nil {
			return -1
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || f < 0 || f > 65535 || f != math.Trunc(f) {
		return -1
	}
	return int32(f)
}

// AlertRow is one line of the alerts table.
type AlertRow struct {
	ID          uint64    `json:"id"`
	Time        time.Time `json:"time"`
	Src         string    `json:"src,omitempty"`
	SrcPort     int32     `json:"src_port"`
	Dst         string    `json:"dst,omitempty"`
	DstPort     int32     `json:"dst_port"`
	Attack      string    `json:"attack"`
	Category    string    `json:"category"`
	Probability float64   `json:"probability"`
	Novelty     float64   `json:"novelty"`
	FlaggedBy   string    `json:"flagged_by"`
	Instance    string    `json:"instance"`
}

func (a *storedAlert) row() AlertRow {
	return AlertRow{ID: a.id, Time: a.time, Src: a.src, SrcPort: a.srcPort, Dst: a.dst, DstPort: a.dstPort,
		Attack: a.attack, Category: a.category, Probability: a.probability, Novelty: a.novelty,
		FlaggedBy: a.flaggedBy, Instance: a.instance}
}

// Feature is one feature of an alert's record.
type Feature struct {
	Name string `json:"name"`
	// Value is the value as the message held it (a number or a string).
	Value json.RawMessage `json:"value"`
	// Standout is true for the features that made the record stand out.
	Standout bool `json:"standout,omitempty"`
}

// Reason is one entry of an alert's explanation.
type Reason struct {
	Feature      string  `json:"feature"`
	Value        float64 `json:"value"`
	Typical      float64 `json:"typical"`
	Contribution float64 `json:"contribution"`
}

// reasons reads an explanation, skipping entries that are not objects
// naming a feature.
func reasons(v json.RawMessage) []Reason {
	out := []Reason{}
	var items []json.RawMessage
	if len(v) == 0 || json.Unmarshal(v, &items) != nil {
		return out
	}
	for _, it := range items {
		var r Reason
		if json.Unmarshal(it, &r) == nil && r.Feature != "" {
			r.Value, r.Typical, r.Contribution = finite(r.Value), finite(r.Typical), finite(r.Contribution)
			out = append(out, r)
		}
	}
	return out
}

// ClassProbability is one of the classifier's top classes.
type ClassProbability struct {
	Name        string  `json:"name"`
	Probability float64 `json:"probability"`
}

// AlertDetail is everything about one alert, for the detail view.
type AlertDetail struct {
	AlertRow
	Label             string  `json:"label,omitempty"`
	AttackProbability float64 `json:"attack_probability"`
	// UID is the connection's identifier, when the record carried one.
	UID string `json:"uid,omitempty"`
	// Features lists the record's features in schema order, then any
	// others in name order.
	Features []Feature `json:"features"`
	// Standout names the features that made the record stand out.
	Standout []string `json:"standout"`
	// Reasons is the alert's explanation: each feature that drove the
	// verdict with its value, the typical value and its contribution.
	Reasons []Reason `json:"reasons"`
	// TopClasses lists the classifier's top classes with their
	// probabilities, when the alert carries them.
	TopClasses []ClassProbability `json:"top_classes"`
	Topic      string             `json:"topic"`
	Partition  int32              `json:"partition"`
	Offset     int64              `json:"offset"`
	// Extra holds the message's other fields as JSON text.
	Extra map[string]string `json:"extra"`
}

// known lists the alert keys the detail view shows in their own place.
var known = map[string]bool{
	"time": true, "topic": true, "partition": true, "offset": true, "attack": true, "category": true,
	"probability": true, "attack_probability": true, "novelty": true, "flagged_by": true,
	"novelty_features": true, "label": true, "features": true, "instance": true,
	"src_ip": true, "dst_ip": true, "src_port": true, "dst_port": true, "uid": true,
	"top_classes": true, "class_probabilities": true,
}

// standoutKeys are the keys whose names (strings, or objects with a
// "feature" or "name") list the features that made a record stand out:
// the novelty part's, and explanations of the classifier's verdict.
var standoutKeys = []string{"novelty_features", "top_features", "explanation", "explain"}

// detail decodes the stored message in full.
func (a *storedAlert) detail() AlertDetail {
	d := AlertDetail{AlertRow: a.row(), Label: a.label, UID: a.uid, Topic: a.topic, Partition: a.partition, Offset: a.offset,
		AttackProbability: a.attackProbability, Features: []Feature{}, Standout: []string{}, Reasons: []Reason{},
		TopClasses: []ClassProbability{}, Extra: map[string]string{}}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(a.raw, &all); err != nil {
		// decodeAlert accepted it, so this cannot fail; show why if it does.
		d.Extra["error"] = err.Error()
		return d
	}
	d.Reasons = reasons(all["explanation"])
	for _, k := range standoutKeys {
		for _, n := range featureNames(all[k]) {
			if !slices.Contains(d.Standout, n) {
				d.Standout = append(d.Standout, n)
			}
		}
	}
	var feats map[string]json.RawMessage
	if err := json.Unmarshal(all["features"], &feats); err == nil {
		for _, f := range record.Features {
			if v, ok := feats[f.Name]; ok {
				d.Features = append(d.Features, Feature{Name: f.Name, Value: v, Standout: slices.Contains(d.Standout, f.Name)})
				delete(feats, f.Name)
			}
		}
		for _, k := range sortedKeys(feats) {
			d.Features = append(d.Features, Feature{Name: k, Value: feats[k], Standout: slices.Contains(d.Standout, k)})
		}
	} else if len(all["features"]) > 0 {
		d.Extra["features"] = string(all["features"])
	}
	d.TopClasses = classes(all["top_classes"])
	if len(d.TopClasses) == 0 {
		d.TopClasses = classes(all["class_probabilities"])
	}
	for k, v := range all {
		if !known[k] && !slices.Contains(standoutKeys, k) {
			d.Extra[k] = string(v)
		}
	}
	return d
}

// featureNames reads a list of feature names: strings, or objects naming
// the feature under "feature" or "name".
func featureNames(v json.RawMessage) []string {
	if len(v) == 0 {
		return nil
	}
	var items []json.RawMessage
	if json.Unmarshal(v, &items) != nil {
		return nil
	}
	var out []string
	for _, it := range items {
		if s := jsonString(it); s != "" {
			out = append(out, s)
			continue
		}
		var o struct{ Feature, Name string }
		if json.Unmarshal(it, &o) == nil {
			if o.Feature != "" {
				out = append(out, o.Feature)
			} else if o.Name != "" {
				out = append(out, o.Name)
			}
		}
	}
	return out
}

// classes reads the top classes: a list of objects with a name ("name",
// "class", "label" or "attack") and a "probability" (or "p"), or an object
// of name: probability. They come out most probable first.
func classes(v json.RawMessage) []ClassProbability {
	out := []ClassProbability{}
	if len(v) == 0 {
		return out
	}
	var m map[string]float64
	if json.Unmarshal(v, &m) == nil {
		for k, p := range m {
			out = append(out, ClassProbability{k, finite(p)})
		}
	} else {
		var items []struct {
			Name, Class, Label, Attack string
			Probability, P             float64
		}
		if json.Unmarshal(v, &items) != nil {
			return out
		}
		for _, it := range items {
			name := firstNonEmpty(it.Name, it.Class, it.Label, it.Attack)
			p := it.Probability
			if p == 0 {
				p = it.P
			}
			out = append(out, ClassProbability{name, finite(p)})
		}
	}
	slices.SortStableFunc(out, func(x, y ClassProbability) int {
		switch {
		case x.Probability > y.Probability:
			return -1
		case x.Probability < y.Probability:
			return 1
		}
		return strings.Compare(x.Name, y.Name)
	})
	return out
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// escapeBytes shows bytes as text: printable ASCII as it is, backslash as
// \\, the usual control characters as \n \r \t, every other byte as \xNN.
func escapeBytes(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for _, c := range b {
		switch {
		case c == '\\':
			sb.WriteString(`\\`)
		case c == '\n':
			sb.WriteString(`\n`)
		case c == '\r':
			sb.WriteString(`\r`)
		case c == '\t':
			sb.WriteString(`\t`)
		case c >= 0x20 && c < 0x7f:
			sb.WriteByte(c)
		default:
			fmt.Fprintf(&sb, `\x%02x`, c)
		}
	}
	return sb.String()
}
