package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netsentinel/netsentinel/internal/event"
)

// proc is a netsentinel process started by a crash test; a supervisor
// goroutine restarts it while keep is set, as a service manager would.
type proc struct {
	t    *testing.T
	bin  string
	args []string
	logf *os.File
	name string

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	keep     bool
	restarts int
}

func startProc(t *testing.T, bin, name, logDir string, args ...string) *proc {
	t.Helper()
	f, err := os.Create(filepath.Join(logDir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, bin: bin, args: args, logf: f, name: name, keep: true}
	p.spawn()
	t.Cleanup(func() {
		p.stop(syscall.SIGKILL)
		f.Close()
	})
	return p
}

// spawn starts the process; a goroutine restarts it when it exits on its
// own while p.keep is set.
func (p *proc) spawn() {
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = p.logf, p.logf
	if err := cmd.Start(); err != nil {
		p.t.Errorf("start %s: %v", p.name, err)
		return
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	go func() {
		err := cmd.Wait()
		close(done)
		p.mu.Lock()
		again := p.keep && p.cmd == cmd
		if again {
			p.restarts++
			fmt.Fprintf(p.logf, "=== test: %s exited (%v); restarting\n", p.name, err)
		}
		p.mu.Unlock()
		if again {
			time.Sleep(200 * time.Millisecond)
			p.spawn()
		}
	}()
}

// kill sends sig to the current process and waits for it to exit; it is
// not restarted by the supervisor.
func (p *proc) kill(sig syscall.Signal) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		p.t.Errorf("%s did not exit within 30s of %v", p.name, sig)
		_ = cmd.Process.Kill()
		<-done
	}
}

// stop ends the process for good.
func (p *proc) stop(sig syscall.Signal) {
	p.mu.Lock()
	p.keep = false
	p.mu.Unlock()
	p.kill(sig)
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitListening waits until addr accepts TCP connections.
func waitListening(t *testing.T, addr string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s after %v: %v", addr, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// books are the read-committed contents of a detector's outputs.
type books struct {
	input, normal, alerts, dead, statsRecords, statsDead, dups int64
}

func (b books) String() string {
	return fmt.Sprintf("input %d; normal %d + alerts %d + dead letters %d = %d; statistics count %d records + %d dead letters; %d duplicate source offsets",
		b.input, b.normal, b.alerts, b.dead, b.normal+b.alerts+b.dead, b.statsRecords, b.statsDead, b.dups)
}

func (b books) balance() bool {
	return b.dups == 0 && b.normal+b.alerts+b.dead == b.input && b.statsRecords+b.statsDead == b.input
}

// readBooks reads alerts, statistics and dead letters with read-committed
// isolation up to their end offsets.
func readBooks(t *testing.T, addr, in, alerts, stats, dead string) books {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(alerts, stats, dead),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var bk books
	ends, err := adm.ListEndOffsets(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) { bk.input += o.Offset })
	type pos struct {
		p int32
		o int64
	}
	seen := map[pos]bool{}
	// Everything was committed before this read starts: read until the
	// outputs have been quiet for 10 s (decoding falls behind on a loaded machine).
	for idle := time.Now(); time.Since(idle) < 10*time.Second; {
		pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fs := cl.PollFetches(pctx)
		pcancel()
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading the outputs: %v", err)
		}
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("fetch %s/%d: %v", topic, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			switch r.Topic {
			case stats:
				var s event.Stats
				if err := json.Unmarshal(r.Value, &s); err != nil {
					t.Fatalf("stats record %s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
				}
				bk.normal += s.ByCategory["normal"]
				bk.statsRecords += s.Records
				bk.statsDead += s.DeadLetters
			case alerts, dead:
				// The full decode is slow under -race with hundreds of
				// thousands of alerts: read the two fields directly, and
				// check that against the decode for every 1000th.
				p, o, ok := sourcePos(r.Value)
				if !ok || (bk.alerts+bk.dead)%1000 == 0 {
					var a struct {
						Partition int32 `json:"partition"`
						Offset    int64 `json:"offset"`
					}
					if err := json.Unmarshal(r.Value, &a); err != nil {
						t.Fatalf("record %s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
					}
					if ok && (a.Partition != p || a.Offset != o) {
						t.Fatalf("record %s/%d@%d: source %d@%d by scan, %d@%d by decode", r.Topic, r.Partition, r.Offset, p, o, a.Partition, a.Offset)
					}
					p, o = a.Partition, a.Offset
				}
				if seen[pos{p, o}] {
					bk.dups++
				}
				seen[pos{p, o}] = true
				if r.Topic == alerts {
					bk.alerts++
				} else {
					bk.dead++
				}
			}
		})
		if fs.NumRecords() > 0 {
			idle = time.Now() // after decoding, which can take seconds under -race
		}
	}
	return bk
}

// waitCaughtUp waits until group has committed the end of every partition
// of topic, and the end does not move.
func waitCaughtUp(t *testing.T, addr, group, topic string, within time.Duration) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		ends, err1 := adm.ListEndOffsets(ctx, topic)
		offs, err2 := adm.FetchOffsets(ctx, group)
		cancel()
		if err1 == nil && err2 == nil {
			var end, done int64
			ends.Each(func(o kadm.ListedOffset) { end += o.Offset })
			offs.Each(func(o kadm.OffsetResponse) {
				if o.Topic == topic {
					done += o.At
				}
			})
			last = fmt.Sprintf("committed %d of %d", done, end)
			if end > 0 && done == end {
				return
			}
		} else {
			last = fmt.Sprintf("%v %v", err1, err2)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("group %s not caught up with %s within %v: %s", group, topic, within, last)
}

// TestKillBrokerUnderLoad kills -9 the embedded broker (a netsentinel
// broker process with a data directory) again and again while a publisher
// writes about 20,000 records/s and two detectors score them, restarts it
// on the same directory each time, and then checks the books: every input
// record is counted exactly once (normal + alerts + dead letters = input,
// and the statistics agree) and no source offset has two alerts.
// NETSENTINEL_CRASH_KILLS sets the number of kills (6);
// NETSENTINEL_CRASH_KEEP=DIR copies the data directory there if the books
// do not balance.
func TestKillBrokerUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a broker process repeatedly; skipped with -short")
	}
	kills := 6
	if s := os.Getenv("NETSENTINEL_CRASH_KILLS"); s != "" {
		fmt.Sscan(s, &kills)
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "netsentinel")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/netsentinel").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := "../../data/KDDTrain+_20Percent.txt.gz"
	modelPath := filepath.Join(tmp, "m.model")
	if out, err := exec.Command(bin, "train", "--data", data, "--trees", "5", "--out", modelPath).CombinedOutput(); err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	addr := freePort(t)
	dataDir := filepath.Join(tmp, "broker")
	logs := filepath.Join(tmp, "logs")
	if err := os.Mkdir(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range []string{"broker", "detect-a", "detect-b", "publish"} {
				b, _ := os.ReadFile(filepath.Join(logs, n+".log"))
				if len(b) > 3000 {
					b = b[len(b)-3000:]
				}
				t.Logf("%s log tail:\n%s", n, b)
			}
		}
	})

	const in, group, alerts, stats, dead = "crash-in", "crash-g", "crash-alerts", "crash-stats", "crash-dead"
	br := startProc(t, bin, "broker", logs, "broker", "--listen", addr, "--data-dir", dataDir, "--partitions", "4")
	waitListening(t, addr, 30*time.Second)
	// The topics are created on first use, with the broker's 4 partitions,
	// as in the README's setup.
	detArgs := func(inst string) []string {
		return []string{"detect", "--brokers", addr, "--topic", in, "--group", group, "--model", modelPath,
			"--alerts", "records", "--alerts-topic", alerts, "--stats-topic", stats, "--dead-letter-topic", dead, "--instance", inst,
			"--listen", "none", "--session-timeout", "6s", "--max-poll-records", "2000"}
	}
	da := startProc(t, bin, "detect-a", logs, detArgs("a")...)
	db := startProc(t, bin, "detect-b", logs, detArgs("b")...)
	pub := startProc(t, bin, "publish", logs, "publish", "--brokers", addr, "--topic", in, "--file", data,
		"--rate", "20000", "--loop", "--format", "csv")

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for i := range kills {
		// 1-3 s of load, then kill -9 at a random moment.
		time.Sleep(time.Second + time.Duration(rng.Int64N(int64(2*time.Second))))
		br.kill(syscall.SIGKILL)
		t.Logf("kill -9 broker #%d", i+1)
		br.spawn()
		waitListening(t, addr, 30*time.Second)
	}
	time.Sleep(2 * time.Second)
	pub.stop(syscall.SIGTERM)
	waitCaughtUp(t, addr, group, in, 60*time.Second)
	da.stop(syscall.SIGTERM)
	db.stop(syscall.SIGTERM)
	readStart := time.Now()
	bk := readBooks(t, addr, in, alerts, stats, dead)
	t.Logf("outputs read in %v", time.Since(readStart).Round(time.Millisecond))
	t.Logf("after %d broker kill -9s (detector restarts %d+%d, publisher restarts %d): %v",
		kills, da.restarts, db.restarts, pub.restarts, bk)
	if b, err := os.ReadFile(filepath.Join(logs, "broker.log")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "data directory recovered") {
				t.Log(strings.TrimSpace(l))
			}
		}
	}
	if !bk.balance() {
		t.Errorf("books do not balance: %v", bk)
		logEnds(t, addr, alerts, stats, dead)
		if keep := os.Getenv("NETSENTINEL_CRASH_KEEP"); keep != "" {
			out, err := exec.Command("cp", "-a", dataDir, keep).CombinedOutput()
			t.Logf("data directory copied to %s: %v %s", keep, err, out)
		}
	}
	br.stop(syscall.SIGTERM)
	// Printed for a failing run: what the data directory looked like.
	if t.Failed() {
		out, _ := exec.Command("ls", "-lR", dataDir).CombinedOutput()
		t.Logf("data directory:\n%s", strings.TrimSpace(string(out)))
	}
}

// logEnds logs each partition's end offset and last stable offset.
func logEnds(t *testing.T, addr string, topics ...string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Log(err)
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	hw, err1 := adm.ListEndOffsets(t.Context(), topics...)
	lso, err2 := adm.ListCommittedOffsets(t.Context(), topics...)
	if err1 != nil || err2 != nil {
		t.Log(err1, err2)
		return
	}
	hw.Each(func(o kadm.ListedOffset) {
		l, _ := lso.Lookup(o.Topic, o.Partition)
		t.Logf("%s/%d: end offset %d, last stable offset %d", o.Topic, o.Partition, o.Offset, l.Offset)
	})
}

// sourcePos reads the first "partition" and "offset" numbers of an alert
// or dead letter, which are its source position.
func sourcePos(v []byte) (p int32, o int64, ok bool) {
	num := func(key string) (int64, bool) {
		i := bytes.Index(v, []byte(`"`+key+`":`))
		if i < 0 {
			return 0, false
		}
		j := i + len(key) + 3
		k := j
		for k < len(v) && v[k] >= '0' && v[k] <= '9' {
			k++
		}
		n, err := strconv.ParseInt(string(v[j:k]), 10, 64)
		return n, err == nil
	}
	pp, ok1 := num("partition")
	oo, ok2 := num("offset")
	return int32(pp), oo, ok1 && ok2
}
