package dashboard

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// GroupStatus is what the last look at the detectors' consumer group found.
type GroupStatus struct {
	// Name is the consumer group.
	Name string `json:"name"`
	// State is the group's state as the broker names it (Stable, Empty,
	// Dead, PreparingRebalance, ...).
	State   string   `json:"state"`
	Members []Member `json:"members"`
	// Partitions lists the committed offset and lag of each partition of
	// the input topic.
	Partitions []PartitionLag `json:"partitions"`
	TotalLag   int64          `json:"total_lag"`
	// PolledAt is when the group was last described; zero before the
	// first answer.
	PolledAt time.Time `json:"polled_at"`
	// Error is the last poll's error, empty when it succeeded.
	Error string `json:"error,omitempty"`
}

// Member is one member of the detectors' consumer group.
type Member struct {
	ID         string  `json:"id"`
	InstanceID string  `json:"instance_id,omitempty"`
	ClientID   string  `json:"client_id"`
	Host       string  `json:"host"`
	Partitions []int32 `json:"partitions"`
}

// PartitionLag is one input partition's progress.
type PartitionLag struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Committed is the group's committed offset, -1 if none.
	Committed int64 `json:"committed"`
	End       int64 `json:"end"`
	// Lag is End - Committed, -1 when unknown.
	Lag int64 `json:"lag"`
	// Member is the ID of the member that owns the partition, if any.
	Member string `json:"member,omitempty"`
	// LastCommit is when the dashboard first saw the current committed
	// offset (its polls are Options.PollInterval apart); zero if it has
	// not seen it change.
	LastCommit time.Time `json:"last_commit"`
}

// BrokerStatus says whether the dashboard reaches the brokers.
type BrokerStatus struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Since is when the status last changed.
	Since time.Time `json:"since"`
}

// ReaderStatus counts the messages the dashboard read.
type ReaderStatus struct {
	Alerts      int64 `json:"alerts"`
	Stats       int64 `json:"stats"`
	DeadLetters int64 `json:"dead_letters"`
	// Incidents counts incident messages; IncidentsEvicted the incidents
	// dropped because Options.MaxIncidents were kept.
	Incidents        int64 `json:"incidents"`
	IncidentsEvicted int64 `json:"incidents_evicted"`
	// Bad counts messages that could not be decoded; LastBad says where
	// the last one was and why.
	Bad     int64  `json:"bad"`
	LastBad string `json:"last_bad,omitempty"`
	// OutOfRange counts statistics, and alerts and incident messages with
	// addresses, whose time
	// lies outside the kept history (Options.History back, an hour ahead):
	// they count in no span.
	OutOfRange int64 `json:"out_of_range"`
	// FetchError is the reader's last fetch error, at FetchErrorAt.
	FetchError   string    `json:"fetch_error,omitempty"`
	FetchErrorAt time.Time `json:"fetch_error_at"`
}

// InstanceHealth is one detector instance as its statistics show it.
type InstanceHealth struct {
	Name string `json:"name"`
	// LastReport is when the instance last wrote statistics: the end of a
	// committed transaction.
	LastReport time.Time `json:"last_report"`
	// RecordsPerSecond is the rate over the last minute.
	RecordsPerSecond float64 `json:"records_per_second"`
	// Records counts the records it reported within the history.
	Records int64 `json:"records"`
	// Status is "ok" or "silent" (no report for Options.SilentAfter).
	Status string `json:"status"`
}

// Banner is a problem the page shows at the top.
type Banner struct {
	// Level is "error" or "warning".
	Level string `json:"level"`
	Text  string `json:"text"`
}

// Health is the detectors' and the dashboard's state.
type Health struct {
	Now       time.Time        `json:"now"`
	Broker    BrokerStatus     `json:"broker"`
	Group     GroupStatus      `json:"group"`
	Instances []InstanceHealth `json:"instances"`
	Reader    ReaderStatus     `json:"reader"`
	// LastReport is when any detector last wrote statistics; zero if none
	// did within the history.
	LastReport time.Time `json:"last_report"`
	Banners    []Banner  `json:"banners"`
}

// setBroker records whether the brokers answered.
func (s *state) setBroker(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ok := err == nil
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if ok != s.broker.OK || s.broker.Since.IsZero() {
		s.broker.Since = s.opts.Now()
	}
	s.broker.OK, s.broker.Error = ok, msg
}

// setGroup records a new look at the consumer group, carrying over when
// each partition's committed offset was first seen.
func (s *state) setGroup(g GroupStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g.Error != "" {
		// Keep the last good picture, with the error.
		s.group.Error = g.Error
		return
	}
	for i := range g.Partitions {
		p := &g.Partitions[i]
		for _, old := range s.group.Partitions {
			if old.Topic == p.Topic && old.Partition == p.Partition {
				if old.Committed == p.Committed {
					p.LastCommit = old.LastCommit
				} else if !s.group.PolledAt.IsZero() {
					p.LastCommit = g.PolledAt
				}
			}
		}
	}
	s.group = g
}

// health returns the health at now, with the banners a person should see.
func (s *state) health(now time.Time) Health {
	s.mu.RLock()
	defer s.mu.RUnlock()
	h := Health{Now: now, Broker: s.broker, Group: s.group, Reader: s.reader, LastReport: s.lastReport,
		Instances: []InstanceHealth{}, Banners: []Banner{}}
	h.Group.Members = slices.Clone(h.Group.Members)
	h.Group.Partitions = slices.Clone(h.Group.Partitions)
	for _, name := range sortedKeys(s.instances) {
		in := s.instances[name]
		rec, _ := rateOver(&in.rates, now)
		st := "ok"
		if now.Sub(in.lastReport) > s.opts.SilentAfter {
			st = "silent"
		}
		h.Instances = append(h.Instances, InstanceHealth{Name: name, LastReport: in.lastReport, RecordsPerSecond: rec, Records: in.records, Status: st})
	}
	h.Banners = s.banners(now)
	return h
}

// banners lists the problems in order of importance. The caller holds mu.
func (s *state) banners(now time.Time) []Banner {
	out := []Banner{}
	if !s.broker.OK && !s.broker.Since.IsZero() {
		out = append(out, Banner{"error", fmt.Sprintf("Cannot reach the Kafka brokers since %s: %s", clock(s.broker.Since), s.broker.Error)})
	}
	g := s.group
	if !g.PolledAt.IsZero() && len(g.Members) == 0 {
		out = append(out, Banner{"error", fmt.Sprintf("No detector is running: consumer group %s has no members (state %s).", g.Name, g.State)})
	}
	silent := now.Sub(s.lastReport) > s.opts.SilentAfter
	if silent && now.Sub(s.opts.started) > s.opts.SilentAfter {
		var why []string
		if len(g.Members) > 0 {
			why = append(why, fmt.Sprintf("%d detector(s) in group %s", len(g.Members), g.Name))
			if g.TotalLag > 0 {
				why = append(why, fmt.Sprintf("%d records waiting: the detectors are stuck or failing", g.TotalLag))
			} else {
				why = append(why, "no records waiting: no traffic is arriving")
			}
		}
		since := "since the dashboard started"
		if !s.lastReport.IsZero() {
			since = "since " + clock(s.lastReport)
		}
		text := fmt.Sprintf("No detector has reported for over %v (%s).", s.opts.SilentAfter, since)
		if len(why) > 0 {
			text += " " + strings.Join(why, "; ") + "."
		}
		out = append(out, Banner{"warning", text})
	}
	if s.group.Error != "" && s.broker.OK {
		out = append(out, Banner{"warning", "Cannot describe consumer group " + g.Name + ": " + s.group.Error})
	}
	return out
}

func clock(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }
