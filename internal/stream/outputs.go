package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netsentinel/netsentinel/internal/event"
)

// OutputTopics names a detector group's output topics; an empty name is
// not read.
type OutputTopics struct {
	Alerts, Stats, DeadLetters string
}

// OutputHandlers receive the detector's outputs as FollowOutputs reads
// them, with the time each message was written. They are called from one
// goroutine, in order within a partition. A nil handler's messages are
// read and dropped.
type OutputHandlers struct {
	Stats      func(s event.Stats, written time.Time)
	Alert      func(a event.Alert, written time.Time)
	DeadLetter func(d event.DeadLetter, written time.Time)
	// AlertVerdictOnly leaves the record's features, the explanation and
	// the novelty features out of the alerts handed to Alert (they are
	// nil): decoding costs a fraction, for readers that count verdicts.
	AlertVerdictOnly bool
}

// alertVerdict decodes an alert without its features and explanation.
type alertVerdict struct {
	event.Alert
	Features        skipJSON `json:"features"`
	Explanation     skipJSON `json:"explanation"`
	NoveltyFeatures skipJSON `json:"novelty_features"`
}

// skipJSON decodes any JSON value into nothing.
type skipJSON struct{}

func (*skipJSON) UnmarshalJSON([]byte) error { return nil }

// FollowOutputs reads the committed messages of the output topics from
// their start and hands each to its handler, until ctx is done; then it
// returns nil. A message that does not decode, or a fetch error other than
// the end of ctx, stops it with an error naming the topic, partition and
// offset.
func FollowOutputs(ctx context.Context, opts []kgo.Opt, topics OutputTopics, h OutputHandlers) error {
	var names []string
	for _, t := range []string{topics.Alerts, topics.Stats, topics.DeadLetters} {
		if t != "" {
			names = append(names, t)
		}
	}
	if len(names) == 0 {
		return errors.New("follow outputs: no topic given")
	}
	cl, err := kgo.NewClient(append(opts[:len(opts):len(opts)],
		kgo.ConsumeTopics(names...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond))...)
	if err != nil {
		return fmt.Errorf("follow outputs: %w", err)
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err := fs.Err0(); err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("follow outputs: %w", err)
		}
		var derr error
		fs.EachRecord(func(r *kgo.Record) {
			if derr != nil {
				return
			}
			derr = dispatch(r, topics, h)
		})
		if derr != nil {
			return derr
		}
	}
}

// dispatch decodes r by its topic and calls its handler.
func dispatch(r *kgo.Record, topics OutputTopics, h OutputHandlers) error {
	var err error
	switch r.Topic {
	case topics.Stats:
		var s event.Stats
		if err = json.Unmarshal(r.Value, &s); err == nil && h.Stats != nil {
			h.Stats(s, r.Timestamp)
		}
	case topics.Alerts:
		var a event.Alert
		if h.AlertVerdictOnly {
			var v alertVerdict
			err = json.Unmarshal(r.Value, &v)
			a = v.Alert
		} else {
			err = json.Unmarshal(r.Value, &a)
		}
		if err == nil && h.Alert != nil {
			h.Alert(a, r.Timestamp)
		}
	case topics.DeadLetters:
		var d event.DeadLetter
		if err = json.Unmarshal(r.Value, &d); err == nil && h.DeadLetter != nil {
			h.DeadLetter(d, r.Timestamp)
		}
	}
	if err != nil {
		return fmt.Errorf("follow outputs: %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
	}
	return nil
}

// CreateTopics creates each topic with its number of partitions and the
// brokers' default replication factor. A topic that exists already, or
// that the brokers refuse, is an error naming it.
func CreateTopics(ctx context.Context, opts []kgo.Opt, partitions map[string]int32) error {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for name, p := range partitions {
		resp, err := adm.CreateTopic(ctx, p, -1, nil, name)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			return fmt.Errorf("create topic %s: %w", name, err)
		}
	}
	return nil
}
