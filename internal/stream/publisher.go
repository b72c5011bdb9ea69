package stream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// PublisherOptions configures a Publisher.
type PublisherOptions struct {
	// Client holds the brokers, TLS and SASL settings.
	Client ClientConfig
	// Topic receives the records.
	Topic string
	// Rate limits the records per second; 0 means as fast as possible.
	Rate float64
	// Linger is how long the producer waits to fill a batch; default 5ms.
	Linger time.Duration
	// MaxBuffered bounds the records in flight; default 100,000.
	MaxBuffered int
	// DeliveryTimeout bounds how long one record may take to be delivered,
	// retries included; default 30s.
	DeliveryTimeout time.Duration
	// ConnectTimeout bounds NewPublisher's check that a broker answers;
	// default 5s.
	ConnectTimeout time.Duration
}

// DefaultPublisherOptions returns the default of every optional field.
func DefaultPublisherOptions() PublisherOptions {
	return PublisherOptions{Linger: 5 * time.Millisecond, MaxBuffered: 100_000, DeliveryTimeout: 30 * time.Second,
		ConnectTimeout: 5 * time.Second}
}

// PublishStats counts a Publisher's records.
type PublishStats struct {
	Sent      int64 // records handed to Publish
	Delivered int64 // records the broker acknowledged
	Failed    int64 // records that could not be delivered
	// FirstErr is the first delivery error, if any.
	FirstErr error
	// Elapsed is the time from the first Publish to the end of Close.
	Elapsed time.Duration
}

// Rate returns delivered records per second.
func (s PublishStats) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Delivered) / s.Elapsed.Seconds()
}

// Publisher writes records to one topic with an idempotent, batching,
// asynchronous producer, counting every delivery failure. Publish and Close
// are for one goroutine; Stats may be called from any.
type Publisher struct {
	cl    *kgo.Client
	topic string
	rate  float64

	sent, delivered, failed atomic.Int64
	errOnce                 sync.Once
	firstErr                error
	start                   atomic.Pointer[time.Time] // set by the first Publish
	closed                  bool
}

// NewPublisher connects a producer and checks that a broker answers within
// o.ConnectTimeout, so that an unreachable cluster is reported at once
// rather than after DeliveryTimeout.
func NewPublisher(o PublisherOptions) (*Publisher, error) {
	if o.Topic == "" {
		return nil, errors.New("no topic")
	}
	if o.Rate < 0 {
		return nil, fmt.Errorf("negative rate %g", o.Rate)
	}
	opts, err := ClientOptions(o.Client)
	if err != nil {
		return nil, err
	}
	def := DefaultPublisherOptions()
	if o.Linger <= 0 {
		o.Linger = def.Linger
	}
	if o.MaxBuffered <= 0 {
		o.MaxBuffered = def.MaxBuffered
	}
	if o.DeliveryTimeout <= 0 {
		o.DeliveryTimeout = def.DeliveryTimeout
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = def.ConnectTimeout
	}
	opts = append(opts,
		kgo.DefaultProduceTopic(o.Topic),
		kgo.AllowAutoTopicCreation(), // where the broker allows it
		kgo.ProducerLinger(o.Linger),
		kgo.MaxBufferedRecords(o.MaxBuffered),
		kgo.RecordDeliveryTimeout(o.DeliveryTimeout),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotence (the default) needs all acks
		kgo.ProducerBatchCompression(kgo.Lz4Compression(), kgo.NoCompression()),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.ConnectTimeout)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("no Kafka broker answers (%s): %w", strings.Join(o.Client.Brokers, ","), err)
	}
	return &Publisher{cl: cl, topic: o.Topic, rate: o.Rate}, nil
}

// Publish queues one record. It blocks while the producer's buffer is full
// or to keep to the configured rate, and returns an error only when ctx ends
// or the publisher is closed; delivery failures are counted (see Stats).
// The publisher owns value and key once they are passed.
func (p *Publisher) Publish(ctx context.Context, key, value []byte) error {
	if p.closed {
		return errors.New("publisher closed")
	}
	n := p.sent.Add(1)
	if n == 1 {
		now := time.Now()
		p.start.Store(&now)
	}
	if p.rate > 0 {
		due := p.start.Load().Add(time.Duration(float64(n-1) / p.rate * float64(time.Second)))
		if wait := time.Until(due); wait > time.Millisecond {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				p.sent.Add(-1)
				return ctx.Err()
			case <-t.C:
			}
		}
	}
	if err := ctx.Err(); err != nil {
		p.sent.Add(-1)
		return err
	}
	// A cancelled ctx stops new records, not the ones already queued: they
	// are delivered (or fail) by Close.
	p.cl.Produce(context.WithoutCancel(ctx), &kgo.Record{Key: key, Value: value}, p.promise)
	return nil
}

func (p *Publisher) promise(_ *kgo.Record, err error) {
	if err != nil {
		p.errOnce.Do(func() { p.firstErr = err })
		p.failed.Add(1)
		return
	}
	p.delivered.Add(1)
}

// Stats returns the counts so far. Delivered+Failed reaches Sent once Close
// has returned.
func (p *Publisher) Stats() PublishStats {
	s := PublishStats{Sent: p.sent.Load(), Delivered: p.delivered.Load(), Failed: p.failed.Load()}
	if start := p.start.Load(); start != nil {
		s.Elapsed = time.Since(*start)
	}
	if s.Failed > 0 {
		p.errOnce.Do(func() {})
		s.FirstErr = p.firstErr
	}
	return s
}

// Close waits for every queued record to be delivered or to fail (or for ctx
// to end, failing the rest), closes the client and returns the final
// counts. The error is non-nil if any record was not delivered.
func (p *Publisher) Close(ctx context.Context) (PublishStats, error) {
	if !p.closed {
		p.closed = true
		if err := p.cl.Flush(ctx); err != nil {
			// Fail what is still buffered so the counts add up.
			_ = p.cl.AbortBufferedRecords(context.Background())
		}
		p.cl.Close()
	}
	s := p.Stats()
	if s.Failed > 0 || s.Delivered != s.Sent {
		if s.FirstErr != nil {
			return s, fmt.Errorf("%d of %d records not delivered: %w", s.Sent-s.Delivered, s.Sent, s.FirstErr)
		}
		return s, fmt.Errorf("%d of %d records not delivered", s.Sent-s.Delivered, s.Sent)
	}
	return s, nil
}
