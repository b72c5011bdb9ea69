package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

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
