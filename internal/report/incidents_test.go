package report

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/netsentinel/netsentinel/internal/event"
)

// TestIncidents checks that a report names the window's top incidents by
// their latest state, and under each spike the incidents active in it.
func TestIncidents(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	h := NewHighlights(5)
	msg := func(id string, seq int64, status, attack, src, dst, service string, first, last time.Duration, count int64) {
		h.AddIncident(event.Incident{ID: id, Seq: seq, Status: status, Attack: attack, Category: "dos", Src: src, Dst: dst,
			Service: service, FirstSeen: t0.Add(first), LastSeen: t0.Add(last), Count: count})
	}
	msg("in/0/10", 1, event.IncidentOpened, "smurf", "10.0.0.1", "10.0.0.9", "", 5*time.Minute, 5*time.Minute, 1)
	msg("in/0/10", 3, event.IncidentClosed, "smurf", "10.0.0.1", "10.0.0.9", "", 5*time.Minute, 20*time.Minute, 9000)
	msg("in/0/10", 2, event.IncidentUpdated, "smurf", "10.0.0.1", "10.0.0.9", "", 5*time.Minute, 10*time.Minute, 300) // late, older
	msg("in/1/4", 1, event.IncidentOpened, "neptune", "", "", "http", 40*time.Minute, 41*time.Minute, 50)
	msg("in/1/9", 1, event.IncidentClosed, "satan", "10.0.0.7", "", "", -2*time.Hour, -90*time.Minute, 700) // before the window

	incs := h.Incidents(t0, t0.Add(time.Hour))
	if len(incs) != 2 || incs[0].ID != "in/0/10" || incs[0].Count != 9000 || incs[0].Status != event.IncidentClosed || incs[1].ID != "in/1/4" {
		t.Fatalf("Incidents = %+v", incs)
	}
	rep := &Report{Spikes: []Spike{
		{Start: t0, End: t0.Add(15 * time.Minute)},
		{Start: t0.Add(30 * time.Minute), End: t0.Add(45 * time.Minute)},
		{Start: t0.Add(45 * time.Minute), End: t0.Add(time.Hour)},
	}}
	AddIncidents(rep, incs, 10)
	if len(rep.TopIncidents) != 2 {
		t.Fatalf("TopIncidents = %+v", rep.TopIncidents)
	}
	want := [][]string{{"smurf 10.0.0.1 → 10.0.0.9 (9000)"}, {"neptune on http (50)"}, nil}
	for i, sp := range rep.Spikes {
		if strings.Join(sp.Incidents, "|") != strings.Join(want[i], "|") {
			t.Errorf("spike %d incidents = %q, want %q", i, sp.Incidents, want[i])
		}
	}
	AddIncidents(rep, incs, 1)
	if len(rep.TopIncidents) != 1 || len(rep.Spikes[0].Incidents) != 1 {
		t.Errorf("with n=1: %d top incidents, spike 0 has %q", len(rep.TopIncidents), rep.Spikes[0].Incidents)
	}
	text := PlainText(rep)
	if !strings.Contains(text, "Top incidents") || !strings.Contains(text, "smurf 10.0.0.1 → 10.0.0.9") || !strings.Contains(text, "incidents: smurf") {
		t.Errorf("text report lacks the incidents:\n%s", text)
	}
	var html strings.Builder
	if err := WriteHTML(&html, rep, nil, DataURI); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(html.String(), "<h2>Top incidents</h2>") || !strings.Contains(html.String(), "smurf 10.0.0.1 → 10.0.0.9 (9000)") {
		t.Errorf("HTML report lacks the incidents")
	}
}

// TestSpikeFeatures checks that each spike names the features that drove
// its verdicts: from the alerts' explanations where its bucket has alerts,
// else from the incidents active in it (weighted by their verdicts in the
// bucket), in the text, HTML and JSON outputs.
func TestSpikeFeatures(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	h := NewHighlights(5)
	// Bucket 0: alerts, explained by the classifier or the novelty part.
	for i := range 30 {
		a := event.Alert{Time: t0.Add(time.Duration(i) * time.Second), Attack: "neptune", Category: "dos",
			Explanation: []event.Reason{{Feature: "count"}, {Feature: "serror_rate"}, {Feature: "flag"}, {Feature: "service"}}}
		if i%3 == 0 {
			a.Explanation = nil
			a.NoveltyFeatures = []string{"src_bytes"}
		}
		h.AddAlert(a)
	}
	// Bucket 1 (15-30 min): no alerts; a smurf incident from 15 to 45 min
	// (half its 1200 verdicts in the bucket), explained, and a small one
	// with novelty features only.
	smurf := event.Incident{ID: "in/0/1", Seq: 2, Status: event.IncidentClosed, Attack: "smurf", Category: "dos", Src: "10.0.0.1",
		FirstSeen: t0.Add(15 * time.Minute), LastSeen: t0.Add(45 * time.Minute), Count: 1200,
		Explanation: []event.Reason{{Feature: "src_bytes"}, {Feature: "count"}}, Features: []event.Count{{Value: "ignored", Count: 9}}}
	odd := event.Incident{ID: "in/0/2", Seq: 1, Status: event.IncidentOpened, Attack: "unknown", Category: "unknown", Service: "http",
		FirstSeen: t0.Add(20 * time.Minute), LastSeen: t0.Add(20 * time.Minute), Count: 7, Features: []event.Count{{Value: "duration", Count: 7}}}
	h.AddIncident(smurf)
	h.AddIncident(odd)
	incs := h.Incidents(t0, t0.Add(time.Hour))
	rep := &Report{Spikes: []Spike{{Start: t0, End: t0.Add(15 * time.Minute)}, {Start: t0.Add(15 * time.Minute), End: t0.Add(30 * time.Minute)},
		{Start: t0.Add(45 * time.Minute), End: t0.Add(time.Hour)}}}
	AddSpikeFeatures(rep, incs, h.AlertFeatures(), 3)
	want := [][]AttackCount{
		{{Name: "count", Count: 20}, {Name: "flag", Count: 20}, {Name: "serror_rate", Count: 20}}, // 3 of 4 features per alert
		{{Name: "count", Count: 600}, {Name: "src_bytes", Count: 600}, {Name: "duration", Count: 7}},
		nil,
	}
	for i, sp := range rep.Spikes {
		if d := cmp.Diff(want[i], sp.Features); d != "" {
			t.Errorf("spike %d features (-want +got):\n%s", i, d)
		}
	}
	if got := incs[0].Features; strings.Join(got, ",") != "src_bytes,count" {
		t.Errorf("smurf incident driven by %q, want its explanation's src_bytes, count", got)
	}
	if got := incs[1].Features; strings.Join(got, ",") != "duration" {
		t.Errorf("unexplained incident driven by %q, want its novelty feature duration", got)
	}
	AddIncidents(rep, incs, 10)
	if text := PlainText(rep); !strings.Contains(text, "smurf from 10.0.0.1 (closed, 10:15–10:45); driven by src_bytes, count") {
		t.Errorf("text report's top incidents lack what drove them:\n%s", text)
	}
	AddSpikeFeatures(rep, incs, h.AlertFeatures(), 5)
	if got := rep.Spikes[0].Features; len(got) != 4 || got[3] != (AttackCount{Name: "src_bytes", Count: 10}) {
		t.Errorf("spike 0 with n=5: %+v, want the novelty feature src_bytes 10 last", got)
	}
	text := PlainText(rep)
	if !strings.Contains(text, "features: count 20 flag 20 serror_rate 20 src_bytes 10") || !strings.Contains(text, "features: count 600 src_bytes 600 duration 7") {
		t.Errorf("text report lacks the spikes' features:\n%s", text)
	}
	var html strings.Builder
	if err := WriteHTML(&html, rep, nil, DataURI); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(html.String(), "<th>Top features (verdicts)</th>") || !strings.Contains(html.String(), "<td>count 600, src_bytes 600, duration 7</td>") ||
		!strings.Contains(html.String(), "<td>src_bytes, count</td>") {
		t.Errorf("HTML report lacks the spikes' features")
	}
	b, err := json.Marshal(rep.Spikes[1])
	if err != nil || !strings.Contains(string(b), `"features":[{"name":"count","count":600},{"name":"src_bytes","count":600},{"name":"duration","count":7}]`) {
		t.Errorf("spike JSON %s (%v) lacks its features", b, err)
	}
}

// TestWithheld checks that the verdicts rules kept out of incidents are
// summed by rule over the window (not before it) and shown in the text
// and HTML reports.
func TestWithheld(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	var a Aggregator
	for i, r := range []map[string]int64{{"scanner": 40}, {"scanner": 2, "backup-host": 7}, nil} {
		a.Add(event.Stats{Minute: t0.Add(time.Duration(i) * time.Minute), Instance: "d", Records: 100,
			ByCategory: map[string]int64{"normal": 50, "probe": 50}, ByAttack: map[string]int64{"satan": 50}, ByRule: r}, time.Time{})
	}
	a.Add(event.Stats{Minute: t0.Add(-time.Minute), Instance: "d", Records: 1, ByCategory: map[string]int64{"probe": 1}, ByRule: map[string]int64{"scanner": 1000}}, time.Time{})
	rep, err := Build(a.Series(), Window{Start: t0, End: t0.Add(time.Hour), Location: time.UTC}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]AttackCount{{Name: "scanner", Count: 42}, {Name: "backup-host", Count: 7}}, rep.Withheld); d != "" {
		t.Errorf("withheld (-want +got):\n%s", d)
	}
	if text := PlainText(rep); !strings.Contains(text, "Withheld by rules") || !strings.Contains(text, "42  scanner") {
		t.Errorf("text report lacks the withheld verdicts:\n%s", text)
	}
	var html strings.Builder
	if err := WriteHTML(&html, rep, nil, DataURI); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(html.String(), "<td>backup-host</td><td class=\"n\">7</td>") {
		t.Errorf("HTML report lacks the withheld verdicts")
	}
}
