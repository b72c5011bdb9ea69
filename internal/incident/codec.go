package incident

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/netsentinel/netsentinel/internal/event"
)

// The changelog encoding. Keys start with a kind byte: keyIncident, then
// the Key's five fields; keyTracker, then the rule name and the tracked
// value. Strings are a uvarint length and the bytes. Values start with the
// format version; times are Unix nanoseconds (0 for the zero time) as
// varints, counts varints, floats their IEEE bits as 8 little-endian bytes.
// A state of version 2 ends with its withheld counts (a top list) and its
// explanation (a count, then per reason the feature and three floats);
// version 1 has neither and still decodes.
const (
	keyIncident = 'i'
	keyTracker  = 't'

	stateVersion   = 2
	trackerVersion = 1

	// maxSamples bounds the sample list a decoder accepts.
	maxSamples = 1000
	// maxReasons bounds the explanation a decoder accepts.
	maxReasons = 64
)

// ErrCorrupt is returned (wrapped in a *CodecError) for a changelog entry
// that does not decode.
var ErrCorrupt = errors.New("corrupt incident state")

// CodecError says which part of a changelog entry failed to decode.
type CodecError struct {
	Field  string
	Detail string
}

func (e *CodecError) Error() string {
	return "decode incident state: " + e.Field + ": " + e.Detail
}

// Unwrap returns ErrCorrupt.
func (e *CodecError) Unwrap() error { return ErrCorrupt }

func corrupt(field, detail string) error { return &CodecError{Field: field, Detail: detail} }

func quoteByte(b byte) string { return strconv.QuoteRune(rune(b)) }

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendVarint(dst, 0)
	}
	return binary.AppendVarint(dst, t.UnixNano())
}

func appendIncidentKey(dst []byte, k Key) []byte {
	dst = append(dst, keyIncident)
	for _, s := range [...]string{k.Attack, k.Src, k.Dst, k.Service, k.Flag} {
		dst = appendString(dst, s)
	}
	return dst
}

func appendTrackerKey(dst []byte, tk trackKey) []byte {
	dst = append(dst, keyTracker)
	dst = appendString(dst, tk.rule)
	return appendString(dst, tk.value)
}

// AppendBinary appends the state's changelog value (the Key is in the
// changelog key, not here).
func (s *State) AppendBinary(dst []byte) []byte {
	dst = append(dst, stateVersion)
	dst = appendString(dst, s.Category)
	dst = binary.AppendVarint(dst, s.FirstOffset)
	for _, t := range [...]time.Time{s.FirstSeen, s.LastSeen, s.Touched, s.Published} {
		dst = appendTime(dst, t)
	}
	for _, n := range [...]int64{s.Count, s.PublishedCount, s.Seq} {
		dst = binary.AppendVarint(dst, n)
	}
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s.MaxProbability))
	for _, t := range [...]*Top{&s.Srcs, &s.Dsts, &s.Ports, &s.Svcs, &s.Features} {
		dst = appendTop(dst, t)
	}
	dst = binary.AppendUvarint(dst, uint64(len(s.Samples)))
	for _, o := range s.Samples {
		dst = binary.AppendVarint(dst, o)
	}
	dst = appendTop(dst, &s.Withheld)
	dst = binary.AppendUvarint(dst, uint64(len(s.Explanation)))
	for _, r := range s.Explanation {
		dst = appendString(dst, r.Feature)
		for _, f := range [...]float64{r.Value, r.Typical, r.Contribution} {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
		}
	}
	return dst
}

func appendTop(dst []byte, t *Top) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(t.Values)))
	for i, v := range t.Values {
		dst = appendString(dst, v)
		dst = binary.AppendVarint(dst, t.Counts[i])
	}
	return binary.AppendVarint(dst, t.Other)
}

func (tr *tracker) appendBinary(dst []byte) []byte {
	dst = append(dst, trackerVersion)
	dst = appendTime(dst, tr.start)
	dst = binary.AppendVarint(dst, tr.count)
	return binary.AppendVarint(dst, int64(tr.window))
}

// reader decodes; the first error sticks and later reads return zeros.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(field, detail string) {
	if r.err == nil {
		r.err = corrupt(field, detail)
	}
}

func (r *reader) byte1(field string) byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail(field, "truncated")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint(field string) uint64 {
	if r.err != nil {
		return 0
	}
	x, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(field, "truncated or overlong uvarint")
		return 0
	}
	r.b = r.b[n:]
	return x
}

func (r *reader) varint(field string) int64 {
	if r.err != nil {
		return 0
	}
	x, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(field, "truncated or overlong varint")
		return 0
	}
	r.b = r.b[n:]
	return x
}

func (r *reader) count(field string, limit int) int {
	n := r.uvarint(field)
	if r.err == nil && n > uint64(limit) {
		r.fail(field, fmt.Sprintf("%d entries, at most %d allowed", n, limit))
		return 0
	}
	return int(n)
}

func (r *reader) str(field string) string {
	n := r.uvarint(field)
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.fail(field, fmt.Sprintf("string of %d bytes, %d left", n, len(r.b)))
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) time(field string) time.Time {
	ns := r.varint(field)
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

func (r *reader) float(field string) float64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 8 {
		r.fail(field, "truncated")
		return 0
	}
	x := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	return x
}

func (r *reader) top(field string, t *Top) {
	n := r.count(field, topCap)
	for range n {
		t.Values = append(t.Values, r.str(field))
		t.Counts = append(t.Counts, r.varint(field))
	}
	t.Other = r.varint(field)
}

func (r *reader) end() error {
	if r.err == nil && len(r.b) > 0 {
		r.fail("end", strconv.Itoa(len(r.b))+" trailing bytes")
	}
	return r.err
}

func decodeIncidentKey(b []byte) (Key, error) {
	r := reader{b: b}
	if r.byte1("key kind") != keyIncident {
		r.fail("key kind", "not an incident key")
	}
	k := Key{Attack: r.str("key attack"), Src: r.str("key src"), Dst: r.str("key dst"),
		Service: r.str("key service"), Flag: r.str("key flag")}
	return k, r.end()
}

func decodeTrackerKey(b []byte) (trackKey, error) {
	r := reader{b: b}
	if r.byte1("key kind") != keyTracker {
		r.fail("key kind", "not a tracker key")
	}
	tk := trackKey{rule: r.str("key rule"), value: r.str("key value")}
	return tk, r.end()
}

// DecodeState decodes a changelog value written by AppendBinary; the
// returned state has no Key.
func DecodeState(b []byte) (*State, error) {
	r := reader{b: b}
	v := r.byte1("version")
	if r.err == nil && v != 1 && v != stateVersion {
		r.fail("version", fmt.Sprintf("%d, want 1 or %d", v, stateVersion))
	}
	s := &State{Category: r.str("category"), FirstOffset: r.varint("first offset")}
	s.FirstSeen, s.LastSeen = r.time("first seen"), r.time("last seen")
	s.Touched, s.Published = r.time("touched"), r.time("published")
	s.Count, s.PublishedCount, s.Seq = r.varint("count"), r.varint("published count"), r.varint("seq")
	s.MaxProbability = r.float("max probability")
	for _, f := range [...]struct {
		name string
		t    *Top
	}{{"top sources", &s.Srcs}, {"top destinations", &s.Dsts}, {"top ports", &s.Ports}, {"top services", &s.Svcs}, {"features", &s.Features}} {
		r.top(f.name, f.t)
	}
	n := r.count("samples", maxSamples)
	for range n {
		s.Samples = append(s.Samples, r.varint("samples"))
	}
	if v >= 2 {
		r.top("withheld", &s.Withheld)
		n := r.count("explanation", maxReasons)
		for range n {
			s.Explanation = append(s.Explanation, event.Reason{Feature: r.str("explanation"),
				Value: r.float("explanation"), Typical: r.float("explanation"), Contribution: r.float("explanation")})
		}
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	if s.Count < 0 || s.PublishedCount < 0 || s.Seq < 0 || s.PublishedCount > s.Count {
		return nil, corrupt("counts", fmt.Sprintf("count %d, published %d, seq %d", s.Count, s.PublishedCount, s.Seq))
	}
	return s, nil
}

func decodeTracker(b []byte) (*tracker, error) {
	r := reader{b: b}
	if v := r.byte1("version"); r.err == nil && v != trackerVersion {
		r.fail("version", fmt.Sprintf("%d, want %d", v, trackerVersion))
	}
	tr := &tracker{start: r.time("start"), count: r.varint("count"), window: time.Duration(r.varint("window"))}
	if err := r.end(); err != nil {
		return nil, err
	}
	if tr.count < 0 || tr.window < 0 {
		return nil, corrupt("tracker", fmt.Sprintf("count %d, window %v", tr.count, tr.window))
	}
	return tr, nil
}
