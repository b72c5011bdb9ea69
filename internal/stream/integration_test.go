package stream

// Integration tests against the real Apache Kafka broker that `make test`
// starts (they skip when NETSENTINEL_TEST_BROKERS is unset). Each one
// asserts that the books balance exactly: every published record is a
// normal count, an alert or a dead letter, once.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/netsentinel/netsentinel/internal/dataset"
	"github.com/netsentinel/netsentinel/internal/kafkatest"
	"github.com/netsentinel/netsentinel/internal/model"
	"github.com/netsentinel/netsentinel/internal/model/forest"
	"github.com/netsentinel/netsentinel/internal/record"
)

// envChild, when set, turns the test binary into a detector process
// configured by the JSON childConfig in the variable (see runChild).
const envChild = "NETSENTINEL_STREAM_TEST_CHILD"

type childConfig struct {
	Brokers                    []string
	Topic, Group, Instance     string
	Alerts, Stats, DeadLetters string
	MaxPollRecords             int
	Static                     bool
	// Delay slows scoring down per record, so that kills land inside
	// transactions.
	Delay time.Duration
	// Incidents, Changelog and Rules (YAML) turn incidents on.
	Incidents, Changelog, Rules string
}

// slowScorer is labelScorer taking delay per record.
type slowScorer struct{ delay time.Duration }

func (s slowScorer) PredictRecord(r *record.Record) model.Verdict {
	time.Sleep(s.delay)
	return labelScorer{}.PredictRecord(r)
}

func TestMain(m *testing.M) {
	if cfg := os.Getenv(envChild); cfg != "" {
		os.Exit(runChild(cfg))
	}
	// No test may leave a goroutine behind: detectors, publishers and
	// readers stop with their context or Close.
	goleak.VerifyTestMain(m)
}

// runChild runs a detector (with labelScorer) until SIGTERM or SIGINT.
func runChild(cfgJSON string) int {
	var c childConfig
	if err := json.Unmarshal([]byte(cfgJSON), &c); err != nil {
		fmt.Fprintln(os.Stderr, "child config:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	d, err := New(Options{
		Client: ClientConfig{Brokers: c.Brokers}, Topic: c.Topic, Group: c.Group, Instance: c.Instance,
		AlertsTopic: c.Alerts, StatsTopic: c.Stats, DeadLetterTopic: c.DeadLetters,
		Scorer: slowScorer{c.Delay}, MaxPollRecords: c.MaxPollRecords, SessionTimeout: 6 * time.Second, StaticMembership: c.Static,
		FetchMaxWait: 50 * time.Millisecond, RestartBackoff: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)), Incidents: c.incidentOptions(),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	if err := d.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child run:", err)
		return 1
	}
	b, _ := json.Marshal(d.Totals())
	fmt.Println(string(b))
	return 0
}

// child is a detector process started by startChild.
type child struct {
	cmd    *exec.Cmd
	stderr string
	done   chan struct{}
}

func startChild(t *testing.T, c childConfig) *child {
	t.Helper()
	cfg, _ := json.Marshal(c)
	logPath := filepath.Join(t.TempDir(), c.Instance+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"="+string(cfg))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	ch := &child{cmd: cmd, stderr: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(ch.done) }()
	t.Cleanup(func() {
		ch.kill()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 3000 {
				b = b[len(b)-3000:]
			}
			t.Logf("child %s log tail:\n%s", c.Instance, b)
		}
	})
	return ch
}

func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// stop sends SIGTERM and waits for a clean exit.
func (c *child) stop(t *testing.T) {
	t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		if code := c.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("child exited with %d after SIGTERM", code)
		}
	case <-time.After(60 * time.Second):
		t.Errorf("child did not exit within 60s of SIGTERM")
		c.kill()
	}
}

// topics are one test's input and output topics.
type topics struct{ in, alerts, stats, dead string }

func newTopics(t *testing.T, partitions int) topics {
	return topics{kafkatest.NewTopic(t, partitions), kafkatest.NewTopic(t, 1), kafkatest.NewTopic(t, 1), kafkatest.NewTopic(t, 1)}
}

func (tp topics) child(brokers []string, group, instance string, maxPoll int) childConfig {
	return childConfig{Brokers: brokers, Topic: tp.in, Group: group, Instance: instance,
		Alerts: tp.alerts, Stats: tp.stats, DeadLetters: tp.dead, MaxPollRecords: maxPoll}
}

func (tp topics) options(brokers []string, group, instance string) Options {
	return Options{Client: ClientConfig{Brokers: brokers}, Topic: tp.in, Group: group, Instance: instance,
		AlertsTopic: tp.alerts, StatsTopic: tp.stats, DeadLetterTopic: tp.dead, Scorer: labelScorer{},
		MaxPollRecords: 500, SessionTimeout: 6 * time.Second, FetchMaxWait: 50 * time.Millisecond,
		RestartBackoff: 200 * time.Millisecond}
}

// committed returns the group's committed offsets summed over the topic and
// the topic's end offsets summed.
func committed(t *testing.T, brokers []string, group, topic string) (done, end int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Topic == topic && o.Err == nil {
				done += o.At
			}
		})
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		ends.Each(func(o kadm.ListedOffset) { end += o.Offset })
	} else {
		end = -1
	}
	return done, end
}

// waitCaughtUp waits until the group has committed every record of topic
// (want of them).
func waitCaughtUp(t *testing.T, brokers []string, group, topic string, want int64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done, end := committed(t, brokers, group, topic)
		if end == want && done == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s committed %d of %d records (end offsets %d) after %v", group, done, want, end, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// producePaced produces values to topic in steps of step records every
// every, in the background; the returned wait blocks until all are acked.
func producePaced(t *testing.T, brokers []string, topic string, values [][]byte, step int, every time.Duration) (wait func()) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	wg.Go(func() {
		for i := 0; i < len(values); i += step {
			for _, v := range values[i:min(len(values), i+step)] {
				cl.Produce(context.Background(), &kgo.Record{Value: v}, func(_ *kgo.Record, err error) {
					if err != nil {
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
					}
				})
			}
			time.Sleep(every)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := cl.Flush(ctx); err != nil {
			mu.Lock()
			firstErr = err
			mu.Unlock()
		}
		cl.Close()
	})
	var once sync.Once
	return func() {
		once.Do(func() {
			wg.Wait()
			if firstErr != nil {
				t.Fatalf("produce: %v", firstErr)
			}
		})
	}
}

// TestIntegrationPipeline trains a real model, publishes a slice of a
// shipped data file with the Publisher and checks the detector's verdicts
// against the labels.
func TestIntegrationPipeline(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	tp := newTopics(t, 3)
	ds, err := dataset.Load("../../data/KDDTrain+_20Percent.txt.gz", dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := forest.DefaultConfig()
	cfg.Trees, cfg.MaxDepth = 10, 14
	m, err := model.Train(context.Background(), ds, model.TrainOptions{Forest: cfg})
	if err != nil {
		t.Fatal(err)
	}

	lines := kddLines(t, 3000)
	pub, err := NewPublisher(PublisherOptions{Client: ClientConfig{Brokers: brokers}, Topic: tp.in})
	if err != nil {
		t.Fatal(err)
	}
	var attacks, normals int64
	var rec record.Record
	for i, l := range lines {
		if err := record.DecodeCSV(l, &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Label == "normal" {
			normals++
		} else {
			attacks++
		}
		v := rec.AppendCSV(nil)
		if i%2 == 1 {
			v = rec.AppendJSON(nil)
		}
		if err := pub.Publish(context.Background(), []byte(fmt.Sprint(i)), v); err != nil {
			t.Fatal(err)
		}
	}
	st, err := pub.Close(context.Background())
	if err != nil || st.Delivered != int64(len(lines)) {
		t.Fatalf("publish: %+v, %v", st, err)
	}
	t.Logf("published %d records at %.0f records/s", st.Delivered, st.Rate())

	opts := tp.options(brokers, kafkatest.Name(t, "g"), "solo")
	opts.Scorer = m
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	stop := runDetector(t, d)
	waitCaughtUp(t, brokers, opts.Group, tp.in, int64(len(lines)), 60*time.Second)
	t.Logf("detected %d records in %v", len(lines), time.Since(start))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	b := readBooks(t, brokers, tp.alerts, tp.stats, tp.dead, int64(len(lines)), time.Second, 30*time.Second)
	checkBooks(t, b, int64(len(lines)))
	var tp1, fp int64
	for _, a := range b.alerts {
		if a.Label == "normal" {
			fp++
		} else {
			tp1++
		}
	}
	tn, fn := normals-fp, attacks-tp1
	acc := float64(tp1+tn) / float64(len(lines))
	t.Logf("binary accuracy %.4f (tp %d fp %d tn %d fn %d)", acc, tp1, fp, tn, fn)
	if acc < 0.95 {
		t.Errorf("binary accuracy %.4f < 0.95 against the labels", acc)
	}
}

// TestIntegrationKill9 kills the detector process with SIGKILL at random
// moments mid-stream, five times, restarting it each time.
func TestIntegrationKill9(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	tp := newTopics(t, 3)
	group := kafkatest.Name(t, "g")
	values := kddLines(t, 10000)
	wait := producePaced(t, brokers, tp.in, values, 200, 20*time.Millisecond)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	cfg := tp.child(brokers, group, "k", 50)
	// Static membership: the restarted detector takes its partitions back
	// at once instead of waiting out the dead member's session. Slow
	// scoring (about 3,000 records/s) keeps a backlog, and most of each
	// transaction's time inside it, so the kills land mid-transaction.
	cfg.Static = true
	cfg.Delay = 500 * time.Microsecond
	for i := range 5 {
		c := startChild(t, cfg)
		before, _ := committed(t, brokers, group, tp.in)
		deadline := time.Now().Add(45 * time.Second)
		for {
			now, _ := committed(t, brokers, group, tp.in)
			if now > before {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("kill %d: no progress within 45s", i+1)
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond)
		c.kill()
		done, end := committed(t, brokers, group, tp.in)
		t.Logf("kill %d: committed %d of %d produced", i+1, done, end)
	}
	// The last run drains the backlog at full speed.
	cfg.Delay, cfg.MaxPollRecords = 0, 1000
	c := startChild(t, cfg)
	wait()
	waitCaughtUp(t, brokers, group, tp.in, int64(len(values)), 90*time.Second)
	c.stop(t)
	b := readBooks(t, brokers, tp.alerts, tp.stats, tp.dead, int64(len(values)), time.Second, 30*time.Second)
	checkBooks(t, b, int64(len(values)))
}

// TestIntegrationTwoProcesses runs two detector processes in one group and
// kills one mid-stream: the other takes over its partitions.
func TestIntegrationTwoProcesses(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	tp := newTopics(t, 4)
	group := kafkatest.Name(t, "g")
	values := kddLines(t, 6000)
	wait := producePaced(t, brokers, tp.in, values, 100, 40*time.Millisecond)
	a := startChild(t, tp.child(brokers, group, "a", 100))
	b := startChild(t, tp.child(brokers, group, "b", 100))
	waitFor(t, 45*time.Second, "progress", func() bool { n, _ := committed(t, brokers, group, tp.in); return n > 600 })
	time.Sleep(500 * time.Millisecond)
	a.kill()
	wait()
	waitCaughtUp(t, brokers, group, tp.in, int64(len(values)), 90*time.Second)
	b.stop(t)
	bk := readBooks(t, brokers, tp.alerts, tp.stats, tp.dead, int64(len(values)), time.Second, 30*time.Second)
	checkBooks(t, bk, int64(len(values)))
	instances := map[string]int64{}
	for _, s := range bk.stats {
		instances[s.Instance] += s.Records + s.DeadLetters
	}
	t.Logf("records by instance: %v", instances)
	if instances["b"] == 0 {
		t.Errorf("the surviving detector b processed nothing: %v", instances)
	}
}

// TestIntegrationBrokerRestart restarts a private broker mid-stream; the
// in-process detector recovers by itself.
func TestIntegrationBrokerRestart(t *testing.T) {
	kafkatest.Brokers(t)
	br := kafkatest.PrivateBroker(t)
	brokers := br.Brokers()
	tp := topics{"in", "alerts", "stats", "dead"}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, tp.in); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopics(ctx, 1, 1, nil, tp.alerts, tp.stats, tp.dead); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	values := kddLines(t, 6000)
	wait := producePaced(t, brokers, tp.in, values, 100, 50*time.Millisecond)
	opts := tp.options(brokers, "g", "r")
	opts.MaxPollRecords = 200
	opts.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	stop := runDetector(t, d)
	waitFor(t, 45*time.Second, "progress", func() bool { return d.Totals().Records > 500 })
	br.Restart(t)
	t.Logf("broker restarted; detector had %+v", d.Totals())
	wait()
	waitCaughtUp(t, brokers, "g", tp.in, int64(len(values)), 120*time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("detector totals %+v", d.Totals())
	b := readBooks(t, brokers, tp.alerts, tp.stats, tp.dead, int64(len(values)), time.Second, 30*time.Second)
	checkBooks(t, b, int64(len(values)))
}

// TestIntegrationDeadLetters sends bad input between good records: each bad
// record lands in the dead-letter topic with a reason, and the detector
// goes on.
func TestIntegrationDeadLetters(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	tp := newTopics(t, 2)
	bad := badInputs(999_000) // a 1 MB line, within the broker's default message limit
	good := kddLines(t, 400)
	var values [][]byte
	values = append(values, good[:200]...)
	for _, v := range bad {
		values = append(values, v)
	}
	values = append(values, good[200:]...)
	cl := kafkatest.Client(t, kgo.ProducerBatchMaxBytes(1_100_000))
	produceAll(t, cl, tp.in, values)
	opts := tp.options(brokers, kafkatest.Name(t, "g"), "dl")
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	stop := runDetector(t, d)
	waitCaughtUp(t, brokers, opts.Group, tp.in, int64(len(values)), 60*time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	b := readBooks(t, brokers, tp.alerts, tp.stats, tp.dead, int64(len(values)), time.Second, 30*time.Second)
	checkBooks(t, b, int64(len(values)))
	if len(b.deadLetters) != len(bad) {
		t.Errorf("dead letters: got %d, want %d", len(b.deadLetters), len(bad))
	}
	byValue := map[string]string{}
	for _, dl := range b.deadLetters {
		if dl.Reason == "" {
			t.Errorf("dead letter at %d/%d has no reason", dl.Partition, dl.Offset)
		}
		byValue[string(dl.Value)] = dl.Reason
	}
	for name, v := range bad {
		reason, ok := byValue[string(v)]
		if name == "1MB line" { // its dead letter holds the first 256 KiB
			reason, ok = "", false
			for val, r := range byValue {
				if len(val) > 1000 && strings.HasPrefix(string(v), val) && strings.Contains(r, "truncated") {
					reason, ok = r, true
				}
			}
		}
		if !ok {
			t.Errorf("%s: no dead letter carries the original bytes", name)
			continue
		}
		t.Logf("%-11s -> %s", name, clipReason(reason))
	}
}

func clipReason(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}

// TestIntegrationKcat has kcat, an independent client, produce CSV and JSON
// records that the detector scores.
func TestIntegrationKcat(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	tp := newTopics(t, 2)
	lines := kddLines(t, 1000)
	var buf bytes.Buffer
	var rec record.Record
	for i, l := range lines {
		if i%4 == 0 {
			if err := record.DecodeCSV(l, &rec); err != nil {
				t.Fatal(err)
			}
			buf.Write(rec.AppendJSON(nil))
		} else {
			buf.Write(l)
		}
		buf.WriteByte('\n')
	}
	kafkatest.KcatInput(t, buf.Bytes(), "-P", "-t", tp.in, "-z", "snappy")
	opts := tp.options(brokers, kafkatest.Name(t, "g"), "kcat")
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	stop := runDetector(t, d)
	waitCaughtUp(t, brokers, opts.Group, tp.in, int64(len(lines)), 60*time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	b := readBooks(t, brokers, tp.alerts, tp.stats, tp.dead, int64(len(lines)), time.Second, 30*time.Second)
	checkBooks(t, b, int64(len(lines)))
	if len(b.deadLetters) != 0 {
		for _, dl := range b.deadLetters {
			t.Errorf("kcat record dead-lettered: %s: %q", dl.Reason, clipReason(string(dl.Value)))
			break
		}
	}
	// The alerts topic is readable by kcat too.
	out := kafkatest.Kcat(t, "-C", "-t", tp.alerts, "-e", "-q", "-c", "1")
	if !strings.Contains(out, `"features"`) {
		t.Errorf("kcat read of the alerts topic: %q", clipReason(out))
	}
}

// TestIntegrationOwnPendingOffsets leaves an offset commit of the
// detector's own transactional ID pending (a transaction that added the
// group's offsets and never ended, with a long timeout), after a committed
// one: stable offset fetches wait for it, so the detector could not start
// until the transaction timed out. The detector settles it itself within
// seconds and scores every record after the committed offset.
func TestIntegrationOwnPendingOffsets(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	tp := newTopics(t, 1)
	group := kafkatest.Name(t, "g")
	produceAll(t, kafkatest.Client(t), tp.in, kddLines(t, 100))
	var logs syncBuffer
	opts := tp.options(brokers, group, "own")
	opts.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(&logs, t.Output()), nil))
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	cl := kafkatest.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	commitOffset := func(offset int64, end bool) {
		t.Helper()
		init, err := fence(ctx, cl, d.txID, 5*time.Minute)
		if err != nil {
			t.Fatalf("init producer id: %v", err)
		}
		add := kmsg.NewPtrAddOffsetsToTxnRequest()
		add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = d.txID, init.ProducerID, init.ProducerEpoch, group
		if _, err := txnRequest(ctx, cl, add, func(r kmsg.Response) int16 { return r.(*kmsg.AddOffsetsToTxnResponse).ErrorCode }); err != nil {
			t.Fatalf("add offsets: %v", err)
		}
		commit := kmsg.NewPtrTxnOffsetCommitRequest()
		commit.TransactionalID, commit.Group, commit.ProducerID, commit.ProducerEpoch = d.txID, group, init.ProducerID, init.ProducerEpoch
		commit.Generation = -1
		part := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		part.Partition, part.Offset, part.Metadata = 0, offset, &d.txID
		topic := kmsg.NewTxnOffsetCommitRequestTopic()
		topic.Topic, topic.Partitions = tp.in, []kmsg.TxnOffsetCommitRequestTopicPartition{part}
		commit.Topics = []kmsg.TxnOffsetCommitRequestTopic{topic}
		resp, err := commit.RequestWith(ctx, cl)
		if err == nil {
			err = kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
		}
		if err != nil {
			t.Fatalf("txn offset commit: %v", err)
		}
		if !end {
			return
		}
		endTxn := kmsg.NewPtrEndTxnRequest()
		endTxn.TransactionalID, endTxn.ProducerID, endTxn.ProducerEpoch, endTxn.Commit = d.txID, init.ProducerID, init.ProducerEpoch, true
		if _, err := txnRequest(ctx, cl, endTxn, func(r kmsg.Response) int16 { return r.(*kmsg.EndTxnResponse).ErrorCode }); err != nil {
			t.Fatalf("end transaction: %v", err)
		}
	}
	commitOffset(10, true)
	commitOffset(50, false) // pending for 5 minutes
	start := time.Now()
	stop := runDetector(t, d)
	waitFor(t, 45*time.Second, "the records after the committed offset scored", func() bool { return d.Totals().Records == 90 })
	t.Logf("unblocked after %v", time.Since(start).Round(time.Millisecond))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "own earlier transaction") {
		t.Errorf("the log does not say how the partition was unblocked")
	}
	if done, _ := committed(t, brokers, group, tp.in); done != 100 {
		t.Errorf("group committed offset %d, want 100", done)
	}
}
