package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// TestDemo runs the whole demo in-process on a small replay file with bad
// lines among the records, and checks that the books balance, that the bad
// lines became dead letters, and that the summary and report are there.
func TestDemo(t *testing.T) {
	m := trainSmall(t)
	lines := kddLines(t, 5000, 7000)
	bad := []string{
		"",                      // blank: skipped by the reader, not published
		"not,a,record",          // wrong field count
		strings.Repeat("x", 70), // garbage
		`{"duration":0}`,        // JSON missing keys
		strings.Replace(lines[0], "0.00", "7.5", 1), // a rate of 7.5
	}
	replay := writeLines(t, "replay.csv", append(lines, bad...))
	out := filepath.Join(t.TempDir(), "report")
	code, stdout, stderr := run(t, "", "demo", "--json", "--model", m, "--file", replay,
		"--detectors", "2", "--partitions", "3", "--out", out)
	if code != ExitOK {
		t.Fatalf("demo exit %d, stderr:\n%s", code, stderr)
	}
	var s demoSummary
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatalf("summary is not one JSON object: %v\n%s", err, stdout)
	}
	checkGolden(t, "testdata/demo-summary.shape", jsonShape(t, []byte(stdout), "by_category", "by_attack"))
	const records = 2000 + 4
	if s.Records != records {
		t.Errorf("records = %d, want %d", s.Records, records)
	}
	if s.DeadLetters != 4 {
		t.Errorf("dead_letters = %d, want 4", s.DeadLetters)
	}
	if got := s.Normal + s.Verdicts + s.DeadLetters; got != s.Records || !s.BooksBalance {
		t.Errorf("normal %d + verdicts %d + dead letters %d = %d, want %d (books_balance %v)",
			s.Normal, s.Verdicts, s.DeadLetters, got, s.Records, s.BooksBalance)
	}
	var byCat int64
	for _, n := range s.ByCategory {
		byCat += n
	}
	if byCat != s.Records-s.DeadLetters {
		t.Errorf("by_category sums to %d, want %d", byCat, s.Records-s.DeadLetters)
	}
	// A 10-tree forest on 3000 rows still gets most of 2000 other rows
	// right; a broken pipeline (lost alerts, mixed-up labels) does not.
	if s.Accuracy.Binary == nil || *s.Accuracy.Binary < 0.95 || *s.Accuracy.Category < 0.9 {
		t.Errorf("accuracy = %+v, want binary >= 0.95 and category >= 0.9", s.Accuracy)
	}
	if s.Accuracy.Labelled != 2000 {
		t.Errorf("labelled = %d, want 2000", s.Accuracy.Labelled)
	}
	if s.RecordsPerSecond <= 0 || s.LatencyMS.P99 < s.LatencyMS.P50 {
		t.Errorf("throughput %v, latency %+v", s.RecordsPerSecond, s.LatencyMS)
	}
	for _, f := range []string{"report.html", "summary.json", "categories.png"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("report file: %v", err)
		}
	}
}

// cancelOn is a stderr that cancels a context once the output contains a
// given text.
type cancelOn struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	text   string
	cancel context.CancelFunc
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	if strings.Contains(c.buf.String(), c.text) {
		c.cancel()
	}
	return len(p), nil
}

// TestDemoTeardown stops the demo at each stage (broker up, publishing)
// and checks that it fails with the cause and leaves no goroutine behind:
// detectors, output reader, publisher and broker all stopped.
func TestDemoTeardown(t *testing.T) {
	m := trainSmall(t)
	replay := writeLines(t, "replay.csv", kddLines(t, 5000, 7000))
	for _, stage := range []string{"embedded broker on", "publishing"} {
		t.Run(stage, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			stderr := &cancelOn{text: stage, cancel: cancel}
			var stdout bytes.Buffer
			code := Main(ctx, []string{"demo", "--json", "--model", m, "--file", replay, "--out", ""},
				&Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: stderr})
			if code == ExitOK {
				t.Fatalf("demo cancelled at %q: exit 0", stage)
			}
			if stdout.Len() != 0 {
				t.Errorf("a cancelled demo printed a summary: %s", stdout.String())
			}
			goleak.VerifyNone(t)
		})
	}
}
