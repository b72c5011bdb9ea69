package dataset

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/netsentinel/netsentinel/internal/record"
)

const dataDir = "../../data/"

const (
	nslLine   = "0,tcp,ftp_data,SF,491,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,2,2,0.00,0.00,0.00,0.00,1.00,0.00,0.00,150,25,0.17,0.03,0.17,0.00,0.00,0.00,0.05,0.00,normal,20"
	smurfLine = "0,icmp,ecr_i,SF,1032,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,511,511,0.00,0.00,0.00,0.00,1.00,0.00,0.00,255,255,1.00,0.00,1.00,0.00,0.00,0.00,0.00,0.00,smurf."
	badLine   = "0,tcp,ftp_data,SF,-491,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,2,2,0.00,0.00,0.00,0.00,1.00,0.00,0.00,150,25,0.17,0.03,0.17,0.00,0.00,0.00,0.05,0.00,normal,20"
)

// numbered returns a valid line whose src_bytes is i, so rows can be told
// apart.
func numbered(i int) string {
	return strings.Replace(nslLine, ",491,", ","+strconv.Itoa(i)+",", 1)
}

// lines builds n numbered lines (about 3 MB for n = 20000, several chunks),
// with badLine at the given 1-based line numbers.
func lines(n int, bad ...int) string {
	var b strings.Builder
	isBad := map[int]bool{}
	for _, l := range bad {
		isBad[l] = true
	}
	for l := 1; l <= n; l++ {
		if isBad[l] {
			b.WriteString(badLine)
		} else {
			b.WriteString(numbered(l))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func TestLoadShipped(t *testing.T) {
	tests := []struct {
		file   string
		rows   int
		labels map[string]int
		long   bool
	}{
		{"KDDTrain+.txt.gz", 125973, map[string]int{"normal": 67343, "neptune": 41214, "satan": 3633, "warezmaster": 20, "spy": 2}, false},
		{"KDDTrain+_20Percent.txt.gz", 25192, map[string]int{"normal": 13449, "neptune": 8282, "spy": 1, "warezmaster": 7}, false},
		{"kddcup.data_10_percent.gz", 494021, map[string]int{"smurf": 280790, "neptune": 107201, "normal": 97278, "back": 2203, "perl": 3}, true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			if tt.long && testing.Short() {
				t.Skip("large file; skipped with -short")
			}
			d, err := Load(dataDir+tt.file, Options{})
			if err != nil {
				t.Fatalf("Load(%s): %v", tt.file, err)
			}
			if d.Len() != tt.rows || d.Skipped != 0 || d.Source != tt.file {
				t.Errorf("Load(%s): %d rows, %d skipped, source %q; want %d, 0, %q", tt.file, d.Len(), d.Skipped, d.Source, tt.rows, tt.file)
			}
			for j, col := range d.X {
				if len(col) != d.Len() {
					t.Errorf("column %d has %d rows, want %d", j, len(col), d.Len())
				}
			}
			counts := map[string]int{}
			for _, l := range d.Labels {
				counts[l]++
			}
			for l, want := range tt.labels {
				if counts[l] != want {
					t.Errorf("label %q: %d rows, want %d", l, counts[l], want)
				}
			}
			for l := range counts {
				if strings.HasSuffix(l, ".") || l == "" {
					t.Errorf("label %q kept a dot or is empty", l)
				}
			}
		})
	}
}

// TestLoadFirstRow checks the first row of the NSL-KDD file value by value.
func TestLoadFirstRow(t *testing.T) {
	d, err := Load(dataDir+"KDDTrain+_20Percent.txt.gz", Options{})
	if err != nil {
		t.Fatal(err)
	}
	var want record.Record
	if err := record.DecodeCSV([]byte(nslLine), &want); err != nil {
		t.Fatal(err)
	}
	var row [record.NumFeatures]float32
	d.Row(0, &row)
	for j := range row {
		if row[j] != float32(want.Features[j]) {
			t.Errorf("row 0 feature %s = %v, want %v", record.Features[j].Name, row[j], want.Features[j])
		}
	}
	if d.Labels[0] != "normal" {
		t.Errorf("row 0 label %q, want normal", d.Labels[0])
	}
}

func TestReadParseError(t *testing.T) {
	tests := []struct {
		name string
		in   string
		line int
	}{
		{"first line", lines(10, 1), 1},
		{"last line without newline", strings.TrimSuffix(lines(10, 10), "\n"), 10},
		{"in a later chunk", lines(20000, 12345), 12345},
		{"first of two, chunks apart", lines(20000, 5000, 19000), 5000},
		{"after blank lines", "\n\n" + nslLine + "\r\n\n" + badLine + "\n", 5},
		{"after a long line", strings.Repeat(" ", 3<<20) + "\n" + lines(3, 2), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Read(strings.NewReader(tt.in), "in.csv", Options{})
			if err == nil {
				t.Fatalf("Read = %d rows, want a ParseError at line %d", d.Len(), tt.line)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Read error %v is %T, want *ParseError", err, err)
			}
			if pe.File != "in.csv" || pe.Line != tt.line {
				t.Errorf("ParseError at %s:%d, want in.csv:%d (%v)", pe.File, pe.Line, tt.line, err)
			}
			if !errors.Is(err, record.ErrNegative) {
				t.Errorf("Read error %v, want it to wrap record.ErrNegative", err)
			}
			if want := "in.csv:" + strconv.Itoa(tt.line) + ": field 5 src_bytes value \"-491\""; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Read error %q, want prefix %q", err, want)
			}
		})
	}
}

func TestReadSkipBad(t *testing.T) {
	bad := []int{1, 77, 5000, 12345, 19999, 20000}
	d, err := Read(strings.NewReader(lines(20000, bad...)), "in", Options{SkipBad: true})
	if err != nil {
		t.Fatalf("Read with SkipBad: %v", err)
	}
	if d.Skipped != len(bad) || d.Len() != 20000-len(bad) {
		t.Fatalf("Read with SkipBad: %d rows, %d skipped; want %d, %d", d.Len(), d.Skipped, 20000-len(bad), len(bad))
	}
	// Rows keep file order: src_bytes holds the line number.
	isBad := map[int]bool{}
	for _, l := range bad {
		isBad[l] = true
	}
	row := 0
	for l := 1; l <= 20000; l++ {
		if isBad[l] {
			continue
		}
		if got := d.X[record.SrcBytes][row]; got != float32(l) {
			t.Fatalf("row %d has src_bytes %v, want line number %d", row, got, l)
		}
		row++
	}
}

func TestReadFormats(t *testing.T) {
	var r record.Record
	if err := record.DecodeCSV([]byte(smurfLine), &r); err != nil {
		t.Fatal(err)
	}
	jsonLine := string(r.AppendJSON(nil))
	padded := strings.TrimSuffix(jsonLine, "}") + `,"padding":"` + strings.Repeat("x", 3<<19) + `"}`
	tests := []struct {
		name   string
		in     string
		labels []string
	}{
		{"empty", "", nil},
		{"only blank lines", "\n\r\n \n\t\n", nil},
		{"no final newline", nslLine, []string{"normal"}},
		{"CRLF", nslLine + "\r\n" + smurfLine + "\r\n", []string{"normal", "smurf"}},
		{"blank lines between", "\n" + nslLine + "\n\n \n" + smurfLine + "\n\n", []string{"normal", "smurf"}},
		{"JSON lines", jsonLine + "\n" + jsonLine + "\n", []string{"smurf", "smurf"}},
		{"mixed CSV and JSON", nslLine + "\n" + jsonLine + "\n" + smurfLine, []string{"normal", "smurf", "smurf"}},
		{"line longer than a chunk", nslLine + "\n" + padded + "\n" + smurfLine + "\n", []string{"normal", "smurf", "smurf"}},
		{"long line last, no newline", nslLine + "\n" + padded, []string{"normal", "smurf"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Read(strings.NewReader(tt.in), "in", Options{})
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if d.Len() != len(tt.labels) || d.Skipped != 0 {
				t.Fatalf("Read: %d rows %d skipped, want %d rows", d.Len(), d.Skipped, len(tt.labels))
			}
			for i, l := range tt.labels {
				if d.Labels[i] != l {
					t.Errorf("row %d label %q, want %q", i, d.Labels[i], l)
				}
			}
		})
	}
	// CRLF and LF give the same matrix.
	lf := lines(3000)
	a, err := Read(strings.NewReader(lf), "lf", Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Read(strings.NewReader(strings.ReplaceAll(lf, "\n", "\r\n")), "crlf", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !sameRows(a, b) {
		t.Error("CRLF and LF inputs give different datasets")
	}
}

func sameRows(a, b *Dataset) bool {
	if a.Len() != b.Len() || a.Skipped != b.Skipped {
		return false
	}
	for j := range a.X {
		for i := range a.X[j] {
			if a.X[j][i] != b.X[j][i] {
				return false
			}
		}
	}
	for i := range a.Labels {
		if a.Labels[i] != b.Labels[i] {
			return false
		}
	}
	return true
}

func TestLoadGzipAndPlainIdentical(t *testing.T) {
	raw := gunzip(t, dataDir+"KDDTrain+_20Percent.txt.gz")
	dir := t.TempDir()
	plain := filepath.Join(dir, "train.txt")
	if err := os.WriteFile(plain, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	var done, total int64
	calls := 0
	dp, err := Load(plain, Options{Progress: func(d, t int64) { done, total = d, t; calls++ }})
	if err != nil {
		t.Fatalf("Load(plain): %v", err)
	}
	if calls == 0 || done != int64(len(raw)) || total != int64(len(raw)) {
		t.Errorf("progress: %d calls, last (%d, %d), want (%d, %d)", calls, done, total, len(raw), len(raw))
	}
	dz, err := Load(dataDir+"KDDTrain+_20Percent.txt.gz", Options{})
	if err != nil {
		t.Fatalf("Load(gz): %v", err)
	}
	if dp.Len() != 25192 || !sameRows(dp, dz) {
		t.Errorf("plain (%d rows) and gzip (%d rows) loads differ", dp.Len(), dz.Len())
	}
	if dp.Source != "train.txt" {
		t.Errorf("Source = %q, want the base name train.txt", dp.Source)
	}
}

func gunzip(t testing.TB, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := b.ReadFrom(zr); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing.csv"), Options{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
	notGzip := filepath.Join(dir, "plain.gz")
	if err := os.WriteFile(notGzip, []byte(nslLine+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Gzip is recognised by its magic bytes, not by the name.
	if d, err := Load(notGzip, Options{}); err != nil || d.Len() != 1 {
		t.Errorf("Load(plain file named .gz) = %v, want its 1 row", err)
	}
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(lines(2000)))
	zw.Close()
	gzNamedCSV := filepath.Join(dir, "really-gzip.csv")
	if err := os.WriteFile(gzNamedCSV, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if d, err := Load(gzNamedCSV, Options{}); err != nil || d.Len() != 2000 {
		t.Errorf("Load(gzip file named .csv) = %v, want its 2000 rows", err)
	}
	// A gzip file cut short anywhere is an error naming the file and the
	// line, never a smaller data set.
	truncated := filepath.Join(dir, "cut.csv.gz")
	for _, cut := range []int{5, 10, b.Len() / 4, b.Len() / 2, b.Len() - 9, b.Len() - 4, b.Len() - 1} {
		if err := os.WriteFile(truncated, b.Bytes()[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := Load(truncated, Options{SkipBad: true})
		var re *ReadError
		if !errors.Is(err, ErrTruncated) || !errors.As(err, &re) || re.File != truncated {
			t.Errorf("Load(gzip cut at byte %d of %d) = %v, want a *ReadError wrapping ErrTruncated", cut, b.Len(), err)
			if d != nil {
				t.Errorf("  and it returned %d rows", d.Len())
			}
			continue
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("%s:%d:", truncated, re.Line)) || re.Line < 1 || re.Line > 2001 {
			t.Errorf("cut at %d: error %q, line %d: want file:line", cut, err, re.Line)
		}
		if cut > b.Len()/2 && re.Line < 100 {
			t.Errorf("cut at %d of %d: line %d, want the position reached", cut, b.Len(), re.Line)
		}
	}
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte(lines(5, 4)), 0o644); err != nil {
		t.Fatal(err)
	}
	var pe *ParseError
	if _, err := Load(bad, Options{}); !errors.As(err, &pe) || pe.File != bad || pe.Line != 4 {
		t.Errorf("Load(bad) = %v, want ParseError at %s:4", err, bad)
	}
}

func TestDatasetOps(t *testing.T) {
	d, err := Read(strings.NewReader(lines(5)), "a", Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := d.Subset([]int{4, 0, 4})
	if s.Len() != 3 || s.X[record.SrcBytes][0] != 5 || s.X[record.SrcBytes][1] != 1 || s.X[record.SrcBytes][2] != 5 || s.Source != "a" {
		t.Errorf("Subset([4 0 4]) src_bytes %v source %q, want [5 1 5] a", s.X[record.SrcBytes], s.Source)
	}
	s.X[record.SrcBytes][0] = 99
	if d.X[record.SrcBytes][4] != 5 {
		t.Error("Subset shares storage with its source")
	}
	e := &Dataset{Skipped: 2, Source: "b"}
	e.Append(&record.Record{Label: "smurf"})
	d.Concat(e)
	if d.Len() != 6 || d.Labels[5] != "smurf" || d.Skipped != 2 || d.Source != "a+b" {
		t.Errorf("Concat: %d rows, last label %q, %d skipped, source %q", d.Len(), d.Labels[5], d.Skipped, d.Source)
	}
	r := d.Record(0)
	var want record.Record
	if err := record.DecodeCSV([]byte(numbered(1)), &want); err != nil {
		t.Fatal(err)
	}
	want.Difficulty = -1
	if r != want {
		t.Errorf("Record(0) = %+v, want %+v", r, want)
	}
}

func TestWidenRoundTrips(t *testing.T) {
	for _, x := range []float32{0, 1, 0.17, 0.03, 1e-7, 3.4e38, 123456.7, 0.1 + 0.2, 1.0 / 3} {
		w := widen(x)
		if float32(w) != x {
			t.Errorf("float32(widen(%v)) = %v", x, float32(w))
		}
	}
	if w := widen(0.17); w != 0.17 {
		t.Errorf("widen(0.17) = %v, want 0.17", w)
	}
}

// TestReadStopsEarly checks that an error in the first chunk of a long
// input stops the reader before the input ends.
func TestReadStopsEarly(t *testing.T) {
	r := &countReader{r: strings.NewReader(lines(60000, 2))} // about 9 MB
	_, err := Read(r, "in", Options{})
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 2 {
		t.Fatalf("Read = %v, want a ParseError at line 2", err)
	}
	if r.n > 6<<20 {
		t.Errorf("Read consumed %d bytes after an error on line 2, want it to stop early", r.n)
	}
}

type countReader struct {
	r interface{ Read([]byte) (int, error) }
	n int
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
