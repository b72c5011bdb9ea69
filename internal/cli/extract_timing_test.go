package cli

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/netsentinel/netsentinel/internal/capture/capturetest"
)

// BenchmarkExtractPcap measures extract on a synthetic capture held in
// memory; it reports packets per second.
func BenchmarkExtractPcap(b *testing.B) {
	var buf bytes.Buffer
	c, err := capturetest.WritePcap(&buf, 500000, capturetest.Options{Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	b.ResetTimer()
	for range b.N {
		env := &Env{Stdin: bytes.NewReader(buf.Bytes()), Stdout: io.Discard, Stderr: io.Discard}
		if code := Main(context.Background(), []string{"extract", "-"}, env); code != 0 {
			b.Fatalf("exit code %d", code)
		}
	}
	b.ReportMetric(float64(c.Packets)*float64(b.N)/b.Elapsed().Seconds(), "packets/s")
}
