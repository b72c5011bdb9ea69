// Package sensor is the live front of netsentinel: it captures packets
// from a network interface (capture.Live) or follows a Zeek conn.log that
// is being written (surviving rotation), assembles connections with their
// KDD features (conntrack, zeek, features) and publishes them to the
// records topic, keyed by destination host, in Kafka transactions.
//
// Traffic features need every connection of a capture point, so there is
// one sensor per capture point; scoring scales out behind it (detect).
//
// Checkpoints: when following a log, every transaction also writes the
// position reached (the file's inode, the byte offset after the last
// connection published, and the log's header) to the checkpoint topic
// under the sensor's ID. A restart reads the last committed checkpoint and
// resumes right after it, in the same file even if it was rotated away
// meanwhile (found by inode in its directory): no connection is published
// twice or skipped. The traffic windows start empty after a restart.
// A live capture cannot resume: packets that pass while the sensor is down
// are not seen; on shutdown the open connections are finished and
// published first.
//
// The sensor runs in the caller's goroutine (FollowZeek, Capture) plus
// franz-go's; Close closes the Kafka client.
package sensor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netsentinel/netsentinel/internal/capture"
	"github.com/netsentinel/netsentinel/internal/conntrack"
	"github.com/netsentinel/netsentinel/internal/features"
	"github.com/netsentinel/netsentinel/internal/stream"
)

// DefaultCheckpointTopic is the topic of the sensors' checkpoints.
const DefaultCheckpointTopic = "netsentinel-sensor-checkpoints"

// Options configures a Sensor.
type Options struct {
	// Client is how to reach Kafka.
	Client stream.ClientConfig
	// Topic receives the records (default stream.DefaultTopic).
	Topic string
	// CheckpointTopic receives the checkpoints (default
	// DefaultCheckpointTopic).
	CheckpointTopic string
	// ID names the sensor: its transactional ID and checkpoint key
	// (required; one per capture point).
	ID string
	// Features and Tracker configure the feature windows and the flow
	// table.
	Features features.Options
	Tracker  conntrack.Config
	// Interval is how often a transaction is committed (default 1s).
	Interval time.Duration
	// Poll is how often a followed log is checked for growth and rotation
	// (default 200ms).
	Poll time.Duration
	// ShutdownTimeout bounds the transactions committed even when the
	// sensor is being stopped (the last one, and a log follower's at each
	// end of the file; default 30s): if Kafka cannot take one by then, the
	// sensor returns the error instead of waiting for ever (a live
	// capture's records of that transaction are lost; a follower resumes
	// from its last checkpoint).
	ShutdownTimeout time.Duration
	// Logger receives progress and problems; nil discards them.
	Logger *slog.Logger
	// Registerer receives the sensor's metrics (see metrics.go); nil
	// registers none.
	Registerer prometheus.Registerer
	// extraOpts are added to the Kafka client's options (tests).
	extraOpts []kgo.Opt
}

// Stats counts what a sensor did.
type Stats struct {
	Records      uint64 // records committed
	Transactions uint64
	LineErrors   uint64 // bad log lines skipped
	Kernel       capture.LiveStats
	Tracker      conntrack.Stats
}

// Checkpoint is the position a follower resumes from.
type Checkpoint struct {
	File   string `json:"file"`
	Inode  uint64 `json:"inode"`
	Offset int64  `json:"offset"`
	Header string `json:"header,omitempty"`
	// Records is the number of records the sensor has committed in all.
	Records uint64    `json:"records"`
	Time    time.Time `json:"time"`
}

// Sensor publishes connection records.
type Sensor struct {
	opt     Options
	cl      *kgo.Client
	log     *slog.Logger
	win     *features.Window
	batch   []*kgo.Record
	buf     []byte
	stats   Stats
	last    time.Time
	pending bool // a checkpoint change not yet committed
	metrics metrics
}

// New connects to Kafka (with a transactional producer) and returns a
// Sensor.
func New(opt Options) (*Sensor, error) {
	if opt.ID == "" {
		return nil, errors.New("sensor: an ID is required")
	}
	if opt.Topic == "" {
		opt.Topic = stream.DefaultTopic
	}
	if opt.CheckpointTopic == "" {
		opt.CheckpointTopic = DefaultCheckpointTopic
	}
	if opt.Interval <= 0 {
		opt.Interval = time.Second
	}
	if opt.Poll <= 0 {
		opt.Poll = 200 * time.Millisecond
	}
	if opt.ShutdownTimeout <= 0 {
		opt.ShutdownTimeout = 30 * time.Second
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kopts, err := stream.ClientOptions(opt.Client)
	if err != nil {
		return nil, err
	}
	kopts = append(kopts, kgo.TransactionalID("netsentinel-sensor-"+opt.ID), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	kopts = append(kopts, opt.extraOpts...)
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return nil, fmt.Errorf("sensor: %w", err)
	}
	s := &Sensor{opt: opt, cl: cl, log: log, win: features.NewWindow(opt.Features), last: time.Now()}
	s.publish()
	if opt.Registerer != nil {
		if err := s.register(opt.Registerer); err != nil {
			cl.Close()
			return nil, fmt.Errorf("sensor: metrics: %w", err)
		}
	}
	return s, nil
}

// Close closes the Kafka client.
func (s *Sensor) Close() { s.cl.Close() }

// Stats returns the sensor's counters as of the last commit; it is safe to
// call from any goroutine.
func (s *Sensor) Stats() Stats { return *s.metrics.snap.Load() }

// add computes c's traffic features and queues its record.
func (s *Sensor) add(c *features.Conn) {
	s.win.Add(c)
	s.buf = c.AppendJSON(s.buf[:0])
	s.batch = append(s.batch, &kgo.Record{Topic: s.opt.Topic, Key: []byte(c.ID.DstIP), Value: append([]byte(nil), s.buf...)})
}

// due reports whether a commit is due.
func (s *Sensor) due() bool { return time.Since(s.last) >= s.opt.Interval }

// commit publishes the queued records and, when cp is not nil, the
// checkpoint, in one transaction.
func (s *Sensor) commit(ctx context.Context, cp *Checkpoint) error {
	s.last = time.Now()
	if len(s.batch) == 0 && !s.pending {
		s.publish()
		return nil
	}
	if err := s.cl.BeginTransaction(); err != nil {
		return fmt.Errorf("sensor: begin transaction: %w", err)
	}
	errc := make(chan error, 1)
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			select {
			case errc <- err:
			default:
			}
		}
	}
	for _, r := range s.batch {
		s.cl.Produce(ctx, r, promise)
	}
	if cp != nil {
		cp.Records = s.stats.Records + uint64(len(s.batch))
		cp.Time = time.Now().UTC()
		v, _ := json.Marshal(cp)
		s.cl.Produce(ctx, &kgo.Record{Topic: s.opt.CheckpointTopic, Key: []byte(s.opt.ID), Value: v}, promise)
	}
	ferr := s.cl.Flush(ctx)
	var perr error
	select {
	case perr = <-errc:
	default:
	}
	end := kgo.TryCommit
	if ferr != nil || perr != nil {
		end = kgo.TryAbort
	}
	// The transaction must end even when ctx is done.
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	eerr := s.cl.EndTransaction(ectx, end)
	if err := errors.Join(ferr, perr, eerr); err != nil {
		return fmt.Errorf("sensor: transaction of %d records: %w", len(s.batch), err)
	}
	s.stats.Records += uint64(len(s.batch))
	s.stats.Transactions++
	s.batch = s.batch[:0]
	s.pending = false
	s.publish()
	return nil
}

// commitDetached commits a transaction that must be committed even when
// ctx is done, for at most ShutdownTimeout.
func (s *Sensor) commitDetached(ctx context.Context, cp *Checkpoint) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opt.ShutdownTimeout)
	defer cancel()
	return s.commit(ctx, cp)
}

// LastCheckpoint reads the sensor's last committed checkpoint; nil when it
// has none. It reads the checkpoint topic from its start up to the end
// offsets listed when it began (transaction markers included, so the last
// record seen may be one or two below them, or aborted: a poll that brings
// nothing new for a second also ends the read).
func (s *Sensor) LastCheckpoint(ctx context.Context) (*Checkpoint, error) {
	kopts, err := stream.ClientOptions(s.opt.Client)
	if err != nil {
		return nil, err
	}
	kopts = append(kopts, kgo.ConsumeTopics(s.opt.CheckpointTopic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	kopts = append(kopts, s.opt.extraOpts...)
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, s.opt.CheckpointTopic)
	if err != nil {
		return nil, fmt.Errorf("sensor: checkpoint topic: %w", err)
	}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	var last *Checkpoint
	for len(left) > 0 {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			if e, ok := left[r.Partition]; ok && r.Offset+2 >= e {
				delete(left, r.Partition)
			}
			if string(r.Key) != s.opt.ID {
				return
			}
			var cp Checkpoint
			if json.Unmarshal(r.Value, &cp) == nil {
				last = &cp
			}
		})
		for _, fe := range fs.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) && !errors.Is(fe.Err, context.Canceled) {
				return nil, fmt.Errorf("sensor: read checkpoints: %w", fe.Err)
			}
		}
		if n == 0 {
			break
		}
	}
	return last, nil
}

// ensureCheckpointTopic creates the checkpoint topic if it does not exist:
// one partition, compacted, so that it keeps about one checkpoint per
// sensor and a restart reads little.
func (s *Sensor) ensureCheckpointTopic(ctx context.Context) error {
	compact := "compact"
	resp, err := kadm.NewClient(s.cl).CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &compact}, s.opt.CheckpointTopic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("sensor: create topic %s: %w", s.opt.CheckpointTopic, err)
	}
	return nil
}
