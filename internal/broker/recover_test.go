package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
// until it has at least want records (or 20 s pass) and then half a second
// more without a new one, and returns the values in order.
func readCommitted(t *testing.T, b *Broker, topic string, want int) []string {
	t.Helper()
	cl := client(t, b, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	var got []string
	deadline := time.Now().Add(20 * time.Second)
	last := time.Now()
	for time.Now().Before(deadline) && (len(got) < want || time.Since(last) < 500*time.Millisecond) {
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			got = append(got, string(r.Value))
			last = time.Now()
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
	wantValues(t, "after the first restart", readCommitted(t, b2, "x", 0))
	p2 := txnProducer(t, b2, "tx")
	begin(t, p2)
	produceTo(t, p2, "x", 0, "b1", "b2")
	end(t, p2, kgo.TryCommit)
	wantValues(t, "after the commit", readCommitted(t, b2, "x", 2), "b1", "b2")

	d3 := crashCopy(t, d2)
	b3 := start(t, Config{DataDir: d3, Partitions: 1})
	if r := b3.Recovery(); r.Aborted != 0 {
		t.Errorf("second recovery aborted %d transactions, want 0", r.Aborted)
	}
	wantValues(t, "after the second restart", readCommitted(t, b3, "x", 2), "b1", "b2")
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
	wantValues(t, "after the restart", readCommitted(t, b2, "x", 4), "a1", "a2", "a3", "c1")

	d3 := crashCopy(t, d2)
	b3 := start(t, Config{DataDir: d3, Partitions: 1})
	wantValues(t, "after the second restart", readCommitted(t, b3, "x", 4), "a1", "a2", "a3", "c1")
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
	got := readCommitted(t, b2, "x", 2)
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
	if got := readCommitted(t, b2, "x", 3); len(got) != 3 {
		t.Errorf("after the next commit the reader sees %v, want 3 records", got)
	}
}

// fileSize returns the size of path, 0 if it does not exist.
func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestRecoverCommitFromJournal builds the state a kill leaves in the middle
// of a real GroupTransactSession commit (TxnOffsetCommit by topic ID, as
// franz-go sends it): the data directory as the commit ends, cut back to
// before the commit in partition 1 of the output and in the group and
// producer logs, with the journal as it was when kfake started the commit.
// The start finishes the commit: all outputs visible, the offsets there.
func TestRecoverCommitFromJournal(t *testing.T) {
	d1 := t.TempDir()
	b1 := start(t, Config{DataDir: d1, Partitions: 2})
	cl := client(t, b1, kgo.AllowAutoTopicCreation())
	produce(t, cl, "in", 0, 20)
	produce(t, cl, "out", 0, 0) // creates the output topic
	produceTo(t, cl, "out", 0, "seed0")
	produceTo(t, cl, "out", 1, "seed1")

	// At the EndTxn(commit), after the journal's control function: copy
	// the directory as it is before kfake writes anything of the commit.
	var before string
	b1.cluster.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if r := req.(*kmsg.EndTxnRequest); r.Commit && before == "" {
			before = crashCopy(t, d1)
		}
		return nil, nil, false
	})
	sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(b1.Addrs()...), kgo.TransactionalID("tx"),
		kgo.ConsumerGroup("txg"), kgo.ConsumeTopics("in"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.DefaultProduceTopic("out"))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	var n int
	for n < 20 {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		fs := sess.PollFetches(ctx)
		cancel()
		if fs.NumRecords() == 0 {
			t.Fatal("no input within 5s")
		}
		n += fs.NumRecords()
		if err := sess.Begin(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if err := sess.ProduceSync(t.Context(), kgo.SliceRecord(r.Value)).FirstErr(); err != nil {
				t.Fatal(err)
			}
		})
		if n < 20 {
			if _, err := sess.End(t.Context(), kgo.TryAbort); err != nil {
				t.Fatal(err)
			}
			n = 0
			continue
		}
		if ok, err := sess.End(t.Context(), kgo.TryCommit); err != nil || !ok {
			t.Fatalf("commit: %v, %v", ok, err)
		}
	}
	if before == "" {
		t.Fatal("the control function saw no EndTxn(commit)")
	}
	after := crashCopy(t, d1)
	cut := func(rel string) {
		if err := os.Truncate(filepath.Join(after, rel), fileSize(t, filepath.Join(before, rel))); err != nil {
			t.Fatal(err)
		}
	}
	for _, rel := range []string{"kfake/partitions/out-1/0.dat", "kfake/partitions/out-1/0.idx", "kfake/groups.log", "kfake/pids.log"} {
		cut(rel)
	}
	j, err := os.ReadFile(filepath.Join(before, journalFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(after, journalFile), j, 0o644); err != nil {
		t.Fatal(err)
	}
	b2 := start(t, Config{DataDir: after, Partitions: 2})
	if r := b2.Recovery(); r.Completed != 1 || r.CompletedOffsets < 1 || r.Aborted != 0 {
		t.Errorf("Recovery() = %+v, want 1 partition and the group's offsets completed, nothing aborted", r)
	}
	if got := readCommitted(t, b2, "out", 22); len(got) != 22 {
		t.Errorf("read-committed reader sees %d records of out, want 22: %v", len(got), got)
	}
	offs, err := kadm.NewClient(client(t, b2)).FetchOffsets(t.Context(), "txg")
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
	if sum != 20 {
		t.Errorf("group offsets sum to %d after recovery, want 20", sum)
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
	wantValues(t, "after the restart", readCommitted(t, b2, "x", 3), "a1", "a2", "a3")
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

// TestRecoverRefusesLogDamage: a log entry that fails its checksum in the
// middle of groups.log is damage; cutting there would drop the offsets
// committed after it.
func TestRecoverRefusesLogDamage(t *testing.T) {
	d1 := t.TempDir()
	b1 := start(t, Config{DataDir: d1, Partitions: 1})
	cl := client(t, b1, kgo.AllowAutoTopicCreation())
	produceTo(t, cl, "x", 0, "a")
	adm := kadm.NewClient(cl)
	for i := range 3 {
		os := kadm.Offsets{}
		os.Add(kadm.Offset{Topic: "x", Partition: 0, At: int64(i)})
		if _, err := adm.CommitOffsets(t.Context(), "g", os); err != nil {
			t.Fatal(err)
		}
	}
	d2 := crashCopy(t, d1)
	path := filepath.Join(d2, "kfake", "groups.log")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw[logHeaderSize+1] ^= 0xff // inside the first entry's JSON
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := Start(t.Context(), Config{Listen: "127.0.0.1:0", DataDir: d2})
	if err == nil {
		b.Close()
		t.Fatal("Start served a directory with a damaged groups.log")
	}
	if !errors.Is(err, ErrDataDir) || !strings.Contains(err.Error(), path+" byte 0") || !strings.Contains(err.Error(), "truncate -s 0 "+path) {
		t.Errorf("error %q: want ErrDataDir naming %s byte 0 and the truncate command", err, path)
	}
}

// TestJournal: a commit's offsets are in the journal while kfake carries
// the commit out, and gone once the next transaction request comes.
func TestJournal(t *testing.T) {
	for _, refresh := range []time.Duration{journalRefresh, 0} {
		t.Run(fmt.Sprintf("refresh %v", refresh), func(t *testing.T) { testJournal(t, refresh) })
	}
}

// testJournal runs TestJournal with the control functions replaced every
// refresh (0: on every request they see).
func testJournal(t *testing.T, refresh time.Duration) {
	dir := t.TempDir()
	b := start(t, Config{DataDir: dir, Partitions: 1})
	b.journal.mu.Lock()
	b.journal.refresh = refresh
	b.journal.mu.Unlock()
	cl := client(t, b, kgo.AllowAutoTopicCreation())
	produceTo(t, cl, "x", 0, "a")
	init := kmsg.NewPtrInitProducerIDRequest()
	txid := "jtx"
	init.TransactionalID, init.TransactionTimeoutMillis = &txid, 60000
	ir, err := init.RequestWith(t.Context(), cl)
	if err != nil || ir.ErrorCode != 0 {
		t.Fatalf("InitProducerID: %v %v", err, ir)
	}
	oc := kmsg.NewPtrTxnOffsetCommitRequest()
	oc.TransactionalID, oc.Group, oc.ProducerID, oc.ProducerEpoch, oc.Generation = txid, "g", ir.ProducerID, ir.ProducerEpoch, -1
	td, err := kadm.NewClient(cl).ListTopics(t.Context(), "x")
	if err != nil {
		t.Fatal(err)
	}
	ot := kmsg.NewTxnOffsetCommitRequestTopic()
	ot.Topic, ot.TopicID = "x", td["x"].ID // by ID from v6 on
	op := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	op.Offset, op.LeaderEpoch = 1, -1
	ot.Partitions = append(ot.Partitions, op)
	oc.Topics = append(oc.Topics, ot)
	if or, err := oc.RequestWith(t.Context(), cl); err != nil || or.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("TxnOffsetCommit v%d: %v %+v", oc.Version, err, or)
	}
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = txid, ir.ProducerID, ir.ProducerEpoch, true
	er, err := end.RequestWith(t.Context(), cl)
	if err != nil || er.ErrorCode != 0 {
		t.Fatalf("EndTxn: %v %v", err, er)
	}
	in, err := readJournal(filepath.Join(dir, journalFile))
	if err != nil || in == nil {
		t.Fatalf("journal after the commit: %v, %v; want the commit's intent", in, err)
	}
	if in.PID != ir.ProducerID || in.Epoch != ir.ProducerEpoch || in.TxID != txid || len(in.Offsets) != 1 ||
		in.Offsets[0] != (intentOffset{Group: "g", Topic: "x", Offset: 1, LeaderEpoch: -1}) {
		t.Errorf("journal holds %+v", in)
	}
	// The next transaction request finds the commit done.
	init2 := kmsg.NewPtrInitProducerIDRequest()
	other := "other"
	init2.TransactionalID, init2.TransactionTimeoutMillis = &other, 60000
	if _, err := init2.RequestWith(t.Context(), cl); err != nil {
		t.Fatal(err)
	}
	if in, err := readJournal(filepath.Join(dir, journalFile)); err != nil || in != nil {
		t.Errorf("journal after the next transaction request: %+v, %v; want empty", in, err)
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
	wantValues(t, "after a clean restart", readCommitted(t, b2, "x", 1), "a1")
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
	wantValues(t, "after the retry", readCommitted(t, b2, "x", 4), "first", "s0", "s1", "s2")
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
