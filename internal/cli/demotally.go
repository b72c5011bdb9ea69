package cli

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/netsentinel/netsentinel/internal/eval"
	"github.com/netsentinel/netsentinel/internal/event"
	"github.com/netsentinel/netsentinel/internal/model"
	"github.com/netsentinel/netsentinel/internal/record"
	"github.com/netsentinel/netsentinel/internal/report"
	"github.com/netsentinel/netsentinel/internal/stream"
)

// demoTally is what the demo learns from the detectors' outputs, as the
// output reader delivers them.
type demoTally struct {
	mu        sync.Mutex
	agg       report.Aggregator
	scored    int64 // records in stats (normal + verdicts)
	dead      int64 // dead letters seen
	alerts    int64
	byCat     map[string]int64
	byAttack  map[string]int64
	ev        *eval.Evaluator  // verdicts of alerted labelled records
	alerted   map[string]int64 // alerted labelled records by label
	latencies []float64
	lastStat  time.Time
}

func newDemoTally() *demoTally {
	return &demoTally{byCat: map[string]int64{}, byAttack: map[string]int64{}, ev: eval.New(), alerted: map[string]int64{}}
}

func (t *demoTally) handlers() stream.OutputHandlers {
	return stream.OutputHandlers{
		AlertVerdictOnly: true,
		Stats: func(s event.Stats, written time.Time) {
			t.mu.Lock()
			defer t.mu.Unlock()
			t.agg.Add(s, written)
			t.scored += s.Records
			for k, v := range s.ByCategory {
				t.byCat[k] += v
			}
			for k, v := range s.ByAttack {
				t.byAttack[k] += v
			}
			t.lastStat = written
		},
		DeadLetter: func(event.DeadLetter, time.Time) {
			t.mu.Lock()
			defer t.mu.Unlock()
			t.dead++
		},
		Alert: func(a event.Alert, written time.Time) {
			t.mu.Lock()
			defer t.mu.Unlock()
			t.alerts++
			if a.Label != "" {
				t.ev.Add(a.Label, alertVerdict(a))
				t.alerted[a.Label]++
			}
			t.latencies = append(t.latencies, float64(written.Sub(a.Time).Microseconds())/1000)
		},
	}
}

// alertVerdict returns the verdict an alert reports.
func alertVerdict(a event.Alert) model.Verdict {
	c, ok := record.ParseCategory(a.Category)
	if !ok {
		c = record.CategoryUnknown
	}
	return model.Verdict{Attack: a.Attack, Category: c, IsAttack: true, Probability: a.Probability,
		AttackProbability: a.AttackProbability, Novelty: a.Novelty, FlaggedBy: a.FlaggedBy}
}

// accuracy scores the demo's verdicts against the labels of the published
// records (counts by label): every labelled record without an alert was
// judged normal.
func (t *demoTally) accuracy(labels map[string]int64) eval.Report {
	normal := model.Verdict{Attack: "normal", Category: record.CategoryNormal}
	for label, n := range labels {
		for range n - t.alerted[label] {
			t.ev.Add(label, normal)
		}
	}
	return t.ev.Report()
}

// done reports whether every one of want records is accounted for: scored
// or dead-lettered, with every alert of the scored ones read (alerts
// commit in the same transactions as the statistics that count them, but
// arrive on their own topic).
func (t *demoTally) done(want int64) bool {
	return t.scored+t.dead >= want && t.alerts >= t.scored-t.byCat["normal"]
}

// progressLine says how far scoring is. t.mu must be held.
func (t *demoTally) progressLine(want int64, el time.Duration) string {
	done := t.scored + t.dead
	var b strings.Builder
	fmt.Fprintf(&b, "scored %d/%d (%.0f/s)", done, want, float64(done)/el.Seconds())
	for _, c := range record.Categories {
		if c == record.CategoryNormal {
			continue
		}
		if n := t.byCat[c.String()]; n > 0 {
			fmt.Fprintf(&b, " %s %d", c, n)
		}
	}
	if t.dead > 0 {
		fmt.Fprintf(&b, " dead-letters %d", t.dead)
	}
	return b.String() + "   "
}

// elapsed returns the time from start to the last statistics message, or
// to now before the first one. t.mu must be held.
func (t *demoTally) elapsed(start time.Time) time.Duration {
	if t.lastStat.After(start) {
		return t.lastStat.Sub(start)
	}
	return time.Since(start)
}
