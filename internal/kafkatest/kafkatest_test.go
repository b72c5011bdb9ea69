package kafkatest

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestName(t *testing.T) {
	a, b := Name(t, "t"), Name(t, "t")
	if a == b {
		t.Fatalf("Name returned %q twice", a)
	}
	if !strings.HasPrefix(a, "t-TestName-") {
		t.Errorf("Name = %q, want prefix t-TestName-", a)
	}
}

func TestNameSanitises(t *testing.T) {
	t.Run("sub test/with spaces", func(t *testing.T) {
		n := Name(t, "g")
		if strings.ContainsAny(n, "/ ") {
			t.Errorf("Name = %q contains / or space", n)
		}
	})
}

// TestRoundTrip checks the helpers against the real broker (skipped without one).
func TestRoundTrip(t *testing.T) {
	topic := NewTopic(t, 2)
	cl := Client(t, kgo.DefaultProduceTopic(topic))
	ctx := t.Context()
	if err := cl.ProduceSync(ctx, kgo.StringRecord("hello")).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	KcatInput(t, []byte("from-kcat\n"), "-P", "-t", topic)
	out := Kcat(t, "-C", "-t", topic, "-e", "-q", "-f", "%s\n")
	got := strings.Fields(out)
	if len(got) != 2 || !strings.Contains(out, "hello") || !strings.Contains(out, "from-kcat") {
		t.Fatalf("kcat consumed %q, want hello and from-kcat", out)
	}
}

// TestTransactions checks that the test broker supports exactly-once
// consume-transform-produce (GroupTransactSession), which needs the
// single-node transaction settings of scripts/kafka.sh.
func TestTransactions(t *testing.T) {
	in, out := NewTopic(t, 2), NewTopic(t, 1)
	ctx := t.Context()
	p := Client(t, kgo.DefaultProduceTopic(in))
	const n = 100
	for i := range n {
		p.Produce(ctx, kgo.StringRecord(strconv.Itoa(i)), nil)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(Brokers(t)...),
		kgo.TransactionalID(Name(t, "txn")),
		kgo.ConsumerGroup(Name(t, "g")),
		kgo.ConsumeTopics(in),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DefaultProduceTopic(out),
	)
	if err != nil {
		t.Fatalf("session: %v", err)
	}
	defer sess.Close()
	moved := 0
	deadline := time.Now().Add(60 * time.Second)
	for moved < n && time.Now().Before(deadline) {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		fs := sess.PollFetches(pctx)
		cancel()
		if fs.NumRecords() == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			t.Fatalf("begin: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			sess.Produce(ctx, kgo.SliceRecord(r.Value), nil)
		})
		committed, err := sess.End(ctx, kgo.TryCommit)
		if err != nil {
			t.Fatalf("end: %v", err)
		}
		if committed {
			moved += fs.NumRecords()
		}
	}
	if moved != n {
		t.Fatalf("moved %d records in committed transactions, want %d", moved, n)
	}
	c := Client(t, kgo.ConsumeTopics(out), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]bool{}
	for len(seen) < n && time.Now().Before(deadline) {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		fs := c.PollFetches(pctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			if seen[string(r.Value)] {
				t.Errorf("duplicate %q in output", r.Value)
			}
			seen[string(r.Value)] = true
		})
	}
	if len(seen) != n {
		t.Fatalf("read %d committed records from %s, want %d", len(seen), out, n)
	}
}

// TestPrivateBroker restarts and kills a broker of its own and checks that
// acknowledged records survive both.
func TestPrivateBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a JVM broker; skipped in -short")
	}
	b := PrivateBroker(t)
	ctx := t.Context()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Brokers()...), kgo.DefaultProduceTopic("survivors"),
		kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce := func(v string) {
		t.Helper()
		pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := cl.ProduceSync(pctx, kgo.StringRecord(v)).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", v, err)
		}
	}
	produce("before-restart")
	b.Restart(t)
	produce("after-restart")
	b.Kill(t)
	b.Start(t)
	produce("after-kill")
	c, err := kgo.NewClient(kgo.SeedBrokers(b.Brokers()...), kgo.ConsumeTopics("survivors"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got []string
	deadline := time.Now().Add(30 * time.Second)
	for len(got) < 3 && time.Now().Before(deadline) {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		c.PollFetches(pctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		cancel()
	}
	want := "before-restart after-restart after-kill"
	if strings.Join(got, " ") != want {
		t.Fatalf("records after restart and kill: %q, want %q", got, want)
	}
}
