// Package zeek reads Zeek conn.log files, in Zeek's TSV format (with its
// #separator, #fields and #types header lines, which may repeat) or as JSON
// lines, and turns each connection into a features.Conn with the KDD'99
// intrinsic features Zeek logs: duration, protocol_type, service (Zeek's
// service field when it names a KDD service, else the responder's port),
// flag (from conn_state, see features.ZeekFlag), src_bytes and dst_bytes
// (orig_bytes, resp_bytes), land, and logged_in as the KDD files set it
// (features.LoggedIn). wrong_fragment, urgent and the other content
// features are absent. The traffic features are left to features.Window.
//
// Unset ("-") and empty ("(empty)") values leave the feature absent. A
// line with a missing or malformed required value (ts, the four id
// fields, proto) gives a *LineError naming the line, the field and the
// value; reading goes on with the next line. A timestamp masked as Zeek's
// test baselines mask it (XXXXXXXXXX.XXXXXX) is not an error: the
// connection is kept without "ts" and placed, for the traffic features, at
// the latest end seen before it (Stats.Masked counts them).
//
// The package does no I/O beyond the reader it is given and has no
// goroutines.
package zeek

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/netsentinel/netsentinel/internal/features"
	"github.com/netsentinel/netsentinel/internal/record"
)

// Errors wrapped by LineError.
var (
	// ErrNoHeader: a TSV data line came before any #fields line.
	ErrNoHeader = errors.New("data line before the #fields header")
	// ErrMissingField: a required field is not in the header or the object.
	ErrMissingField = errors.New("required field missing")
	// ErrBadValue: a value does not parse as its type.
	ErrBadValue = errors.New("bad value")
	// ErrFieldCount: a TSV line has another number of fields than the header.
	ErrFieldCount = errors.New("wrong number of fields")
	// ErrNotConnLog: a line is neither a header, a TSV line nor a JSON object.
	ErrNotConnLog = errors.New("not a Zeek conn.log line")
)

// LineError says which line of a log is bad and why.
type LineError struct {
	Line  int
	Field string // empty for errors about the whole line
	Value string // cut to 64 bytes
	Err   error
}

func (e *LineError) Error() string {
	s := "line " + strconv.Itoa(e.Line)
	if e.Field != "" {
		s += ": field " + e.Field
		if e.Value != "" {
			s += " value " + strconv.Quote(e.Value)
		}
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *LineError) Unwrap() error { return e.Err }

// Stats counts the lines a Reader read.
type Stats struct {
	Lines   uint64 // data lines (headers and blank lines not counted)
	Conns   uint64 // connections returned
	Bad     uint64 // lines that gave a LineError
	Skipped uint64 // connections of other transports (Zeek's unknown_transport)
	Masked  uint64 // connections with a masked timestamp
}

// The fields the reader uses, by index in fieldNames.
const (
	fTS = iota
	fUID
	fOrigH
	fOrigP
	fRespH
	fRespP
	fProto
	fService
	fDuration
	fOrigBytes
	fRespBytes
	fConnState
	numFields
)

var fieldNames = [numFields]string{"ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto",
	"service", "duration", "orig_bytes", "resp_bytes", "conn_state"}

var required = [...]int{fTS, fOrigH, fOrigP, fRespH, fRespP, fProto}

const maxLine = 1 << 20

// Reader reads connections from a conn.log.
type Reader struct {
	sc       *bufio.Scanner
	line     int
	sep      []byte
	unset    string
	empty    string
	colField []int // field index of each column, -1 for columns not used
	nfields  int   // columns in the header
	header   bool
	json     bool  // a JSON line was read
	last     int64 // latest end seen, for masked timestamps
	offset   int64 // input bytes consumed
	hdr      []byte
	stats    Stats
	vals     [numFields][]byte
	present  [numFields]bool
}

// NewReader returns a Reader of r (uncompressed).
func NewReader(r io.Reader) *Reader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	sc.Split(scanLine)
	return &Reader{sc: sc, sep: []byte{'\t'}, unset: "-", empty: "(empty)"}
}

// scanLine splits lines keeping their '\n', so that Offset can count the
// bytes read exactly; a last line without one is returned at EOF.
func scanLine(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i+1], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// Offset returns the number of bytes of input read up to the end of the
// last line Next consumed (header, data or bad line).
func (r *Reader) Offset() int64 { return r.offset }

// Header returns the header lines of the log as last seen (from its
// #separator line on), each with its line end, so that a reader that
// starts in the middle of the log can be given them first.
func (r *Reader) Header() []byte { return r.hdr }

// Stats returns the reader's counters.
func (r *Reader) Stats() Stats { return r.stats }

// Next reads the next connection into c. It returns io.EOF at the end, a
// *LineError for a bad line (call Next again to go on), or the underlying
// reader's error (a line longer than 1 MiB is such an error).
func (r *Reader) Next(c *features.Conn) error {
	for r.sc.Scan() {
		r.line++
		l := r.sc.Bytes()
		r.offset += int64(len(l))
		l = bytes.TrimRight(l, "\r\n")
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		if l[0] == '#' {
			if bytes.HasPrefix(l, []byte("#separator")) {
				r.hdr = r.hdr[:0]
			}
			if len(r.hdr) < 64<<10 {
				r.hdr = append(append(r.hdr, l...), '\n')
			}
			if err := r.headerLine(l); err != nil {
				return err
			}
			continue
		}
		r.stats.Lines++
		var err error
		if l[0] == '{' {
			err = r.jsonLine(l)
		} else {
			err = r.tsvLine(l)
		}
		if err == nil {
			err = r.conn(c)
		}
		if err == errSkip {
			r.stats.Skipped++
			continue
		}
		if err != nil {
			r.stats.Bad++
			return err
		}
		r.stats.Conns++
		return nil
	}
	if err := r.sc.Err(); err != nil {
		return fmt.Errorf("after line %d: %w", r.line, err)
	}
	return io.EOF
}

var errSkip = errors.New("skip")

func (r *Reader) lineErr(field int, v []byte, err error) *LineError {
	e := &LineError{Line: r.line, Err: err}
	if field >= 0 {
		e.Field = fieldNames[field]
	}
	if len(v) > 64 {
		v = v[:64]
	}
	e.Value = string(v)
	return e
}

// headerLine reads one '#' line; only #separator, #unset_field,
// #empty_field and #fields matter.
func (r *Reader) headerLine(l []byte) error {
	if bytes.HasPrefix(l, []byte("#separator ")) {
		sep, err := unescape(strings.TrimSpace(string(l[len("#separator "):])))
		if err != nil || sep == "" {
			return &LineError{Line: r.line, Field: "#separator", Value: string(l), Err: ErrBadValue}
		}
		r.sep = []byte(sep)
		return nil
	}
	key, rest, _ := bytes.Cut(l, r.sep)
	switch string(key) {
	case "#unset_field":
		r.unset = string(rest)
	case "#empty_field":
		r.empty = string(rest)
	case "#fields":
		names := bytes.Split(rest, r.sep)
		r.nfields = len(names)
		r.colField = make([]int, len(names))
		var have [numFields]bool
		for j, n := range names {
			r.colField[j] = -1
			for i, f := range fieldNames {
				if string(n) == f {
					r.colField[j] = i
					have[i] = true
				}
			}
		}
		r.header = true
		for _, i := range required {
			if !have[i] {
				r.header = false
				return &LineError{Line: r.line, Field: fieldNames[i], Err: fmt.Errorf("%w from #fields", ErrMissingField)}
			}
		}
	}
	return nil
}

// unescape decodes the \xNN escapes of Zeek's #separator line.
func unescape(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && s[i+1] == 'x' {
			if i+4 > len(s) {
				return "", ErrBadValue
			}
			x, err := strconv.ParseUint(s[i+2:i+4], 16, 8)
			if err != nil {
				return "", ErrBadValue
			}
			b.WriteByte(byte(x))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String(), nil
}

func (r *Reader) tsvLine(l []byte) error {
	if !r.header {
		if r.json {
			return r.lineErr(-1, nil, ErrNotConnLog)
		}
		return r.lineErr(-1, nil, ErrNoHeader)
	}
	r.present = [numFields]bool{}
	col := 0
	for {
		k := bytes.Index(l, r.sep)
		v := l
		if k >= 0 {
			v = l[:k]
		}
		if col < len(r.colField) && r.colField[col] >= 0 {
			r.set(r.colField[col], v)
		}
		col++
		if k < 0 {
			break
		}
		l = l[k+len(r.sep):]
	}
	if col != r.nfields {
		return &LineError{Line: r.line, Err: ErrFieldCount, Value: fmt.Sprintf("%d fields, the header has %d", col, r.nfields)}
	}
	return nil
}

func (r *Reader) set(i int, v []byte) {
	if string(v) == r.unset || string(v) == r.empty {
		return
	}
	r.vals[i] = v
	r.present[i] = true
}

func (r *Reader) jsonLine(l []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(l, &m); err != nil {
		return &LineError{Line: r.line, Err: fmt.Errorf("%w: %w", ErrNotConnLog, err)}
	}
	r.json = true
	r.present = [numFields]bool{}
	for i, f := range fieldNames {
		raw, ok := m[f]
		if !ok || string(raw) == "null" {
			continue
		}
		v := []byte(raw)
		if len(v) > 0 && v[0] == '"' {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return r.lineErr(i, raw, ErrBadValue)
			}
			v = []byte(s)
		} else if len(v) > 0 && (v[0] == '[' || v[0] == '{') {
			// service may be a set in some writers: join it.
			var set []string
			if json.Unmarshal(raw, &set) != nil {
				return r.lineErr(i, raw, ErrBadValue)
			}
			v = []byte(strings.Join(set, ","))
		}
		r.set(i, v)
	}
	return nil
}

// masked reports whether v is a timestamp masked with X's.
func masked(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	for _, c := range v {
		if c != 'X' && c != '.' {
			return false
		}
	}
	return true
}

// conn builds the connection from the values of the current line.
func (r *Reader) conn(c *features.Conn) error {
	for _, i := range required {
		if !r.present[i] {
			return r.lineErr(i, nil, ErrMissingField)
		}
	}
	*c = features.Conn{}
	var proto string
	var pnum uint8
	switch p := strings.ToLower(string(r.vals[fProto])); p {
	case "tcp":
		proto, pnum = "tcp", 6
	case "udp":
		proto, pnum = "udp", 17
	case "icmp":
		proto, pnum = "icmp", 1
	default:
		return errSkip
	}
	orig, err := netip.ParseAddr(string(r.vals[fOrigH]))
	if err != nil {
		return r.lineErr(fOrigH, r.vals[fOrigH], ErrBadValue)
	}
	resp, err := netip.ParseAddr(string(r.vals[fRespH]))
	if err != nil {
		return r.lineErr(fRespH, r.vals[fRespH], ErrBadValue)
	}
	if pnum == 1 && (orig.Is6() && !orig.Is4In6()) {
		pnum = 58
	}
	op, err := parsePort(r.vals[fOrigP])
	if err != nil {
		return r.lineErr(fOrigP, r.vals[fOrigP], ErrBadValue)
	}
	rp, err := parsePort(r.vals[fRespP])
	if err != nil {
		return r.lineErr(fRespP, r.vals[fRespP], ErrBadValue)
	}
	var ts float64
	tsKnown := true
	if masked(r.vals[fTS]) {
		tsKnown = false
		r.stats.Masked++
	} else if ts, err = parseTime(r.vals[fTS]); err != nil {
		return r.lineErr(fTS, r.vals[fTS], ErrBadValue)
	}
	var dur float64
	if r.present[fDuration] {
		if dur, err = parseNonNeg(r.vals[fDuration]); err != nil {
			return r.lineErr(fDuration, r.vals[fDuration], ErrBadValue)
		}
		c.Set(record.Duration, math.Floor(dur))
	}
	if tsKnown && ts+dur >= maxEnd {
		// The connection's end must fit a time in nanoseconds.
		return r.lineErr(fDuration, r.vals[fDuration], ErrBadValue)
	}
	var bytes [2]float64
	for k, f := range []int{fOrigBytes, fRespBytes} {
		if !r.present[f] {
			continue
		}
		x, err := strconv.ParseUint(string(r.vals[f]), 10, 63)
		if err != nil {
			return r.lineErr(f, r.vals[f], ErrBadValue)
		}
		bytes[k] = float64(x)
		c.Set(record.SrcBytes+k, bytes[k])
	}
	c.ID = record.Identity{SrcIP: orig.String(), DstIP: resp.String(), SrcPort: int32(op), DstPort: int32(rp)}
	if r.present[fUID] {
		c.ID.UID = string(r.vals[fUID])
	}
	if tsKnown {
		c.ID.TS = ts
		c.End = int64(math.Round((ts + dur) * 1e9))
		r.last = max(r.last, c.End)
	} else {
		c.End = r.last
	}
	c.Dst = resp.Unmap()
	c.SrcPort = op
	service := features.ZeekService(pnum, string(r.vals[fService]), op, rp)
	if !r.present[fService] {
		service = features.ZeekService(pnum, "", op, rp)
	}
	c.SetSymbol(record.ProtocolType, proto)
	c.SetSymbol(record.Service, service)
	flag := ""
	if r.present[fConnState] || proto != "tcp" {
		flag = features.ZeekFlag(proto, string(r.vals[fConnState]))
		c.SetSymbol(record.Flag, flag)
	}
	land := 0.0
	if orig == resp && op == rp {
		land = 1
	}
	c.Set(6, land)
	if r.present[fOrigBytes] && flag != "" {
		li := 0.0
		if features.LoggedIn(proto, service, flag, bytes[0]) {
			li = 1
		}
		c.Set(11, li)
	}
	return nil
}

// maxEnd is the last second since the epoch whose nanoseconds fit an
// int64 (in the year 2262).
const maxEnd = math.MaxInt64 / 1e9

func parsePort(v []byte) (uint16, error) {
	x, err := strconv.ParseUint(string(v), 10, 16)
	return uint16(x), err
}

func parseNonNeg(v []byte) (float64, error) {
	x, err := strconv.ParseFloat(string(v), 64)
	if err != nil || x < 0 || math.IsInf(x, 0) || math.IsNaN(x) {
		return 0, ErrBadValue
	}
	return x, nil
}

// parseTime reads Zeek's epoch seconds, or an ISO 8601 time (Zeek's JSON
// writer with JSON::TS_ISO8601).
func parseTime(v []byte) (float64, error) {
	if x, err := parseNonNeg(v); err == nil {
		if x >= maxEnd {
			return 0, ErrBadValue
		}
		return x, nil
	}
	t, err := time.Parse(time.RFC3339Nano, string(v))
	if err != nil {
		return 0, ErrBadValue
	}
	return float64(t.UnixNano()) / 1e9, nil
}
