package stream

import (
	"context"
	"os"
	"strings"
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
