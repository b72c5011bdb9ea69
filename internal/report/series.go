package report

import (
	"maps"
	"slices"
	"time"

	"github.com/netsentinel/netsentinel/internal/event"
)

// Minute holds the counts of one minute, summed over every detector
// instance and transaction that reported it.
type Minute struct {
	// Time is the start of the minute, in UTC.
	Time time.Time `json:"time"`
	// Records is the number of records scored.
	Records int64 `json:"records"`
	// DeadLetters is the number of records that failed to decode.
	DeadLetters int64 `json:"dead_letters"`
	// ByCategory counts verdicts by category name.
	ByCategory map[string]int64 `json:"by_category"`
	// ByAttack counts verdicts by attack name (normal excluded).
	ByAttack map[string]int64 `json:"by_attack"`
	// Instances holds what each detector instance reported for the minute.
	Instances map[string]InstanceMinute `json:"instances"`
	// Sources and Destinations count alerts by connection address, summed
	// over the messages' top lists (event.Stats.TopSources and
	// TopDestinations); OtherSources and OtherDestinations sum the alerts
	// the messages left out of their lists.
	Sources           map[string]int64 `json:"sources,omitempty"`
	OtherSources      int64            `json:"other_sources,omitempty"`
	Destinations      map[string]int64 `json:"destinations,omitempty"`
	OtherDestinations int64            `json:"other_destinations,omitempty"`
	// ByRule counts the verdicts (counted above as well) that a rule kept
	// out of incidents, by rule name (event.Stats.ByRule).
	ByRule map[string]int64 `json:"by_rule,omitempty"`
}

// InstanceMinute is one detector instance's share of a Minute.
type InstanceMinute struct {
	// Records is the number of records the instance scored in the minute.
	Records int64 `json:"records"`
	// Lag is the longest delay seen between the end of the minute and the
	// time the instance wrote a statistics message for it; zero when the
	// write time is unknown.
	Lag time.Duration `json:"lag"`
}

// Aggregator sums statistics messages into minutes. Several messages for
// the same minute (one per instance and transaction) are added up. The zero
// value is ready to use; an Aggregator is not safe for concurrent use.
type Aggregator struct {
	minutes map[int64]*Minute
}

// Add adds one statistics message. written is the time the message was
// written (its Kafka timestamp), used to measure how far behind an instance
// runs; pass the zero time when it is unknown.
func (a *Aggregator) Add(s event.Stats, written time.Time) {
	if a.minutes == nil {
		a.minutes = make(map[int64]*Minute)
	}
	t := s.Minute.UTC().Truncate(time.Minute)
	m := a.minutes[t.Unix()]
	if m == nil {
		m = &Minute{
			Time:       t,
			ByCategory: make(map[string]int64),
			ByAttack:   make(map[string]int64),
			Instances:  make(map[string]InstanceMinute),
		}
		a.minutes[t.Unix()] = m
	}
	m.Records += s.Records
	m.DeadLetters += s.DeadLetters
	for k, v := range s.ByCategory {
		m.ByCategory[k] += v
	}
	for k, v := range s.ByAttack {
		m.ByAttack[k] += v
	}
	m.Sources = addCounts(m.Sources, s.TopSources)
	m.Destinations = addCounts(m.Destinations, s.TopDestinations)
	m.OtherSources += s.OtherSources
	m.OtherDestinations += s.OtherDestinations
	m.ByRule = addCounts(m.ByRule, s.ByRule)
	im := m.Instances[s.Instance]
	im.Records += s.Records
	if !written.IsZero() {
		if lag := written.Sub(t.Add(time.Minute)); lag > im.Lag {
			im.Lag = lag
		}
	}
	m.Instances[s.Instance] = im
}

// Prune drops the minutes before t.
func (a *Aggregator) Prune(t time.Time) {
	for k, m := range a.minutes {
		if m.Time.Before(t) {
			delete(a.minutes, k)
		}
	}
}

// Range returns copies of the minutes in [from, to), in time order.
func (a *Aggregator) Range(from, to time.Time) []Minute {
	all := a.Series()
	out := all[:0]
	for _, m := range all {
		if !m.Time.Before(from) && m.Time.Before(to) {
			out = append(out, m)
		}
	}
	return out
}

// Series returns the minutes in time order. The Minutes are copies; later
// calls to Add do not change them.
func (a *Aggregator) Series() []Minute {
	out := make([]Minute, 0, len(a.minutes))
	for _, k := range slices.Sorted(maps.Keys(a.minutes)) {
		m := *a.minutes[k]
		m.ByCategory = maps.Clone(m.ByCategory)
		m.ByAttack = maps.Clone(m.ByAttack)
		m.Instances = maps.Clone(m.Instances)
		m.Sources = maps.Clone(m.Sources)
		m.Destinations = maps.Clone(m.Destinations)
		out = append(out, m)
	}
	return out
}

// addCounts adds the counts of add to m, making m when it is nil and add
// is not empty, and returns m.
func addCounts(m, add map[string]int64) map[string]int64 {
	if len(add) == 0 {
		return m
	}
	if m == nil {
		m = make(map[string]int64, len(add))
	}
	for k, v := range add {
		m[k] += v
	}
	return m
}
