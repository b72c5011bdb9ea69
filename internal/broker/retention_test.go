package broker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// datBytes is the size of partition 0 of topic's segment files on disk.
func datBytes(t *testing.T, dir, topic string) (total int64, files int) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "kfake", "partitions", topic+"-0"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".dat") {
			fi, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			total += fi.Size()
			files++
		}
	}
	return total, files
}

// waitStart waits until partition 0 of topic starts at or after want, and
// returns its start and end offsets.
func waitStart(t *testing.T, adm *kadm.Client, topic string, want int64) (start, end int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err1 := adm.ListStartOffsets(t.Context(), topic)
		e, err2 := adm.ListEndOffsets(t.Context(), topic)
		if err1 == nil && err2 == nil {
			so, _ := s.Lookup(topic, 0)
			eo, _ := e.Lookup(topic, 0)
			if so.Offset >= want {
				return so.Offset, eo.Offset
			}
			start, end = so.Offset, eo.Offset
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/0 starts at %d of %d after 10s, want at least %d", topic, start, end, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRetentionBytes(t *testing.T) {
	dir := t.TempDir()
	const limit, seg = 4 << 10, 1 << 10
	b := start(t, Config{DataDir: dir, Partitions: 1, Retention: -1, RetentionBytes: limit, SegmentBytes: seg,
		RetentionCheck: 20 * time.Millisecond})
	cl := client(t, b, kgo.AllowAutoTopicCreation())
	val := strings.Repeat("x", 100)
	for range 200 {
		produceTo(t, cl, "r", 0, val)
	}
	// A whole segment goes at a time, so up to one segment (and the
	// batch that made it roll) more than the limit stays.
	const most = limit + seg + 200
	var total int64
	var files int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if total, files = datBytes(t, dir, "r"); total <= most {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes in %d segment files 10s after producing, want at most %d", total, files, most)
		}
	}
	s, e := waitStart(t, kadm.NewClient(cl), "r", 1)
	if e != 200 {
		t.Fatalf("end offset %d, want 200", e)
	}
	// A retention pass may still be under way: read once the start offset
	// has stayed put for many passes.
	for stable := 0; stable < 10; time.Sleep(50 * time.Millisecond) {
		s2, _ := waitStart(t, kadm.NewClient(cl), "r", s)
		if s2 == s {
			stable++
			continue
		}
		s, stable = s2, 0
	}
	kept := readCommitted(t, b, "r", int(e-s))
	if int64(len(kept)) != e-s || len(kept) == 0 {
		t.Errorf("read %d records from %d..%d; want the %d after the start offset", len(kept), s, e, e-s)
	}
	t.Logf("retention.bytes %d: start offset %d of %d, %d bytes in %d segment files", limit, s, e, total, files)
}

func TestRetentionTime(t *testing.T) {
	dir := t.TempDir()
	b := start(t, Config{DataDir: dir, Partitions: 1, Retention: 300 * time.Millisecond, RetentionBytes: -1,
		SegmentBytes: 1 << 10, RetentionCheck: 20 * time.Millisecond})
	cl := client(t, b, kgo.AllowAutoTopicCreation())
	for range 30 {
		produceTo(t, cl, "r", 0, strings.Repeat("y", 100))
	}
	s, e := waitStart(t, kadm.NewClient(cl), "r", 30)
	if s != 30 || e != 30 {
		t.Errorf("after the retention time the log spans %d..%d, want empty at 30", s, e)
	}
	if total, files := datBytes(t, dir, "r"); files != 0 || total != 0 {
		t.Errorf("%d segment files (%d bytes) left after every record expired", files, total)
	}
	// New records are kept until they expire in turn.
	produceTo(t, cl, "r", 0, "new")
	if got := readCommitted(t, b, "r", 1); len(got) != 1 || got[0] != "new" {
		t.Errorf("after expiry the topic reads %v, want [new]", got)
	}
}

func TestRetentionConfig(t *testing.T) {
	for _, c := range []struct {
		cfg                Config
		ms, bytes, segment int64
		check              time.Duration
		err                string
	}{
		{cfg: Config{}, ms: DefaultRetention.Milliseconds(), bytes: DefaultRetentionBytes, segment: DefaultSegmentBytes, check: DefaultRetentionCheck},
		{cfg: Config{Retention: -1, RetentionBytes: -5}, ms: -1, bytes: -1, segment: DefaultSegmentBytes, check: DefaultRetentionCheck},
		{cfg: Config{Retention: time.Hour, RetentionBytes: 1 << 20, SegmentBytes: 4096, RetentionCheck: time.Second},
			ms: 3600000, bytes: 1 << 20, segment: 4096, check: time.Second},
		{cfg: Config{Retention: time.Microsecond}, err: "at least 1ms"},
		{cfg: Config{SegmentBytes: 10}, err: "between 1 KiB and 1 GiB"},
		{cfg: Config{RetentionCheck: -time.Second}, err: "must be positive"},
	} {
		ms, bytes, seg, check, err := c.cfg.retention()
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("retention(%+v) error %v, want %q", c.cfg, err, c.err)
			}
			continue
		}
		if err != nil || ms != c.ms || bytes != c.bytes || seg != c.segment || check != c.check {
			t.Errorf("retention(%+v) = %d, %d, %d, %v, %v; want %d, %d, %d, %v", c.cfg, ms, bytes, seg, check, err,
				c.ms, c.bytes, c.segment, c.check)
		}
	}
}
