package model

import "github.com/netsentinel/netsentinel/internal/record"

// Verdict is a detector's judgement of one record at three granularities.
type Verdict struct {
	// Attack is the predicted label: "normal", an attack name, or "unknown"
	// when the novelty score flags a record the classifier calls normal.
	Attack string `json:"attack"`
	// Category is the predicted category (CategoryUnknown for "unknown").
	Category record.Category `json:"category"`
	// IsAttack is the binary verdict: true for anything but normal.
	IsAttack bool `json:"is_attack"`
	// Probability is the classifier's probability of Attack; for "unknown"
	// it is the novelty score.
	Probability float64 `json:"probability"`
	// CategoryProbability is the probability of Category (summed over its
	// attack types).
	CategoryProbability float64 `json:"category_probability"`
	// AttackProbability is the probability that the record is not normal.
	AttackProbability float64 `json:"attack_probability"`
	// Novelty is the novelty score in [0,1] (higher is stranger), or 0 when
	// the model has no novelty part.
	Novelty float64 `json:"novelty"`
	// FlaggedBy says which part flagged the record: "classifier",
	// "novelty", or "" for normal records.
	FlaggedBy string `json:"flagged_by,omitempty"`
}
