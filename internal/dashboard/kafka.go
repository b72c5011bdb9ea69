package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netsentinel/netsentinel/internal/event"
)

// maxPoll caps the records taken from one poll.
const maxPoll = 10_000

// read consumes the output topics, read-committed, from History ago, and
// feeds the state until ctx is cancelled.
func (d *Dashboard) read(ctx context.Context) error {
	var topics []string
	for _, t := range []string{d.opts.AlertsTopic, d.opts.StatsTopic, d.opts.DeadLetterTopic, d.opts.IncidentsTopic} {
		if t != "" {
			topics = append(topics, t)
		}
	}
	if len(topics) == 0 {
		<-ctx.Done()
		return nil
	}
	from := d.opts.Now().Add(-d.opts.History)
	opts := append(slices.Clone(d.opts.Kafka),
		kgo.ConsumeTopics(topics...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(from.UnixMilli())),
		kgo.FetchMaxWait(250*time.Millisecond),
		// Topics the detector has not created yet are picked up when it
		// does.
		kgo.MetadataMinAge(time.Second),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("dashboard: kafka client: %w", err)
	}
	defer cl.Close()
	d.log.Info("dashboard reading", "topics", topics, "from", from.UTC().Format(time.RFC3339))
	lastErrLog := time.Time{}
	for {
		fetches := cl.PollRecords(ctx, maxPoll)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			d.st.fetchError(fmt.Errorf("read %s/%d: %w", topic, p, err))
			if time.Since(lastErrLog) > 5*time.Second {
				lastErrLog = time.Now()
				d.log.Warn("dashboard: fetch error", "topic", topic, "partition", p, "err", err)
			}
		})
		if fetches.NumRecords() == 0 {
			continue
		}
		fetches.EachRecord(d.ingest)
		d.st.notify()
	}
}

// ingest hands one record to the state by its topic.
func (d *Dashboard) ingest(r *kgo.Record) {
	var err error
	switch r.Topic {
	case d.opts.AlertsTopic:
		// The value points into the fetch's buffer; the ring keeps a copy
		// so it does not hold the whole buffer.
		err = d.st.addAlert(bytes.Clone(r.Value))
	case d.opts.StatsTopic:
		var s event.Stats
		if err = json.Unmarshal(r.Value, &s); err == nil {
			d.st.addStats(s, r.Timestamp)
		}
	case d.opts.DeadLetterTopic:
		err = d.st.addDeadLetter(r.Value)
	case d.opts.IncidentsTopic:
		err = d.st.addIncident(r.Value)
	}
	if err != nil {
		d.st.badMessage(r.Topic, r.Partition, r.Offset, err)
		d.log.Warn("dashboard: undecodable message", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
	}
}

// watch describes the consumer group and its lag every PollInterval; its
// answer (or error) also tells whether the brokers are reachable.
func (d *Dashboard) watch(ctx context.Context) error {
	cl, err := kgo.NewClient(d.opts.Kafka...)
	if err != nil {
		return fmt.Errorf("dashboard: kafka admin client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	t := time.NewTicker(d.opts.PollInterval)
	defer t.Stop()
	for {
		d.poll(ctx, adm)
		d.st.notify()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// poll takes one look at the brokers and the group.
func (d *Dashboard) poll(ctx context.Context, adm *kadm.Client) {
	pctx, cancel := context.WithTimeout(ctx, max(d.opts.PollInterval, 5*time.Second))
	defer cancel()
	if d.opts.Group == "" {
		_, err := adm.BrokerMetadata(pctx)
		if ctx.Err() == nil {
			d.st.setBroker(err)
		}
		return
	}
	lags, err := adm.Lag(pctx, d.opts.Group)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		d.st.setBroker(err)
		d.log.Warn("dashboard: describe group", "group", d.opts.Group, "err", err)
		return
	}
	d.st.setBroker(nil)
	g := GroupStatus{Name: d.opts.Group, PolledAt: d.opts.Now(), Members: []Member{}, Partitions: []PartitionLag{}}
	l, ok := lags[d.opts.Group]
	if !ok {
		g.State = "Dead"
		d.st.setGroup(g)
		return
	}
	if e := l.Error(); errors.Is(e, kerr.GroupIDNotFound) {
		// No detector has joined the group yet.
		g.State = "Dead"
		d.st.setGroup(g)
		return
	} else if e != nil {
		g.Error = e.Error()
		d.st.setGroup(g)
		return
	}
	g.State = l.State
	for _, m := range l.Members {
		mem := Member{ID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost, Partitions: []int32{}}
		if m.InstanceID != nil {
			mem.InstanceID = *m.InstanceID
		}
		if c, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range c.Topics {
				if d.opts.InputTopic == "" || t.Topic == d.opts.InputTopic {
					mem.Partitions = append(mem.Partitions, t.Partitions...)
				}
			}
		}
		slices.Sort(mem.Partitions)
		g.Members = append(g.Members, mem)
	}
	for _, p := range l.Lag.Sorted() {
		if d.opts.InputTopic != "" && p.Topic != d.opts.InputTopic {
			continue
		}
		pl := PartitionLag{Topic: p.Topic, Partition: p.Partition, Committed: p.Commit.At, End: p.End.Offset, Lag: p.Lag}
		if p.Member != nil {
			pl.Member = p.Member.MemberID
		}
		if p.Lag > 0 {
			g.TotalLag += p.Lag
		}
		g.Partitions = append(g.Partitions, pl)
	}
	d.st.setGroup(g)
}
