package dataset

import (
	"bytes"
	"errors"
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
