// Command e2e is the measuring side of bench/e2e.sh, the end-to-end
// benchmark of netsentinel publish → detect → outputs against a real Kafka
// broker. It has four subcommands:
//
//	e2e topic -brokers B -partitions P NAME...   create topics (existing ones are kept)
//	e2e freeport                                 print a free TCP port on 127.0.0.1
//	e2e throughput -metrics URL,... -n N         wait until the detectors' /metrics sum
//	                                             netsentinel_detect_records_total to N;
//	                                             print the records/s
//	e2e latency -brokers B -topic ALERTS         read alerts ReadCommitted until idle;
//	                                             print latency percentiles
//
// Latency is measured two ways, both on this machine's one clock: "visible"
// is the time a ReadCommitted consumer receives the alert minus the source
// record's timestamp (the time `netsentinel publish` handed it to its
// producer, carried in the alert as event.Alert.Time) — what a downstream
// reader actually waits; "produced" is the alert record's own Kafka
// timestamp (set when the detector produced it, before its transaction
// committed) minus the same source time.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netsentinel/netsentinel/bench/internal/latency"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: e2e topic|freeport|throughput|latency [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "topic":
		err = topic(ctx, args)
	case "freeport":
		err = freeport()
	case "throughput":
		err = throughput(ctx, args)
	case "latency":
		err = latencyCmd(ctx, args)
	default:
		err = fmt.Errorf("unknown subcommand %q", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
}

func topic(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("topic", flag.ContinueOnError)
	brokers := fs.String("brokers", "127.0.0.1:9092", "`brokers`, comma-separated")
	parts := fs.Int("partitions", 4, "partitions per topic")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*brokers, ",")...))
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	res, err := kadm.NewClient(cl).CreateTopics(ctx, int32(*parts), 1, nil, fs.Args()...)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for _, r := range res.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}

func freeport() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Println(l.Addr().(*net.TCPAddr).Port)
	return nil
}

// throughput polls the detectors' metrics every 20 ms. The rate is taken
// from the first poll that sees a committed record to the poll that sees
// all N: (N - count at first sight) / elapsed, so the group join and the
// first transaction are left out; "wall" includes them, from the start of
// this command (started with the detectors).
func throughput(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("throughput", flag.ContinueOnError)
	urls := fs.String("metrics", "", "detectors' /metrics `URLs`, comma-separated")
	n := fs.Int64("n", 0, "records to wait for")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	start := time.Now()
	var t0 time.Time
	var c0 int64
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		if time.Since(start) > *timeout || ctx.Err() != nil {
			return fmt.Errorf("gave up after %s", time.Since(start).Round(time.Millisecond))
		}
		var sum int64
		for _, u := range strings.Split(*urls, ",") {
			c, err := recordsTotal(hc, u)
			if err != nil {
				sum = -1
				break
			}
			sum += c
		}
		now := time.Now()
		if sum > 0 && t0.IsZero() {
			t0, c0 = now, sum
		}
		if sum >= *n {
			el := now.Sub(t0).Seconds()
			rate := 0.0
			if el > 0 {
				rate = float64(sum-c0) / el
			}
			fmt.Printf("records=%d first_commit_records=%d seconds=%.3f rate=%.0f wall_seconds=%.3f wall_rate=%.0f\n",
				sum, c0, el, rate, now.Sub(start).Seconds(), float64(sum)/now.Sub(start).Seconds())
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func recordsTotal(hc *http.Client, url string) (int64, error) {
	resp, err := hc.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "netsentinel_detect_records_total "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int64(f), err
		}
	}
	return 0, sc.Err() // not registered yet: 0
}

func latencyCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("latency", flag.ContinueOnError)
	brokers := fs.String("brokers", "127.0.0.1:9092", "`brokers`, comma-separated")
	topic := fs.String("topic", "", "alerts `topic`")
	idle := fs.Duration("idle", 5*time.Second, "stop after no alert for this long (once alerts came)")
	skip := fs.Duration("skip", 0, "leave out alerts whose source is within this long of the first one (warm-up)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var visible, produced []time.Duration
	var first, last time.Time
	var windows []window // worst visible latency per second of source time
	bad := 0
	err := latency.Follow(ctx, strings.Split(*brokers, ","), *topic, *idle, func(r *kgo.Record, now time.Time) {
		src, ok := alertTime(r.Value)
		if !ok {
			bad++
			return
		}
		if first.IsZero() {
			first = src
		}
		if src.Sub(first) < *skip {
			return
		}
		if src.After(last) {
			last = src
		}
		v := now.Sub(src)
		visible = append(visible, v)
		produced = append(produced, r.Timestamp.Sub(src))
		sec := int(src.Sub(first) / time.Second)
		for len(windows) <= sec {
			windows = append(windows, window{})
		}
		windows[sec].n++
		windows[sec].max = max(windows[sec].max, v)
	})
	if err != nil {
		return err
	}
	if len(visible) == 0 {
		return errors.New("no alerts read")
	}
	if bad > 0 {
		fmt.Fprintf(os.Stderr, "e2e: %d alerts without a readable time\n", bad)
	}
	fmt.Printf("alerts=%d source_span_seconds=%.1f\n", len(visible), last.Sub(first).Seconds())
	fmt.Printf("visible  %s\n", latency.Quantiles(visible))
	fmt.Printf("produced %s\n", latency.Quantiles(produced))
	var worst []string
	for i, w := range windows {
		worst = append(worst, fmt.Sprintf("%d:%d", i, w.max.Milliseconds()))
	}
	fmt.Printf("per-second max visible ms: %s\n", strings.Join(worst, " "))
	return nil
}

type window struct {
	n   int
	max time.Duration
}

// alertTime reads the "time" field that event.Alert JSON starts with,
// without decoding the whole alert (this reader shares the 2 cores with
// the detector and the broker).
func alertTime(v []byte) (time.Time, bool) {
	const pre = `{"time":"`
	if !bytes.HasPrefix(v, []byte(pre)) {
		return time.Time{}, false
	}
	rest := v[len(pre):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(rest[:end]))
	return t, err == nil
}
