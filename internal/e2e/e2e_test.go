package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netsentinel/netsentinel/internal/event"
	"github.com/netsentinel/netsentinel/internal/kafkatest"
)

// build compiles cmd/netsentinel into a temporary directory.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "netsentinel")
	cmd := exec.Command("go", "build", "-o", bin, "../../cmd/netsentinel")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func runBin(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("netsentinel %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// detector is a running `netsentinel detect` process.
type detector struct {
	cmd  *exec.Cmd
	base string // http://host:port of its web server
	log  string
	done chan error
}

func startDetect(t *testing.T, bin string, args ...string) *detector {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "detect.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"detect", "--listen", "127.0.0.1:0"}, args...)...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = logf, io.MultiWriter(logf, pw)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &detector{cmd: cmd, log: logPath, done: make(chan error, 1)}
	go func() { err := cmd.Wait(); pw.Close(); logf.Close(); d.done <- err }()
	addr := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`addr=http://([0-9.:]+)/metrics`)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
				break
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case a := <-addr:
		d.base = "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatalf("detect logged no listen address")
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("detect log tail:\n%s", b)
		}
	})
	return d
}

func (d *detector) get(path string) (int, string) {
	resp, err := http.Get(d.base + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// caughtUp reports whether group has committed all of topic's records.
func caughtUp(t *testing.T, adm *kadm.Client, group, topic string, want int64) (int64, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return 0, false
	}
	var done int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic {
			done += o.At
		}
	})
	return done, done == want
}

func TestBinaryKillRestart(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	bin := build(t)
	in, alerts, stats, dead := kafkatest.NewTopic(t, 3), kafkatest.NewTopic(t, 1), kafkatest.NewTopic(t, 1), kafkatest.NewTopic(t, 1)
	group := kafkatest.Name(t, "g")
	dir := t.TempDir()
	modelPath := filepath.Join(dir, "m.model")
	data := "../../data/KDDTrain+_20Percent.txt.gz"
	runBin(t, bin, "train", "--data", data, "--trees", "10", "--out", modelPath)
	b := strings.Join(brokers, ",")
	const n = 5000
	out := runBin(t, bin, "publish", "--brokers", b, "--topic", in, "--file", data, "--limit", fmt.Sprint(n), "--format", "json")
	if !strings.Contains(out, fmt.Sprintf("published %d records", n)) {
		t.Fatalf("publish: %s", out)
	}
	args := []string{"--brokers", b, "--topic", in, "--group", group, "--model", modelPath, "--alerts", "records", "--alerts-topic", alerts,
		"--stats-topic", stats, "--dead-letter-topic", dead, "--instance", "e2e", "--static-membership",
		"--max-poll-records", "100", "--session-timeout", "6s"}
	adm := kafkatest.Admin(t)

	d := startDetect(t, bin, args...)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if done, _ := caughtUp(t, adm, group, in, n); done > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no progress within 60s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-d.done
	done, _ := caughtUp(t, adm, group, in, n)
	t.Logf("killed at %d of %d committed", done, n)

	d = startDetect(t, bin, args...)
	if code, body := d.get("/-/healthy"); code != http.StatusOK {
		t.Errorf("/-/healthy = %d %q", code, body)
	}
	deadline = time.Now().Add(60 * time.Second)
	for {
		if _, ok := caughtUp(t, adm, group, in, n); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not caught up within 60s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, body := d.get("/-/ready"); code != http.StatusOK {
		t.Errorf("/-/ready = %d %q", code, body)
	}
	if _, metrics := d.get("/metrics"); !strings.Contains(metrics, "netsentinel_detect_records_total") {
		t.Errorf("metrics lack records_total:\n%s", metrics)
	}
	// SIGHUP reloads the model.
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(d.log)
		if strings.Contains(string(b), "model reloaded") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no 'model reloaded' log line within 10s of SIGHUP")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.done:
		if err != nil {
			t.Errorf("detect after SIGTERM: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("detect did not exit within 60s of SIGTERM")
	}

	// The books, read with ReadCommitted.
	cl := kafkatest.Client(t, kgo.ConsumeTopics(alerts, stats, dead), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	type pos struct {
		p int32
		o int64
	}
	seen := map[pos]bool{}
	var normal, alertCount, deadCount, dups int64
	idleSince := time.Now()
	for time.Since(idleSince) < 2*time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		if fs.NumRecords() > 0 {
			idleSince = time.Now()
		}
		fs.EachRecord(func(r *kgo.Record) {
			switch r.Topic {
			case stats:
				var s event.Stats
				if err := json.Unmarshal(r.Value, &s); err != nil {
					t.Fatal(err)
				}
				normal += s.ByCategory["normal"]
			case alerts, dead:
				var a struct {
					Partition int32
					Offset    int64
				}
				if err := json.Unmarshal(r.Value, &a); err != nil {
					t.Fatal(err)
				}
				if seen[pos{a.Partition, a.Offset}] {
					dups++
				}
				seen[pos{a.Partition, a.Offset}] = true
				if r.Topic == alerts {
					alertCount++
				} else {
					deadCount++
				}
			}
		})
	}
	t.Logf("normal %d + alerts %d + dead letters %d = %d of %d published; %d duplicates", normal, alertCount, deadCount,
		normal+alertCount+deadCount, n, dups)
	if normal+alertCount+deadCount != n || dups != 0 {
		t.Errorf("books do not balance")
	}
}
