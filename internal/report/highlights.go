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
// novel alerts and the most frequent dead-letter reasons. Its memory stays
// bounded however many messages it is given. The zero value is not ready;
// use NewHighlights. It is not safe for concurrent use.
type Highlights struct {
	n       int
	alerts  []AlertSummary
	reasons map[string]int64
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
