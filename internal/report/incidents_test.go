package report

import (
	"strings"
	"testing"
	"time"

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
