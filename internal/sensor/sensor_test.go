package sensor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/netsentinel/netsentinel/internal/capture"
	"github.com/netsentinel/netsentinel/internal/capture/capturetest"
	"github.com/netsentinel/netsentinel/internal/conntrack"
	"github.com/netsentinel/netsentinel/internal/features"
	"github.com/netsentinel/netsentinel/internal/kafkatest"
	"github.com/netsentinel/netsentinel/internal/stream"
)

const logHeader = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n" +
	"#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\n" +
	"#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\n"

// line returns the conn.log line of connection i.
func line(i int) string {
	return fmt.Sprintf("%d.5\tC%d\t10.0.0.1\t%d\t10.0.0.%d\t80\ttcp\thttp\t0.5\t100\t2000\tSF\n", 1600000000+i, i, 40000+i, 2+i%3)
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// kafka is where a test's sensor publishes.
type kafka struct {
	brokers            []string
	topic, checkpoints string
}

// records reads the committed records of the topic: uid -> count, and
// checks their keys.
func records(t *testing.T, k kafka) map[string]int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.brokers...), kgo.ConsumeTopics(k.topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[string]int{}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			var m map[string]any
			if err := json.Unmarshal(r.Value, &m); err != nil {
				t.Fatalf("record %q: %v", r.Value, err)
			}
			if string(r.Key) != m["dst_ip"] {
				t.Errorf("key %q, want the destination %v", r.Key, m["dst_ip"])
			}
			got[m["uid"].(string)]++
		})
		if n == 0 {
			return got
		}
	}
}

// waitRecords waits until the topic holds n committed records.
func waitRecords(t *testing.T, k kafka, n int) map[string]int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := records(t, k)
		total := 0
		for _, c := range got {
			total += c
		}
		if total >= n || time.Now().After(deadline) {
			if total != n {
				t.Fatalf("%d records, want %d: %v", total, n, got)
			}
			return got
		}
	}
}

type running struct {
	cancel context.CancelFunc
	done   chan error
	s      *Sensor
}

func start(t *testing.T, k kafka, path string) *running {
	t.Helper()
	s, err := New(Options{Client: stream.ClientConfig{Brokers: k.brokers}, Topic: k.topic, CheckpointTopic: k.checkpoints,
		ID: "test", Interval: 50 * time.Millisecond, Poll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1), s: s}
	go func() { r.done <- s.FollowZeek(ctx, path) }()
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	if err := <-r.done; err != nil {
		t.Fatalf("FollowZeek: %v", err)
	}
	r.s.Close()
}

// TestFollowZeek follows a growing log through two rotations and two
// restarts (one while the log was rotated): every connection is published
// exactly once. It runs against the in-process kfake and, when the test
// environment has one, a real Kafka broker.
func TestFollowZeek(t *testing.T) {
	t.Run("kfake", func(t *testing.T) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, stream.DefaultTopic), kfake.AllowAutoTopicCreation())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		followZeek(t, kafka{brokers: c.ListenAddrs(), topic: stream.DefaultTopic, checkpoints: DefaultCheckpointTopic})
	})
	t.Run("kafka", func(t *testing.T) {
		brokers := kafkatest.Brokers(t)
		followZeek(t, kafka{brokers: brokers, topic: kafkatest.NewTopic(t, 3), checkpoints: kafkatest.Name(t, "checkpoints")})
	})
}

func followZeek(t *testing.T, brokers kafka) {
	dir := t.TempDir()
	path := filepath.Join(dir, "conn.log")
	appendFile(t, path, logHeader+line(0)+line(1)+line(2))

	r := start(t, brokers, path)
	waitRecords(t, brokers, 3)
	appendFile(t, path, line(3)+line(4))
	waitRecords(t, brokers, 5)
	// Rotation: renamed, a new log with its own header.
	if err := os.Rename(path, filepath.Join(dir, "conn.1.log")); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, logHeader+line(5))
	waitRecords(t, brokers, 6)
	r.stop(t)

	// Written while the sensor is down: more lines, then a rotation.
	appendFile(t, path, line(6)+line(7))
	if err := os.Rename(path, filepath.Join(dir, "conn.2.log")); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, logHeader+line(8))
	r = start(t, brokers, path)
	waitRecords(t, brokers, 9)
	// A partial line is not published until it is complete.
	l9 := line(9)
	appendFile(t, path, l9[:10])
	time.Sleep(200 * time.Millisecond) // several polls and commit intervals; the record must not appear
	r.stop(t)
	r = start(t, brokers, path)
	appendFile(t, path, l9[10:])
	got := waitRecords(t, brokers, 10)
	r.stop(t)
	for i := range 10 {
		if got[fmt.Sprintf("C%d", i)] != 1 {
			t.Errorf("connection C%d published %d times", i, got[fmt.Sprintf("C%d", i)])
		}
	}
	if st := r.s.Stats(); st.LineErrors != 0 {
		t.Errorf("stats %+v", st)
	}
}

// frames replays a synthetic capture as a live source; at its end it
// reports no packets, as a quiet interface does.
type frames struct {
	src    capture.Source
	cancel context.CancelFunc
	n      uint64
}

func (f *frames) Next() (capture.Frame, error) {
	fr, err := f.src.Next()
	if err != nil {
		f.cancel() // the capture is over: stop the sensor
		return capture.Frame{}, capture.ErrNoPacket
	}
	f.n++
	return fr, nil
}

func (f *frames) Stats() (capture.LiveStats, error) { return capture.LiveStats{Packets: f.n}, nil }

func TestCapture(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, stream.DefaultTopic), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var buf bytes.Buffer
	if _, err := capturetest.WritePcap(&buf, 3000, capturetest.Options{Seed: 5}); err != nil {
		t.Fatal(err)
	}
	// The number of connections extract finds in the same capture.
	want := 0
	tr := conntrack.New(conntrack.Config{}, func(*features.Conn) { want++ })
	src, err := capture.OpenFile(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	for {
		f, err := src.Next()
		if err != nil {
			break
		}
		_ = tr.Packet(f.TS, f.Link, f.Data)
	}
	tr.Flush()

	s, err := New(Options{Client: stream.ClientConfig{Brokers: c.ListenAddrs()}, ID: "cap", Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	src, _ = capture.OpenFile(bytes.NewReader(buf.Bytes()))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Capture(ctx, &frames{src: src, cancel: cancel}); err != nil {
		t.Fatal(err)
	}
	got := records(t, kafka{brokers: c.ListenAddrs(), topic: stream.DefaultTopic})
	if len(got) != want || s.Stats().Records != uint64(want) || s.Stats().Kernel.Packets != 3000 {
		t.Errorf("%d records (%d unique), want %d; stats %+v", s.Stats().Records, len(got), want, s.Stats())
	}
}

// TestCaptureShutdownBounded stops a sensor whose broker takes no more
// records: the last transaction gives up after ShutdownTimeout with an
// error instead of hanging.
func TestCaptureShutdownBounded(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, stream.DefaultTopic), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	release := make(chan struct{})
	defer close(release) // before c.Close: the held requests end first
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		c.SleepControl(func() { <-release })
		return nil, nil, false
	})
	var buf bytes.Buffer
	if _, err := capturetest.WritePcap(&buf, 200, capturetest.Options{Seed: 7}); err != nil {
		t.Fatal(err)
	}
	// No commit is due before the capture ends: the only one is the last.
	s, err := New(Options{Client: stream.ClientConfig{Brokers: c.ListenAddrs()}, ID: "stuck", Interval: time.Hour, ShutdownTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	src, err := capture.OpenFile(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	err = s.Capture(ctx, &frames{src: src, cancel: cancel})
	if took := time.Since(start); err == nil || took > 10*time.Second {
		t.Errorf("Capture with a broker that takes nothing = %v after %v; want an error within about 300ms", err, took)
	}
	if s.Stats().Records != 0 {
		t.Errorf("stats %+v; want no record committed", s.Stats())
	}
}
