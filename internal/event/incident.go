package event

import (
	"encoding/json"
	"math"
	"time"
)

// Incident statuses: the first message of an incident is "opened", later
// ones "updated", the last one "closed".
const (
	IncidentOpened  = "opened"
	IncidentUpdated = "updated"
	IncidentClosed  = "closed"
)

// Incident is one message about an incident: verdicts grouped by what
// attacked what (attack, source, destination or service) while they keep
// coming. An incident is published when it opens, then at most every few
// seconds while it grows, and once more when it closes after a quiet
// period. Seq numbers an incident's messages 1, 2, 3...; the message with
// the highest Seq holds the incident's latest state.
type Incident struct {
	// ID names the incident: "<topic>/<partition>/<offset of its first
	// verdict>".
	ID     string `json:"id"`
	Seq    int64  `json:"seq"`
	Status string `json:"status"`
	// Topic and Partition locate the input records the incident groups.
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Attack and Category are the verdicts' attack and category.
	Attack   string `json:"attack"`
	Category string `json:"category"`
	// Src and Dst are the source and destination addresses the incident is
	// keyed by, when records carry them; Service and Flag key incidents of
	// records without addresses.
	Src     string `json:"src,omitempty"`
	Dst     string `json:"dst,omitempty"`
	Service string `json:"service,omitempty"`
	Flag    string `json:"flag,omitempty"`
	// FirstSeen and LastSeen are the first and last verdicts' record
	// timestamps.
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// Count is the number of verdicts grouped so far; Rate is Count per
	// second between FirstSeen and LastSeen (at least one second).
	Count int64   `json:"count"`
	Rate  float64 `json:"rate"`
	// MaxProbability is the highest verdict probability seen.
	MaxProbability float64 `json:"max_probability"`
	// The most frequent sources, destinations, destination ports and
	// services, most frequent first.
	TopSources      []Count `json:"top_sources,omitempty"`
	TopDestinations []Count `json:"top_destinations,omitempty"`
	TopPorts        []Count `json:"top_ports,omitempty"`
	TopServices     []Count `json:"top_services,omitempty"`
	// Features names the features that drove the verdicts (those that made
	// novelty-flagged records stand out), most frequent first.
	Features []Count `json:"features,omitempty"`
	// Samples are the input offsets of the incident's first verdicts.
	Samples []int64 `json:"samples"`
	// Updated is when this message was made (the detector's clock).
	Updated  time.Time `json:"updated"`
	Instance string    `json:"instance"`
}

// Count is a value and how often it was seen.
type Count struct {
	Value string `json:"value"`
	Count int64  `json:"count"`
}

// AppendJSON appends the incident as one JSON object.
// Non-finite rates or probabilities are written as 0.
func (in *Incident) AppendJSON(dst []byte) []byte {
	c := *in
	c.Rate, c.MaxProbability = finite(c.Rate), finite(c.MaxProbability)
	b, err := json.Marshal(&c)
	if err != nil { // cannot happen: plain types and finite floats
		panic("event: encode incident: " + err.Error())
	}
	return append(dst, b...)
}

func finite(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return x
}
