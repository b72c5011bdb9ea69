// Command incidents is the measuring side of bench/incidents.sh: it counts
// the bytes in topics, waits for a consumer group to commit a topic, and
// measures how soon an incident's first message follows its first record.
//
//	incidents compacted -brokers B TOPIC         creates a 1-partition compacted topic (a changelog)
//	incidents bytes -brokers B TOPIC...          key+value bytes and records per topic (read committed)
//	incidents wait -brokers B -group G -topic T -n N   seconds until G has committed N records of T
//	incidents latency -brokers B -topic T        record -> "opened" message latency quantiles
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netsentinel/netsentinel/bench/internal/latency"
	"github.com/netsentinel/netsentinel/internal/event"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: incidents bytes|wait|latency [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "compacted":
		err = compactedCmd(ctx, os.Args[2:])
	case "bytes":
		err = bytesCmd(ctx, os.Args[2:])
	case "wait":
		err = waitCmd(ctx, os.Args[2:])
	case "latency":
		err = latencyCmd(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "incidents:", err)
		os.Exit(1)
	}
}

// compactedCmd creates a compacted topic with one partition, as detect
// would create its changelog, so that the creation is not measured.
func compactedCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("compacted", flag.ContinueOnError)
	brokers := fs.String("brokers", "127.0.0.1:9092", "`brokers`, comma-separated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*brokers, ",")...))
	if err != nil {
		return err
	}
	defer cl.Close()
	compact := "compact"
	adm := kadm.NewClient(cl)
	for _, t := range fs.Args() {
		if _, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &compact}, t); err != nil {
			return err
		}
	}
	// Wait until the topics have leaders.
	for ctx.Err() == nil {
		ends, err := adm.ListEndOffsets(ctx, fs.Args()...)
		if err == nil && ends.Error() == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return ctx.Err()
}

// bytesCmd reads each topic from its start to its end offsets with a read
// committed consumer (control records kept, so that the end is reached
// even when it is a transaction marker) and prints the records and the
// key+value bytes of the committed data.
func bytesCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bytes", flag.ContinueOnError)
	brokers := fs.String("brokers", "127.0.0.1:9092", "`brokers`, comma-separated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	seeds := kgo.SeedBrokers(strings.Split(*brokers, ",")...)
	adm, err := kgo.NewClient(seeds)
	if err != nil {
		return err
	}
	defer adm.Close()
	var total int64
	for _, topic := range fs.Args() {
		ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
		if err != nil {
			return err
		}
		want := map[int32]int64{}
		ends.Each(func(o kadm.ListedOffset) {
			if o.Err == nil && o.Offset > 0 {
				want[o.Partition] = o.Offset - 1
			}
		})
		var recs, n int64
		if len(want) > 0 {
			cl, err := kgo.NewClient(seeds, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
			if err != nil {
				return err
			}
			for len(want) > 0 && ctx.Err() == nil {
				f := cl.PollFetches(ctx)
				f.EachRecord(func(r *kgo.Record) {
					if !r.Attrs.IsControl() {
						recs++
						n += int64(len(r.Key) + len(r.Value))
					}
					if last, ok := want[r.Partition]; ok && r.Offset >= last {
						delete(want, r.Partition)
					}
				})
			}
			cl.Close()
		}
		total += n
		fmt.Printf("topic=%s records=%d bytes=%d\n", topic, recs, n)
	}
	fmt.Printf("total bytes=%d\n", total)
	return ctx.Err()
}

// waitCmd polls the group's committed offsets every 20 ms until they sum
// to n, and prints the seconds since it started.
func waitCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("wait", flag.ContinueOnError)
	brokers := fs.String("brokers", "127.0.0.1:9092", "`brokers`, comma-separated")
	group := fs.String("group", "", "consumer `group`")
	topic := fs.String("topic", "", "input `topic`")
	n := fs.Int64("n", 0, "records")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	start := time.Now()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*brokers, ",")...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for time.Since(start) < *timeout && ctx.Err() == nil {
		offs, err := adm.FetchOffsets(ctx, *group)
		var done int64
		if err == nil {
			offs.Each(func(o kadm.OffsetResponse) {
				if o.Topic == *topic && o.Err == nil {
					done += o.At
				}
			})
		}
		if done >= *n {
			fmt.Printf("seconds=%.3f\n", time.Since(start).Seconds())
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("group %s did not commit %d records of %s within %v", *group, *n, *topic, *timeout)
}

// latencyCmd reads incident messages (read committed) until none came for
// -idle, and prints the quantiles of (time read - first_seen) over the
// "opened" messages: from an incident's first record to its first message.
func latencyCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("latency", flag.ContinueOnError)
	brokers := fs.String("brokers", "127.0.0.1:9092", "`brokers`, comma-separated")
	topic := fs.String("topic", "", "incidents `topic`")
	idle := fs.Duration("idle", 5*time.Second, "stop after no message for this long (once messages came)")
	skip := fs.Duration("skip", 0, "leave out incidents whose first record is within this long of the first one (warm-up)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var lat []time.Duration
	status := map[string]int{}
	var first time.Time
	err := latency.Follow(ctx, strings.Split(*brokers, ","), *topic, *idle, func(r *kgo.Record, now time.Time) {
		var m event.Incident
		if err := json.Unmarshal(r.Value, &m); err != nil {
			status["unreadable"]++
			return
		}
		status[m.Status]++
		if m.Status != event.IncidentOpened {
			return
		}
		if first.IsZero() || m.FirstSeen.Before(first) {
			first = m.FirstSeen
		}
		if m.FirstSeen.Sub(first) >= *skip {
			lat = append(lat, now.Sub(m.FirstSeen))
		}
	})
	if err != nil {
		return err
	}
	if len(lat) == 0 {
		return errors.New("no opened incidents read")
	}
	fmt.Printf("messages=%v opened=%d %s\n", status, len(lat), latency.Quantiles(lat))
	return nil
}
