package report

import (
	"cmp"
	"fmt"
	"math"
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
	features  FeatureMinutes
}

// NewHighlights returns a collector keeping the n most novel alerts and the
// n most frequent dead-letter reasons.
func NewHighlights(n int) *Highlights {
	return &Highlights{n: max(n, 1), reasons: map[string]int64{}}
}

// AddAlert counts the features that drove a's verdict in its minute (see
// AlertFeatures) and considers a for the most novel alerts: it is kept
// when it is novel (novelty above zero, or category unknown) and among the
// n most novel so far.
func (h *Highlights) AddAlert(a event.Alert) {
	if names := alertFeatures(&a); len(names) > 0 {
		if h.features == nil {
			h.features = FeatureMinutes{}
		}
		k := a.Time.Unix() / 60
		m := h.features[k]
		if m == nil {
			m = map[string]int64{}
			h.features[k] = m
		}
		for _, f := range names {
			m[f]++
		}
	}
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

// FeatureMinutes counts, per minute (Unix time / 60), the alerts whose
// explanation named each feature. Its size is bounded by the minutes times
// the features of the schema.
type FeatureMinutes map[int64]map[string]int64

// maxAlertFeatures is how many of an alert's explanation features count.
const maxAlertFeatures = 3

// alertFeatures names the features that drove a's verdict: its
// explanation's first ones, or else its novelty features.
func alertFeatures(a *event.Alert) []string {
	var out []string
	for _, r := range a.Explanation {
		if len(out) < maxAlertFeatures && r.Feature != "" && !slices.Contains(out, r.Feature) {
			out = append(out, r.Feature)
		}
	}
	if len(out) == 0 {
		for _, f := range a.NoveltyFeatures {
			if len(out) < maxAlertFeatures && f != "" && !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	return out
}

// AlertFeatures returns the per-minute counts of the features that drove
// the alerts given to AddAlert.
func (h *Highlights) AlertFeatures() FeatureMinutes { return h.features }

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
	// Features names the features that drove the incident: its first
	// verdict's explanation, then its novelty features.
	Features []string `json:"features,omitempty"`
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
	in := IncidentSummary{ID: m.ID, Status: m.Status, Attack: m.Attack, Category: m.Category,
		Src: m.Src, Dst: m.Dst, Service: m.Service, FirstSeen: m.FirstSeen, LastSeen: m.LastSeen, Count: m.Count}
	for _, r := range m.Explanation {
		if len(in.Features) < maxAlertFeatures && r.Feature != "" && !slices.Contains(in.Features, r.Feature) {
			in.Features = append(in.Features, r.Feature)
		}
	}
	if len(in.Features) == 0 {
		for _, c := range m.Features {
			if len(in.Features) < maxAlertFeatures && c.Value != "" && !slices.Contains(in.Features, c.Value) {
				in.Features = append(in.Features, c.Value)
			}
		}
	}
	return in, true
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

// AddSpikeFeatures names under each spike the n features that drove the
// most verdicts in its bucket, with the number of those verdicts: from
// the alerts' explanations (alerts, per minute) where the bucket has any,
// else from the incidents active in it, each incident's features weighted
// by its verdicts in the bucket, estimated from its count spread evenly
// between its first and last verdict. A detector writing both alerts and
// incidents is so not counted twice.
func AddSpikeFeatures(rep *Report, incs []IncidentSummary, alerts FeatureMinutes, n int) {
	for i := range rep.Spikes {
		sp := &rep.Spikes[i]
		sp.Features = nil
		counts := map[string]float64{}
		for k := sp.Start.Unix() / 60; k < (sp.End.Unix()+59)/60; k++ {
			for f, c := range alerts[k] {
				counts[f] += float64(c)
			}
		}
		if len(counts) == 0 {
			for _, in := range incs {
				if in.LastSeen.Before(sp.Start) || !in.FirstSeen.Before(sp.End) || len(in.Features) == 0 {
					continue
				}
				span := max(in.LastSeen.Sub(in.FirstSeen), time.Second)
				from, to := in.FirstSeen, in.FirstSeen.Add(span)
				if to.After(sp.End) {
					to = sp.End
				}
				if from.Before(sp.Start) {
					from = sp.Start
				}
				overlap := to.Sub(from)
				w := float64(in.Count) * max(overlap.Seconds(), 0) / span.Seconds()
				for _, f := range in.Features {
					counts[f] += w
				}
			}
		}
		for f, c := range counts {
			if v := int64(math.Round(c)); v > 0 {
				sp.Features = append(sp.Features, AttackCount{Name: f, Count: v})
			}
		}
		sortAttacks(sp.Features)
		sp.Features = sp.Features[:min(n, len(sp.Features))]
	}
}
