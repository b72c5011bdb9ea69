package dataset

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/netsentinel/netsentinel/internal/record"
)

// FuzzRead checks the loader against a line-by-line decode: same rows,
// same skip count, and the first bad line reported with its number.
func FuzzRead(f *testing.F) {
	var r record.Record
	if err := record.DecodeCSV([]byte(smurfLine), &r); err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		nslLine + "\n" + smurfLine + "\n",
		nslLine + "\r\n\r\n" + badLine + "\n" + string(r.AppendJSON(nil)),
		"\n\n", "", badLine, lines(3, 2),
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, skipBad bool) {
		d, err := Read(bytes.NewReader(data), "fuzz", Options{SkipBad: skipBad})

		// The reference: split on '\n', skip blank lines, decode each.
		var want Dataset
		firstBad := 0
		for i, l := range strings.Split(string(data), "\n") {
			if len(bytes.TrimSpace([]byte(l))) == 0 {
				continue
			}
			var rec record.Record
			if record.Decode([]byte(l), &rec) != nil {
				want.Skipped++
				if firstBad == 0 {
					firstBad = i + 1
				}
				continue
			}
			want.Append(&rec)
		}
		if !skipBad && firstBad > 0 {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line != firstBad || pe.File != "fuzz" {
				t.Fatalf("Read = %v, want a ParseError at fuzz:%d", err, firstBad)
			}
			return
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if !skipBad {
			want.Skipped = 0
		}
		if !sameRows(d, &want) {
			t.Fatalf("Read gave %d rows %d skipped, line by line %d rows %d skipped (or values differ)",
				d.Len(), d.Skipped, want.Len(), want.Skipped)
		}
	})
}

// FuzzReader feeds Reader arbitrary bytes, plain and gzip-wrapped: it must
// never panic, give back a plain input unchanged, give back a whole gzip
// stream's content, and fail on every strict prefix of a gzip stream long enough to be
// recognised as one.
func FuzzReader(f *testing.F) {
	f.Add([]byte(nslLine+"\n"), 0)
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}, 3)
	f.Add([]byte{}, 0)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		if r, err := NewReader(bytes.NewReader(data), "fuzz"); err == nil {
			got, err := io.ReadAll(r)
			if err == nil && !r.Compressed() && !bytes.Equal(got, data) {
				t.Fatalf("plain input changed: %q -> %q", data, got)
			}
		}
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(data)
		zw.Close()
		r, err := NewReader(bytes.NewReader(z.Bytes()), "fuzz.gz")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("gzip round trip: %v, %d of %d bytes", err, len(got), len(data))
		}
		// Two bytes are needed to recognise gzip at all.
		if cut = abs(cut) % z.Len(); cut >= len(gzipMagic) {
			r, err := NewReader(bytes.NewReader(z.Bytes()[:cut]), "cut.gz")
			if err == nil {
				_, err = io.ReadAll(r)
			}
			if !errors.Is(err, ErrTruncated) {
				t.Fatalf("gzip cut at %d of %d: %v, want ErrTruncated", cut, z.Len(), err)
			}
		}
	})
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
