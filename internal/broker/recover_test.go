package broker

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// crashCopy copies a running broker's data directory: the files as they
// are between two writes, which is what a kill -9 leaves (every write is
// a system call, so nothing waits in the process).
func crashCopy(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.Walk(src, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		to := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o644)
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
	return dst
}

// readCommitted reads topic from the start with read-committed isolation
// until it has been quiet for a second, and returns the values in order.
func readCommitted(t *testing.T, b *Broker, topic string) []string {
	t.Helper()
	cl := client(t, b, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	var got []string
	for idle := time.Now(); time.Since(idle) < time.Second; {
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			got = append(got, string(r.Value))
			idle = time.Now()
		})
	}
	return got
}

func txnProducer(t *testing.T, b *Broker, txid string) *kgo.Client {
	t.Helper()
	return client(t, b, kgo.TransactionalID(txid), kgo.AllowAutoTopicCreation(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
}

func produceTo(t *testing.T, cl *kgo.Client, topic string, part int32, values ...string) {
	t.Helper()
	for _, v := range values {
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: topic, Partition: part, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %s to %s/%d: %v", v, topic, part, err)
		}
	}
}

func begin(t *testing.T, cl *kgo.Client) {
	t.Helper()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
}

func end(t *testing.T, cl *kgo.Client, commit kgo.TransactionEndTry) {
	t.Helper()
	if err := cl.EndTransaction(t.Context(), commit); err != nil {
		t.Fatalf("end transaction: %v", err)
	}
}

func wantValues(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s: read-committed reader sees %v, want %v", what, got, want)
	}
}

// TestRecoverOpenTransaction: a transaction open when the broker dies is
// aborted with a real marker, so that the same producer's next commit
// after a restart does not commit it too (which kfake's replay alone does
// after a second unclean stop).
func TestRecoverOpenTransaction(t *testing.T) {
	d1 := t.TempDir()
	b1 := start(t, Config{DataDir: d1, Partitions: 1})
	p1 := txnProducer(t, b1, "tx")
	begin(t, p1)
	produceTo(t, p1, "x", 0, "a1", "a2", "a3")

	d2 := crashCopy(t, d1)
	b2 := start(t, Config{DataDir: d2, Partitions: 1})
	if r := b2.Recovery(); !r.Unclean || r.Aborted != 1 {
		t.Errorf("Recovery() = %+v, want unclean with 1 transaction aborted", r)
	}
	wantValues(t, "after the first restart", readCommitted(t, b2, "x"))
	p2 := txnProducer(t, b2, "tx")
	begin(t, p2)
	produceTo(t, p2, "x", 0, "b1", "b2")
	end(t, p2, kgo.TryCommit)
	wantValues(t, "after the commit", readCommitted(t, b2, "x"), "b1", "b2")

	d3 := crashCopy(t, d2)
	b3 := start(t, Config{DataDir: d3, Partitions: 1})
	if r := b3.Recovery(); r.Aborted != 0 {
		t.Errorf("second recovery aborted %d transactions, want 0", r.Aborted)
	}
	wantValues(t, "after the second restart", readCommitted(t, b3, "x"), "b1", "b2")
}

// segmentFiles returns the .dat and .idx paths of partition 0 of topic's
// first segment.
func segmentFiles(t *testing.T, dir, topic string) (dat, idx string) {
	t.Helper()
	pdir := filepath.Join(dir, "kfake", "partitions", topic+"-0")
	return filepath.Join(pdir, "0.dat"), filepath.Join(pdir, "0.idx")
}

// TestRecoverShortIndex: a stop between a batch's write and its index
// entry's leaves the index one entry short; the index is rebuilt, so that
// entries written later line up with their batches and aborted batches
// stay hidden.
func TestRecoverShortIndex(t *testing.T) {
	d1 := t.TempDir()
	b1 := start(t, Config{DataDir: d1, Partitions: 1})
	plain := client(t, b1, kgo.AllowAutoTopicCreation())
	produceTo(t, plain, "x", 0, "a1", "a2", "a3")

	d2 := crashCopy(t, d1)
	_, idx := segmentFiles(t, d2, "x")
	fi, err := os.Stat(idx)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(idx, fi.Size()-indexEntrySize); err != nil {
		t.Fatal(err)
	}
	b2 := start(t, Config{DataDir: d2, Partitions: 1})
	if r := b2.Recovery(); r.IndexEntries != 1 {
		t.Errorf("Recovery() = %+v, want 1 index entry rebuilt", r)
	}
	tx := txnProducer(t, b2, "tx")
	begin(t, tx)
	produceTo(t, tx, "x", 0, "aborted") // one batch, as a detector writes per partition
	end(t, tx, kgo.TryAbort)
	plain2 := client(t, b2)
	produceTo(t, plain2, "x", 0, "c1")
	wantValues(t, "after the restart", readCommitted(t, b2, "x"), "a1", "a2", "a3", "c1")

	d3 := crashCopy(t, d2)
	b3 := start(t, Config{DataDir: d3, Partitions: 1})
	wantValues(t, "after the second restart", readCommitted(t, b3, "x"), "a1", "a2", "a3", "c1")
}

// TestRecoverInterruptedCommit: a stop after a commit's marker reached one
// partition but not the other, and before its group offsets were written,
// is finished from the journal at the next start.
func TestRecoverInterruptedCommit(t *testing.T) {
	d1 := t.TempDir()
	b1 := start(t, Config{DataDir: d1, Partitions: 2})
	tx := txnProducer(t, b1, "tx")
	begin(t, tx)
	produceTo(t, tx, "x", 0, "p0")
	produceTo(t, tx, "x", 1, "p1")

	d2 := crashCopy(t, d1)
	// The commit marker reaches partition 0 only.
	pdir := filepath.Join(d2, "kfake", "partitions", "x-0")
	ps, err := scanPartition(pdir, &Recovery{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps.open) != 1 {
		t.Fatalf("partition 0 has %d open transactions, want 1", len(ps.open))
	}
	var pid int64
	var epoch int16
	for pid, epoch = range ps.open {
	}
	ps.addMarker(pid, epoch, true, time.Now())
	if err := ps.writeMarkers(); err != nil {
		t.Fatal(err)
	}
	in := commitIntent{PID: pid, Epoch: epoch, TxID: "tx", Version: 5,
		Offsets: []intentOffset{{Group: "g", Topic: "x", Partition: 0, Offset: 42, LeaderEpoch: -1}}}
	if err := os.WriteFile(filepath.Join(d2, journalFile), appendLog(nil, in), 0o644); err != nil {
		t.Fatal(err)
	}

	b2 := start(t, Config{DataDir: d2, Partitions: 2})
	if r := b2.Recovery(); r.Completed != 1 || r.CompletedOffsets != 1 || r.Aborted != 0 {
		t.Errorf("Recovery() = %+v, want 1 partition and 1 offset completed, nothing aborted", r)
	}
	got := readCommitted(t, b2, "x")
	if len(got) != 2 {
		t.Errorf("read-committed reader sees %v, want p0 and p1", got)
	}
	cl := client(t, b2)
	offs, err := kadm.NewClient(cl).FetchOffsets(t.Context(), "g")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup("x", 0); !ok || o.At != 42 {
		t.Errorf("group g offset of x/0 = %+v, want 42", o)
	}
	// The producer's next transaction works (its epoch moved on, as
	// after a commit).
	tx2 := txnProducer(t, b2, "tx")
	begin(t, tx2)
	produceTo(t, tx2, "x", 1, "next")
	end(t, tx2, kgo.TryCommit)
	if got := readCommitted(t, b2, "x"); len(got) != 3 {
		t.Errorf("after the next commit the reader sees %v, want 3 records", got)
	}
}

// TestRecoverTornWrites: a partial batch at the end of the last segment
// and a partial entry at the end of pids.log are cut; the rest is served.
func TestRecoverTornWrites(t *testing.T) {
	d1 := t.TempDir()
	b1 := start(t, Config{DataDir: d1, Partitions: 1})
	produceTo(t, txnProducer(t, b1, "tx"), "x", 0) // registers a producer in pids.log
	plain := client(t, b1, kgo.AllowAutoTopicCreation())
	produceTo(t, plain, "x", 0, "a1", "a2")

	d2 := crashCopy(t, d1)
	dat, _ := segmentFiles(t, d2, "x")
	raw, err := os.ReadFile(dat)
	if err != nil {
		t.Fatal(err)
	}
	half := raw[:len(raw)/2] // the start of the first batch again, cut short
	if err := appendFile(dat, half[:min(len(half), 40)]); err != nil {
		t.Fatal(err)
	}
	if err := appendFile(filepath.Join(d2, "kfake", "pids.log"), []byte{9, 9, 9}); err != nil {
		t.Fatal(err)
	}
	b2 := start(t, Config{DataDir: d2, Partitions: 1})
	if r := b2.Recovery(); r.TornBytes != int64(min(len(half), 40))+3 {
		t.Errorf("Recovery() = %+v, want %d torn bytes", r, min(len(half), 40)+3)
	}
	p := client(t, b2)
	produceTo(t, p, "x", 0, "a3")
	wantValues(t, "after the restart", readCommitted(t, b2, "x"), "a1", "a2", "a3")
}

// TestRecoverRefusesDamage: a corrupt batch in the middle of a segment is
// not a torn write: Start refuses the directory and says how to recover.
func TestRecoverRefusesDamage(t *testing.T) {
	d1 := t.TempDir()
	b1 := start(t, Config{DataDir: d1, Partitions: 1})
	plain := client(t, b1, kgo.AllowAutoTopicCreation())
	produceTo(t, plain, "x", 0, "a1", "a2", "a3")

	d2 := crashCopy(t, d1)
	dat, _ := segmentFiles(t, d2, "x")
	raw, err := os.ReadFile(dat)
	if err != nil {
		t.Fatal(err)
	}
	raw[batchHeaderSize+2] ^= 0xff // inside the first batch's records
	if err := os.WriteFile(dat, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := Start(t.Context(), Config{Listen: "127.0.0.1:0", DataDir: d2})
	if err == nil {
		b.Close()
		t.Fatal("Start served a damaged directory")
	}
	if !errors.Is(err, ErrDataDir) || !strings.Contains(err.Error(), dat) || !strings.Contains(err.Error(), "truncate -s 0") {
		t.Errorf("error %q: want ErrDataDir naming %s and the truncate command", err, dat)
	}
	// The refusal leaves the directory as it was and unlocked.
	after, _ := os.ReadFile(dat)
	if !bytes.Equal(after, raw) {
		t.Error("the refused start changed the segment")
	}
}

// TestCleanStopNoRecovery: a broker closed cleanly leaves nothing to
// repair.
func TestCleanStopNoRecovery(t *testing.T) {
	dir := t.TempDir()
	b, err := Start(t.Context(), Config{Listen: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	tx := txnProducer(t, b, "tx")
	begin(t, tx)
	produceTo(t, tx, "x", 0, "a1")
	end(t, tx, kgo.TryCommit)
	tx.Close()
	b.Close()
	if _, err := os.Stat(filepath.Join(dir, runningFile)); !os.IsNotExist(err) {
		t.Errorf("%s after a clean stop: %v, want it gone", runningFile, err)
	}
	b2 := start(t, Config{DataDir: dir})
	if r := b2.Recovery(); r.Unclean {
		t.Errorf("Recovery() after a clean stop = %+v", r)
	}
	wantValues(t, "after a clean restart", readCommitted(t, b2, "x"), "a1")
}

// TestRecoverIdempotentRetry: a producer's retry of a batch the broker
// wrote just before it was killed is recognised as a duplicate after the
// restart (kfake's sequence windows are saved only at a clean shutdown and
// are rebuilt from the segments).
func TestRecoverIdempotentRetry(t *testing.T) {
	d1 := t.TempDir()
	b1 := start(t, Config{DataDir: d1, Partitions: 1})
	cl := client(t, b1, kgo.AllowAutoTopicCreation())
	produceTo(t, cl, "x", 0, "first")
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionTimeoutMillis = -1
	iresp, err := init.RequestWith(t.Context(), cl)
	if err != nil || iresp.ErrorCode != 0 {
		t.Fatalf("InitProducerID: %v (code %d)", err, iresp.ErrorCode)
	}
	batch := func(seq int32, v string) []byte {
		rec := kmsg.Record{Value: []byte(v)}
		rec.Length = int32(len(rec.AppendTo(nil)) - 1)
		now := time.Now().UnixMilli()
		return encodeBatch(kmsg.RecordBatch{FirstTimestamp: now, MaxTimestamp: now, ProducerID: iresp.ProducerID,
			ProducerEpoch: iresp.ProducerEpoch, FirstSequence: seq, NumRecords: 1, Records: rec.AppendTo(nil)})
	}
	send := func(cl *kgo.Client, raw []byte) int64 {
		t.Helper()
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 10000
		td, err := kadm.NewClient(cl).ListTopics(t.Context(), "x")
		if err != nil {
			t.Fatal(err)
		}
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic, rt.TopicID = "x", td["x"].ID
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = raw
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(t.Context(), cl)
		if err != nil {
			t.Fatal(err)
		}
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 {
			t.Fatalf("produce: error code %d", p.ErrorCode)
		}
		return p.BaseOffset
	}
	send(cl, batch(0, "s0"))
	at := send(cl, batch(1, "s1"))

	d2 := crashCopy(t, d1)
	b2 := start(t, Config{DataDir: d2, Partitions: 1})
	cl2 := client(t, b2)
	if got := send(cl2, batch(1, "s1")); got != at {
		t.Errorf("the retry of the batch at offset %d was written again at %d", at, got)
	}
	send(cl2, batch(2, "s2"))
	wantValues(t, "after the retry", readCommitted(t, b2, "x"), "first", "s0", "s1", "s2")
}

func TestMarkerBatchParses(t *testing.T) {
	for _, commit := range []bool{true, false} {
		raw := markerBatch(17, 3, 99, 4, commit, time.Unix(1700000000, 0))
		b, err := parseBatch(raw)
		if err != nil {
			t.Fatal(err)
		}
		if b.size != int64(len(raw)) || b.firstOffset != 17 || b.leaderEpoch != 3 || b.producerID != 99 ||
			b.producerEpoch != 4 || !b.control() || !b.transactional() || b.commit != commit || b.end() != 18 {
			t.Errorf("markerBatch(commit=%v) parses as %+v", commit, b)
		}
	}
	if _, err := parseBatch(markerBatch(0, 0, 1, 1, true, time.Now())[:30]); !errors.Is(err, errTorn) {
		t.Errorf("a cut batch parses with %v, want errTorn", err)
	}
}

func TestReadLog(t *testing.T) {
	var raw []byte
	raw = appendLog(raw, pidEntry{Type: "init", PID: 1, Epoch: 0, TxID: "a", Timeout: 1000})
	raw = appendLog(raw, pidEntry{Type: "timeout", PID: 1, Epoch: 1})
	whole := len(raw)
	raw = append(raw, appendLog(nil, pidEntry{Type: "init", PID: 2})[:7]...)
	entries, valid := readLog(raw)
	if len(entries) != 2 || valid != whole {
		t.Fatalf("readLog: %d entries, %d valid bytes; want 2, %d", len(entries), valid, whole)
	}
	if p := replayPIDs(entries)[1]; p == nil || p.epoch != 1 || p.txid != "a" || p.timeout != 1000 {
		t.Errorf("replayPIDs: %+v", p)
	}
}
