package zeek

import (
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netsentinel/netsentinel/internal/features"
	"github.com/netsentinel/netsentinel/internal/record"
)

// FuzzReader reads arbitrary text as a conn.log: no panic, errors are line
// errors with a line number, and every connection has its symbolic
// features in their vocabularies.
func FuzzReader(f *testing.F) {
	paths, _ := filepath.Glob("testdata/*.conn.log.gz")
	for _, p := range paths {
		fh, err := os.Open(p)
		if err != nil {
			f.Fatal(err)
		}
		zr, err := gzip.NewReader(fh)
		if err != nil {
			f.Fatal(err)
		}
		b, _ := io.ReadAll(zr)
		fh.Close()
		f.Add(string(b[:min(len(b), 4000)]))
	}
	f.Add(header + "1.5\tC1\t10.0.0.1\t1\t10.0.0.2\t80\ttcp\t-\t1\t1\t1\tSF\tx\n")
	f.Add(`{"ts":1.5,"uid":"C","id.orig_h":"::1","id.orig_p":1,"id.resp_h":"::1","id.resp_p":1,"proto":"icmp"}` + "\n")
	f.Fuzz(func(t *testing.T, log string) {
		zr := NewReader(strings.NewReader(log))
		for range 10000 {
			var c features.Conn
			err := zr.Next(&c)
			if err == io.EOF {
				return
			}
			var le *LineError
			if errors.As(err, &le) {
				if le.Line <= 0 {
					t.Fatalf("error without a line: %v", err)
				}
				continue
			}
			if err != nil {
				return // the scanner's own error (a line over 1 MiB)
			}
			for _, i := range []int{record.ProtocolType, record.Service, record.Flag} {
				if c.Present(i) && c.Symbol(i) == "" {
					t.Fatalf("feature %d out of its vocabulary: %v", i, c.Values[i])
				}
			}
			if c.Values[record.Duration] < 0 || c.End < 0 && c.ID.TS > 0 {
				t.Fatalf("negative time: %+v", c)
			}
		}
	})
}
