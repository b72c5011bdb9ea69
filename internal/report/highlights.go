package report

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/netsentinel/netsentinel/internal/event"
)

// AlertSummary is the part of an alert a report shows.
type AlertSummary struct {
	Time        time.Time `json:"time"`
	Attack      string    `json:"attack"`
	Category    string    `json:"category"`
	Probability float64   `json:"probability"`
	Novelty     float64   `json:"novelty"`
	FlaggedBy   string    `json:"flagged_by"`
	Source      string    `json:"source"`
}

// Highlights collects what the optional topics add to a report: the most
// novel alerts, the most frequent dead-letter reasons and the incidents.
// Its memory for alerts and reasons stays bounded however many messages it
// is given; it keeps one entry per incident. The zero value is not ready;
// use NewHighlights. It is not safe for concurrent use.
type Highlights struct {
	n         int
	alerts    []AlertSummary
	reasons   map[string]int64
	incidents map[string]event.Incident // latest state by ID
}

// NewHighlights returns a collector keeping the n most novel alerts and the
// n most frequent dead-letter reasons.
func NewHighlights(n int) *Highlights {
	return &Highlights{n: max(n, 1), reasons: map[string]int64{}}
}

// AddAlert considers a: it is kept when it is novel (novelty above zero, or
// category unknown) and among the n most novel so far.
func (h *Highlights) AddAlert(a event.Alert) {
	if a.Novelty <= 0 && a.Category != "unknown" {
		return
	}
	h.alerts = append(h.alerts, AlertSummary{Time: a.Time, Attack: a.Attack, Category: a.Category,
		Probability: a.Probability, Novelty: a.Novelty, FlaggedBy: a.FlaggedBy,
		Source: fmt.Sprintf("%s/%d@%d", a.Topic, a.Partition, a.Offset)})
	if len(h.alerts) > 4*h.n+64 {
		h.alerts = topAlerts(h.alerts, h.n)
	}
}

// AddDeadLetter counts d's reason, shortened so similar failures group.
func (h *Highlights) AddDeadLetter(d event.DeadLetter) { h.reasons[reasonKey(d.Reason)]++ }

// TopAlerts returns the n most novel alerts, highest novelty (then
// probability) first.
func (h *Highlights) TopAlerts() []AlertSummary {
	h.alerts = topAlerts(h.alerts, h.n)
	return slices.Clone(h.alerts)
}

// DeadLetterReasons returns the n most frequent dead-letter reasons, most
// frequent first.
func (h *Highlights) DeadLetterReasons() []AttackCount {
	var out []AttackCount
	for k, v := range h.reasons {
		out = append(out, AttackCount{Name: k, Count: v})
	}
	sortAttacks(out)
	if len(out) > h.n {
		out = out[:h.n]
	}
	return out
}

// topAlerts keeps the n alerts with the highest novelty, then probability.
func topAlerts(a []AlertSummary, n int) []AlertSummary {
	slices.SortFunc(a, func(x, y AlertSummary) int {
		if c := cmp.Compare(y.Novelty, x.Novelty); c != 0 {
			return c
		}
		if c := cmp.Compare(y.Probability, x.Probability); c != 0 {
			return c
		}
		return x.Time.Compare(y.Time)
	})
	if len(a) > n {
		a = a[:n]
	}
	return a
}

// reasonKey shortens a dead letter's reason so similar failures group:
// it keeps the text before the first quote or line end, capped at 80
// characters.
func reasonKey(s string) string {
	if i := strings.IndexAny(s, "\"\n"); i > 0 {
		s = strings.TrimRight(s[:i], " :")
	}
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

// IncidentSummary is the part of an incident a report shows: its latest
// state.
type IncidentSummary struct {
	ID        string    `json:"id"`
	Status    string    `json:"status"`
	Attack    string    `json:"attack"`
	Category  string    `json:"category"`
	Src       string    `json:"src,omitempty"`
	Dst       string    `json:"dst,omitempty"`
	Service   string    `json:"service,omitempty"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Count     int64     `json:"count"`
}

// What says what the incident is about: its attack and whom, or the
// service it was keyed by.
func (s IncidentSummary) What() string {
	switch {
	case s.Src != "" && s.Dst != "":
		return fmt.Sprintf("%s %s → %s", s.Attack, s.Src, s.Dst)
	case s.Src != "":
		return fmt.Sprintf("%s from %s", s.Attack, s.Src)
	case s.Service != "":
		return fmt.Sprintf("%s on %s", s.Attack, s.Service)
	}
	return s.Attack
}

// AddIncident keeps the latest state (highest Seq) of each incident.
func (h *Highlights) AddIncident(m event.Incident) {
	if h.incidents == nil {
		h.incidents = map[string]event.Incident{}
	}
	if old, ok := h.incidents[m.ID]; !ok || m.Seq > old.Seq {
		h.incidents[m.ID] = m
	}
}

// Incidents returns the latest state of every incident given to
// AddIncident whose verdicts fall in [from, to), most verdicts first.
func (h *Highlights) Incidents(from, to time.Time) []IncidentSummary {
	var out []IncidentSummary
	for _, m := range h.incidents {
		if in, ok := SummarizeIncident(&m, from, to); ok {
			out = append(out, in)
		}
	}
	SortIncidents(out)
	return out
}

// SummarizeIncident returns what a report shows of the incident message m,
// and whether its verdicts fall in [from, to).
func SummarizeIncident(m *event.Incident, from, to time.Time) (IncidentSummary, bool) {
	if m.LastSeen.Before(from) || !m.FirstSeen.Before(to) {
		return IncidentSummary{}, false
	}
	return IncidentSummary{ID: m.ID, Status: m.Status, Attack: m.Attack, Category: m.Category,
		Src: m.Src, Dst: m.Dst, Service: m.Service, FirstSeen: m.FirstSeen, LastSeen: m.LastSeen, Count: m.Count}, true
}

// SortIncidents sorts incidents as Incidents returns them: most verdicts
// first, then by ID.
func SortIncidents(incs []IncidentSummary) {
	slices.SortFunc(incs, func(a, b IncidentSummary) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// AddIncidents puts the n incidents with the most verdicts into rep, and
// names under each spike the incidents active during its bucket (at most
// n). incs must be sorted as Highlights.Incidents sorts them.
func AddIncidents(rep *Report, incs []IncidentSummary, n int) {
	rep.TopIncidents = incs[:min(n, len(incs))]
	for i := range rep.Spikes {
		sp := &rep.Spikes[i]
		sp.Incidents = nil
		for _, in := range incs {
			if len(sp.Incidents) == n {
				break
			}
			if !in.LastSeen.Before(sp.Start) && in.FirstSeen.Before(sp.End) {
				sp.Incidents = append(sp.Incidents, fmt.Sprintf("%s (%d)", in.What(), in.Count))
			}
		}
	}
}
