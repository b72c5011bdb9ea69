package dashboard

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/netsentinel/netsentinel/internal/event"
)

// FuzzHandlers sends arbitrary paths and query strings to the API: every
// answer must be 200, 400 or 404 with a JSON body (or the mux's redirect of
// an unclean path), and a 400 must say what was wrong.
func FuzzHandlers(f *testing.F) {
	d, c := newTestDashboard(f, Options{MaxAlerts: 50})
	for i := range 60 {
		if err := d.st.addAlert(alertJSON(i, "neptune", "dos", "10.0.0.1", "10.0.0.2", t0)); err != nil {
			f.Fatal(err)
		}
	}
	d.st.addStats(event.Stats{Minute: t0, Instance: "a", Records: 10, ByCategory: map[string]int64{"normal": 9, "dos": 1}}, t0)
	for i := range 3 {
		m := incidentMsg(fmt.Sprintf("in/0/%d", i*10), 1, event.IncidentOpened, "smurf", "dos", "10.0.0.1", "10.0.0.2", t0, t0, 5)
		if err := d.st.addIncident(m.AppendJSON(nil)); err != nil {
			f.Fatal(err)
		}
	}
	c.t = t0.Add(time.Second)
	h := d.Handler()
	for _, seed := range [][2]string{
		{"alerts", "category=dos&attack=neptune&addr=10.0.0.1&q=x&before=30&limit=5"},
		{"alerts", "limit=500&before=18446744073709551615"},
		{"alerts/42", ""},
		{"alerts/99999999999999999999", ""},
		{"summary", "span=24h"},
		{"summary", "span=%00"},
		{"dead-letters", "before=1&limit=1"},
		{"health", ""},
		{"events", "span=bad"},
		{"alerts", "q=%ff%fe&addr=<script>"},
		{"alerts", "category=dos&category=probe"},
		{"alerts", ";;&&=="},
		{"incidents", "state=open&category=dos&attack=smurf&addr=10.0.0.1&q=count&before=3&limit=2"},
		{"incidents", "state=half"},
		{"incident", "id=in/0/10"},
		{"incident", "id="},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, path, query string) {
		if path == "events" || strings.HasPrefix(path, "events?") {
			return // a valid span would stream forever
		}
		target := "/api/" + url.PathEscape(path)
		if strings.HasPrefix(path, "alerts/") {
			target = "/api/alerts/" + url.PathEscape(strings.TrimPrefix(path, "alerts/"))
		}
		r, err := http.NewRequest("GET", "http://x"+target, nil)
		if err != nil {
			return
		}
		r.URL.RawQuery = query
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch w.Code {
		case 200, 400, 404:
		case 301, 307, 308:
			// The mux redirects paths with "." or ".." segments (or
			// doubled slashes) to their clean form.
			if !strings.Contains(target, "/.") && !strings.Contains(target, "//") {
				t.Fatalf("GET %s?%s = %d to %s", target, query, w.Code, w.Header().Get("Location"))
			}
			return
		default:
			t.Fatalf("GET %s?%s = %d %s", target, query, w.Code, w.Body)
		}
		if w.Code == 404 && w.Header().Get("Content-Type") != "application/json" {
			return // no such route: net/http's plain 404
		}
		var v map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
			t.Fatalf("GET %s?%s = %d, body is not a JSON object: %v\n%s", target, query, w.Code, err, w.Body)
		}
		if w.Code == 400 && v["error"] == "" {
			t.Fatalf("GET %s?%s = 400 without an error", target, query)
		}
	})
}

// FuzzIngest feeds arbitrary messages as alerts, statistics, dead letters
// and incidents: each is kept or counted as bad, never a panic, and
// whatever is kept renders as JSON in the tables, the detail views and the
// summary.
func FuzzIngest(f *testing.F) {
	inc := incidentMsg("in/0/10", 2, event.IncidentUpdated, "portsweep", "probe", "10.0.0.1", "", t0, t0.Add(time.Second), 9)
	inc.TopDestinations = []event.Count{{Value: "10.0.0.2", Count: 5}, {Value: injection, Count: 4}}
	inc.Explanation = []event.Reason{{Feature: "count", Value: 1, Typical: 2, Contribution: 0.5}}
	f.Add([]byte(`{"attack":"neptune","src_ip":"10.0.0.1","src_port":"80","features":{"duration":1}}`), []byte(`{"minute":"2026-11-26T13:59:00Z","instance":"a","records":5,"by_category":{"dos":5}}`), []byte(`{"value":"AAEC","reason":"r"}`), inc.AppendJSON(nil))
	f.Add(craftedAlert(injection, "::1"), []byte(`{}`), []byte(`{"value":null}`), []byte(`{"id":"x","seq":1,"status":"closed","count":1e18,"rate":null,"top_destinations":[{"value":"a","count":-5}]}`))
	f.Add([]byte(`{"top_classes":{"a":NaN}}`), []byte(`{"minute":"0001-01-01T00:00:00Z","records":-5}`), []byte(`[]`), []byte(`{"id":"x","seq":1}`))
	f.Add([]byte(`{"class_probabilities":[{"class":"x","p":0.5}],"novelty_features":[1,{"name":"y"}]}`), []byte(`{"by_attack":{"x":1e18}}`), []byte(`{"time":"x"}`), []byte(`{}`))
	f.Fuzz(func(t *testing.T, alert, stats, dead, incident []byte) {
		s, c := newTestState(t, Options{MaxAlerts: 4, MaxDeadLetters: 2, MaxDeadLetterBytes: 16})
		if err := s.addAlert(alert); err == nil {
			a, ok := s.alert(1)
			if !ok {
				t.Fatal("accepted alert not kept")
			}
			if _, err := json.Marshal(a.detail()); err != nil {
				t.Fatalf("detail: %v", err)
			}
			if p := s.queryAlerts(AlertQuery{Limit: 10, Text: "a"}); p.Total != 1 {
				t.Fatalf("total %d", p.Total)
			}
		}
		var st event.Stats
		if json.Unmarshal(stats, &st) == nil {
			s.addStats(st, t0)
		}
		_ = s.addDeadLetter(dead)
		for range 2 { // the second time as an update of the same incident
			if err := s.addIncident(incident); err != nil {
				break
			}
			p := s.queryIncidents(IncidentQuery{Limit: 10, Text: "a"})
			if _, err := json.Marshal(p); err != nil {
				t.Fatalf("incidents page: %v", err)
			}
			for _, r := range s.queryIncidents(IncidentQuery{Limit: 10}).Incidents {
				d, ok := s.incident(r.ID)
				if !ok {
					t.Fatalf("listed incident %q not found", r.ID)
				}
				if _, err := json.Marshal(d); err != nil {
					t.Fatalf("incident detail: %v", err)
				}
			}
		}
		if _, err := json.Marshal(s.queryDeadLetters(0, 5)); err != nil {
			t.Fatal(err)
		}
		c.t = t0.Add(time.Minute)
		for _, span := range Spans {
			if _, err := s.summaryJSON(span); err != nil {
				t.Fatalf("summary %s: %v", span.Name, err)
			}
		}
		if _, err := json.Marshal(s.health(c.t)); err != nil {
			t.Fatal(err)
		}
	})
}
