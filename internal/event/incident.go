package event

import (
	"strconv"
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
	// Explanation lists the features that drove the incident's first
	// verdict, most telling first, with that record's value and the value
	// typical of normal traffic of its service (model.Detector.Explain:
	// Shapley values against the nearest normal prototype for a verdict of
	// the classifier, shares of the distance to it for one of the novelty
	// part). It is computed once per incident and repeated in every
	// message.
	Explanation []Reason `json:"explanation,omitempty"`
	// Withheld counts, by rule name (most first), the verdicts of the
	// incident's key that a rule (a threshold, a suppression or an
	// allow-list entry) kept out of the incident while it was open; they
	// are not in Count.
	Withheld []Count `json:"withheld,omitempty"`
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

// AppendJSON appends the incident as a JSON object to dst and returns the
// extended buffer; a non-finite rate or probability is written as null.
func (in *Incident) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, in.ID)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendInt(dst, in.Seq, 10)
	dst = append(dst, `,"status":`...)
	dst = appendString(dst, in.Status)
	dst = append(dst, `,"topic":`...)
	dst = appendString(dst, in.Topic)
	dst = append(dst, `,"partition":`...)
	dst = strconv.AppendInt(dst, int64(in.Partition), 10)
	dst = append(dst, `,"attack":`...)
	dst = appendString(dst, in.Attack)
	dst = append(dst, `,"category":`...)
	dst = appendString(dst, in.Category)
	dst = appendOptString(dst, `,"src":`, in.Src)
	dst = appendOptString(dst, `,"dst":`, in.Dst)
	dst = appendOptString(dst, `,"service":`, in.Service)
	dst = appendOptString(dst, `,"flag":`, in.Flag)
	dst = append(dst, `,"first_seen":`...)
	dst = appendTime(dst, in.FirstSeen)
	dst = append(dst, `,"last_seen":`...)
	dst = appendTime(dst, in.LastSeen)
	dst = append(dst, `,"count":`...)
	dst = strconv.AppendInt(dst, in.Count, 10)
	dst = append(dst, `,"rate":`...)
	dst = appendFloat(dst, in.Rate)
	dst = append(dst, `,"max_probability":`...)
	dst = appendFloat(dst, in.MaxProbability)
	for _, l := range [...]struct {
		key string
		cs  []Count
	}{{`,"top_sources":`, in.TopSources}, {`,"top_destinations":`, in.TopDestinations}, {`,"top_ports":`, in.TopPorts},
		{`,"top_services":`, in.TopServices}, {`,"features":`, in.Features}, {`,"withheld":`, in.Withheld}} {
		if len(l.cs) == 0 {
			continue
		}
		dst = append(dst, l.key...)
		dst = append(dst, '[')
		for i, c := range l.cs {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"value":`...)
			dst = appendString(dst, c.Value)
			dst = append(dst, `,"count":`...)
			dst = strconv.AppendInt(dst, c.Count, 10)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	if len(in.Explanation) > 0 {
		dst = append(dst, `,"explanation":`...)
		dst = appendReasons(dst, in.Explanation)
	}
	dst = append(dst, `,"samples":`...)
	if in.Samples == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i, o := range in.Samples {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendInt(dst, o, 10)
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"updated":`...)
	dst = appendTime(dst, in.Updated)
	dst = append(dst, `,"instance":`...)
	dst = appendString(dst, in.Instance)
	return append(dst, '}')
}
