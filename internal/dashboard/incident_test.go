package dashboard

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/netsentinel/netsentinel/internal/event"
	"github.com/netsentinel/netsentinel/internal/report"
)

// incidentMsg is an incident message as the detector writes it.
func incidentMsg(id string, seq int64, status, attack, category, src, dst string, first, last time.Time, count int64) event.Incident {
	return event.Incident{ID: id, Seq: seq, Status: status, Topic: "in", Partition: 0, Attack: attack, Category: category,
		Src: src, Dst: dst, FirstSeen: first, LastSeen: last, Count: count, Rate: float64(count), MaxProbability: 0.9,
		Samples: []int64{7, 8}, Updated: last, Instance: "d1"}
}

func addIncident(t *testing.T, s *state, m event.Incident) {
	t.Helper()
	if err := s.addIncident(m.AppendJSON(nil)); err != nil {
		t.Fatalf("addIncident(%s seq %d): %v", m.ID, m.Seq, err)
	}
}

// TestIncidentsLatestStateAndVerdicts feeds one incident's messages (one
// late and out of order) and a probe sweep's: the table shows each
// incident's latest state, and the top addresses count each verdict once
// (an update's count is cumulative), while the charts' attack counts come
// from the statistics alone.
func TestIncidentsLatestStateAndVerdicts(t *testing.T) {
	s, c := newTestState(t, Options{})
	smurf := func(seq int64, status string, last time.Duration, count int64) event.Incident {
		m := incidentMsg("in/0/10", seq, status, "smurf", "dos", "10.0.0.1", "10.0.0.9", t0, t0.Add(last), count)
		m.Explanation = []event.Reason{{Feature: "count", Value: 511, Typical: 2, Contribution: 0.7}, {Feature: "src_bytes", Value: 1032, Typical: 230, Contribution: 0.2}}
		m.TopServices = []event.Count{{Value: "ecr_i", Count: count}}
		return m
	}
	addIncident(t, s, smurf(1, event.IncidentOpened, 0, 1))
	addIncident(t, s, smurf(3, event.IncidentUpdated, 40*time.Second, 300))
	addIncident(t, s, smurf(2, event.IncidentUpdated, 20*time.Second, 100)) // late: older than what is kept
	sweep := incidentMsg("in/1/4", 1, event.IncidentOpened, "portsweep", "probe", "192.0.2.7", "", t0, t0, 2)
	sweep.TopDestinations = []event.Count{{Value: "10.0.0.2", Count: 1}, {Value: "10.0.0.3", Count: 1}}
	sweep.Withheld = []event.Count{{Value: "scanner-limit", Count: 40}}
	sweep.Features = []event.Count{{Value: "dst_host_count", Count: 2}}
	addIncident(t, s, sweep)
	sweep.Seq, sweep.Status, sweep.Count = 2, event.IncidentClosed, 5
	sweep.TopDestinations = []event.Count{{Value: "10.0.0.2", Count: 3}, {Value: "10.0.0.3", Count: 1}}
	addIncident(t, s, sweep)
	// The statistics count the verdicts: 300 smurf and 5 portsweep.
	s.addStats(event.Stats{Minute: t0, Instance: "d1", Records: 1000, ByCategory: map[string]int64{"normal": 695, "dos": 300, "probe": 5},
		ByAttack: map[string]int64{"smurf": 300, "portsweep": 5}, ByRule: map[string]int64{"scanner-limit": 40}}, t0.Add(50*time.Second))
	c.t = t0.Add(50 * time.Second)

	sum, err := s.summary(Spans[0], c.t)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Attacks != 305 || sum.Incidents != 2 || sum.IncidentsOpen != 1 {
		t.Errorf("summary: %d attacks, %d incidents, %d open; want 305 (the statistics' verdicts, not the messages), 2, 1",
			sum.Attacks, sum.Incidents, sum.IncidentsOpen)
	}
	if d := cmp.Diff(map[string]int{"dos": 1, "probe": 1}, sum.IncidentsByCategory); d != "" {
		t.Errorf("incidents by category (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]report.AttackCount{{Name: "scanner-limit", Count: 40}}, sum.Withheld); d != "" {
		t.Errorf("withheld (-want +got):\n%s", d)
	}
	if len(sum.TopIncidents) != 2 || sum.TopIncidents[0].ID != "in/0/10" || sum.TopIncidents[0].Count != 300 {
		t.Errorf("top incidents = %+v", sum.TopIncidents)
	}
	if d := cmp.Diff([]AddressCount{{"10.0.0.1", 300}, {"192.0.2.7", 5}}, sum.TopSources); d != "" {
		t.Errorf("top sources (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]AddressCount{{"10.0.0.9", 300}, {"10.0.0.2", 3}, {"10.0.0.3", 1}}, sum.TopTargets); d != "" || sum.UntrackedTargets != 1 {
		t.Errorf("top targets (-want +got):\n%s\nuntracked %d, want 1 (the sweep's 5th verdict went to no top destination)", d, sum.UntrackedTargets)
	}

	page := s.queryIncidents(IncidentQuery{Limit: 10})
	if page.Matching != 2 || page.Open != 1 || page.Messages != 5 || len(page.Incidents) != 2 {
		t.Fatalf("page = %+v", page)
	}
	// The sweep changed last: it comes first.
	if r := page.Incidents[0]; r.ID != "in/1/4" || r.State != IncidentClosed || r.Count != 5 ||
		!cmp.Equal(r.Features, []string{"dst_host_count"}) || r.Withheld[0].Value != "scanner-limit" {
		t.Errorf("first row = %+v", r)
	}
	if r := page.Incidents[1]; r.ID != "in/0/10" || r.State != IncidentOpen || r.Count != 300 || r.Seq != 3 ||
		!cmp.Equal(r.Features, []string{"count", "src_bytes"}) || r.Services[0].Value != "ecr_i" {
		t.Errorf("second row = %+v", r)
	}
	f := func(q IncidentQuery, want ...string) {
		t.Helper()
		q.Limit = 10
		var got []string
		for _, r := range s.queryIncidents(q).Incidents {
			got = append(got, r.ID)
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("query %+v = %q, want %q", q, got, want)
		}
	}
	f(IncidentQuery{State: IncidentOpen}, "in/0/10")
	f(IncidentQuery{State: IncidentClosed}, "in/1/4")
	f(IncidentQuery{Category: "probe"}, "in/1/4")
	f(IncidentQuery{Attack: "smurf"}, "in/0/10")
	f(IncidentQuery{Addr: "10.0.0.3"}, "in/1/4") // a top destination
	f(IncidentQuery{Text: "SRC_BYTES"}, "in/0/10")
	f(IncidentQuery{Text: "scanner"}, "in/1/4")
	f(IncidentQuery{Before: page.Incidents[0].Order}, "in/0/10")
	if p := s.queryIncidents(IncidentQuery{Limit: 1}); p.Next != page.Incidents[0].Order || len(p.Incidents) != 1 {
		t.Errorf("first page of 1: next %d, want %d", p.Next, page.Incidents[0].Order)
	}

	d, ok := s.incident("in/0/10")
	if !ok {
		t.Fatal("incident in/0/10 not kept")
	}
	if len(d.Explanation) != 2 || d.Explanation[0] != (Reason{"count", 511, 2, 0.7}) || !cmp.Equal(d.Samples, []int64{7, 8}) || d.Status != event.IncidentUpdated {
		t.Errorf("detail = %+v", d)
	}
	if _, ok := s.incident("in/9/9"); ok {
		t.Error("an unknown incident was found")
	}
}

// TestIncidentsAndAlertsCountedOnce checks that a detector writing both
// alerts and incidents (--alerts both) has each verdict counted once by
// address.
func TestIncidentsAndAlertsCountedOnce(t *testing.T) {
	s, c := newTestState(t, Options{})
	for i := range 3 {
		if err := s.addAlert(alertJSON(i, "smurf", "dos", "10.0.0.1", "10.0.0.9", t0.Add(time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	addIncident(t, s, incidentMsg("in/0/0", 1, event.IncidentOpened, "smurf", "dos", "10.0.0.1", "10.0.0.9", t0.Add(time.Second), t0.Add(2*time.Second), 3))
	c.t = t0.Add(time.Minute)
	sum, err := s.summary(Spans[0], c.t)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]AddressCount{{"10.0.0.1", 3}}, sum.TopSources); d != "" {
		t.Errorf("top sources (-want +got):\n%s", d)
	}
}

func TestIncidentsBadAndBounded(t *testing.T) {
	s, _ := newTestState(t, Options{MaxIncidents: 10})
	for _, bad := range []string{`[]`, `{"seq":1,"status":"opened"}`, `{"id":"a","seq":0,"status":"opened"}`,
		`{"id":"a","seq":1,"status":"gone"}`, `{"id":"a","seq":1,"status":"opened","count":-1}`, `{"id":"a","seq":"x"}`} {
		if err := s.addIncident([]byte(bad)); err == nil {
			t.Errorf("addIncident(%s) accepted", bad)
		}
	}
	for i := range 25 {
		m := incidentMsg("in/0/"+string(rune('a'+i)), 1, event.IncidentOpened, "smurf", "dos", "", "", t0, t0, 1)
		if i%2 == 0 {
			m.Status = event.IncidentClosed
		}
		addIncident(t, s, m)
	}
	p := s.queryIncidents(IncidentQuery{Limit: 100})
	if p.Kept > 10 || p.Kept < 9 {
		t.Errorf("kept %d incidents, want at most 10", p.Kept)
	}
	if _, ok := s.incident("in/0/y"); !ok {
		t.Error("the newest incident was evicted")
	}
	if s.reader.IncidentsEvicted == 0 {
		t.Error("no eviction counted")
	}
	b, err := json.Marshal(p)
	if err != nil || !strings.Contains(string(b), `"withheld":[]`) {
		t.Errorf("page JSON %s (%v): empty lists must be [] for the page", b, err)
	}
}

func TestNewRefusesSharedTopics(t *testing.T) {
	_, err := New(Options{AlertsTopic: "out", StatsTopic: "stats", IncidentsTopic: "out"})
	if err == nil || !strings.Contains(err.Error(), `topic "out" given for both alerts and incidents`) {
		t.Errorf("New with one topic for alerts and incidents: %v", err)
	}
	if _, err := New(Options{AlertsTopic: "a", StatsTopic: "s", DeadLetterTopic: "", IncidentsTopic: ""}); err != nil {
		t.Errorf("New with distinct topics: %v", err)
	}
}
