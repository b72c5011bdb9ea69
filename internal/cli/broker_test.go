package cli

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runBroker runs "netsentinel broker args..." until the test ends and
// returns the address it listens on.
func runBroker(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, append([]string{"broker", "--listen", "127.0.0.1:0"}, args...),
			&Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != ExitOK {
				t.Errorf("broker exited %d, want 0; stderr:\n%s", code, stderr.String())
			}
		case <-time.After(10 * time.Second):
			t.Errorf("broker did not stop within 10s of cancellation")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if out := stdout.String(); strings.Contains(out, "listening on ") {
			line, _, _ := strings.Cut(out[strings.Index(out, "listening on ")+len("listening on "):], "\n")
			return strings.TrimSpace(line)
		}
		select {
		case code := <-done:
			t.Fatalf("broker exited %d early; stderr:\n%s", code, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("broker printed no address; stderr:\n%s", stderr.String())
	return ""
}

func TestBrokerUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"broker", "--listen", "10.1.2.3:9092"},
		{"broker", "--listen", "nohost"},
		{"broker", "--partitions", "0"},
		{"broker", "--log-level", "loud"},
		{"broker", "extra"},
		{"broker", "--retention", "-1h"},
		{"broker", "--retention-bytes", "lots"},
		{"broker", "--retention-bytes", "-5MiB"},
		{"broker", "--segment-bytes", "0"},
		{"broker", "--segment-bytes", "100"},
	} {
		var out, errb bytes.Buffer
		code := Main(context.Background(), args, &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb})
		if code != ExitUsage {
			t.Errorf("%v: exit %d, want %d (stderr %q)", args, code, ExitUsage, errb.String())
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "4096": 4096, "1KiB": 1 << 10, "64MiB": 64 << 20, "1GiB": 1 << 30, "2 GiB": 2 << 30,
		"3TiB": 3 << 40, "512MB": 512 << 20, "10B": 10,
	} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GiB", "-1", "1.5GiB", "1PiB", "99999999999TiB"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
	for n, want := range map[int64]string{1 << 30: "1GiB", 64 << 20: "64MiB", 1536: "1536", 3 << 10: "3KiB"} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestBrokerKcat proves with an independent client (kcat, librdkafka) that
// "netsentinel broker" speaks Kafka: produce, consume, and a consumer group
// whose offsets survive a restart of the broker with the same --data-dir.
func TestBrokerKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat not on PATH")
	}
	kc := func(addr string, stdin string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, kcat, append([]string{"-b", addr}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("kcat %v: %v\n%s", args, err, errb.String())
		}
		return out.String()
	}
	dir := t.TempDir()
	var lines strings.Builder
	for range 100 {
		lines.WriteString("0,tcp,http,SF,181,5450,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,0,8,8,0.00,0.00,0.00,0.00,1.00,0.00,0.00,9,9,1.00,0.00,0.11,0.00,0.00,0.00,0.00,0.00,normal.")
		lines.WriteString("\n")
	}

	t.Run("first run", func(t *testing.T) {
		addr := runBroker(t, "--data-dir", dir, "--partitions", "3")
		kc(addr, lines.String(), "-P", "-t", "connections")
		if n := len(strings.Fields(kc(addr, "", "-C", "-t", "connections", "-e", "-q"))); n != 100 {
			t.Fatalf("kcat consumed %d records, want 100", n)
		}
		if n := len(strings.Fields(kc(addr, "", "-G", "grp", "-X", "auto.offset.reset=earliest", "-e", "-q", "connections"))); n != 100 {
			t.Fatalf("kcat group consumed %d records, want 100", n)
		}
		md := kc(addr, "", "-L", "-t", "connections")
		if !strings.Contains(md, "3 partitions") {
			t.Errorf("metadata does not show 3 partitions:\n%s", md)
		}
	})
	t.Run("after restart", func(t *testing.T) {
		addr := runBroker(t, "--data-dir", dir)
		if n := len(strings.Fields(kc(addr, "", "-C", "-t", "connections", "-e", "-q"))); n != 100 {
			t.Fatalf("after restart kcat consumed %d records, want 100", n)
		}
		if n := len(strings.Fields(kc(addr, "", "-G", "grp", "-X", "auto.offset.reset=earliest", "-e", "-q", "connections"))); n != 0 {
			t.Errorf("after restart the group re-read %d records, want 0 (offsets lost)", n)
		}
	})
}
