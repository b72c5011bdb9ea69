package stream

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netsentinel/netsentinel/internal/model"
	"github.com/netsentinel/netsentinel/internal/record"
)

// syncBuffer is a strings.Builder safe for concurrent writers and readers.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDetectorUnreachable checks that a detector whose brokers refuse
// connections warns at once, naming the error, and reports itself stalled
// after StallTimeout.
func TestDetectorUnreachable(t *testing.T) {
	var logs syncBuffer
	reg := prometheus.NewRegistry()
	d, err := New(Options{Client: ClientConfig{Brokers: []string{"127.0.0.1:1"}}, Topic: "in", Group: "g", Scorer: labelScorer{},
		StallTimeout: time.Second, CheckInterval: 500 * time.Millisecond, Registerer: reg,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	stop := runDetector(t, d)
	waitFor(t, 5*time.Second, "a warning naming the error", func() bool {
		s := logs.String()
		return strings.Contains(s, "level=WARN") && strings.Contains(s, "connection refused")
	})
	t.Logf("warned after %v", time.Since(start).Round(time.Millisecond))
	if err := d.Health(); err != nil && time.Since(start) < time.Second {
		t.Errorf("Health() = %v before StallTimeout", err)
	}
	waitFor(t, 5*time.Second, "Health to report the stall", func() bool { return d.Health() != nil })
	if err := d.Health(); !errors.Is(err, ErrStalled) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Health() = %v, want ErrStalled naming the connection error", err)
	}
	waitFor(t, 3*time.Second, "the stalled gauge", func() bool { return testutil.ToFloat64(d.m.stalled) == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "detector making no progress"); n > 10 {
		t.Errorf("%d warnings in a few seconds: want them rate-limited", n)
	}
}

// TestDetectorHealthyWhenIdle checks that a detector with nothing to do is
// healthy past its stall timeout.
func TestDetectorHealthyWhenIdle(t *testing.T) {
	brokers := newFake(t, 2)
	opts := testOptions(brokers, "idle")
	opts.StallTimeout, opts.CheckInterval = time.Second, 300*time.Millisecond
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	produceAll(t, producer(t, brokers), inTopic, kddLines(t, 50))
	stop := runDetector(t, d)
	waitFor(t, 20*time.Second, "records processed", func() bool { return d.Totals().Records == 50 })
	time.Sleep(2500 * time.Millisecond) // past StallTimeout, idle
	if err := d.Health(); err != nil {
		t.Errorf("idle detector: Health() = %v, want nil", err)
	}
	if got := testutil.ToFloat64(d.m.lastCommit); got < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last_commit_timestamp_seconds = %v", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// flagAll calls every record an attack.
type flagAll struct{}

func (flagAll) PredictRecord(*record.Record) model.Verdict {
	return model.Verdict{Attack: "unknown", Category: record.CategoryUnknown, IsAttack: true, FlaggedBy: "novelty", Novelty: 1}
}

// TestDetectorSetScorer swaps the scorer between two batches: each record's
// verdict and its stats come from the model that was current for it.
func TestDetectorSetScorer(t *testing.T) {
	brokers := newFake(t, 1)
	lines := kddLines(t, 400)
	cl := producer(t, brokers)
	opts := testOptions(brokers, "swap")
	opts.Model = "model-a"
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	produceAll(t, cl, inTopic, lines[:200])
	stop := runDetector(t, d)
	waitFor(t, 20*time.Second, "first half", func() bool { return d.Totals().Records == 200 })
	d.SetScorer(flagAll{}, "model-b")
	produceAll(t, cl, inTopic, lines[200:])
	waitFor(t, 20*time.Second, "second half", func() bool { return d.Totals().Records == 400 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	b := readBooks(t, brokers, alertTopic, statsTopic, deadTopic, 400, 300*time.Millisecond, 20*time.Second)
	checkBooks(t, b, 400)
	for p, a := range b.alerts {
		want := "model-a"
		if p.Offset >= 200 {
			want = "model-b"
		}
		if a.Model != want || (want == "model-b") != (a.FlaggedBy == "novelty") {
			t.Errorf("alert at offset %d: model %q flagged by %q, want %q", p.Offset, a.Model, a.FlaggedBy, want)
		}
	}
	for o := int64(200); o < 400; o++ {
		if _, ok := b.alerts[pos{0, o}]; !ok {
			t.Errorf("no alert for offset %d after the swap to a model that flags everything", o)
		}
	}
	byModel := map[string]int64{}
	for _, s := range b.stats {
		byModel[s.Model] += s.Records
	}
	if byModel["model-a"] != 200 || byModel["model-b"] != 200 {
		t.Errorf("stats records by model %v, want 200 each", byModel)
	}
}

// TestDetectorUnseen checks that records with a service or flag the
// vocabulary lacks are scored, counted in the stats and metrics, and named
// in their alerts.
func TestDetectorUnseen(t *testing.T) {
	brokers := newFake(t, 1)
	lines := kddLines(t, 100)
	var values [][]byte
	unseen := 0
	for i, l := range lines {
		if i%10 == 0 {
			l = []byte(strings.Replace(string(l), ",tcp,"+strings.Split(string(l), ",")[2]+",", ",tcp,quic,", 1))
			if strings.Contains(string(l), ",quic,") {
				unseen++
			}
		}
		values = append(values, l)
	}
	if unseen == 0 {
		t.Fatal("no record rewritten")
	}
	produceAll(t, producer(t, brokers), inTopic, values)
	opts := testOptions(brokers, "unseen")
	opts.Scorer = flagAll{}
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	stop := runDetector(t, d)
	waitFor(t, 20*time.Second, "records", func() bool { return d.Totals().Records == int64(len(values)) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	b := readBooks(t, brokers, alertTopic, statsTopic, deadTopic, int64(len(values)), 300*time.Millisecond, 20*time.Second)
	checkBooks(t, b, int64(len(values)))
	var counted int64
	for _, s := range b.stats {
		counted += s.Unseen["service"]
	}
	alerts := 0
	for _, a := range b.alerts {
		if a.UnseenService != "" {
			alerts++
			if a.UnseenService != "quic" || a.Features["service"] != "other" {
				t.Errorf("alert: unseen_service %q, features.service %v", a.UnseenService, a.Features["service"])
			}
		}
	}
	if counted != int64(unseen) || alerts != unseen {
		t.Errorf("unseen services: stats count %d, alerts %d, want %d", counted, alerts, unseen)
	}
	if got := testutil.ToFloat64(d.m.unseen.WithLabelValues("service")); got != float64(unseen) {
		t.Errorf("unseen_values_total{feature=service} = %v, want %d", got, unseen)
	}
}
