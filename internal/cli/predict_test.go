package cli

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPredictStreams feeds predict through a pipe that writes one line and
// waits for its verdict before writing the next, as `tail -f conn.log |
// netsentinel predict` does: each verdict must come while the input is
// still open.
func TestPredictStreams(t *testing.T) {
	m := trainSmall(t)
	lines := kddLines(t, 3000, 3005)
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	code := make(chan int, 1)
	go func() {
		var stderr bytes.Buffer
		c := Main(t.Context(), []string{"predict", "--model", m}, &Env{Stdin: inR, Stdout: outW, Stderr: &stderr})
		outW.Close()
		code <- c
	}()
	verdicts := make(chan string)
	go func() {
		defer close(verdicts)
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			verdicts <- sc.Text()
		}
	}()
	for i, l := range lines {
		if _, err := io.WriteString(inW, l+"\n"); err != nil {
			t.Fatal(err)
		}
		select {
		case v := <-verdicts:
			var got struct{ Line int }
			if err := json.Unmarshal([]byte(v), &got); err != nil || got.Line != i+1 {
				t.Fatalf("verdict %q (%v), want line %d", v, err, i+1)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no verdict for line %d while the input stays open", i+1)
		}
	}
	inW.Close()
	if c := <-code; c != ExitOK {
		t.Errorf("exit %d, want 0", c)
	}
	for v := range verdicts {
		t.Errorf("extra output %q", v)
	}
}

// TestTruncatedGzip: a gzip file cut short makes train, eval and predict
// fail with an error naming the file and the line, and train writes no
// model.
func TestTruncatedGzip(t *testing.T) {
	m := trainSmall(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(strings.Join(kddLines(t, 0, 3000), "\n") + "\n"))
	zw.Close()
	dir := t.TempDir()
	cut := filepath.Join(dir, "cut.csv.gz")
	if err := os.WriteFile(cut, gz.Bytes()[:gz.Len()*2/3], 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "cut.model")
	for _, args := range [][]string{
		{"train", "--data", cut, "--trees", "2", "--out", out},
		{"train", "--data", cut, "--trees", "2", "--skip-bad", "--out", out},
		{"eval", "--model", m, "--data", cut},
		{"predict", "--model", m, cut},
	} {
		code, _, stderr := run(t, "", args...)
		if code == ExitOK || !strings.Contains(stderr, cut+":") || !strings.Contains(stderr, "truncated") {
			t.Errorf("%v: exit %d, stderr %q; want a failure naming %s:LINE and the truncation", args, code, stderr, cut)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("train wrote a model from a truncated file")
	}
	// The same through stdin.
	code, _, stderr := run(t, string(gz.Bytes()[:gz.Len()/2]), "predict", "--model", m)
	if code == ExitOK || !strings.Contains(stderr, "stdin:") {
		t.Errorf("predict < truncated gzip: exit %d, stderr %q", code, stderr)
	}
}
