package record

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
)

// Real lines from the shipped files.
const (
	nslLine   = "0,tcp,ftp_data,SF,491,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,2,2,0.00,0.00,0.00,0.00,1.00,0.00,0.00,150,25,0.17,0.03,0.17,0.00,0.00,0.00,0.05,0.00,normal,20"
	kdd99Line = "0,tcp,http,SF,181,5450,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,0,8,8,0.00,0.00,0.00,0.00,1.00,0.00,0.00,9,9,1.00,0.00,0.11,0.00,0.00,0.00,0.00,0.00,normal."
	smurfLine = "0,icmp,ecr_i,SF,1032,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,511,511,0.00,0.00,0.00,0.00,1.00,0.00,0.00,255,255,1.00,0.00,1.00,0.00,0.00,0.00,0.00,0.00,smurf."
)

// baseFields returns the 41 feature fields of nslLine.
func baseFields() []string { return strings.Split(nslLine, ",")[:NumFeatures] }

// csvWith returns nslLine's 41 features with feature i set to v, followed
// by extra fields.
func csvWith(i int, v string, extra ...string) string {
	f := baseFields()
	if i >= 0 {
		f[i] = v
	}
	return strings.Join(append(f, extra...), ",")
}

func TestDecodeCSVGood(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		label   string
		diff    int
		check   map[int]float64 // feature index -> value
		symbols map[int]string  // feature index -> symbol
	}{
		{"NSL-KDD with difficulty", nslLine, "normal", 20,
			map[int]float64{SrcBytes: 491, 22: 2, 28: 1, 31: 150, 33: 0.17, 39: 0.05},
			map[int]string{ProtocolType: "tcp", Service: "ftp_data", Flag: "SF"}},
		{"KDD'99 with trailing dot", kdd99Line, "normal", -1,
			map[int]float64{SrcBytes: 181, DstBytes: 5450, 11: 1},
			map[int]string{Service: "http"}},
		{"KDD'99 attack", smurfLine, "smurf", -1,
			map[int]float64{SrcBytes: 1032, 22: 511},
			map[int]string{ProtocolType: "icmp", Service: "ecr_i"}},
		{"no label", csvWith(-1, ""), "", -1, map[int]float64{SrcBytes: 491}, nil},
		{"label without dot or difficulty", csvWith(-1, "", "neptune"), "neptune", -1, nil, nil},
		{"unknown attack name", csvWith(-1, "", "mailbomb2."), "mailbomb2", -1, nil, nil},
		{"CRLF", nslLine + "\r\n", "normal", 20, nil, nil},
		{"LF", kdd99Line + "\n", "normal", -1, nil, nil},
		{"spaces around fields", strings.ReplaceAll(nslLine, ",", " , "), "normal", 20,
			map[int]float64{SrcBytes: 491, 33: 0.17}, map[int]string{Service: "ftp_data"}},
		{"unseen service is other", csvWith(Service, "gopher2"), "", -1, nil, map[int]string{Service: "other"}},
		{"unseen flag is OTH", csvWith(Flag, "S9"), "", -1, nil, map[int]string{Flag: "OTH"}},
		{"udp", csvWith(ProtocolType, "udp"), "", -1, nil, map[int]string{ProtocolType: "udp"}},
		{"minus zero is zero", csvWith(Duration, "-0"), "", -1, map[int]float64{Duration: 0}, nil},
		{"fraction without leading digit", csvWith(24, ".5"), "", -1, map[int]float64{24: 0.5}, nil},
		{"number with trailing dot", csvWith(SrcBytes, "5."), "", -1, map[int]float64{SrcBytes: 5}, nil},
		{"exponent", csvWith(SrcBytes, "1E2"), "", -1, map[int]float64{SrcBytes: 100}, nil},
		{"rate with exponent", csvWith(24, "5e-1"), "", -1, map[int]float64{24: 0.5}, nil},
		{"leading zeros", csvWith(SrcBytes, "007"), "", -1, map[int]float64{SrcBytes: 7}, nil},
		{"integer written as float", csvWith(SrcBytes, "12.000"), "", -1, map[int]float64{SrcBytes: 12}, nil},
		{"largest exact count", csvWith(SrcBytes, "9007199254740991"), "", -1, map[int]float64{SrcBytes: 1<<53 - 1}, nil},
		{"many digits", csvWith(Duration, "0.12345678901234567890"), "", -1, map[int]float64{Duration: 0.12345678901234568}, nil},
		{"tiny underflows to zero", csvWith(Duration, "1e-400"), "", -1, map[int]float64{Duration: 0}, nil},
		{"rate bounds", csvWith(24, "1", "normal"), "normal", -1, map[int]float64{24: 1}, nil},
		{"difficulty 0", csvWith(-1, "", "normal", "0"), "normal", 0, nil, nil},
		{"difficulty as float", csvWith(-1, "", "normal", "21.0"), "normal", 21, nil, nil},
		{"label with dash and caps", csvWith(-1, "", "My-Attack_2"), "My-Attack_2", -1, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Record
			if err := DecodeCSV([]byte(tt.line), &r); err != nil {
				t.Fatalf("DecodeCSV(%q) error: %v", tt.line, err)
			}
			if r.Label != tt.label || r.Difficulty != tt.diff {
				t.Errorf("DecodeCSV: label %q difficulty %d, want %q %d", r.Label, r.Difficulty, tt.label, tt.diff)
			}
			for i, want := range tt.check {
				if got := r.Features[i]; got != want || math.Signbit(got) {
					t.Errorf("feature %s = %v, want %v", Features[i].Name, got, want)
				}
			}
			for i, want := range tt.symbols {
				if got := r.Symbol(i); got != want {
					t.Errorf("Symbol(%s) = %q, want %q", Features[i].Name, got, want)
				}
			}
		})
	}
}

// TestDecodeCSVReuse checks that decoding into a used Record resets the
// label and difficulty.
func TestDecodeCSVReuse(t *testing.T) {
	var r Record
	if err := DecodeCSV([]byte(nslLine), &r); err != nil {
		t.Fatal(err)
	}
	if err := DecodeCSV([]byte(csvWith(-1, "")), &r); err != nil {
		t.Fatal(err)
	}
	if r.Label != "" || r.Difficulty != -1 {
		t.Errorf("after reuse: label %q difficulty %d, want \"\" -1", r.Label, r.Difficulty)
	}
}

// badCase is an input that must fail with err; field and value, when set,
// must appear in the error (the value quoted, as the message prints it).
type badCase struct {
	name  string
	in    string
	err   error
	field string
	value string
}

func TestDecodeCSVBad(t *testing.T) {
	long := strings.Repeat("9", 1<<20)
	tests := []badCase{
		{"empty line", "", ErrEmpty, "", ""},
		{"blank line", " \t\r\n", ErrEmpty, "", ""},
		{"40 fields", strings.Join(baseFields()[:40], ","), ErrFieldCount, "", ""},
		{"44 fields", csvWith(-1, "", "normal", "20", "x"), ErrFieldCount, "", ""},
		{"one field", "hello", ErrFieldCount, "", ""},
		{"not a number", csvWith(Duration, "abc"), ErrNotNumber, "duration", "abc"},
		{"empty number", csvWith(SrcBytes, ""), ErrNotNumber, "src_bytes", ""},
		{"blank number", csvWith(SrcBytes, "  "), ErrNotNumber, "src_bytes", ""},
		{"NaN", csvWith(Duration, "NaN"), ErrNotNumber, "duration", "NaN"},
		{"nan", csvWith(24, "nan"), ErrNotNumber, "serror_rate", "nan"},
		{"inf", csvWith(Duration, "inf"), ErrNotNumber, "duration", "inf"},
		{"+Inf", csvWith(Duration, "+Inf"), ErrNotNumber, "duration", "+Inf"},
		{"-Infinity", csvWith(Duration, "-Infinity"), ErrNotNumber, "duration", "-Infinity"},
		{"hex", csvWith(SrcBytes, "0x10"), ErrNotNumber, "src_bytes", "0x10"},
		{"hex float", csvWith(Duration, "0x1p-2"), ErrNotNumber, "duration", "0x1p-2"},
		{"underscore", csvWith(SrcBytes, "1_000"), ErrNotNumber, "src_bytes", "1_000"},
		{"plus sign", csvWith(SrcBytes, "+1"), ErrNotNumber, "src_bytes", "+1"},
		{"bare exponent", csvWith(SrcBytes, "1e"), ErrNotNumber, "src_bytes", "1e"},
		{"dot", csvWith(SrcBytes, "."), ErrNotNumber, "src_bytes", "."},
		{"minus", csvWith(SrcBytes, "-"), ErrNotNumber, "src_bytes", "-"},
		{"two dots", csvWith(Duration, "1.2.3"), ErrNotNumber, "duration", "1.2.3"},
		{"inner space", csvWith(SrcBytes, "1 2"), ErrNotNumber, "src_bytes", "1 2"},
		{"negative count", csvWith(SrcBytes, "-1"), ErrNegative, "src_bytes", "-1"},
		{"negative duration", csvWith(Duration, "-0.5"), ErrNegative, "duration", "-0.5"},
		{"fractional count", csvWith(SrcBytes, "1.5"), ErrNotInteger, "src_bytes", "1.5"},
		{"rate above 1", csvWith(24, "1.01"), ErrRate, "serror_rate", "1.01"},
		{"rate below 0", csvWith(40, "-0.1"), ErrRate, "dst_host_srv_rerror_rate", "-0.1"},
		{"rate huge", csvWith(28, "1e400"), ErrRate, "same_srv_rate", "1e400"},
		{"count overflow", csvWith(SrcBytes, "99999999999999999999"), ErrOverflow, "src_bytes", "99999999999999999999"},
		{"count 2^53", csvWith(DstBytes, "9007199254740992"), ErrOverflow, "dst_bytes", "9007199254740992"},
		{"count 2^53+1 (parses as 2^53)", csvWith(DstBytes, "9007199254740993"), ErrOverflow, "dst_bytes", "9007199254740993"},
		{"count exponent overflow", csvWith(22, "1e300"), ErrOverflow, "count", "1e300"},
		{"duration overflow", csvWith(Duration, "1e400"), ErrOverflow, "duration", "1e400"},
		{"unknown protocol", csvWith(ProtocolType, "sctp"), ErrProtocol, "protocol_type", "sctp"},
		{"protocol wrong case", csvWith(ProtocolType, "TCP"), ErrProtocol, "protocol_type", "TCP"},
		{"empty protocol", csvWith(ProtocolType, ""), ErrProtocol, "protocol_type", ""},
		{"binary 2", csvWith(6, "2"), ErrNotBinary, "land", "2"},
		{"binary 0.5", csvWith(11, "0.5"), ErrNotBinary, "logged_in", "0.5"},
		{"binary -1", csvWith(20, "-1"), ErrNotBinary, "is_host_login", "-1"},
		{"empty label", csvWith(-1, "", ""), ErrLabel, "label", ""},
		{"service not UTF-8", csvWith(Service, "ht\xfftp", ""), ErrNotUTF8, "service", "ht\xfftp"},
		{"label only a dot", csvWith(-1, "", "."), ErrLabel, "label", "."},
		{"label with space", csvWith(-1, "", "nep tune"), ErrLabel, "label", "nep tune"},
		{"label two dots", csvWith(-1, "", "normal.."), ErrLabel, "label", "normal.."},
		{"label too long", csvWith(-1, "", strings.Repeat("a", 65)), ErrLabel, "label", strings.Repeat("a", 64)},
		{"label quote", csvWith(-1, "", `a"b`), ErrLabel, "label", `a"b`},
		{"difficulty not a number", csvWith(-1, "", "normal", "x"), ErrNotNumber, "difficulty", "x"},
		{"difficulty negative", csvWith(-1, "", "normal", "-1"), ErrNegative, "difficulty", "-1"},
		{"difficulty fraction", csvWith(-1, "", "normal", "1.5"), ErrNotInteger, "difficulty", "1.5"},
		{"difficulty huge", csvWith(-1, "", "normal", "1e9"), ErrOverflow, "difficulty", "1e9"},
		{"difficulty empty", csvWith(-1, "", "normal", ""), ErrNotNumber, "difficulty", ""},
		{"JSON-looking line", `{"duration":0}`, ErrFieldCount, "", ""},
		{"1 MB number", csvWith(Duration, long), ErrOverflow, "duration", long[:64]},
		{"1 MB count", csvWith(SrcBytes, long), ErrOverflow, "src_bytes", long[:64]},
		{"1 MB of commas", strings.Repeat(",", 1<<20), ErrFieldCount, "", ""},
		{"1 MB service is fine but label is not", csvWith(Service, "x", strings.Repeat("y", 1<<20)), ErrLabel, "label", strings.Repeat("y", 64)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Record
			checkBad(t, "DecodeCSV", DecodeCSV([]byte(tt.in), &r), tt)
		})
	}
}

// checkBad checks err against a bad case: errors.Is the sentinel, a
// *FieldError, and a message naming the field and value.
func checkBad(t *testing.T, fn string, err error, tt badCase) {
	t.Helper()
	in := tt.in
	if len(in) > 80 {
		in = in[:80] + "..."
	}
	if err == nil {
		t.Fatalf("%s(%q) = nil, want %v", fn, in, tt.err)
	}
	if !errors.Is(err, tt.err) {
		t.Errorf("%s(%q) = %v, want errors.Is %v", fn, in, err, tt.err)
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("%s(%q) = %T, want *FieldError", fn, in, err)
	}
	msg := err.Error()
	if len(msg) > 300 {
		t.Errorf("%s(%q): message is %d bytes long, want it short", fn, in, len(msg))
	}
	if !strings.Contains(msg, tt.err.Error()) {
		t.Errorf("%s(%q) message %q does not state the reason %q", fn, in, msg, tt.err)
	}
	if tt.field == "" {
		return
	}
	if fe.Field != tt.field || !strings.Contains(msg, "field ") || !strings.Contains(msg, tt.field) {
		t.Errorf("%s(%q) = %q (Field %q), want it to name field %q", fn, in, msg, fe.Field, tt.field)
	}
	if tt.err == ErrMissingKey || tt.err == ErrDuplicate {
		return
	}
	if fe.Value != tt.value || !strings.Contains(msg, strconv.Quote(tt.value)) {
		t.Errorf("%s(%q) = %q (Value %q), want it to name value %q", fn, in, msg, fe.Value, tt.value)
	}
}

func TestDetectAndDecode(t *testing.T) {
	tests := []struct {
		in   string
		want Format
	}{
		{`{"a":1}`, FormatJSON},
		{" \t\r\n{", FormatJSON},
		{nslLine, FormatCSV},
		{"", FormatCSV},
		{"  ", FormatCSV},
		{"[1]", FormatCSV},
	}
	for _, tt := range tests {
		if got := Detect([]byte(tt.in)); got != tt.want {
			t.Errorf("Detect(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
	var a, b Record
	if err := Decode([]byte(nslLine), &a); err != nil {
		t.Fatalf("Decode(CSV): %v", err)
	}
	if err := Decode([]byte("  "+string(a.AppendJSON(nil))), &b); err != nil {
		t.Fatalf("Decode(JSON): %v", err)
	}
	if a != b {
		t.Errorf("Decode of CSV and of its JSON differ:\n%+v\n%+v", a, b)
	}
	var fe *FieldError
	if err := Decode(nil, &a); !errors.Is(err, ErrEmpty) || !errors.As(err, &fe) {
		t.Errorf("Decode(nil) = %v, want ErrEmpty", err)
	}
}

func TestStrings(t *testing.T) {
	for f, want := range map[Format]string{FormatUnknown: "unknown", FormatCSV: "csv", FormatJSON: "json", 9: "unknown"} {
		if got := f.String(); got != want {
			t.Errorf("Format(%d).String() = %q, want %q", f, got, want)
		}
	}
	for k, want := range map[Kind]string{KindUnknown: "unknown", KindSymbolic: "symbolic", KindBinary: "binary",
		KindCount: "count", KindRate: "rate", KindContinuous: "continuous", 9: "Kind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, want)
		}
	}
	for i, f := range Features {
		if f.Kind == KindUnknown || f.Kind > KindContinuous {
			t.Errorf("feature %d %s has kind %v", i, f.Name, f.Kind)
		}
		if j, ok := featureIndex[f.Name]; !ok || j != i {
			t.Errorf("featureIndex[%q] = %d, %v; want %d, true", f.Name, j, ok, i)
		}
		if (Vocabulary(i) != nil) != (f.Kind == KindSymbolic) {
			t.Errorf("Vocabulary(%d) and kind %v disagree", i, f.Kind)
		}
	}
}

// TestUnseenSymbols checks that a service or flag the vocabulary lacks is
// kept as written beside its catch-all code, and cleared by the next record.
func TestUnseenSymbols(t *testing.T) {
	const known = "0,tcp,http,SF,181,5450,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,0,8,8,0.00,0.00,0.00,0.00,1.00,0.00,0.00,9,9,1.00,0.00,0.11,0.00,0.00,0.00,0.00,0.00"
	unseen := strings.Replace(strings.Replace(known, "http", "quic", 1), "SF", "S9", 1)
	other := strings.Replace(strings.Replace(known, "http", "other", 1), "SF", "OTH", 1)
	var r Record
	for _, tt := range []struct {
		line             string
		service, flag    string
		unseenS, unseenF string
	}{
		{unseen, "other", "OTH", "quic", "S9"},
		{known, "http", "SF", "", ""},
		{other, "other", "OTH", "", ""},
	} {
		for _, data := range [][]byte{[]byte(tt.line), csvToJSON(t, tt.line)} {
			if err := Decode(data, &r); err != nil {
				t.Fatalf("Decode(%s): %v", data, err)
			}
			if r.Symbol(Service) != tt.service || r.Symbol(Flag) != tt.flag || r.UnseenService != tt.unseenS || r.UnseenFlag != tt.unseenF {
				t.Errorf("Decode(%.60s): service %q flag %q unseen %q %q, want %q %q unseen %q %q", data, r.Symbol(Service), r.Symbol(Flag),
					r.UnseenService, r.UnseenFlag, tt.service, tt.flag, tt.unseenS, tt.unseenF)
			}
		}
	}
}

// csvToJSON turns a 41-feature CSV line into a JSON record.
func csvToJSON(t *testing.T, line string) []byte {
	t.Helper()
	fields := strings.Split(line, ",")
	var b strings.Builder
	b.WriteByte('{')
	for i, f := range Features {
		if i > 0 {
			b.WriteByte(',')
		}
		v := fields[i]
		if f.Kind == KindSymbolic {
			v = `"` + v + `"`
		}
		b.WriteString(`"` + f.Name + `":` + v)
	}
	b.WriteByte('}')
	return []byte(b.String())
}
