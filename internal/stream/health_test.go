package stream

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
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

// TestDetectorRecreatesStalledSession stops the broker from answering the
// session's fetches with records while records wait: the detector recreates its
// session after StallTimeout, and catches up once fetches work again.
func TestDetectorRecreatesStalledSession(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, inTopic), kfake.SeedTopics(1, alertTopic, statsTopic, deadTopic))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	var block atomic.Bool
	block.Store(true)
	c.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		// Only the session's fetches, told by their max wait, are
		// blocked; the lag checks' probes get the records.
		if !block.Load() || req.(*kmsg.FetchRequest).MaxWaitMillis != 77 {
			return nil, nil, false
		}
		time.Sleep(20 * time.Millisecond)
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		resp.Version = req.GetVersion()
		return resp, nil, true
	})
	brokers := c.ListenAddrs()
	produceAll(t, producer(t, brokers), inTopic, kddLines(t, 50))
	var logs syncBuffer
	opts := testOptions(brokers, "stuck")
	opts.StallTimeout, opts.CheckInterval, opts.FetchMaxWait = 2*time.Second, 500*time.Millisecond, 77*time.Millisecond
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	stop := runDetector(t, d)
	waitFor(t, 20*time.Second, "the stalled session to be recreated", func() bool { return d.Totals().Restarts > 0 })
	if !strings.Contains(logs.String(), "session stalled") {
		t.Errorf("log does not say why the session was recreated:\n%s", logs.String())
	}
	if n := d.Totals().Records; n != 0 {
		t.Fatalf("%d records processed while fetches were blocked", n)
	}
	block.Store(false)
	waitFor(t, 20*time.Second, "records processed", func() bool { return d.Totals().Records == 50 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestDetectorHealthyAfterTransactionalInput feeds the detector from a
// transactional producer whose last transaction is aborted: the commit and
// abort markers and the aborted records are never delivered, so the idle
// detector must neither count them as waiting nor recreate its session.
func TestDetectorHealthyAfterTransactionalInput(t *testing.T) {
	brokers := newFake(t, 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID("sensor"), kgo.DefaultProduceTopic(inTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	lines := kddLines(t, 60)
	for i, commit := range []kgo.TransactionEndTry{kgo.TryCommit, kgo.TryAbort} {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, v := range lines[i*30 : (i+1)*30] {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: v}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := cl.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	var logs syncBuffer
	opts := testOptions(brokers, "idle-txn")
	opts.StallTimeout, opts.CheckInterval, opts.OrphanTimeout = 2*time.Second, 300*time.Millisecond, 200*time.Millisecond
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	stop := runDetector(t, d)
	waitFor(t, 20*time.Second, "the committed records processed", func() bool { return d.Totals().Records == 30 })
	time.Sleep(4 * time.Second) // past StallTimeout, idle
	if err := d.Health(); err != nil {
		t.Errorf("idle detector after transactional input: Health() = %v, want nil", err)
	}
	if n := d.Totals().Restarts; n != 0 {
		t.Errorf("session recreated %d times while idle:\n%s", n, logs.String())
	}
	if got := testutil.ToFloat64(d.m.waiting); got != 0 {
		t.Errorf("records waiting = %v, want 0 (only markers and aborted records follow)", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
