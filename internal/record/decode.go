package record

import (
	"bytes"
	"math"
	"strconv"
	"unicode/utf8"
)

// maxCount is 2^53, the first integer from which float64 no longer holds
// every integer exactly (2^53+1 parses as 2^53); a count at or above it is
// an overflow.
const maxCount = 1 << 53

// Format is the wire format of one record.
type Format uint8

const (
	// FormatUnknown is the zero Format.
	FormatUnknown Format = iota
	// FormatCSV is a comma-separated line: 41 features, then optionally the
	// label and NSL-KDD's difficulty.
	FormatCSV
	// FormatJSON is a JSON object keyed by feature name, with optional
	// "label" and "difficulty" keys.
	FormatJSON
)

// String returns "csv", "json" or "unknown".
func (f Format) String() string {
	switch f {
	case FormatCSV:
		return "csv"
	case FormatJSON:
		return "json"
	}
	return "unknown"
}

// Detect guesses the format of one record: JSON if its first non-blank byte
// is '{', CSV otherwise.
func Detect(data []byte) Format {
	for _, c := range data {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return FormatJSON
		}
		return FormatCSV
	}
	return FormatCSV
}

// Decode decodes one record in either format (see Detect) into r.
func Decode(data []byte, r *Record) error {
	if Detect(data) == FormatJSON {
		return DecodeJSON(data, r)
	}
	return DecodeCSV(data, r)
}

// DecodePartial is Decode that lets a JSON object leave features out (see
// DecodeJSONPartial); a CSV line always holds all 41 and r.Absent is 0.
func DecodePartial(data []byte, r *Record) error {
	if Detect(data) == FormatJSON {
		return DecodeJSONPartial(data, r)
	}
	return DecodeCSV(data, r)
}

// DecodeCSV decodes one CSV line (with or without its line end) into r. The
// line holds the 41 features, then optionally the label (KDD'99's trailing
// dot is dropped) and NSL-KDD's difficulty level. On error r is left in an
// unspecified state.
func DecodeCSV(line []byte, r *Record) error {
	line = trimEOL(line)
	if len(bytes.TrimSpace(line)) == 0 {
		return &FieldError{Err: ErrEmpty}
	}
	n := bytes.Count(line, comma) + 1
	if n < NumFeatures || n > NumFeatures+2 {
		return &FieldError{Err: ErrFieldCount, Detail: "got " + strconv.Itoa(n) + " fields, want 41 to 43"}
	}
	rest := line
	for i := 0; i < NumFeatures; i++ {
		// Fields are short; a plain loop beats bytes.IndexByte's call.
		j := 0
		for j < len(rest) && rest[j] != ',' {
			j++
		}
		field := rest[:j]
		if j < len(rest) {
			rest = rest[j+1:]
		} else {
			rest = nil
		}
		if err := r.setField(i, i+1, trimSpace(field)); err != nil {
			return err
		}
	}
	r.Label = ""
	r.Difficulty = -1
	r.ID = Identity{SrcPort: -1, DstPort: -1}
	r.Absent = 0
	if n == NumFeatures {
		return nil
	}
	label := rest
	var diff []byte
	if j := bytes.IndexByte(rest, ','); j >= 0 {
		label, diff = rest[:j], rest[j+1:]
	}
	l, err := parseLabel(trimSpace(label))
	if err != nil {
		return &FieldError{Field: "label", Column: NumFeatures + 1, Value: clip(label), Err: err}
	}
	r.Label = l
	if n == NumFeatures+2 {
		d, err := parseDifficulty(trimSpace(diff))
		if err != nil {
			return &FieldError{Field: "difficulty", Column: NumFeatures + 2, Value: clip(diff), Err: err}
		}
		r.Difficulty = d
	}
	return nil
}

var comma = []byte{','}

// setField validates and stores the text value of feature i.
func (r *Record) setField(i, column int, v []byte) error {
	if Features[i].Kind == KindSymbolic {
		c, err := symbolCode(i, v)
		if err != nil {
			return fieldErr(i, column, v, err)
		}
		r.Features[i] = c
		r.setUnseen(i, c, v)
		return nil
	}
	x, ok := parseNumber(v)
	if !ok {
		return fieldErr(i, column, v, ErrNotNumber)
	}
	if err := r.setNumber(i, x); err != nil {
		return fieldErr(i, column, v, err)
	}
	return nil
}

// setNumber validates and stores the numeric value of feature i.
func (r *Record) setNumber(i int, x float64) error {
	switch Features[i].Kind {
	case KindRate:
		if !(x >= 0 && x <= 1) {
			return ErrRate
		}
	case KindBinary:
		if x != 0 && x != 1 {
			return ErrNotBinary
		}
	case KindCount:
		if x < 0 {
			return ErrNegative
		}
		if x >= maxCount {
			return ErrOverflow
		}
		if x != math.Trunc(x) {
			return ErrNotInteger
		}
	case KindContinuous:
		if x < 0 {
			return ErrNegative
		}
		if math.IsInf(x, 0) {
			return ErrOverflow
		}
	}
	r.Features[i] = x + 0 // turn -0 into 0
	return nil
}

func symbolCode(i int, v []byte) (float64, error) {
	switch i {
	case ProtocolType:
		switch string(v) {
		case "tcp":
			return 0, nil
		case "udp":
			return 1, nil
		case "icmp":
			return 2, nil
		}
		return 0, ErrProtocol
	case Service:
		if c, ok := serviceCode[string(v)]; ok {
			return float64(c), nil
		}
		if !utf8.Valid(v) {
			return 0, ErrNotUTF8 // it could not be shown or written back
		}
		return float64(otherService), nil
	default:
		if c, ok := flagCode[string(v)]; ok {
			return float64(c), nil
		}
		if !utf8.Valid(v) {
			return 0, ErrNotUTF8
		}
		return float64(otherFlag), nil
	}
}

// setUnseen keeps v as the unseen service or flag when the vocabulary lacks
// it (c is then the catch-all code), and clears it otherwise.
func (r *Record) setUnseen(i int, c float64, v []byte) {
	switch i {
	case Service:
		r.UnseenService = ""
		if c == float64(otherService) && string(v) != "other" {
			r.UnseenService = string(v)
		}
	case Flag:
		r.UnseenFlag = ""
		if c == float64(otherFlag) && string(v) != "OTH" {
			r.UnseenFlag = string(v)
		}
	}
}

// labels interns the known labels so decoding them does not allocate.
var labels = func() map[string]string {
	m := map[string]string{"normal": "normal"}
	for a := range attackCategory {
		m[a] = a
	}
	return m
}()

// parseLabel checks a label: letters, digits, '_' and '-', at most 64 bytes,
// with an optional trailing dot that is dropped.
func parseLabel(v []byte) (string, error) {
	v = bytes.TrimSuffix(v, []byte{'.'})
	if len(v) == 0 || len(v) > 64 {
		return "", ErrLabel
	}
	if s, ok := labels[string(v)]; ok {
		return s, nil
	}
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return "", ErrLabel
		}
	}
	return string(v), nil
}

func parseDifficulty(v []byte) (int, error) {
	x, ok := parseNumber(v)
	if !ok {
		return 0, ErrNotNumber
	}
	if x < 0 {
		return 0, ErrNegative
	}
	if x != math.Trunc(x) {
		return 0, ErrNotInteger
	}
	if x > 1000 {
		return 0, ErrOverflow
	}
	return int(x), nil
}

var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseNumber parses a decimal number: an optional '-', digits with an
// optional fraction, and an optional exponent. It rejects everything else
// strconv.ParseFloat would take (hex, "inf", "nan", underscores, '+').
// Plain decimals of up to 15 significant digits take an exact fast path.
func parseNumber(b []byte) (float64, bool) {
	i := 0
	neg := false
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	var mant uint64
	digits, frac := 0, 0
	start := i
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		mant = mant*10 + uint64(b[i]-'0')
		digits++
	}
	intDigits := i - start
	if i < len(b) && b[i] == '.' {
		i++
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			mant = mant*10 + uint64(b[i]-'0')
			digits++
			frac++
		}
	}
	if digits == 0 || (intDigits == 0 && frac == 0) {
		return 0, false
	}
	if i == len(b) && digits <= 15 {
		x := float64(mant) / pow10[frac]
		if neg {
			x = -x
		}
		return x, true
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		e := i
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		}
		if i == e {
			return 0, false
		}
	}
	if i != len(b) {
		return 0, false
	}
	x, err := strconv.ParseFloat(string(b), 64)
	if err != nil && !isRangeErr(err) {
		return 0, false
	}
	return x, true // out of range gives ±Inf or 0, which validation catches
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

func trimEOL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func clip(b []byte) string {
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}
