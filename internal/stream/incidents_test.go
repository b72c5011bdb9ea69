package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netsentinel/netsentinel/internal/event"
	"github.com/netsentinel/netsentinel/internal/incident"
	"github.com/netsentinel/netsentinel/internal/kafkatest"
	"github.com/netsentinel/netsentinel/internal/model"
	"github.com/netsentinel/netsentinel/internal/record"
)

// testIncidentRules withhold some of the shipped file's attacks: every
// satan verdict, and all but the first 5 neptune verdicts of each 2-second
// window.
const testIncidentRules = `
suppressions:
  - name: scanner
    match: {attack: satan}
    reason: the test's own scanner
thresholds:
  - name: neptune-limit
    match: {attack: neptune}
    type: limit
    count: 5
    seconds: 2
    reason: a flood needs no more than five a window
`

// incidentOptions are the incident settings of a test detector: short
// intervals so that incidents close within the test.
func incidentOptions(topic, changelog, rules string) IncidentOptions {
	o := IncidentOptions{Topic: topic, ChangelogTopic: changelog, IdleFlush: 100 * time.Millisecond}
	o.Table.UpdateInterval, o.Table.QuietPeriod = 200*time.Millisecond, 1500*time.Millisecond
	if rules != "" {
		r, err := incident.ParseRules([]byte(rules))
		if err != nil {
			panic(fmt.Sprintf("test rules: %v", err))
		}
		o.Rules = func() *incident.Rules { return r }
	}
	return o
}

// incidentBooks are the incident and statistics topics read back.
type incidentBooks struct {
	last        map[string]event.Incident // each incident's latest message
	messages    int
	dups, gaps  []string
	records     int64 // stats: scored + dead letters
	normal      int64
	alerts      int64 // stats: non-normal verdicts
	dead        int64
	byRule      map[string]int64
	closedCount int64 // verdicts in closed incidents
	open        int
}

func (b *incidentBooks) String() string {
	return fmt.Sprintf("records=%d normal=%d alerts=%d dead=%d by_rule=%v incidents=%d (open %d) closed_count=%d messages=%d dups=%d gaps=%d",
		b.records, b.normal, b.alerts, b.dead, b.byRule, len(b.last), b.open, b.closedCount, b.messages, len(b.dups), len(b.gaps))
}

// settled reports whether every incident is closed and its counts, with
// the withheld verdicts, account for every alert of the statistics.
func (b *incidentBooks) settled(want int64) bool {
	var withheld int64
	for _, n := range b.byRule {
		withheld += n
	}
	return b.records == want && b.open == 0 && b.closedCount+withheld == b.alerts
}

// readIncidents reads the incidents and stats topics (read committed) until
// the books settle for want input records or timeout passes.
func readIncidents(t testing.TB, brokers []string, incTopic, statsTopic string, want int64, timeout time.Duration) *incidentBooks {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(incTopic, statsTopic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	b := &incidentBooks{last: map[string]event.Incident{}, byRule: map[string]int64{}}
	deadline := time.Now().Add(timeout)
	for !b.settled(want) && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			if r.Topic == statsTopic {
				var s event.Stats
				if err := json.Unmarshal(r.Value, &s); err != nil {
					t.Fatalf("stats %q: %v", r.Value, err)
				}
				b.records += s.Records + s.DeadLetters
				b.normal += s.ByCategory["normal"]
				b.dead += s.DeadLetters
				for _, n := range s.ByAttack {
					b.alerts += n
				}
				for r, n := range s.ByRule {
					b.byRule[r] += n
				}
				return
			}
			var m event.Incident
			if err := json.Unmarshal(r.Value, &m); err != nil {
				t.Fatalf("incident %q: %v", r.Value, err)
			}
			b.messages++
			prev, seen := b.last[m.ID]
			switch {
			case seen && m.Seq <= prev.Seq:
				b.dups = append(b.dups, fmt.Sprintf("%s seq %d after %d", m.ID, m.Seq, prev.Seq))
				return
			case m.Seq != prev.Seq+1:
				b.gaps = append(b.gaps, fmt.Sprintf("%s seq %d after %d", m.ID, m.Seq, prev.Seq))
			case seen && m.Count < prev.Count:
				b.gaps = append(b.gaps, fmt.Sprintf("%s count %d after %d", m.ID, m.Count, prev.Count))
			case prev.Status == event.IncidentClosed:
				b.gaps = append(b.gaps, fmt.Sprintf("%s: message after close", m.ID))
			}
			if !seen {
				b.open++
			}
			if m.Status == event.IncidentClosed {
				b.open--
				b.closedCount += m.Count
			}
			b.last[m.ID] = m
		})
	}
	return b
}

// checkIncidents asserts that the incident books balance: no message
// repeated or missing, every record counted once, every alert verdict in
// exactly one closed incident or withheld by a rule.
func checkIncidents(t testing.TB, b *incidentBooks, published int64) {
	t.Helper()
	if len(b.dups) > 0 || len(b.gaps) > 0 {
		t.Errorf("incident messages: %d repeated (%v), %d out of sequence (%v)", len(b.dups), first(b.dups), len(b.gaps), first(b.gaps))
	}
	if !b.settled(published) {
		t.Errorf("incident books do not settle for %d records: %v", published, b)
	}
	if b.records != b.normal+b.alerts+b.dead {
		t.Errorf("records %d != normal %d + verdicts %d + dead letters %d", b.records, b.normal, b.alerts, b.dead)
	}
}

func first(s []string) []string { return s[:min(3, len(s))] }

// TestIntegrationIncidents runs the detector in incidents mode with rules
// over part of the shipped file: far fewer messages than attacks, and the
// books balance.
func TestIntegrationIncidents(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	tp := newTopics(t, 2)
	incTopic, changelog := kafkatest.NewTopic(t, 1), kafkatest.Name(t, "changelog")
	values := kddLines(t, 5000)
	// Every fifth record as JSON with its connection's addresses: those
	// group by attack, source and destination.
	var rec record.Record
	for i := 0; i < len(values); i += 5 {
		if err := record.DecodeCSV(values[i], &rec); err != nil {
			t.Fatal(err)
		}
		js := rec.AppendJSON(nil)
		id := record.Identity{SrcIP: fmt.Sprintf("10.0.0.%d", i%2+1), DstIP: fmt.Sprintf("192.168.1.%d", i%3+1), SrcPort: int32(1024 + i), DstPort: 80}
		values[i] = append(record.AppendJSONIdentity(js[:len(js)-1], id), '}')
	}
	cl := kafkatest.Client(t)
	produceAll(t, cl, tp.in, values)
	opts := tp.options(brokers, kafkatest.Name(t, "g"), "inc")
	opts.AlertsTopic = ""
	opts.Incidents = incidentOptions(incTopic, changelog, testIncidentRules)
	ex := &countingExplainer{}
	opts.Scorer = ex
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	stop := runDetector(t, d)
	b := readIncidents(t, brokers, incTopic, tp.stats, int64(len(values)), 60*time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkIncidents(t, b, int64(len(values)))
	t.Logf("%v", b)
	if b.byRule["scanner"] == 0 || b.byRule["neptune-limit"] == 0 {
		t.Errorf("rules withheld nothing: %v", b.byRule)
	}
	if int64(len(b.last))*3 > b.closedCount {
		t.Errorf("%d incidents for %d grouped verdicts: hardly grouped", len(b.last), b.closedCount)
	}
	addressed := 0
	for _, m := range b.last {
		if m.Attack == "satan" {
			t.Errorf("suppressed attack has an incident: %+v", m)
		}
		if m.Count <= 0 || m.FirstSeen.After(m.LastSeen) || len(m.Samples) == 0 || m.Instance != "inc" {
			t.Errorf("incident %s: %+v", m.ID, m)
		}
		switch {
		case m.Src == "":
			if m.Service == "" || m.Dst != "" || len(m.TopPorts) != 0 {
				t.Errorf("incident %s without addresses: %+v", m.ID, m)
			}
		case m.Category == "probe":
			addressed++
			if m.Dst != "" || len(m.TopDestinations) == 0 {
				t.Errorf("probe incident %s is keyed by destination: %+v", m.ID, m)
			}
		default:
			addressed++
			if m.Dst == "" || m.Service != "" || len(m.TopPorts) != 1 || m.TopPorts[0].Value != "80" {
				t.Errorf("incident %s with addresses: %+v", m.ID, m)
			}
		}
	}
	if addressed == 0 {
		t.Error("no incident keyed by addresses")
	}
	// Each incident is explained once, by its first verdict; an aborted
	// transaction may explain a few again.
	for _, m := range b.last {
		if len(m.Explanation) != 1 || m.Explanation[0].Feature != "count" || m.Explanation[0].Contribution != 1 {
			t.Errorf("incident %s explanation %+v, want the count feature", m.ID, m.Explanation)
		}
	}
	if n := ex.calls.Load(); n < int64(len(b.last)) || n > 2*int64(len(b.last)) {
		t.Errorf("Explain called %d times for %d incidents (%d verdicts grouped)", n, len(b.last), b.closedCount)
	}
}

// countingExplainer is labelScorer with an explanation naming the count
// feature; it counts its Explain calls.
type countingExplainer struct {
	labelScorer
	calls atomic.Int64
}

func (e *countingExplainer) Explain(x []float32, v model.Verdict, n int) []model.Reason {
	e.calls.Add(1)
	return []model.Reason{{Feature: "count", Value: float64(x[22]), Typical: 1, Contribution: 1}}
}

// TestIntegrationIncidentsKill9 kills detector processes in incidents mode
// with SIGKILL mid-stream: no incident message is lost or repeated, and the
// books balance.
func TestIntegrationIncidentsKill9(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	tp := newTopics(t, 2)
	incTopic, changelog := kafkatest.NewTopic(t, 1), kafkatest.Name(t, "changelog")
	group := kafkatest.Name(t, "g")
	values := kddLines(t, 8000)
	wait := producePaced(t, brokers, tp.in, values, 200, 25*time.Millisecond)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 15))
	cfg := tp.child(brokers, group, "k", 50)
	cfg.Alerts, cfg.Incidents, cfg.Changelog, cfg.Rules = "", incTopic, changelog, testIncidentRules
	cfg.Static = true
	cfg.Delay = 500 * time.Microsecond
	for i := range 4 {
		c := startChild(t, cfg)
		before, _ := committed(t, brokers, group, tp.in)
		waitFor(t, 45*time.Second, "progress", func() bool { n, _ := committed(t, brokers, group, tp.in); return n > before })
		time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond)
		c.kill()
		done, end := committed(t, brokers, group, tp.in)
		t.Logf("kill %d: committed %d of %d produced", i+1, done, end)
	}
	cfg.Delay, cfg.MaxPollRecords = 0, 1000
	c := startChild(t, cfg)
	wait()
	waitCaughtUp(t, brokers, group, tp.in, int64(len(values)), 90*time.Second)
	b := readIncidents(t, brokers, incTopic, tp.stats, int64(len(values)), 60*time.Second)
	c.stop(t)
	checkIncidents(t, b, int64(len(values)))
	t.Logf("%v", b)
}

// incidentOptions turns a child's incident settings into options.
func (c childConfig) incidentOptions() IncidentOptions {
	if c.Incidents == "" {
		return IncidentOptions{}
	}
	return incidentOptions(c.Incidents, c.Changelog, c.Rules)
}
