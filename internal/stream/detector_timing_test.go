package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netsentinel/netsentinel/internal/model"
)

// BenchmarkDetector measures end-to-end records/s through a detector on
// kfake (or on the real broker when NETSENTINEL_BENCH_BROKERS is set):
// b.N records are produced first, then consumed, scored and written
// transactionally. The scorer is labelScorer, or the model file named by
// NETSENTINEL_BENCH_MODEL.
func BenchmarkDetector(b *testing.B) {
	lines := kddLines(b, 20000)
	var brokers []string
	suffix := ""
	if v := os.Getenv("NETSENTINEL_BENCH_BROKERS"); v != "" {
		brokers = strings.Split(v, ",")
		suffix = time.Now().Format("150405.000000") // fresh topics, auto-created
	} else {
		brokers = newFake(b, 4)
	}
	in, group := inTopic+suffix, "bench"+suffix
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.AllowAutoTopicCreation(), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		cl.Produce(ctx, &kgo.Record{Topic: in, Value: lines[i%len(lines)]}, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	opts := testOptions(brokers, "bench")
	opts.Topic, opts.Group = in, group
	opts.AlertsTopic, opts.StatsTopic, opts.DeadLetterTopic = alertTopic+suffix, statsTopic+suffix, deadTopic+suffix
	opts.MaxPollRecords = 5000
	if path := os.Getenv("NETSENTINEL_BENCH_MODEL"); path != "" {
		m, err := model.LoadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		opts.Scorer = m
	}
	d, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(rctx) }()
	for d.Totals().Records < int64(b.N) {
		if time.Since(start) > 5*time.Minute {
			b.Fatalf("only %d of %d records after 5 minutes", d.Totals().Records, b.N)
		}
		time.Sleep(5 * time.Millisecond)
	}
	el := time.Since(start)
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "records/s")
	b.ReportMetric(float64(d.Totals().Committed), "txns")
}

// BenchmarkPublisher measures the Publisher's records/s to kfake (or to
// NETSENTINEL_BENCH_BROKERS), acknowledgements included.
func BenchmarkPublisher(b *testing.B) {
	lines := kddLines(b, 20000)
	var brokers []string
	topic := inTopic
	if v := os.Getenv("NETSENTINEL_BENCH_BROKERS"); v != "" {
		brokers = strings.Split(v, ",")
		topic += time.Now().Format("150405.000000")
	} else {
		brokers = newFake(b, 4)
	}
	p, err := NewPublisher(PublisherOptions{Client: ClientConfig{Brokers: brokers}, Topic: topic})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := p.Publish(ctx, nil, lines[i%len(lines)]); err != nil {
			b.Fatal(err)
		}
	}
	st, err := p.Close(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(st.Rate(), "records/s")
}

// BenchmarkDetectorLatency offers records at a fixed rate
// (NETSENTINEL_BENCH_RATE per second, default 20,000) for b.N records and
// reports the latency from produce to the alert being readable by a
// ReadCommitted consumer (p50-ms, p99-ms) and to the alert being produced
// by the detector, before its transaction commits (produced-p50-ms, ...).
func BenchmarkDetectorLatency(b *testing.B) {
	lines := kddLines(b, 20000)
	rate := 20000.0
	if v := os.Getenv("NETSENTINEL_BENCH_RATE"); v != "" {
		if _, err := fmt.Sscan(v, &rate); err != nil {
			b.Fatal(err)
		}
	}
	var brokers []string
	suffix := ""
	if v := os.Getenv("NETSENTINEL_BENCH_BROKERS"); v != "" {
		brokers = strings.Split(v, ",")
		suffix = time.Now().Format("150405.000000")
	} else {
		brokers = newFake(b, 4)
	}
	opts := testOptions(brokers, "lat")
	opts.Topic, opts.Group = inTopic+suffix, "lat"+suffix
	opts.AlertsTopic, opts.StatsTopic, opts.DeadLetterTopic = alertTopic+suffix, statsTopic+suffix, deadTopic+suffix
	opts.MaxPollRecords = 5000
	opts.FetchMaxWait = 10 * time.Millisecond
	if os.Getenv("NETSENTINEL_BENCH_DEBUG") != "" {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if path := os.Getenv("NETSENTINEL_BENCH_MODEL"); path != "" {
		m, err := model.LoadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		opts.Scorer = m
	}
	d, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	reader, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(opts.AlertsTopic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(10*time.Millisecond), kgo.AllowAutoTopicCreation(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		b.Fatal(err)
	}
	defer reader.Close()
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(opts.Topic), kgo.ProducerLinger(time.Millisecond),
		kgo.AllowAutoTopicCreation())
	if err != nil {
		b.Fatal(err)
	}
	defer prod.Close()
	// Warm up: one record through, so the group has joined.
	prod.Produce(ctx, &kgo.Record{Value: lines[1]}, nil)
	for d.Totals().Records < 1 {
		time.Sleep(10 * time.Millisecond)
	}

	b.ResetTimer()
	var lat, prodLat []time.Duration
	var latMu sync.Mutex
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for {
			fs := reader.PollFetches(ctx)
			if ctx.Err() != nil {
				return
			}
			now := time.Now()
			latMu.Lock()
			fs.EachRecord(func(r *kgo.Record) {
				var a struct{ Time time.Time }
				if json.Unmarshal(r.Value, &a) == nil {
					lat = append(lat, now.Sub(a.Time))
					prodLat = append(prodLat, r.Timestamp.Sub(a.Time))
				}
			})
			latMu.Unlock()
		}
	}()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if wait := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); wait > 0 {
			time.Sleep(wait)
		}
		prod.Produce(ctx, &kgo.Record{Value: lines[i%len(lines)], Timestamp: time.Now()}, nil)
	}
	for d.Totals().Records < int64(b.N)+1 {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	b.StopTimer()
	cancel()
	<-done
	<-readDone
	latMu.Lock()
	defer latMu.Unlock()
	if len(lat) == 0 {
		if b.N > 100 {
			b.Fatal("no alerts read")
		}
		return
	}
	slices.Sort(lat)
	slices.Sort(prodLat)
	q := func(l []time.Duration, p float64) float64 {
		return float64(l[int(p*float64(len(l)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(q(lat, 0.5), "p50-ms")
	b.ReportMetric(q(lat, 0.99), "p99-ms")
	// The alert's own Kafka timestamp is when the detector produced it,
	// before its transaction committed.
	b.ReportMetric(q(prodLat, 0.5), "produced-p50-ms")
	b.ReportMetric(q(prodLat, 0.99), "produced-p99-ms")
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}
