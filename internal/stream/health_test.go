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

// TestHealthBeforeRun checks that a detector whose Run has not started is
// not reported stalled.
func TestHealthBeforeRun(t *testing.T) {
	d, err := New(Options{Client: ClientConfig{Brokers: []string{"127.0.0.1:1"}}, Topic: "in", Group: "g", Scorer: labelScorer{},
		StallTimeout: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Millisecond)
	if err := d.Health(); err != nil {
		t.Errorf("Health() before Run = %v, want nil", err)
	}
}
