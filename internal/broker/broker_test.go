package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestResolve(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		listen  string
		adv     string
		wantErr string
		is      error
	}{
		{name: "default", cfg: Config{}, listen: "127.0.0.1:9092"},
		{name: "port 0", cfg: Config{Listen: "127.0.0.1:0"}, listen: "127.0.0.1:0"},
		{name: "localhost", cfg: Config{Listen: "localhost:19092"}, listen: "127.0.0.1:19092"},
		{name: "empty host", cfg: Config{Listen: ":19092"}, listen: "127.0.0.1:19092"},
		{name: "ipv6 loopback", cfg: Config{Listen: "[::1]:19092"}, listen: "[::1]:19092"},
		{name: "other loopback", cfg: Config{Listen: "127.0.0.2:19092"}, listen: "127.0.0.2:19092"},
		{name: "advertise", cfg: Config{Listen: "127.0.0.1:0", Advertise: "kafka.local"}, listen: "127.0.0.1:0", adv: "kafka.local"},
		{name: "remote needs opt-in", cfg: Config{Listen: "10.1.2.3:9092"}, is: ErrRemoteListen, wantErr: "AllowRemote"},
		{name: "remote allowed", cfg: Config{Listen: "10.1.2.3:9092", AllowRemote: true}, listen: "10.1.2.3:9092"},
		{name: "unspecified needs advertise", cfg: Config{Listen: "0.0.0.0:9092", AllowRemote: true}, wantErr: "Advertise"},
		{name: "unspecified with advertise", cfg: Config{Listen: "0.0.0.0:9092", AllowRemote: true, Advertise: "10.1.2.3"}, listen: "0.0.0.0:9092", adv: "10.1.2.3"},
		{name: "unspecified without opt-in", cfg: Config{Listen: "0.0.0.0:9092", Advertise: "10.1.2.3"}, is: ErrRemoteListen},
		{name: "no port", cfg: Config{Listen: "127.0.0.1"}, wantErr: "want host:port"},
		{name: "bad port", cfg: Config{Listen: "127.0.0.1:kafka"}, wantErr: "bad port"},
		{name: "port too big", cfg: Config{Listen: "127.0.0.1:70000"}, wantErr: "bad port"},
		{name: "hostname", cfg: Config{Listen: "example.com:9092"}, wantErr: "IP address"},
		{name: "advertise with port", cfg: Config{Listen: "127.0.0.1:0", Advertise: "h:1"}, wantErr: "without port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			listen, adv, err := tt.cfg.resolve()
			if tt.wantErr != "" || tt.is != nil {
				if err == nil {
					t.Fatalf("resolve(%+v) = %q, %q, nil; want error", tt.cfg, listen, adv)
				}
				if tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q does not mention %q", err, tt.wantErr)
				}
				if tt.is != nil && !errors.Is(err, tt.is) {
					t.Errorf("error %v is not %v", err, tt.is)
				}
				return
			}
			if err != nil {
				t.Fatalf("resolve(%+v): %v", tt.cfg, err)
			}
			if listen != tt.listen || adv != tt.adv {
				t.Errorf("resolve(%+v) = %q, %q; want %q, %q", tt.cfg, listen, adv, tt.listen, tt.adv)
			}
		})
	}
}

func TestStartRejects(t *testing.T) {
	for _, cfg := range []Config{
		{Listen: "10.1.2.3:9092"},
		{Listen: "127.0.0.1:0", Partitions: -1},
	} {
		b, err := Start(t.Context(), cfg)
		if err == nil {
			b.Close()
			t.Errorf("Start(%+v) succeeded, want error", cfg)
		} else if !errors.Is(err, ErrConfig) {
			t.Errorf("Start(%+v): %v, want ErrConfig", cfg, err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if b, err := Start(ctx, Config{Listen: "127.0.0.1:0"}); !errors.Is(err, context.Canceled) {
		if b != nil {
			b.Close()
		}
		t.Errorf("Start with a cancelled context: %v, want context.Canceled", err)
	}
}

func start(t *testing.T, cfg Config) *Broker {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	b, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func client(t *testing.T, b *Broker, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.Addrs()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func produce(t *testing.T, cl *kgo.Client, topic string, from, to int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Value: []byte(strconv.Itoa(i))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// consume reads until it has want records or 20 s pass, and returns the
// values sorted numerically.
func consume(t *testing.T, cl *kgo.Client, want int) []int {
	t.Helper()
	var got []int
	deadline := time.Now().Add(20 * time.Second)
	for len(got) < want && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("fetch %s/%d: %v", topic, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			v, err := strconv.Atoi(string(r.Value))
			if err != nil {
				t.Errorf("record %q: %v", r.Value, err)
			}
			got = append(got, v)
		})
	}
	sort.Ints(got)
	return got
}

func checkRange(t *testing.T, got []int, from, to int) {
	t.Helper()
	if len(got) != to-from {
		t.Fatalf("got %d records, want %d (%d..%d)", len(got), to-from, from, to-1)
	}
	for i, v := range got {
		if v != from+i {
			t.Fatalf("record %d = %d, want %d (duplicate or gap)", i, v, from+i)
		}
	}
}

func TestProduceConsume(t *testing.T) {
	b := start(t, Config{Partitions: 3})
	if len(b.Addrs()) != 1 || !strings.HasPrefix(b.Addrs()[0], "127.0.0.1:") {
		t.Fatalf("Addrs() = %v, want one 127.0.0.1 address", b.Addrs())
	}
	cl := client(t, b, kgo.ConsumeTopics("auto"), kgo.AllowAutoTopicCreation(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	produce(t, cl, "auto", 0, 300)
	checkRange(t, consume(t, cl, 300), 0, 300)

	td, err := kadm.NewClient(cl).ListTopics(t.Context(), "auto")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(td["auto"].Partitions); n != 3 {
		t.Errorf("auto-created topic has %d partitions, want 3", n)
	}
}

func TestDefaultPartitions(t *testing.T) {
	b := start(t, Config{})
	cl := client(t, b, kgo.AllowAutoTopicCreation())
	produce(t, cl, "dflt", 0, 1)
	td, err := kadm.NewClient(cl).ListTopics(t.Context(), "dflt")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(td["dflt"].Partitions); n != DefaultPartitions {
		t.Errorf("auto-created topic has %d partitions, want %d", n, DefaultPartitions)
	}
}

func TestRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	b, err := Start(t.Context(), Config{Listen: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	const group = "g"
	cl := client(t, b, kgo.AllowAutoTopicCreation())
	produce(t, cl, "keep", 0, 1000)
	// Commit offsets for the first 400 records (by partition order).
	c1 := client(t, b, kgo.ConsumeTopics("keep"), kgo.ConsumerGroup(group), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	checkRange(t, consume(t, c1, 1000), 0, 1000)
	if err := c1.CommitUncommittedOffsets(t.Context()); err != nil {
		t.Fatalf("commit: %v", err)
	}
	c1.Close()
	cl.Close()
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	b2 := start(t, Config{DataDir: dir})
	cl2 := client(t, b2, kgo.ConsumeTopics("keep"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	checkRange(t, consume(t, cl2, 1000), 0, 1000)

	offs, err := kadm.NewClient(cl2).FetchOffsets(t.Context(), group)
	if err != nil {
		t.Fatalf("fetch offsets: %v", err)
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
	if sum != 1000 {
		t.Errorf("committed offsets after restart sum to %d, want 1000", sum)
	}
	// New records after the restart land after the old ones.
	cl3 := client(t, b2, kgo.ConsumeTopics("keep"), kgo.ConsumerGroup(group),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	produce(t, cl3, "keep", 1000, 1100)
	checkRange(t, consume(t, cl3, 100), 1000, 1100)
}

func TestDataDirLocked(t *testing.T) {
	dir := t.TempDir()
	start(t, Config{DataDir: dir})
	if b, err := Start(t.Context(), Config{Listen: "127.0.0.1:0", DataDir: dir}); err == nil {
		b.Close()
		t.Fatal("second broker on the same data dir started, want error")
	}
}

func TestPortInUse(t *testing.T) {
	b := start(t, Config{})
	b2, err := Start(t.Context(), Config{Listen: b.Addrs()[0]})
	if err == nil {
		b2.Close()
		t.Fatal("second broker on the same port started, want error")
	}
	if errors.Is(err, ErrConfig) {
		t.Errorf("port in use reported as a configuration error: %v", err)
	}
}

func TestCloseIdempotent(t *testing.T) {
	b, err := Start(t.Context(), Config{Listen: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := b.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
}

func TestAdvertise(t *testing.T) {
	b := start(t, Config{Advertise: "localhost"})
	addr := b.Addrs()[0]
	if !strings.HasPrefix(addr, "localhost:") {
		t.Fatalf("Addrs() = %v, want localhost:<port>", b.Addrs())
	}
	cl := client(t, b, kgo.ConsumeTopics("adv"), kgo.AllowAutoTopicCreation(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	produce(t, cl, "adv", 0, 10)
	checkRange(t, consume(t, cl, 10), 0, 10)
}

// TestGroupTransactSession moves records exactly once from one topic to
// another with consume-transform-produce transactions, aborting one.
func TestGroupTransactSession(t *testing.T) {
	b := start(t, Config{Partitions: 2})
	cl := client(t, b, kgo.AllowAutoTopicCreation())
	produce(t, cl, "in", 0, 500)

	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(b.Addrs()...),
		kgo.TransactionalID("tx"),
		kgo.ConsumerGroup("txg"),
		kgo.ConsumeTopics("in"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.AllowAutoTopicCreation(),
		kgo.DefaultProduceTopic("out"),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	moved, aborted := 0, false
	deadline := time.Now().Add(30 * time.Second)
	for moved < 500 && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		fs := sess.PollFetches(ctx)
		cancel()
		if fs.NumRecords() == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { sess.Produce(t.Context(), kgo.SliceRecord(r.Value), nil) })
		commit := kgo.TryCommit
		if !aborted {
			commit, aborted = kgo.TryAbort, true
		}
		ok, err := sess.End(t.Context(), commit)
		if err != nil {
			t.Fatalf("End: %v", err)
		}
		if ok && commit == kgo.TryCommit {
			moved += fs.NumRecords()
		}
	}
	if moved != 500 {
		t.Fatalf("moved %d records in committed transactions, want 500", moved)
	}
	rc := client(t, b, kgo.ConsumeTopics("out"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	checkRange(t, consume(t, rc, 500), 0, 500)
}

// TestKcat proves the wire format with an independent client (librdkafka's
// kcat): it produces, consumes, and reads what franz-go produced.
func TestKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat not on PATH")
	}
	b := start(t, Config{Partitions: 2})
	run := func(stdin []byte, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, kcat, append([]string{"-b", b.Addrs()[0]}, args...)...)
		cmd.Stdin = bytes.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("kcat %v: %v\n%s", args, err, errb.String())
		}
		return out.String()
	}
	var lines bytes.Buffer
	for i := range 200 {
		fmt.Fprintf(&lines, "%d\n", i)
	}
	run(lines.Bytes(), "-P", "-t", "kc", "-z", "lz4")
	out := run(nil, "-C", "-t", "kc", "-e", "-q", "-f", "%s\n")
	var got []int
	for _, f := range strings.Fields(out) {
		v, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("kcat read %q", f)
		}
		got = append(got, v)
	}
	sort.Ints(got)
	checkRange(t, got, 0, 200)

	// franz-go reads what kcat wrote, and kcat reads what franz-go wrote.
	cl := client(t, b, kgo.ConsumeTopics("kc"), kgo.AllowAutoTopicCreation(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	checkRange(t, consume(t, cl, 200), 0, 200)
	produce(t, cl, "kc2", 0, 50)
	if n := len(strings.Fields(run(nil, "-C", "-t", "kc2", "-e", "-q", "-f", "%s\n"))); n != 50 {
		t.Errorf("kcat read %d records that franz-go produced, want 50", n)
	}
	// A kcat consumer group commits offsets that the broker honours.
	first := run(nil, "-G", "kcg", "-X", "auto.offset.reset=earliest", "-e", "-q", "kc")
	second := run(nil, "-G", "kcg", "-X", "auto.offset.reset=earliest", "-e", "-q", "kc")
	if n1, n2 := len(strings.Fields(first)), len(strings.Fields(second)); n1 != 200 || n2 != 0 {
		t.Errorf("kcat group read %d then %d records, want 200 then 0", n1, n2)
	}
}

// FuzzResolve checks that no listen/advertise string makes validation panic,
// and that whatever it accepts is loopback unless AllowRemote is set.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"127.0.0.1:9092", ":0", "[::1]:1", "0.0.0.0:9092", "10.0.0.1:9", "x", "[::]:70000", "localhost:"} {
		f.Add(s, "", false)
		f.Add(s, "h", true)
	}
	f.Fuzz(func(t *testing.T, listen, advertise string, remote bool) {
		cfg := Config{Listen: listen, Advertise: advertise, AllowRemote: remote}
		l, _, err := cfg.resolve()
		if err != nil {
			return
		}
		host, _, err := net.SplitHostPort(l)
		if err != nil {
			t.Fatalf("resolve(%+v) = %q, not host:port: %v", cfg, l, err)
		}
		if ip := net.ParseIP(host); ip == nil || (!remote && !ip.IsLoopback()) {
			t.Fatalf("resolve(%+v) accepted %q", cfg, l)
		}
	})
}

// BenchmarkProduceConsume measures records/s through the embedded broker:
// produce b.N KDD-sized records (about 120 B), then consume them all.
func BenchmarkProduceConsume(b *testing.B) {
	br, err := Start(b.Context(), Config{Listen: "127.0.0.1:0", Partitions: 4})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	p, err := kgo.NewClient(kgo.SeedBrokers(br.Addrs()...), kgo.DefaultProduceTopic("bench"),
		kgo.AllowAutoTopicCreation(), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	val := []byte("0,tcp,http,SF,181,5450,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,0,8,8,0.00,0.00,0.00,0.00,1.00,0.00,0.00,9,9,1.00,0.00,0.11,0.00,0.00,0.00,0.00,0.00,normal,21")
	b.SetBytes(int64(len(val)))
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		p.Produce(b.Context(), &kgo.Record{Value: val}, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	if err := p.Flush(b.Context()); err != nil {
		b.Fatal(err)
	}
	produced := time.Since(start)
	c, err := kgo.NewClient(kgo.SeedBrokers(br.Addrs()...), kgo.ConsumeTopics("bench"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	start = time.Now()
	for n := 0; n < b.N; {
		n += c.PollFetches(b.Context()).NumRecords()
	}
	consumed := time.Since(start)
	b.ReportMetric(float64(b.N)/produced.Seconds(), "produced/s")
	b.ReportMetric(float64(b.N)/consumed.Seconds(), "consumed/s")
}

// BenchmarkTransactions measures transactions/s through a broker with a
// data directory: each op is begin, one record, commit (with the commit
// journal's writes and the directory writes).
func BenchmarkTransactions(b *testing.B) {
	br, err := Start(b.Context(), Config{Listen: "127.0.0.1:0", Partitions: 1, DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	p, err := kgo.NewClient(kgo.SeedBrokers(br.Addrs()...), kgo.TransactionalID("bench"), kgo.DefaultProduceTopic("bench"),
		kgo.AllowAutoTopicCreation())
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	val := []byte("0,tcp,http,SF,181,5450,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,0,8,8,0.00,0.00,0.00,0.00,1.00,0.00,0.00,9,9,1.00,0.00,0.11,0.00,0.00,0.00,0.00,0.00,normal,21")
	b.ResetTimer()
	for range b.N {
		if err := p.BeginTransaction(); err != nil {
			b.Fatal(err)
		}
		if err := p.ProduceSync(b.Context(), &kgo.Record{Value: val}).FirstErr(); err != nil {
			b.Fatal(err)
		}
		if err := p.EndTransaction(b.Context(), kgo.TryCommit); err != nil {
			b.Fatal(err)
		}
	}
}
