// Package event defines the messages the detector writes to Kafka and the
// reporter reads back: alerts, per-minute statistics and dead letters. All
// are JSON objects, one per Kafka record.
package event

import "time"

// Alert is written for every record whose verdict is not normal.
type Alert struct {
	// Time is the source record's Kafka timestamp.
	Time      time.Time `json:"time"`
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
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
	// Label is the record's own label, when the input carried one.
	Label string `json:"label,omitempty"`
	// Features is the decoded record as a JSON object keyed by feature name.
	Features map[string]any `json:"features"`
	// Instance names the detector process that wrote the alert.
	Instance string `json:"instance"`
}

// Stats holds counts for one minute from one detector instance and one
// transaction. A minute may have several Stats messages (one per instance
// and transaction that touched it); readers sum them.
type Stats struct {
	// Minute is the start of the minute (UTC) of the records' timestamps.
	Minute   time.Time `json:"minute"`
	Instance string    `json:"instance"`
	// Records is the number of records decoded and scored.
	Records int64 `json:"records"`
	// ByCategory counts verdicts by category name (normal, dos, probe, r2l,
	// u2r, unknown).
	ByCategory map[string]int64 `json:"by_category"`
	// ByAttack counts verdicts by attack name (normal excluded).
	ByAttack map[string]int64 `json:"by_attack"`
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
