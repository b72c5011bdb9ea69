package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netsentinel/netsentinel/internal/event"
)

// lockedBuffer is a bytes.Buffer safe for a writer and a reader at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func httpGet(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDetectCommand publishes records with the publish command and scores
// them with the detect command: ready and metrics endpoints, a clean exit on
// cancel, and balanced outputs.
func TestDetectCommand(t *testing.T) {
	broker := fakeKafka(t, 2, "in", "alerts", "stats", "dead")
	modelPath := trainSmall(t)
	lines := kddLines(t, 3000, 3400)
	lines = append(lines, "garbage line")
	file := writeLines(t, "in.csv", lines)
	if code, _, stderr := run(t, "", "publish", "--brokers", broker, "--topic", "in", "--file", file); code != ExitBadData {
		t.Fatalf("publish exit %d; stderr:\n%s", code, stderr)
	}
	// publish skipped the garbage line (exit 3); a second run adds one more
	// good record.
	if code, _, stderr := run(t, "", "publish", "--brokers", broker, "--topic", "in", "--file", writeLines(t, "one.csv", lines[:1])); code != ExitOK {
		t.Fatalf("publish exit %d; stderr:\n%s", code, stderr)
	}
	const want = 401

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"detect", "--brokers", broker, "--topic", "in", "--group", "g", "--model", modelPath,
			"--alerts-topic", "alerts", "--stats-topic", "stats", "--dead-letter-topic", "dead", "--listen", "127.0.0.1:0",
			"--instance", "cli", "--alerts", "records"}, &Env{Stdout: &stdout, Stderr: &stderr})
	}()
	addrRE := regexp.MustCompile(`addr=http://([0-9.:]+)/metrics`)
	var base string
	deadline := time.Now().Add(20 * time.Second)
	for base == "" {
		if m := addrRE.FindStringSubmatch(stderr.String()); m != nil {
			base = "http://" + m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no listen address logged:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, body := httpGet(base + "/-/healthy"); code != http.StatusOK {
		t.Errorf("/-/healthy = %d %q", code, body)
	}
	for {
		code, _ := httpGet(base + "/-/ready")
		_, metrics := httpGet(base + "/metrics")
		if code == http.StatusOK && strings.Contains(metrics, "netsentinel_detect_records_total 401") {
			if !strings.Contains(metrics, `netsentinel_detect_transactions_total{result="committed"}`) ||
				!strings.Contains(metrics, "go_goroutines") {
				t.Errorf("metrics incomplete:\n%s", metrics)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready with 401 records after 20s: ready %d, metrics:\n%s\nstderr:\n%s", code, metrics, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	select {
	case code := <-done:
		if code != ExitOK {
			t.Fatalf("detect exit %d; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("detect did not stop within 30s of cancel")
	}
	if !strings.Contains(stderr.String(), "detector stopped") {
		t.Errorf("no shutdown summary:\n%s", stderr.String())
	}

	var normal, alerts, dead int64
	for _, r := range consumeAll(t, broker, "stats", 1) {
		var s event.Stats
		if err := json.Unmarshal(r.Value, &s); err != nil {
			t.Fatal(err)
		}
		normal += s.ByCategory["normal"]
		dead += s.DeadLetters
	}
	alerts = int64(len(consumeAll(t, broker, "alerts", 1)))
	if got := normal + alerts + dead; got != want || dead != 0 {
		t.Errorf("books: normal %d + alerts %d + dead %d = %d, want %d with no dead letters", normal, alerts, dead, got, want)
	}
}

func TestDetectUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{}, "--model is required"},
		{[]string{"--model", "m", "--log-level", "loud"}, "--log-level"},
		{[]string{"--model", "m", "--sasl-mechanism", "scram-sha-512", "--sasl-user", "u"}, "needs a password"},
		{[]string{"--model", "m", "extra"}, "unexpected arguments"},
	}
	for _, tt := range tests {
		code, _, stderr := run(t, "", append([]string{"detect"}, tt.args...)...)
		if code != ExitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("detect %v: exit %d stderr %q, want %d and %q", tt.args, code, stderr, ExitUsage, tt.want)
		}
	}
	if code, _, stderr := run(t, "", "detect", "--model", "/nonexistent/m.model"); code != ExitFailure || !strings.Contains(stderr, "nonexistent") {
		t.Errorf("missing model: exit %d stderr %q", code, stderr)
	}
}

// startDetect runs the detect command in the background with args after
// the common ones, waits until its HTTP server is up and returns its base
// URL, its stderr and a stop function returning the exit code.
func startDetect(t *testing.T, args ...string) (base string, stderr *lockedBuffer, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr = &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, append([]string{"detect", "--listen", "127.0.0.1:0", "--alerts", "records"}, args...), &Env{Stdout: io.Discard, Stderr: stderr})
	}()
	var once sync.Once
	code := -1
	stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(30 * time.Second):
				t.Errorf("detect did not stop within 30s of cancel")
			}
		})
		return code
	}
	t.Cleanup(func() { stop() })
	addrRE := regexp.MustCompile(`addr=http://([0-9.:]+)/metrics`)
	waitUntil(t, 20*time.Second, "the metrics address in the log", func() bool {
		m := addrRE.FindStringSubmatch(stderr.String())
		if m != nil {
			base = "http://" + m[1]
		}
		return m != nil && strings.Contains(stderr.String(), "detector starting")
	}, stderr)
	return base, stderr, stop
}

// waitUntil polls cond every 20ms until it holds, failing the test with
// log's content after timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool, log *lockedBuffer) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v; log:\n%s", what, timeout, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDetectUnreachableBroker checks that a detector that cannot reach
// Kafka says so within seconds, and that /-/healthy fails after
// --stall-timeout.
func TestDetectUnreachableBroker(t *testing.T) {
	modelPath := trainSmall(t)
	start := time.Now()
	base, stderr, stop := startDetect(t, "--brokers", "127.0.0.1:1", "--model", modelPath, "--stall-timeout", "2s")
	waitUntil(t, 5*time.Second, "warning naming the connection error", func() bool {
		s := stderr.String()
		return strings.Contains(s, "level=WARN") && strings.Contains(s, "connection refused")
	}, stderr)
	t.Logf("connection error logged after %v", time.Since(start).Round(time.Millisecond))
	waitUntil(t, 10*time.Second, "failing /-/healthy", func() bool {
		code, body := httpGet(base + "/-/healthy")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "connection refused")
	}, stderr)
	t.Logf("/-/healthy failed after %v", time.Since(start).Round(time.Millisecond))
	if _, metrics := httpGet(base + "/metrics"); !strings.Contains(metrics, "netsentinel_detect_stalled 1") {
		t.Errorf("metrics do not show the stall:\n%s", metrics)
	}
	if code := stop(); code != ExitOK {
		t.Errorf("detect exit %d after cancel", code)
	}
}

// TestDetectReload scores records with one model, swaps in a model that
// flags every record on SIGHUP, and checks that the records published after
// the reload carry the new model's verdicts and fingerprint.
func TestDetectReload(t *testing.T) {
	broker := fakeKafka(t, 2, "in", "alerts", "stats", "dead")
	modelPath := trainSmall(t)
	m, fpA, err := loadModel(modelPath, false)
	if err != nil {
		t.Fatal(err)
	}
	nov, _ := m.Novelty()
	if nov == nil {
		t.Fatal("the small model has no novelty part")
	}
	m.SetNovelty(nov, -1) // every record the classifier calls normal is "unknown"
	if err := m.SetNoveltyConfident(0, 0); err != nil {
		t.Fatal(err)
	}
	flagAll := filepath.Join(t.TempDir(), "all.model")
	if err := m.SaveFile(flagAll); err != nil {
		t.Fatal(err)
	}
	_, fpB, err := loadModel(flagAll, false)
	if err != nil || fpA == fpB {
		t.Fatalf("fingerprints %q %q, err %v", fpA, fpB, err)
	}
	lines := kddLines(t, 3000, 3200)
	publish := func(part []string) {
		t.Helper()
		if code, _, stderr := run(t, "", "publish", "--brokers", broker, "--topic", "in", "--key", "none", "--file", writeLines(t, "in.csv", part)); code != ExitOK {
			t.Fatalf("publish exit %d: %s", code, stderr)
		}
	}
	records := func(base string) string {
		_, metrics := httpGet(base + "/metrics")
		for _, l := range strings.Split(metrics, "\n") {
			if strings.HasPrefix(l, "netsentinel_detect_records_total ") {
				return strings.TrimPrefix(l, "netsentinel_detect_records_total ")
			}
		}
		return ""
	}
	publish(lines[:100])
	base, stderr, stop := startDetect(t, "--brokers", broker, "--topic", "in", "--group", "g", "--model", modelPath,
		"--alerts-topic", "alerts", "--stats-topic", "stats", "--dead-letter-topic", "dead", "--instance", "reload")
	waitUntil(t, 20*time.Second, "100 records scored", func() bool { return records(base) == "100" }, stderr)

	// Replace the file as a deployment would (rename), then SIGHUP.
	b, err := os.ReadFile(flagAll)
	if err != nil {
		t.Fatal(err)
	}
	tmp := modelPath + ".new"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, modelPath); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "reload log", func() bool { return strings.Contains(stderr.String(), "fingerprint="+fpB) }, stderr)
	publish(lines[100:])
	waitUntil(t, 20*time.Second, "200 records scored", func() bool { return records(base) == "200" }, stderr)
	if code := stop(); code != ExitOK {
		t.Fatalf("detect exit %d", code)
	}

	var byModel map[string]int64
	var alerts int
	stats := func(rs []*kgo.Record) int {
		byModel, alerts = map[string]int64{}, 0
		var sum int
		for _, r := range rs {
			var s event.Stats
			if err := json.Unmarshal(r.Value, &s); err != nil {
				t.Fatal(err)
			}
			byModel[s.Model] += s.Records
			sum += int(s.Records)
			for _, n := range s.ByAttack {
				alerts += int(n)
			}
		}
		return sum
	}
	var got []*kgo.Record
	for n := 1; stats(got) < 200 && n < 200; n = len(got) + 1 {
		got = consumeAll(t, broker, "stats", n)
	}
	if byModel[fpA] != 100 || byModel[fpB] != 100 || len(byModel) != 2 {
		t.Errorf("records by model in the statistics: %v, want 100 for %s and 100 for %s", byModel, fpA, fpB)
	}
	alertsByModel := map[string]int{}
	for _, r := range consumeAll(t, broker, "alerts", alerts) {
		var a event.Alert
		if err := json.Unmarshal(r.Value, &a); err != nil {
			t.Fatal(err)
		}
		alertsByModel[a.Model]++
	}
	if alertsByModel[fpB] != 100 || alertsByModel[fpA] >= 100 {
		t.Errorf("alerts by model: %v; want all 100 records after the reload flagged by %s, fewer before by %s", alertsByModel, fpB, fpA)
	}
}
