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
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/netsentinel/netsentinel/internal/broker"
)

func TestDashboardUsage(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envDashboardPassword, "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen", "0.0.0.0:9110"}, "not a loopback address: give --web-tls-cert and --web-tls-key, or --insecure"},
		{[]string{"--listen", ":9110"}, "not a loopback address"},
		{[]string{"--listen", "9110"}, "want host:port"},
		{[]string{"--web-tls-cert", "c.pem"}, "go together"},
		{[]string{"--auth-user", "admin"}, "needs a password in --auth-password-file or " + envDashboardPassword},
		{[]string{"--auth-password-file", pw}, "needs --auth-user"},
		{[]string{"--history", "2h"}, "shorter than the longest span"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		code, _, stderr := run(t, "", append([]string{"dashboard"}, tc.args...)...)
		if code != ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("dashboard %q: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, ExitUsage, tc.want)
		}
	}
	for _, host := range []string{"127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost"} {
		if !isLoopback(host) {
			t.Errorf("isLoopback(%q) = false", host)
		}
	}
	for _, host := range []string{"", "0.0.0.0", "::", "10.0.0.1", "example.org"} {
		if isLoopback(host) {
			t.Errorf("isLoopback(%q) = true", host)
		}
	}
}

// lineWaiter is a writer that hands out the first match of a pattern.
type lineWaiter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	re    *regexp.Regexp
	found chan string
	once  sync.Once
}

func newLineWaiter(pattern string) *lineWaiter {
	return &lineWaiter{re: regexp.MustCompile(pattern), found: make(chan string, 1)}
}

func (w *lineWaiter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if m := w.re.FindStringSubmatch(w.buf.String()); m != nil {
		w.once.Do(func() { w.found <- m[len(m)-1] })
	}
	return len(p), nil
}

func (w *lineWaiter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// TestDashboardCommand runs netsentinel dashboard against the embedded
// broker, reads its health from the API and stops it.
func TestDashboardCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	b, err := broker.Start(ctx, broker.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	stdout := newLineWaiter(`dashboard at (http://127\.0\.0\.1:\d+/)`)
	var stderr bytes.Buffer
	done := make(chan int)
	go func() {
		done <- Main(ctx, []string{"dashboard", "--brokers", strings.Join(b.Addrs(), ","), "--listen", "127.0.0.1:0", "--poll-interval", "200ms"},
			&Env{Stdin: strings.NewReader(""), Stdout: stdout, Stderr: &stderr})
	}()
	var url string
	select {
	case url = <-stdout.found:
	case code := <-done:
		t.Fatalf("dashboard exited %d: %s", code, stderr.String())
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var h struct {
			Broker struct{ OK bool }
			Group  struct{ Name, State string }
		}
		getJSON(t, url+"api/health", &h)
		if h.Broker.OK && h.Group.State != "" {
			if h.Group.Name != "netsentinel-detect" || h.Group.State != "Dead" {
				t.Errorf("group = %+v, want netsentinel-detect, Dead (no detector ever joined)", h.Group)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health after 10s: %+v", h)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != ExitOK {
		t.Errorf("dashboard exit %d after cancel: %s", code, stderr.String())
	}
	b.Close()
	goleak.VerifyNone(t)
}

// TestDemoServe runs the demo with --serve, checks that its dashboard
// counts what the demo published, and interrupts it.
func TestDemoServe(t *testing.T) {
	m := trainSmall(t)
	replay := writeLines(t, "replay.csv", append(kddLines(t, 5000, 6000), "not,a,record"))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	stderr := newLineWaiter(`(?s)dashboard at (http://127\.0\.0\.1:\d+/).*keeps running`)
	var stdout bytes.Buffer
	done := make(chan int)
	go func() {
		done <- Main(ctx, []string{"demo", "--json", "--model", m, "--file", replay, "--out", "", "--serve", "127.0.0.1:0"},
			&Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: stderr})
	}()
	var url string
	select {
	case url = <-stderr.found:
	case code := <-done:
		t.Fatalf("demo exited %d before serving: %s", code, stderr.String())
	}
	var s demoSummary
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		t.Fatalf("summary before waiting is not JSON: %v\n%s", err, stdout.String())
	}
	// The dashboard reads the outputs on its own: wait until it has them.
	deadline := time.Now().Add(15 * time.Second)
	for {
		var sum struct {
			Records     int64
			DeadLetters int64 `json:"dead_letters"`
		}
		getJSON(t, url+"api/summary?span=5m", &sum)
		if sum.Records == 1000 && sum.DeadLetters == 1 {
			break
		}
		if time.Now().After(deadline) {
			var h map[string]any
			getJSON(t, url+"api/health", &h)
			t.Fatalf("dashboard summary %+v, want 1000 records and 1 dead letter; demo summary %+v; health %v", sum, s, h)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The detectors group their verdicts into incidents too (--alerts
	// both is the default with --serve): the dashboard lists them, and
	// their latest counts add up to the demo's verdicts once every
	// incident's last update (at most --incident-update, 5s, after its
	// last verdict) is out.
	incDeadline := time.Now().Add(30 * time.Second)
	for {
		var page struct {
			Matching  int `json:"matching"`
			Incidents []struct {
				ID    string `json:"id"`
				Count int64  `json:"count"`
			} `json:"incidents"`
		}
		getJSON(t, url+"api/incidents?limit=500", &page)
		var verdicts int64
		for _, in := range page.Incidents {
			verdicts += in.Count
		}
		if page.Matching > 0 && page.Matching <= 500 && verdicts == s.Verdicts {
			var d struct {
				Samples []int64 `json:"samples"`
			}
			getJSON(t, url+"api/incident?id="+page.Incidents[0].ID, &d)
			if len(d.Samples) == 0 {
				t.Errorf("incident %s detail has no sample offsets", page.Incidents[0].ID)
			}
			break
		}
		if time.Now().After(incDeadline) {
			t.Fatalf("dashboard incidents: %d with %d verdicts, want the demo's %d verdicts", page.Matching, verdicts, s.Verdicts)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The group is polled on its own interval: wait for a poll that sees
	// both detectors.
	deadline = time.Now().Add(15 * time.Second)
	for {
		var h struct{ Group struct{ Members []any } }
		getJSON(t, url+"api/health", &h)
		if len(h.Group.Members) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo group members while serving = %d, want 2", len(h.Group.Members))
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != ExitOK {
		t.Errorf("interrupted demo --serve exit %d: %s", code, stderr.String())
	}
	goleak.VerifyNone(t)
}
