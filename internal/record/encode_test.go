package record

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestEncodeRoundTrip(t *testing.T) {
	lines := []string{
		nslLine, kdd99Line, smurfLine,
		csvWith(-1, ""),
		csvWith(-1, "", "neptune"),
		csvWith(Service, "brand_new", "x-attack"),
		csvWith(Flag, "??"),
		csvWith(Duration, "0.123456789012345678"),
		csvWith(Duration, "1e300"),
		csvWith(Duration, "5e-324"),
		csvWith(SrcBytes, "9007199254740991"),
		csvWith(DstBytes, "1234567890123"),
		csvWith(24, "0.333333333333333333"),
	}
	for _, line := range lines {
		var want Record
		if err := DecodeCSV([]byte(line), &want); err != nil {
			t.Fatalf("DecodeCSV(%q): %v", line, err)
		}
		for _, enc := range []struct {
			name   string
			append func(*Record, []byte) []byte
			decode func([]byte, *Record) error
		}{
			{"CSV", (*Record).AppendCSV, DecodeCSV},
			{"JSON", (*Record).AppendJSON, DecodeJSON},
			{"auto CSV", (*Record).AppendCSV, Decode},
			{"auto JSON", (*Record).AppendJSON, Decode},
		} {
			b := enc.append(&want, []byte("prefix"))[len("prefix"):]
			var got Record
			if err := enc.decode(b, &got); err != nil {
				t.Errorf("%s: decode(%s) of the encoding of %q: %v", enc.name, b, line, err)
				continue
			}
			if got != want {
				t.Errorf("%s round trip of %q:\n got %+v\nwant %+v\n via %s", enc.name, line, got, want, b)
			}
			if enc.name == "JSON" && !json.Valid(b) {
				t.Errorf("AppendJSON gave invalid JSON: %s", b)
			}
		}
	}
}

// TestAppendCSVExact checks the text of an encoded real line: integers
// without a fraction, rates in shortest form, the label without a dot.
func TestAppendCSVExact(t *testing.T) {
	var r Record
	if err := DecodeCSV([]byte(kdd99Line), &r); err != nil {
		t.Fatal(err)
	}
	const want = "0,tcp,http,SF,181,5450,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,0,8,8,0,0,0,0,1,0,0,9,9,1,0,0.11,0,0,0,0,0,normal"
	if got := string(r.AppendCSV(nil)); got != want {
		t.Errorf("AppendCSV =\n%s\nwant\n%s", got, want)
	}
	r.Difficulty = 3
	if got := string(r.AppendCSV(nil)); got != want+",3" {
		t.Errorf("AppendCSV with difficulty = %s, want ...,normal,3", got)
	}
	r.Label = ""
	if got := string(r.AppendCSV(nil)); got != want[:len(want)-len(",normal")] {
		t.Errorf("AppendCSV without label = %s, want no label and no difficulty", got)
	}
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	var r Record
	if err := DecodeCSV([]byte(nslLine), &r); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(r.AppendJSON(nil), &m); err != nil {
		t.Fatalf("AppendJSON is not valid JSON: %v", err)
	}
	if len(m) != NumFeatures+2 {
		t.Errorf("AppendJSON has %d keys, want 41 features + label + difficulty", len(m))
	}
	for i, f := range Features {
		v, ok := m[f.Name]
		if !ok {
			t.Errorf("AppendJSON lacks key %q", f.Name)
			continue
		}
		if f.Kind == KindSymbolic {
			if v != r.Symbol(i) {
				t.Errorf("%s = %v, want %q", f.Name, v, r.Symbol(i))
			}
		} else if x, ok := v.(float64); !ok || math.Abs(x-r.Features[i]) > 0 {
			t.Errorf("%s = %v, want %v", f.Name, v, r.Features[i])
		}
	}
	if m["label"] != "normal" || m["difficulty"] != 20.0 {
		t.Errorf("label, difficulty = %v, %v; want normal, 20", m["label"], m["difficulty"])
	}
}

// TestAppendJSONAnyLabel checks that a label set by hand, whatever it holds,
// still gives valid JSON that carries the label.
func TestAppendJSONAnyLabel(t *testing.T) {
	for _, label := range []string{`a"b`, `back\slash`, "tab\there", "nul\x00", "bad\xffutf8", "日本", "\u2028"} {
		r := Record{Label: label, Difficulty: -1}
		b := r.AppendJSON(nil)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("AppendJSON with label %q: invalid JSON %s: %v", label, b, err)
			continue
		}
		want := strings.ToValidUTF8(label, "\uFFFD")
		if m["label"] != want {
			t.Errorf("AppendJSON label %q decodes as %q, want %q", label, m["label"], want)
		}
	}
}
