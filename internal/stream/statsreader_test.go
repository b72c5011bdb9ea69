package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netsentinel/netsentinel/internal/event"
	"github.com/netsentinel/netsentinel/internal/kafkatest"
	"github.com/netsentinel/netsentinel/internal/record"
	"github.com/netsentinel/netsentinel/internal/report"
)

// backend is a Kafka to test against: kfake in-process, or the real
// broker of kafkatest when NETSENTINEL_TEST_BROKERS is set.
type backend struct {
	name string
	// setup returns client options and the names of n fresh topics.
	setup func(t *testing.T, n int) ([]kgo.Opt, []string)
}

var backends = []backend{
	{"kfake", func(t *testing.T, n int) ([]kgo.Opt, []string) {
		var topics []string
		for i := range n {
			topics = append(topics, fmt.Sprintf("topic-%d", i))
		}
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topics...))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, topics
	}},
	{"kafka", func(t *testing.T, n int) ([]kgo.Opt, []string) {
		brokers := kafkatest.Brokers(t)
		var topics []string
		for range n {
			topics = append(topics, kafkatest.NewTopic(t, 3))
		}
		return []kgo.Opt{kgo.SeedBrokers(brokers...)}, topics
	}},
}

// forEachBackend runs f as a subtest per backend.
func forEachBackend(t *testing.T, topics int, f func(t *testing.T, opts []kgo.Opt, topics []string)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			opts, names := b.setup(t, topics)
			f(t, opts, names)
		})
	}
}

// produceTx writes values in one transaction, committed or aborted, each
// record stamped with its time.
func produceTx(t *testing.T, opts []kgo.Opt, txid, topic string, commit bool, recs ...*kgo.Record) {
	t.Helper()
	ctx := t.Context()
	cl, err := kgo.NewClient(append(opts, kgo.TransactionalID(txid), kgo.DefaultProduceTopic(topic))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatal(err)
	}
}

func statsRecord(t *testing.T, s event.Stats, written time.Time) *kgo.Record {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Value: b, Timestamp: written, Key: []byte(s.Instance)}
}

func TestStatsReaderStats(t *testing.T) {
	forEachBackend(t, 1, testStatsReaderStats)
}

func testStatsReaderStats(t *testing.T, opts []kgo.Opt, topics []string) {
	stats := topics[0]
	tx := kafkaTxID(t)
	// Brokers reject timestamps far in the future: work three hours back.
	start := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	msg := func(min int, inst string, records int64, attacks map[string]int64) *kgo.Record {
		m := start.Add(time.Duration(min) * time.Minute)
		return statsRecord(t, statsOf(m, inst, records, attacks), m.Add(time.Minute+time.Second))
	}
	// Before the window: must not count.
	produceTx(t, opts, tx+"a", stats, true, msg(-30, "a", 1000, nil))
	// Two instances, two transactions for the same minute: summed.
	produceTx(t, opts, tx+"a", stats, true, msg(0, "a", 100, map[string]int64{"neptune": 10}), msg(1, "a", 100, nil))
	produceTx(t, opts, tx+"b", stats, true, msg(0, "b", 50, map[string]int64{"satan": 5}))
	produceTx(t, opts, tx+"b", stats, true, msg(0, "b", 50, map[string]int64{"satan": 5}))
	// Aborted: must not count.
	produceTx(t, opts, tx+"b", stats, false, msg(2, "b", 7777, nil))
	// Written late (after the window) but for a minute inside it: counts.
	late := statsOf(start.Add(59*time.Minute), "a", 3, nil)
	produceTx(t, opts, tx+"a", stats, true, statsRecord(t, late, start.Add(70*time.Minute)))
	// For a minute after the window: must not count.
	produceTx(t, opts, tx+"a", stats, true, msg(61, "a", 5555, nil))
	// A bad message is skipped.
	produceTx(t, opts, tx+"a", stats, true, &kgo.Record{Value: []byte("{not json"), Timestamp: start.Add(5 * time.Minute)})

	src := &StatsReader{Opts: opts, StatsTopic: stats}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	series, err := src.Stats(ctx, start, start.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var records int64
	for _, m := range series {
		records += m.Records
	}
	if want := int64(100 + 100 + 50 + 50 + 3); records != want {
		t.Errorf("records = %d, want %d (series %+v)", records, want, series)
	}
	if len(series) == 0 || series[0].ByAttack["satan"] != 10 || series[0].ByAttack["neptune"] != 10 || len(series[0].Instances) != 2 {
		t.Errorf("minute 0 = %+v, want satan 10, neptune 10 from 2 instances", series[0])
	}

	// The history read starts earlier and sees the minute before.
	series, err = src.Stats(ctx, start.Add(-time.Hour), start.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if series[0].Records != 1000 {
		t.Errorf("history minute = %+v, want 1000 records", series[0])
	}

	// An empty topic or window reads nothing and returns.
	series, err = src.Stats(ctx, start.Add(24*time.Hour), start.Add(25*time.Hour))
	if err != nil || len(series) != 0 {
		t.Errorf("empty span: %d minutes, %v", len(series), err)
	}
	_, err = (&StatsReader{Opts: opts, StatsTopic: stats + "-missing"}).Stats(ctx, start, start.Add(time.Hour))
	if !errors.Is(err, ErrNoTopic) {
		t.Errorf("missing topic: %v, want ErrNoTopic", err)
	}
}

func TestStatsReaderExtras(t *testing.T) {
	forEachBackend(t, 3, testStatsReaderExtras)
}

func testStatsReaderExtras(t *testing.T, opts []kgo.Opt, topics []string) {
	alertsTopic, deadTopic, incTopic := topics[0], topics[1], topics[2]
	tx := kafkaTxID(t)
	start := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	var alerts, dead []*kgo.Record
	for i := range 30 {
		ts := start.Add(time.Duration(i) * time.Minute)
		b, _ := json.Marshal(event.Alert{Time: ts, Attack: "neptune", Category: "dos", Probability: 0.9, Novelty: float64(i) / 100, Topic: "flows", Offset: int64(i),
			Explanation: []event.Reason{{Feature: "count", Value: 100, Typical: 2, Contribution: 0.5}}})
		alerts = append(alerts, &kgo.Record{Value: b, Timestamp: ts})
		reason := "record: field 5: bad value \"x\""
		if i%3 == 0 {
			reason = "record: 40 fields, want 41"
		}
		b, _ = json.Marshal(event.DeadLetter{Time: ts, Reason: reason, Value: []byte("x")})
		dead = append(dead, &kgo.Record{Value: b, Timestamp: ts})
	}
	produceTx(t, opts, tx+"a", alertsTopic, true, alerts...)
	produceTx(t, opts, tx+"a", deadTopic, true, dead...)
	// Incident "a" opens in the window and closes after it (its last
	// message is written after the window's end); "b" is after the window.
	var incs []*kgo.Record
	for _, m := range []event.Incident{
		{ID: "flows/0/5", Seq: 1, Status: event.IncidentOpened, Attack: "neptune", Src: "10.0.0.1", Dst: "10.0.0.2", FirstSeen: start.Add(5 * time.Minute), LastSeen: start.Add(5 * time.Minute), Count: 1},
		{ID: "flows/0/5", Seq: 2, Status: event.IncidentClosed, Attack: "neptune", Src: "10.0.0.1", Dst: "10.0.0.2", FirstSeen: start.Add(5 * time.Minute), LastSeen: start.Add(19 * time.Minute), Count: 40},
		{ID: "flows/0/25", Seq: 1, Status: event.IncidentOpened, Attack: "smurf", FirstSeen: start.Add(25 * time.Minute), LastSeen: start.Add(25 * time.Minute), Count: 1},
	} {
		b, _ := json.Marshal(m)
		incs = append(incs, &kgo.Record{Value: b, Timestamp: m.LastSeen.Add(time.Minute)})
	}
	produceTx(t, opts, tx+"a", incTopic, true, incs...)
	src := &StatsReader{Opts: opts, StatsTopic: "unused", AlertsTopic: alertsTopic, DeadLetterTopic: deadTopic, IncidentsTopic: incTopic}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	ex, err := src.Extras(ctx, report.Window{Start: start, End: start.Add(20 * time.Minute)}, 3)
	if err != nil {
		t.Fatal(err)
	}
	top, reasons := ex.TopAlerts, ex.DeadLetterReasons
	if len(ex.Incidents) != 1 || ex.Incidents[0].ID != "flows/0/5" || ex.Incidents[0].Count != 40 || ex.Incidents[0].Status != event.IncidentClosed {
		t.Errorf("incidents = %+v, want flows/0/5 closed with 40 verdicts", ex.Incidents)
	}
	if len(ex.Truncated) != 0 {
		t.Errorf("truncated %v", ex.Truncated)
	}
	var explained int64
	for _, m := range ex.AlertFeatures {
		explained += m["count"]
	}
	if explained != 20 {
		t.Errorf("alerts explained by count in the window: %d, want 20 (%v)", explained, ex.AlertFeatures)
	}
	// With a cap of 10 records per topic, reading stops early and says so.
	src.MaxExtras = 10
	ex, err = src.Extras(ctx, report.Window{Start: start, End: start.Add(20 * time.Minute)}, 3)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, r := range ex.DeadLetterReasons {
		n += r.Count
	}
	if len(ex.Truncated) != 2 || n != 10 {
		t.Errorf("capped: truncated %v, %d dead letters counted, want both topics and 10", ex.Truncated, n)
	}
	if len(top) != 3 || top[0].Novelty != 0.19 || top[0].Source != "flows/0@19" {
		t.Errorf("top alerts = %+v, want novelty 0.19 (offset 19) first", top)
	}
	if len(reasons) != 2 || reasons[0].Count != 13 || reasons[0].Name != "record: field 5: bad value" || reasons[1].Count != 7 {
		t.Errorf("reasons = %+v, want 13 bad value, 7 field count", reasons)
	}
}

// kafkaTxID returns a transactional ID prefix unique to the test run.
func kafkaTxID(t *testing.T) string {
	return fmt.Sprintf("%s-%d-", t.Name(), time.Now().UnixNano())
}

func TestStatsCache(t *testing.T) {
	forEachBackend(t, 1, func(t *testing.T, opts []kgo.Opt, topics []string) {
		tx := kafkaTxID(t)
		h0 := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
		hour := func(h int) []*kgo.Record {
			var recs []*kgo.Record
			for i := range 60 {
				m := h0.Add(time.Duration(h)*time.Hour + time.Duration(i)*time.Minute)
				recs = append(recs, statsRecord(t, statsOf(m, "a", 10, nil), m.Add(time.Minute)))
			}
			return recs
		}
		total := func(series []report.Minute) (n int64) {
			for _, m := range series {
				n += m.Records
			}
			return n
		}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		c := (&StatsReader{Opts: opts, StatsTopic: topics[0]}).NewStatsCache()

		produceTx(t, opts, tx, topics[0], true, hour(0)...)
		s, err := c.Series(ctx, h0.Add(-time.Hour), h0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if got := total(s); got != 600 {
			t.Fatalf("first read: %d records, want 600", got)
		}

		late := statsRecord(t, statsOf(h0.Add(59*time.Minute), "a", 5, nil), h0.Add(time.Hour+3*time.Minute))
		produceTx(t, opts, tx, topics[0], true, append(hour(1), late)...)
		s, err = c.Series(ctx, h0.Add(-time.Hour), h0.Add(2*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if got := total(s); got != 1205 {
			t.Errorf("second read: %d records, want 1205 (600 + 600 + 5 late, nothing twice)", got)
		}
		s, err = c.Series(ctx, h0.Add(time.Hour), h0.Add(2*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if got := total(s); got != 600 {
			t.Errorf("third read: %d records, want 600", got)
		}
	})
}

// statsOf returns a statistics message: records in the minute, of which
// the given attacks, the rest normal.
func statsOf(minute time.Time, instance string, records int64, attacks map[string]int64) event.Stats {
	s := event.Stats{Minute: minute, Instance: instance, Records: records,
		ByCategory: map[string]int64{"normal": records}, ByAttack: map[string]int64{}}
	for name, c := range attacks {
		s.ByAttack[name] += c
		s.ByCategory[record.CategoryOf(name).String()] += c
		s.ByCategory["normal"] -= c
	}
	return s
}
