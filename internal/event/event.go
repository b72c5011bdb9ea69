// Package event defines the messages the detector writes to Kafka and the
// reporter reads back: alerts, per-minute statistics and dead letters. All
// are JSON objects, one per Kafka record.
//
// Each message type has an AppendJSON method, the fast encoder the detector
// uses (no reflection, no maps built per record). It writes the same object
// encoding/json would, with one difference: a NaN or infinite number is
// written as null (encoding/json refuses it). Readers decode with
// encoding/json. To add a field to a message, add it to the struct with its
// json tag and write it in the type's AppendJSON; the round-trip test fills
// every field by reflection and fails until the encoder writes it.
package event

import (
	"time"

	"github.com/netsentinel/netsentinel/internal/record"
)

// Alert is written for every record whose verdict is not normal.
type Alert struct {
	// Time is the source record's Kafka timestamp.
	Time      time.Time `json:"time"`
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	// Connection identifies the connection the record describes, when its
	// source knew it; its keys (ts, src_ip, src_port, dst_ip, dst_port,
	// uid) are top-level keys of the alert, absent when it is nil.
	*Connection
	// Attack, Category and the probabilities come from the model's verdict.
	Attack            string  `json:"attack"`
	Category          string  `json:"category"`
	Probability       float64 `json:"probability"`
	AttackProbability float64 `json:"attack_probability"`
	Novelty           float64 `json:"novelty"`
	FlaggedBy         string  `json:"flagged_by"`
	// NoveltyFeatures names the features that made the record stand out,
	// for records the novelty part flagged.
	NoveltyFeatures []string `json:"novelty_features,omitempty"`
	// Explanation lists the features that drove the verdict, most telling
	// first, with the record's value and the value typical of normal
	// traffic of its service (model.Detector.Explain).
	Explanation []Reason `json:"explanation,omitempty"`
	// Label is the record's own label, when the input carried one.
	Label string `json:"label,omitempty"`
	// UnseenService and UnseenFlag are the record's service and flag as
	// written, when the schema's vocabulary lacks them: the model then saw
	// "other" or "OTH" in their place (see Features).
	UnseenService string `json:"unseen_service,omitempty"`
	UnseenFlag    string `json:"unseen_flag,omitempty"`
	// Features is the decoded record as a JSON object keyed by feature name.
	Features map[string]any `json:"features"`
	// Model is the fingerprint of the model that scored the record.
	Model string `json:"model,omitempty"`
	// Instance names the detector process that wrote the alert.
	Instance string `json:"instance"`

	// Record, when not nil, is written as "features" in place of Features
	// by AppendJSON, without building the map. Readers get Features.
	Record *record.Record `json:"-"`
}

// Reason is one feature that drove a verdict (model.Reason): for a record
// the classifier flagged, Contribution is how much its value, instead of
// the typical one, raised the attack probability; for a record the novelty
// part flagged, the feature's share of the distance to normal traffic.
type Reason struct {
	Feature      string  `json:"feature"`
	Value        float64 `json:"value"`
	Typical      float64 `json:"typical"`
	Contribution float64 `json:"contribution"`
}

// Connection is the identity of a connection (record.Identity) as alert
// keys.
type Connection struct {
	// TS is the connection's start in seconds since the Unix epoch.
	TS      float64 `json:"ts"`
	SrcIP   string  `json:"src_ip"`
	SrcPort int32   `json:"src_port"`
	DstIP   string  `json:"dst_ip"`
	DstPort int32   `json:"dst_port"`
	UID     string  `json:"uid"`
}

// ConnectionOf returns id as a Connection, or nil when id is not known.
func ConnectionOf(id record.Identity) *Connection {
	if !id.Known() {
		return nil
	}
	return &Connection{TS: id.TS, SrcIP: id.SrcIP, SrcPort: id.SrcPort, DstIP: id.DstIP, DstPort: id.DstPort, UID: id.UID}
}

// Stats holds counts for one minute from one detector instance and one
// transaction. A minute may have several Stats messages (one per instance
// and transaction that touched it); readers sum them.
type Stats struct {
	// Minute is the start of the minute (UTC) of the records' timestamps.
	Minute   time.Time `json:"minute"`
	Instance string    `json:"instance"`
	// Model is the fingerprint of the model that scored the records.
	Model string `json:"model,omitempty"`
	// Records is the number of records decoded and scored.
	Records int64 `json:"records"`
	// ByCategory counts verdicts by category name (normal, dos, probe, r2l,
	// u2r, unknown).
	ByCategory map[string]int64 `json:"by_category"`
	// ByAttack counts verdicts by attack name (normal excluded).
	ByAttack map[string]int64 `json:"by_attack"`
	// Unseen counts scored records by symbolic feature ("service", "flag")
	// whose value the schema's vocabulary lacked and which were scored as
	// "other" / "OTH".
	Unseen map[string]int64 `json:"unseen,omitempty"`
	// DeadLetters counts records that failed to decode.
	DeadLetters int64 `json:"dead_letters"`
	// ByRule counts verdicts (already counted above) that a rule kept out
	// of incidents, by rule name.
	ByRule map[string]int64 `json:"by_rule,omitempty"`
}

// DeadLetter is written for every record that fails to decode.
type DeadLetter struct {
	Time      time.Time `json:"time"`
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	// Reason is the decoding error.
	Reason string `json:"reason"`
	// Value is the original record bytes (base64 in JSON).
	Value    []byte `json:"value"`
	Instance string `json:"instance"`
}
