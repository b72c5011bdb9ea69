package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netsentinel/netsentinel/internal/record"
)

// fakeKafka starts an in-process kfake broker with the given topics.
func fakeKafka(t *testing.T, partitions int32, topics ...string) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// consumeAll reads every record of topic (n of them expected).
func consumeAll(t *testing.T, broker, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	deadline := time.Now().Add(10 * time.Second)
	for len(out) < n && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		out = append(out, fs.Records()...)
	}
	return out
}

func TestPublishCommand(t *testing.T) {
	broker := fakeKafka(t, 3, "in")
	lines := kddLines(t, 0, 300)
	withBad := append(append([]string{}, lines[:150]...), "not,a,record", "")
	withBad = append(withBad, lines[150:]...)
	withBad = append(withBad, strings.Repeat("x", 70_000)) // longer than the line buffer
	csvPath := writeLines(t, "in.csv", withBad)

	t.Run("csv with bad lines", func(t *testing.T) {
		code, stdout, stderr := run(t, "", "publish", "--brokers", broker, "--topic", "csv", "--file", csvPath)
		if code != ExitBadData {
			t.Fatalf("exit %d, want %d (bad lines); stderr:\n%s", code, ExitBadData, stderr)
		}
		if !strings.Contains(stdout, "published 300 records to csv") || !strings.Contains(stdout, "2 invalid lines skipped") {
			t.Errorf("summary: %q", stdout)
		}
		if !strings.Contains(stderr, ":151:") {
			t.Errorf("stderr does not name the bad line 151: %q", stderr)
		}
		rs := consumeAll(t, broker, "csv", 300)
		if len(rs) != 300 {
			t.Fatalf("topic has %d records, want 300", len(rs))
		}
		var rec record.Record
		for _, r := range rs {
			if len(r.Key) != 36 || r.Key[8] != '-' || r.Key[14] != '4' {
				t.Fatalf("key %q is not a v4 UUID", r.Key)
			}
			if err := record.DecodeCSV(r.Value, &rec); err != nil || rec.Label == "" {
				t.Fatalf("record %q: %v (label %q)", r.Value, err, rec.Label)
			}
		}
	})

	t.Run("json gz limit", func(t *testing.T) {
		code, stdout, stderr := run(t, "", "publish", "--brokers", broker, "--topic", "json", "--format", "json", "--key", "none",
			"--file", "../../data/KDDTrain+_20Percent.txt.gz", "--limit", "500")
		if code != ExitOK {
			t.Fatalf("exit %d; stderr:\n%s", code, stderr)
		}
		if !strings.Contains(stdout, "published 500 records") || !strings.Contains(stdout, "records/s") {
			t.Errorf("summary: %q", stdout)
		}
		rs := consumeAll(t, broker, "json", 500)
		if len(rs) != 500 {
			t.Fatalf("topic has %d records, want 500", len(rs))
		}
		var rec record.Record
		for _, r := range rs {
			if r.Key != nil {
				t.Fatalf("key %q with --key none", r.Key)
			}
			if err := record.DecodeJSON(r.Value, &rec); err != nil || rec.Label == "" {
				t.Fatalf("record %q: %v (label %q)", r.Value, err, rec.Label)
			}
		}
	})

	t.Run("rate and loop", func(t *testing.T) {
		small := writeLines(t, "small.csv", lines[:50])
		start := time.Now()
		code, stdout, stderr := run(t, "", "publish", "--brokers", broker, "--topic", "rate", "--file", small, "--loop",
			"--limit", "120", "--rate", "400/s")
		if code != ExitOK {
			t.Fatalf("exit %d; stderr:\n%s", code, stderr)
		}
		if el := time.Since(start); el < 250*time.Millisecond {
			t.Errorf("120 records at 400/s took %v, want >= 0.3s", el)
		}
		if !strings.Contains(stdout, "published 120 records") {
			t.Errorf("summary: %q", stdout)
		}
	})

	t.Run("undeliverable", func(t *testing.T) {
		// A broker without the topic that will not create it.
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		small := writeLines(t, "small.csv", lines[:20])
		code, stdout, stderr := run(t, "", "publish", "--brokers", c.ListenAddrs()[0], "--topic", "x", "--file", small, "--delivery-timeout", "1s")
		if code != ExitFailure {
			t.Fatalf("exit %d, want %d; stdout %q stderr %q", code, ExitFailure, stdout, stderr)
		}
		if !strings.Contains(stdout, "20 NOT delivered") || !strings.Contains(stderr, "20 of 20 records not delivered") {
			t.Errorf("failure not reported: stdout %q stderr %q", stdout, stderr)
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		small := writeLines(t, "small.csv", lines[:20])
		start := time.Now()
		code, _, stderr := run(t, "", "publish", "--brokers", "127.0.0.1:1", "--topic", "x", "--file", small)
		if took := time.Since(start); code != ExitFailure || !strings.Contains(stderr, "connection refused") || took > 8*time.Second {
			t.Errorf("publish to a closed port: exit %d after %v, stderr %q; want %d naming \"connection refused\" within 8s",
				code, took, stderr, ExitFailure)
		}
	})
}
