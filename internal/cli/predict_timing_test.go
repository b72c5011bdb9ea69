package cli

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netsentinel/netsentinel/internal/model"
)

// BenchmarkPredictStream measures predict's decode, score and encode
// pipeline on NSL-KDD lines with a default 100-tree forest.
func BenchmarkPredictStream(b *testing.B) {
	t := &testing.T{}
	lines := kddLines(t, 0, 20000)
	data := writeLines(t, "train.csv", lines)
	out := filepath.Join(b.TempDir(), "m.model")
	var so, se bytes.Buffer
	if code := Main(context.Background(), []string{"train", "--data", data, "--out", out}, &Env{Stdout: &so, Stderr: &se}); code != 0 {
		b.Fatalf("train: %s", se.String())
	}
	det, err := model.LoadFile(out)
	if err != nil {
		b.Fatal(err)
	}
	input := []byte(strings.Join(lines, "\n") + "\n")
	b.SetBytes(int64(len(input)))
	b.ResetTimer()
	for range b.N {
		if _, _, err := predictStream(context.Background(), det, bytes.NewReader(input), bufio.NewWriter(io.Discard)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(lines)*b.N)/b.Elapsed().Seconds(), "lines/s")
}
