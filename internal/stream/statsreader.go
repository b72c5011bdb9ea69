package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netsentinel/netsentinel/internal/event"
	"github.com/netsentinel/netsentinel/internal/report"
)

// StatsReader reads the detector's output topics by timestamp, for
// reports. It works with
// any number of detector instances and across their restarts: it reads
// every committed message written in the span it needs, whoever wrote it.
// Only committed transactions are read (read_committed).
type StatsReader struct {
	// Opts are the franz-go client options: seed brokers, TLS, SASL.
	Opts []kgo.Opt
	// StatsTopic holds the per-minute event.Stats messages.
	StatsTopic string
	// AlertsTopic (optional) holds the event.Alert messages.
	AlertsTopic string
	// DeadLetterTopic (optional) holds the event.DeadLetter messages.
	DeadLetterTopic string
	// IncidentsTopic (optional) holds the event.Incident messages.
	IncidentsTopic string
	// MaxLate bounds how long after a window's end statistics for it are
	// still looked for; zero means an hour.
	MaxLate time.Duration
	// MaxExtras bounds the records Extras reads from each optional topic;
	// zero means DefaultMaxExtras.
	MaxExtras int
	// Logger receives warnings about undecodable messages; nil discards.
	Logger *slog.Logger
}

func (s *StatsReader) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *StatsReader) maxLate() time.Duration {
	if s.MaxLate <= 0 {
		return time.Hour
	}
	return s.MaxLate
}

// Stats reads the statistics for the minutes in [from, to) and sums them
// into a series. It starts at the first message written at or after from
// and stops at the end of each partition (its last stable offset when the
// read began) or at the first message written more than MaxLate after to.
func (s *StatsReader) Stats(ctx context.Context, from, to time.Time) ([]report.Minute, error) {
	var agg report.Aggregator
	var bad int
	_, err := scan(ctx, s.Opts, s.StatsTopic, from, to.Add(s.maxLate()), nil, func(r *kgo.Record) bool {
		var st event.Stats
		if err := json.Unmarshal(r.Value, &st); err != nil || st.Minute.IsZero() {
			bad++
		} else if !st.Minute.Before(from) && st.Minute.Before(to) {
			agg.Add(st, r.Timestamp)
		}
		return true
	})
	if bad > 0 {
		s.logger().Warn("undecodable statistics messages skipped", "topic", s.StatsTopic, "count", bad)
	}
	if err != nil {
		return nil, err
	}
	return agg.Series(), nil
}

// StatsCache keeps the statistics read so far and, on each call, reads
// only what was written since: a scheduler producing hourly reports with a
// week of baseline reads the week once, then an hour at a time. It is not
// safe for concurrent use.
type StatsCache struct {
	src  *StatsReader
	agg  report.Aggregator
	next map[int32]int64
	bad  int
}

// NewStatsCache returns an empty cache reading from s.
func (s *StatsReader) NewStatsCache() *StatsCache { return &StatsCache{src: s} }

// Series returns the minutes in [from, to). The first call reads every
// message written since from; later calls continue where the previous one
// stopped, at the end of each partition. Minutes before from are dropped
// from the cache; minutes at or after to are kept for the next call.
func (c *StatsCache) Series(ctx context.Context, from, to time.Time) ([]report.Minute, error) {
	next, err := scan(ctx, c.src.Opts, c.src.StatsTopic, from, time.Time{}, c.next, func(r *kgo.Record) bool {
		var st event.Stats
		if err := json.Unmarshal(r.Value, &st); err != nil || st.Minute.IsZero() {
			c.bad++
		} else if !st.Minute.Before(from) {
			c.agg.Add(st, r.Timestamp)
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	if c.bad > 0 {
		c.src.logger().Warn("undecodable statistics messages skipped", "topic", c.src.StatsTopic, "count", c.bad)
		c.bad = 0
	}
	c.next = next
	c.agg.Prune(from)
	return c.agg.Range(from, to), nil
}

// DefaultMaxExtras is how many records StatsReader.Extras reads at most
// from each optional topic by default.
const DefaultMaxExtras = 200_000

// Extras is what the optional topics add to a report.
type Extras struct {
	// TopAlerts are the most novel alerts (novelty above zero, or category
	// unknown), highest novelty first.
	TopAlerts []report.AlertSummary
	// DeadLetterReasons are the most frequent dead-letter reasons.
	DeadLetterReasons []report.AttackCount
	// Incidents are the incidents with verdicts in the window (their
	// latest state), most verdicts first.
	Incidents []report.IncidentSummary
	// AlertFeatures counts, per minute, the alerts whose explanation named
	// each feature (report.AddSpikeFeatures).
	AlertFeatures report.FeatureMinutes
	// Truncated names the topics whose reading stopped at MaxExtras
	// records.
	Truncated []string
}

func (s *StatsReader) maxExtras() int {
	if s.MaxExtras <= 0 {
		return DefaultMaxExtras
	}
	return s.MaxExtras
}

// Extras reads the optional alerts, dead-letter and incidents topics for
// window w: the n most novel alerts, the n most frequent dead-letter
// reasons and the incidents with verdicts in the window. A
// topic left empty in s, or missing on the brokers, is skipped. Each topic
// is read for at most MaxExtras records (the alerts topic holds a message
// for every attack, so a busy hour can hold millions).
func (s *StatsReader) Extras(ctx context.Context, w report.Window, n int) (Extras, error) {
	var ex Extras
	h := report.NewHighlights(n)
	in := func(t time.Time) bool { return !t.Before(w.Start) && t.Before(w.End) }
	readOptional := func(topic, what string, until time.Time, fn func(*kgo.Record)) error {
		if topic == "" {
			return nil
		}
		read := 0
		_, err := scan(ctx, s.Opts, topic, w.Start, until, nil, func(r *kgo.Record) bool {
			fn(r)
			read++
			return read < s.maxExtras()
		})
		if read >= s.maxExtras() {
			ex.Truncated = append(ex.Truncated, topic)
		}
		if errors.Is(err, ErrNoTopic) {
			s.logger().Warn(what+" topic missing, skipped", "topic", topic)
			return nil
		}
		return err
	}
	err := readOptional(s.AlertsTopic, "alerts", w.End, func(r *kgo.Record) {
		var a event.Alert
		if json.Unmarshal(r.Value, &a) == nil && in(a.Time) {
			h.AddAlert(a)
		}
	})
	if err != nil {
		return ex, err
	}
	err = readOptional(s.DeadLetterTopic, "dead-letter", w.End, func(r *kgo.Record) {
		var d event.DeadLetter
		if json.Unmarshal(r.Value, &d) == nil && in(d.Time) {
			h.AddDeadLetter(d)
		}
	})
	if err != nil {
		return ex, err
	}
	// An incident's messages are written while it lasts and once when it
	// closes (up to its quiet period later): read past the window's end.
	err = readOptional(s.IncidentsTopic, "incidents", w.End.Add(s.maxLate()), func(r *kgo.Record) {
		var m event.Incident
		if json.Unmarshal(r.Value, &m) == nil {
			h.AddIncident(m)
		}
	})
	if err != nil {
		return ex, err
	}
	ex.TopAlerts, ex.DeadLetterReasons = h.TopAlerts(), h.DeadLetterReasons()
	ex.Incidents = h.Incidents(w.Start, w.End)
	ex.AlertFeatures = h.AlertFeatures()
	return ex, nil
}

// ErrNoTopic is returned (wrapped) when a topic to read does not exist.
var ErrNoTopic = errors.New("topic does not exist")

// scan calls fn for every committed data record of topic from the
// offsets in next (partitions missing there: from the first record written
// at or after from) up to each partition's last stable offset at the
// start, and stops a partition at its first data record written after
// until (zero: no limit). It stops altogether when fn returns false. It
// returns the offset each partition should be read from next time.
func scan(ctx context.Context, opts []kgo.Opt, topic string, from, until time.Time, next map[int32]int64, fn func(*kgo.Record) bool) (map[int32]int64, error) {
	if topic == "" {
		return nil, fmt.Errorf("read: no topic given")
	}
	admCl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", topic, err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	starts, err := adm.ListOffsetsAfterMilli(ctx, from.UnixMilli(), topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: list offsets at %v: %w", topic, from, errTopic(err))
	}
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: list end offsets: %w", topic, errTopic(err))
	}
	at := map[int32]kgo.Offset{}
	end := map[int32]int64{}
	reached := map[int32]int64{}
	ends.Each(func(e kadm.ListedOffset) {
		start, ok := next[e.Partition]
		if !ok {
			s, found := starts.Lookup(topic, e.Partition)
			if !found || s.Offset < 0 {
				return
			}
			start = s.Offset
		}
		reached[e.Partition] = max(start, e.Offset)
		if start >= e.Offset {
			return
		}
		at[e.Partition] = kgo.NewOffset().At(start)
		end[e.Partition] = e.Offset
	})
	if len(at) == 0 {
		return reached, nil
	}
	cl, err := kgo.NewClient(append(slices.Clip(opts),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: at}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Control records (transaction markers) are kept so the reader
		// sees every offset up to the end and knows when it is done.
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", topic, err)
	}
	defer cl.Close()
	for len(end) > 0 {
		fetches := cl.PollRecords(ctx, 10000)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read %s: %w", topic, err)
		}
		var ferr error
		fetches.EachError(func(t string, p int32, err error) {
			if ferr == nil {
				ferr = fmt.Errorf("read %s partition %d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return nil, ferr
		}
		var done []int32
		stop := false
		fetches.EachRecord(func(r *kgo.Record) {
			e, ok := end[r.Partition]
			if stop || !ok || r.Offset >= e {
				return
			}
			// Transaction markers carry the time of the commit, not of
			// the data: only data records end a partition early.
			control := r.Attrs.IsControl()
			late := !control && !until.IsZero() && r.Timestamp.After(until)
			if late {
				reached[r.Partition] = r.Offset
			} else {
				if !control && !fn(r) {
					stop = true
				}
				reached[r.Partition] = r.Offset + 1
			}
			if late || r.Offset+1 >= e {
				delete(end, r.Partition)
				done = append(done, r.Partition)
			}
		})
		if stop {
			return reached, nil
		}
		if len(done) > 0 {
			cl.PauseFetchPartitions(map[string][]int32{topic: done})
		}
	}
	return reached, nil
}

func errTopic(err error) error {
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return fmt.Errorf("%w: %w", ErrNoTopic, err)
	}
	return err
}
