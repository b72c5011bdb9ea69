package dashboard

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netsentinel/netsentinel/internal/event"
	"github.com/netsentinel/netsentinel/internal/incident"
	"github.com/netsentinel/netsentinel/internal/kafkatest"
	"github.com/netsentinel/netsentinel/internal/model"
	"github.com/netsentinel/netsentinel/internal/record"
	"github.com/netsentinel/netsentinel/internal/stream"
)

// explainedScorer is labelScorer with an explanation naming the record's
// count feature, as model.Detector.Explain names features.
type explainedScorer struct{ labelScorer }

func (explainedScorer) Explain(x []float32, v model.Verdict, n int) []model.Reason {
	return []model.Reason{{Feature: "count", Value: float64(x[22]), Typical: 2, Contribution: 0.8},
		{Feature: "serror_rate", Value: float64(x[24]), Typical: 0, Contribution: 0.1}}[:min(n, 2)]
}

// addressed returns a shipped CSV line relabelled as label, as a JSON
// record of a connection from src to dst.
func addressed(t *testing.T, line []byte, label, src, dst string, port int32) []byte {
	t.Helper()
	var rec record.Record
	if err := record.DecodeCSV(relabel(line, label), &rec); err != nil {
		t.Fatal(err)
	}
	js := rec.AppendJSON(nil)
	id := record.Identity{SrcIP: src, DstIP: dst, SrcPort: 40000, DstPort: port}
	return append(record.AppendJSONIdentity(js[:len(js)-1], id), '}')
}

// TestBrowserIncidents runs a detector in incidents mode (the default of
// detect) on a real Kafka broker and checks what an administrator sees:
// the incidents appear, grow and close; the counts are verdicts, not
// messages; the filters narrow the table; a click shows what drove the
// incident and where its records are; input is shown as text.
func TestBrowserIncidents(t *testing.T) {
	chromiumPath(t)
	brokers := kafkatest.Brokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// One input partition: each partition groups its own incidents.
	in, stats, dead, incs := kafkatest.NewTopic(t, 1), kafkatest.NewTopic(t, 1), kafkatest.NewTopic(t, 1), kafkatest.NewTopic(t, 1)
	group := kafkatest.Name(t, "g")

	// A threshold lets the first 150 neptune verdicts of a source into
	// their incident and withholds the rest.
	rules, err := incident.ParseRules([]byte(`
thresholds:
  - {name: neptune-limit, match: {attack: neptune}, type: limit, track: by_src, count: 150, seconds: 3600, reason: a test}
`))
	if err != nil {
		t.Fatal(err)
	}
	det, err := stream.New(stream.Options{
		Client: stream.ClientConfig{Brokers: brokers}, Topic: in, Group: group, Instance: "detector-1",
		StatsTopic: stats, DeadLetterTopic: dead, Scorer: explainedScorer{}, SessionTimeout: 6 * time.Second,
		Incidents: stream.IncidentOptions{Topic: incs, ChangelogTopic: kafkatest.Name(t, "changelog"), IdleFlush: 200 * time.Millisecond,
			Rules: func() *incident.Rules { return rules },
			Table: incident.Config{UpdateInterval: 500 * time.Millisecond, QuietPeriod: 5 * time.Second}},
	})
	if err != nil {
		t.Fatal(err)
	}
	dctx, stopDetect := context.WithCancel(ctx)
	detectDone := make(chan struct{})
	go func() {
		defer close(detectDone)
		if err := det.Run(dctx); err != nil {
			t.Errorf("detector: %v", err)
		}
	}()
	t.Cleanup(func() { stopDetect(); <-detectDone })

	d, err := New(Options{Kafka: []kgo.Opt{kgo.SeedBrokers(brokers...)}, StatsTopic: stats, DeadLetterTopic: dead, IncidentsTopic: incs,
		InputTopic: in, Group: group, PollInterval: 300 * time.Millisecond, SummaryEvery: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stopDash := context.WithCancel(ctx)
	dashDone := make(chan struct{})
	go func() {
		defer close(dashDone)
		if err := d.Run(rctx); err != nil {
			t.Errorf("dashboard run: %v", err)
		}
	}()
	t.Cleanup(func() { stopDash(); <-dashDone })
	srv := httptest.NewServer(d.Handler())
	t.Cleanup(srv.Close)

	// 200 neptune verdicts from one host to another (150 of them let into
	// the incident), a sweep of 30 portsweep verdicts over 3 hosts, 100
	// normal records.
	lines := kddLines(t, 330)
	var values [][]byte
	for i, l := range lines {
		switch {
		case i < 200:
			values = append(values, addressed(t, l, "neptune", "10.9.0.1", "10.0.0.5", 80))
		case i < 230:
			values = append(values, addressed(t, l, "portsweep", "192.0.2.66", fmt.Sprintf("10.0.0.%d", 20+i%3), int32(i)))
		default:
			values = append(values, addressed(t, l, "normal", "10.0.0.30", "10.0.0.5", 80))
		}
	}
	cl := kafkatest.Client(t, kgo.ProducerLinger(0))
	produce := func(topic string, vs ...[]byte) {
		t.Helper()
		recs := make([]*kgo.Record, len(vs))
		for i, v := range vs {
			recs[i] = &kgo.Record{Topic: topic, Value: v}
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
	}
	produce(in, values...)
	// An incident message of a detector that knows hostile addresses,
	// written straight to the incidents topic.
	hostile := event.Incident{ID: "x/0/1", Seq: 1, Status: event.IncidentOpened, Topic: "x", Attack: injection, Category: "r2l",
		Src: injection, Dst: "10.0.0.99", FirstSeen: time.Now().UTC(), LastSeen: time.Now().UTC(), Count: 1,
		TopServices: []event.Count{{Value: injection, Count: 1}}, Samples: []int64{1}, Updated: time.Now().UTC(), Instance: injection}
	produce(incs, hostile.AppendJSON(nil))

	bctx := browser(t, ctx)
	if err := chromedp.Do(bctx, chromedp.Navigate(srv.URL+"/?span=5m"), chromedp.WaitVisible(chromedp.CSS("#incidents-body"))); err != nil {
		t.Fatal(err)
	}

	t.Run("incidents grow to their verdicts, counted once", func(t *testing.T) {
		waitText(t, bctx, "#attacks-count", 45*time.Second, func(s string) bool { return s == "230" })
		waitText(t, bctx, "#incidents-body", 10*time.Second, func(s string) bool {
			return strings.Contains(s, "neptune") && strings.Contains(s, "10.9.0.1 → 10.0.0.5") && strings.Contains(s, "150") &&
				strings.Contains(s, "192.0.2.66 → many") && strings.Contains(s, "neptune-limit 50")
		})
		counts := eval[[]string](t, bctx, `[...document.querySelectorAll('#incidents-body tr[data-incident]')].map(tr => tr.children[1].textContent + '=' + tr.children[6].textContent)`)
		want := map[string]bool{"neptune=150": true, "portsweep=30": true, injection + "=1": true}
		for _, c := range counts {
			if !want[c] {
				t.Errorf("incident row %q; want one of %v", c, want)
			}
			delete(want, c)
		}
		if len(want) > 0 {
			t.Errorf("missing incident rows %v (rows %q)", want, counts)
		}
		// The tile counts the open incidents the table shows (they may
		// close meanwhile on a slow machine: their quiet period is short).
		waitText(t, bctx, "#incidents-open", 5*time.Second, func(s string) bool {
			open := eval[int](t, bctx, `document.querySelectorAll('#incidents-body tr.open').length`)
			return s == strconv.Itoa(open) && open >= 1
		})
		waitText(t, bctx, "#alerts-body", 3*time.Second, func(s string) bool { return strings.Contains(s, "the detectors write incidents") })
		top := eval[string](t, bctx, `document.querySelector('#sources-body tr td:nth-child(2)').textContent`)
		if src := eval[string](t, bctx, `document.querySelector('#sources-body tr td').textContent`); src != "10.9.0.1" || top != "150" {
			t.Errorf("top source %s with %s verdicts, want 10.9.0.1 with 150 (its incident's, not the sum of its messages' counts)", src, top)
		}
		if got := eval[string](t, bctx, `document.querySelector('#categories-body tr[data-category="probe"] td:nth-child(4)').textContent`); got != "1" {
			t.Errorf("probe incidents in the categories table = %q, want 1", got)
		}
		waitText(t, bctx, "#withheld-line", 3*time.Second, func(s string) bool { return strings.HasSuffix(s, "neptune-limit 50") })
		sweep := eval[string](t, bctx, `[...document.querySelectorAll('#incidents-body tr')].find(tr => tr.textContent.includes('portsweep')).children[8].textContent`)
		for _, h := range []string{"10.0.0.20 10", "10.0.0.21 10", "10.0.0.22 10"} {
			if !strings.Contains(sweep, h) {
				t.Errorf("sweep's top destinations %q lack %q", sweep, h)
			}
		}
		if feats := eval[string](t, bctx, `[...document.querySelectorAll('#incidents-body tr')].find(tr => tr.textContent.includes('neptune')).children[9].textContent`); feats != "count, serror_rate" {
			t.Errorf("neptune incident driven by %q, want count, serror_rate", feats)
		}
	})

	t.Run("input is shown as text, never run", func(t *testing.T) {
		if v := eval[string](t, bctx, `String(window.__pwned)`); v != "undefined" {
			t.Errorf("injected script ran: window.__pwned = %s", v)
		}
		if n := eval[int](t, bctx, `document.querySelectorAll('img, body script:not([src])').length`); n != 0 {
			t.Errorf("%d injected elements in the page", n)
		}
	})

	t.Run("the filters narrow the table", func(t *testing.T) {
		if err := chromedp.Do(bctx, chromedp.SendKeys(chromedp.CSS("#incident-addr"), "10.0.0.21")); err != nil {
			t.Fatal(err)
		}
		waitText(t, bctx, "#incidents-count", 3*time.Second, func(s string) bool { return strings.HasPrefix(s, "1 matching") })
		if got := eval[string](t, bctx, `document.querySelector('#incidents-body tr[data-incident] td:nth-child(2)').textContent`); got != "portsweep" {
			t.Errorf("address filter shows %q, want the portsweep incident", got)
		}
		if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`#incident-filters button[type=reset]`))); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(bctx, chromedp.SetValue(chromedp.CSS("#incident-category"), "dos")); err != nil {
			t.Fatal(err)
		}
		eval[bool](t, bctx, `document.getElementById('incident-category').dispatchEvent(new Event('change', {bubbles: true}))`)
		waitText(t, bctx, "#incidents-count", 3*time.Second, func(s string) bool { return strings.HasPrefix(s, "1 matching") })
		if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`#incident-filters button[type=reset]`))); err != nil {
			t.Fatal(err)
		}
		waitText(t, bctx, "#incidents-count", 3*time.Second, func(s string) bool { return strings.HasPrefix(s, "3 matching") })
	})

	t.Run("a click opens the incident", func(t *testing.T) {
		eval[bool](t, bctx, `[...document.querySelectorAll('#incidents-body tr[data-incident]')].find(tr => tr.textContent.includes('neptune')).click(), true`)
		if err := chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS("#incident-detail"))); err != nil {
			t.Fatal(err)
		}
		waitText(t, bctx, "#incident-reasons", 3*time.Second, func(s string) bool { return strings.HasPrefix(s, "count") })
		if n := eval[int](t, bctx, `document.querySelectorAll('#incident-reasons tr[data-feature]').length`); n != 2 {
			t.Errorf("explanation rows = %d, want 2", n)
		}
		facts := eval[string](t, bctx, `document.getElementById('incident-facts').textContent`)
		if !strings.Contains(facts, in+" partition ") || !strings.Contains(facts, "offsets 0, 1, 2, 3, 4") || !strings.Contains(facts, "150 (") ||
			!strings.Contains(facts, "neptune-limit 50") {
			t.Errorf("incident facts = %q, want its topic, sample offsets 0-4, 150 verdicts and 50 withheld by neptune-limit", facts)
		}
		if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`#incident-detail .close`))); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a new attack opens an incident within 2s", func(t *testing.T) {
		sent := time.Now()
		produce(in, addressed(t, lines[0], "teardrop", "10.9.0.77", "10.0.0.5", 80))
		waitText(t, bctx, "#incidents-body", 2*time.Second, func(s string) bool { return strings.Contains(s, "teardrop") })
		t.Logf("new incident on the page %v after its record was published", time.Since(sent).Round(time.Millisecond))
	})

	t.Run("quiet incidents close", func(t *testing.T) {
		waitText(t, bctx, "#incidents-body", 15*time.Second, func(s string) bool {
			return strings.Count(s, "closed") >= 3 // neptune, portsweep and teardrop (the hostile one never closes)
		})
		waitText(t, bctx, "#incidents-open", 3*time.Second, func(s string) bool { return s == "1" })
	})

	if v := eval[[]string](t, bctx, `window.__csp`); len(v) > 0 {
		t.Errorf("Content-Security-Policy violations: %q", v)
	}
}
