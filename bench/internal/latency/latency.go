// Package latency is the reading side shared by the latency benchmarks under
// bench/ (bench/e2e, bench/incidents): it follows a detector output topic
// as a downstream reader would (read committed, from the start) until the
// topic goes quiet, and summarises latencies as quantiles. It keeps no
// goroutine of its own: Follow's client is closed when it returns.
package latency

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// FirstWait bounds how long Follow waits for a topic's first record.
const FirstWait = 2 * time.Minute

// Follow reads topic from its start with a read-committed consumer that
// waits at most 10 ms for data, and calls each with every record and the
// time its fetch was received, until no record came for idle (once records
// came) or ctx ends; it returns nil then. It fails when no record came
// within FirstWait. Fetch errors other than a poll's own timeout are
// reported on standard error and reading goes on.
func Follow(ctx context.Context, brokers []string, topic string, idle time.Duration, each func(r *kgo.Record, received time.Time)) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(10*time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	start := time.Now()
	var lastRecv time.Time
	for {
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fs := cl.PollFetches(pctx)
		cancel()
		now := time.Now()
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				fmt.Fprintf(os.Stderr, "fetch %s[%d]: %v\n", t, p, err)
			}
		})
		got := 0
		fs.EachRecord(func(r *kgo.Record) {
			got++
			each(r, now)
		})
		if got > 0 {
			lastRecv = now
		} else if !lastRecv.IsZero() && now.Sub(lastRecv) > idle {
			return nil
		} else if lastRecv.IsZero() && now.Sub(start) > FirstWait {
			return fmt.Errorf("no record in %s within %v", topic, FirstWait)
		}
	}
}

// Quantiles sorts d and returns its p50, p90, p99, p99.9 and maximum in
// milliseconds, as "p50_ms=… p90_ms=… p99_ms=… p999_ms=… max_ms=…" (the
// benchmark scripts read these keys). d must not be empty.
func Quantiles(d []time.Duration) string {
	slices.Sort(d)
	q := func(p float64) float64 {
		return float64(d[int(p*float64(len(d)-1))].Microseconds()) / 1000
	}
	return fmt.Sprintf("p50_ms=%.1f p90_ms=%.1f p99_ms=%.1f p999_ms=%.1f max_ms=%.1f", q(0.5), q(0.9), q(0.99), q(0.999), q(1))
}
