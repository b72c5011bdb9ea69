package cli

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netsentinel/netsentinel/internal/capture/capturetest"
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

// BenchmarkPredictExtracted measures predict on extract's output (records
// from a synthetic capture, content features absent), per verdict line and
// with --summary; it reports records per second. Most of these records
// are flagged, so most verdict lines carry an explanation.
func BenchmarkPredictExtracted(b *testing.B) {
	t := &testing.T{}
	data := writeLines(t, "train.csv", kddLines(t, 0, 20000))
	out := filepath.Join(b.TempDir(), "m.model")
	var so, se bytes.Buffer
	if code := Main(context.Background(), []string{"train", "--data", data, "--out", out}, &Env{Stdout: &so, Stderr: &se}); code != 0 {
		b.Fatalf("train: %s", se.String())
	}
	det, err := model.LoadFile(out)
	if err != nil {
		b.Fatal(err)
	}
	var pcap, recs bytes.Buffer
	if _, err := capturetest.WritePcap(&pcap, 200000, capturetest.Options{Seed: 1}); err != nil {
		b.Fatal(err)
	}
	if code := Main(context.Background(), []string{"extract", "-"}, &Env{Stdin: &pcap, Stdout: &recs, Stderr: io.Discard}); code != 0 {
		b.Fatalf("extract exit %d", code)
	}
	input := recs.Bytes()
	n := bytes.Count(input, []byte{'\n'})
	for _, mode := range []string{"verdicts", "summary"} {
		b.Run(mode, func(b *testing.B) {
			for range b.N {
				var sum *sourceSummary
				if mode == "summary" {
					sum = newSourceSummary()
				}
				if _, _, err := runPredict(context.Background(), det, bytes.NewReader(input), bufio.NewWriter(io.Discard), sum); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
