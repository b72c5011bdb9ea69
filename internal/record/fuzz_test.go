package record

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// fuzzSeeds are real lines and a few edge cases; the testdata/fuzz
// directories hold further inputs, including ones the fuzzers found.
func fuzzSeeds() []string {
	return []string{
		nslLine, kdd99Line, smurfLine, prototypeJSON,
		strings.TrimSuffix(prototypeJSON, "}") + `,"label":"normal.","difficulty":"3"}`,
		jsonWith("land", "true", `"meta":{"a":[1,"}"]}`, `"label":null`),
		csvWith(Service, "new_svc", "x-attack", "21"),
		csvWith(Duration, "1e-400"),
		csvWith(SrcBytes, "9007199254740991"),
		"", "{}", "{", "[", ",", "\r\n",
	}
}

// checkFieldError checks that a decode error is a *FieldError wrapping one
// of the sentinels.
func checkFieldError(t *testing.T, err error) {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v is %T, want *FieldError", err, err)
	}
	for _, s := range []error{ErrEmpty, ErrFieldCount, ErrNotNumber, ErrNegative, ErrNotInteger, ErrOverflow,
		ErrRate, ErrNotBinary, ErrProtocol, ErrMissingKey, ErrDuplicate, ErrSyntax, ErrType, ErrLabel, ErrNotUTF8} {
		if errors.Is(err, s) {
			if len(fe.Value) > 64 {
				t.Errorf("FieldError.Value is %d bytes, want at most 64", len(fe.Value))
			}
			return
		}
	}
	t.Fatalf("error %v wraps no sentinel", err)
}

// checkRoundTrip checks that r survives both encodings.
func checkRoundTrip(t *testing.T, r *Record) {
	t.Helper()
	csv := r.AppendCSV(nil)
	var c Record
	if err := DecodeCSV(csv, &c); err != nil {
		t.Fatalf("DecodeCSV(AppendCSV(r)) = %v\nline %s", err, csv)
	}
	want := *r
	if want.Label == "" {
		want.Difficulty = -1 // CSV has no difficulty column without a label
	}
	if c != want {
		t.Fatalf("CSV round trip:\n got %+v\nwant %+v\nline %s", c, want, csv)
	}
	js := r.AppendJSON(nil)
	if !json.Valid(js) {
		t.Fatalf("AppendJSON(r) is not valid JSON: %s", js)
	}
	var j Record
	if err := DecodeJSON(js, &j); err != nil {
		t.Fatalf("DecodeJSON(AppendJSON(r)) = %v\nobject %s", err, js)
	}
	if j != *r {
		t.Fatalf("JSON round trip:\n got %+v\nwant %+v\nobject %s", j, *r, js)
	}
}

func FuzzDecodeCSV(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Record
		if err := DecodeCSV(data, &r); err != nil {
			checkFieldError(t, err)
			return
		}
		checkRoundTrip(t, &r)
	})
}

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Record
		if err := DecodeJSON(data, &r); err != nil {
			checkFieldError(t, err)
			return
		}
		if !json.Valid(data) {
			t.Fatalf("DecodeJSON accepted input that encoding/json rejects: %q", data)
		}
		checkRoundTrip(t, &r)
	})
}

func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r, want Record
		err := Decode(data, &r)
		var err2 error
		switch Detect(data) {
		case FormatJSON:
			err2 = DecodeJSON(data, &want)
		case FormatCSV:
			err2 = DecodeCSV(data, &want)
		default:
			t.Fatalf("Detect(%q) = %v", data, Detect(data))
		}
		if (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() {
			t.Fatalf("Decode = %v, decoder for %v = %v", err, Detect(data), err2)
		}
		if err != nil {
			checkFieldError(t, err)
			return
		}
		if r != want {
			t.Fatalf("Decode and the %v decoder differ:\n%+v\n%+v", Detect(data), r, want)
		}
		checkRoundTrip(t, &r)
	})
}
