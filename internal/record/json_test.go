package record

import (
	"errors"
	"strings"
	"testing"
)

// prototypeJSON is a record as the old prototype published it.
const prototypeJSON = `{"duration":0,"protocol_type":"tcp","service":"http","flag":"SF","src_bytes":181,"dst_bytes":5450,"land":0,"wrong_fragment":0,"urgent":0,"hot":0,"num_failed_logins":0,"logged_in":1,"num_compromised":0,"root_shell":0,"su_attempted":0,"num_root":0,"num_file_creations":0,"num_shells":0,"num_access_files":0,"num_outbound_cmds":0,"is_host_login":0,"is_guest_login":0,"count":8,"srv_count":8,"serror_rate":0.0,"srv_serror_rate":0.0,"rerror_rate":0.0,"srv_rerror_rate":0.0,"same_srv_rate":1.0,"diff_srv_rate":0.0,"srv_diff_host_rate":0.0,"dst_host_count":9,"dst_host_srv_count":9,"dst_host_same_srv_rate":1.0,"dst_host_diff_srv_rate":0.0,"dst_host_same_src_port_rate":0.11,"dst_host_srv_diff_host_rate":0.0,"dst_host_serror_rate":0.0,"dst_host_srv_serror_rate":0.0,"dst_host_rerror_rate":0.0,"dst_host_srv_rerror_rate":0.0}`

// omit as a value in jsonWith leaves the key out.
const omit = "\x00omit"

// jsonWith returns nslLine's features as a JSON object with the raw JSON
// value of key replaced (or left out with omit), followed by extra raw
// "key":value pairs.
func jsonWith(key, raw string, extra ...string) string {
	var b strings.Builder
	b.WriteByte('{')
	first := true
	add := func(kv string) {
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(kv)
	}
	for i, v := range baseFields() {
		name := Features[i].Name
		if Features[i].Kind == KindSymbolic {
			v = `"` + v + `"`
		}
		if name == key {
			if raw == omit {
				continue
			}
			v = raw
		}
		add(`"` + name + `":` + v)
	}
	for _, kv := range extra {
		add(kv)
	}
	b.WriteByte('}')
	return b.String()
}

func TestDecodeJSONGood(t *testing.T) {
	var csv Record
	if err := DecodeCSV([]byte(kdd99Line), &csv); err != nil {
		t.Fatal(err)
	}
	csv.Label = ""
	tests := []struct {
		name    string
		in      string
		label   string
		diff    int
		check   map[int]float64
		symbols map[int]string
	}{
		{"prototype without label", prototypeJSON, "", -1, map[int]float64{SrcBytes: 181, DstBytes: 5450, 11: 1, 35: 0.11}, map[int]string{Service: "http"}},
		{"prototype with label", strings.TrimSuffix(prototypeJSON, "}") + `,"label":"normal"}`, "normal", -1, nil, nil},
		{"label with trailing dot", jsonWith("", "", `"label":"smurf."`), "smurf", -1, nil, nil},
		{"label and difficulty", jsonWith("", "", `"label":"neptune"`, `"difficulty":21`), "neptune", 21, nil, nil},
		{"label first", `{"label":"back",` + jsonWith("", "")[1:], "back", -1, nil, nil},
		{"null label and difficulty", jsonWith("", "", `"label":null`, `"difficulty":null`), "", -1, nil, nil},
		{"difficulty as string", jsonWith("", "", `"label":"normal"`, `"difficulty":"7"`), "normal", 7, nil, nil},
		{"numbers as strings", jsonWith("src_bytes", `"491"`), "", -1, map[int]float64{SrcBytes: 491}, nil},
		{"rate as string", jsonWith("serror_rate", `"0.25"`), "", -1, map[int]float64{24: 0.25}, nil},
		{"binary as bool true", jsonWith("logged_in", "true"), "", -1, map[int]float64{11: 1}, nil},
		{"binary as bool false", jsonWith("land", "false"), "", -1, map[int]float64{6: 0}, nil},
		{"binary as string", jsonWith("land", `"1"`), "", -1, map[int]float64{6: 1}, nil},
		{"negative zero", jsonWith("duration", "-0"), "", -1, map[int]float64{Duration: 0}, nil},
		{"exponent", jsonWith("src_bytes", "1.5e3"), "", -1, map[int]float64{SrcBytes: 1500}, nil},
		{"unseen service", jsonWith("service", `"quic"`), "", -1, nil, map[int]string{Service: "other"}},
		{"unseen flag", jsonWith("flag", `"XYZ"`), "", -1, nil, map[int]string{Flag: "OTH"}},
		{"escaped key and value", jsonWith("service", `"ht\u0074p"`, `"\u006cabel":"normal"`), "normal", -1, nil, map[int]string{Service: "http"}},
		{"unknown keys ignored", jsonWith("", "", `"src_ip":"10.0.0.1"`, `"meta":{"a":[1,{"b":"}"}]}`, `"x":null`, `"y":true`), "", -1, nil, nil},
		{"whitespace", " \n{ " + strings.ReplaceAll(jsonWith("", "")[1:], ",", " ,\n\t") + " \r\n", "", -1, map[int]float64{SrcBytes: 491}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Record
			if err := DecodeJSON([]byte(tt.in), &r); err != nil {
				t.Fatalf("DecodeJSON(%s) error: %v", tt.in, err)
			}
			if r.Label != tt.label || r.Difficulty != tt.diff {
				t.Errorf("label %q difficulty %d, want %q %d", r.Label, r.Difficulty, tt.label, tt.diff)
			}
			for i, want := range tt.check {
				if got := r.Features[i]; got != want {
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
	// The prototype object and the KDD'99 line are the same connection.
	var r Record
	if err := DecodeJSON([]byte(prototypeJSON), &r); err != nil {
		t.Fatal(err)
	}
	if r != csv {
		t.Errorf("prototype JSON and its CSV line differ:\n%+v\n%+v", r, csv)
	}
}

func TestDecodeJSONBad(t *testing.T) {
	long := strings.Repeat("9", 1<<20)
	tests := []badCase{
		{"empty", "", ErrEmpty, "", ""},
		{"blank", " \r\n\t", ErrEmpty, "", ""},
		{"array", "[]", ErrSyntax, "", ""},
		{"unterminated", "{", ErrSyntax, "", ""},
		{"unterminated after value", jsonWith("", "")[:100], ErrSyntax, "", ""},
		{"trailing comma", strings.TrimSuffix(jsonWith("", ""), "}") + ",}", ErrSyntax, "", ""},
		{"data after object", jsonWith("", "") + "x", ErrSyntax, "", ""},
		{"two objects", jsonWith("", "") + "{}", ErrSyntax, "", ""},
		{"single quotes", `{'duration':0}`, ErrSyntax, "", ""},
		{"unquoted key", `{duration:0}`, ErrSyntax, "", ""},
		{"missing colon", `{"duration" 0}`, ErrSyntax, "", ""},
		{"leading zero", jsonWith("src_bytes", "01"), ErrSyntax, "", ""},
		{"plus number", jsonWith("src_bytes", "+1"), ErrSyntax, "", ""},
		{"bare NaN", jsonWith("duration", "NaN"), ErrSyntax, "", ""},
		{"bare Infinity", jsonWith("duration", "Infinity"), ErrSyntax, "", ""},
		{"hex literal", jsonWith("src_bytes", "0x10"), ErrSyntax, "", ""},
		{"control char in string", jsonWith("service", "\"ht\ttp\""), ErrSyntax, "", ""},
		{"bad escape", jsonWith("service", `"\q"`), ErrSyntax, "", ""},
		{"unterminated string", `{"duration":"0`, ErrSyntax, "", ""},
		{"bad nested", jsonWith("", "", `"meta":[1,}`), ErrSyntax, "", ""},
		{"mismatched nested", jsonWith("", "", `"meta":[1}`), ErrSyntax, "", ""},
		{"true misspelt", jsonWith("land", "tru"), ErrSyntax, "", ""},
		{"missing key", jsonWith("flag", omit), ErrMissingKey, "flag", ""},
		{"missing last key", jsonWith("dst_host_srv_rerror_rate", omit), ErrMissingKey, "dst_host_srv_rerror_rate", ""},
		{"empty object", "{}", ErrMissingKey, "duration", ""},
		{"only label", `{"label":"normal"}`, ErrMissingKey, "duration", ""},
		{"duplicate feature", jsonWith("", "", `"duration":1`), ErrDuplicate, "duration", ""},
		{"duplicate label", jsonWith("", "", `"label":"normal"`, `"label":"smurf"`), ErrDuplicate, "label", ""},
		{"duplicate difficulty", jsonWith("", "", `"difficulty":1`, `"difficulty":1`), ErrDuplicate, "difficulty", ""},
		{"duplicate via escape", jsonWith("", "", `"d\u0075ration":1`), ErrDuplicate, "duration", ""},
		{"protocol as number", jsonWith("protocol_type", "1"), ErrType, "protocol_type", "1"},
		{"service as bool", jsonWith("service", "true"), ErrType, "service", "true"},
		{"count as bool", jsonWith("src_bytes", "false"), ErrType, "src_bytes", "false"},
		{"number as null", jsonWith("duration", "null"), ErrType, "duration", "null"},
		{"number as array", jsonWith("duration", "[1]"), ErrType, "duration", "[1]"},
		{"number as object", jsonWith("duration", `{"v":1}`), ErrType, "duration", `{"v":1}`},
		{"label as number", jsonWith("", "", `"label":5`), ErrType, "label", "5"},
		{"difficulty as bool", jsonWith("", "", `"difficulty":true`), ErrType, "difficulty", "true"},
		{"not a number string", jsonWith("duration", `"abc"`), ErrNotNumber, "duration", "abc"},
		{"NaN string", jsonWith("duration", `"NaN"`), ErrNotNumber, "duration", "NaN"},
		{"inf string", jsonWith("serror_rate", `"inf"`), ErrNotNumber, "serror_rate", "inf"},
		{"hex string", jsonWith("src_bytes", `"0x1F"`), ErrNotNumber, "src_bytes", "0x1F"},
		{"empty string number", jsonWith("src_bytes", `""`), ErrNotNumber, "src_bytes", ""},
		{"padded string number", jsonWith("src_bytes", `" 1"`), ErrNotNumber, "src_bytes", " 1"},
		{"negative count", jsonWith("src_bytes", "-3"), ErrNegative, "src_bytes", "-3"},
		{"negative duration", jsonWith("duration", "-1e-9"), ErrNegative, "duration", "-1e-9"},
		{"fractional count", jsonWith("count", "2.5"), ErrNotInteger, "count", "2.5"},
		{"rate above 1", jsonWith("same_srv_rate", "1.5"), ErrRate, "same_srv_rate", "1.5"},
		{"rate below 0", jsonWith("same_srv_rate", `"-0.01"`), ErrRate, "same_srv_rate", "-0.01"},
		{"count overflow", jsonWith("dst_bytes", "1e20"), ErrOverflow, "dst_bytes", "1e20"},
		{"duration overflow", jsonWith("duration", "1e999"), ErrOverflow, "duration", "1e999"},
		{"binary 2", jsonWith("logged_in", "2"), ErrNotBinary, "logged_in", "2"},
		{"binary string yes", jsonWith("logged_in", `"yes"`), ErrNotNumber, "logged_in", "yes"},
		{"unknown protocol", jsonWith("protocol_type", `"gre"`), ErrProtocol, "protocol_type", "gre"},
		{"bad label", jsonWith("", "", `"label":"a b"`), ErrLabel, "label", "a b"},
		{"empty label", jsonWith("", "", `"label":""`), ErrLabel, "label", ""},
		{"difficulty negative", jsonWith("", "", `"difficulty":-2`), ErrNegative, "difficulty", "-2"},
		{"1 MB number", jsonWith("duration", long), ErrOverflow, "duration", long[:64]},
		{"1 MB string number", jsonWith("src_bytes", `"`+long+`"`), ErrOverflow, "src_bytes", long[:64]},
		{"1 MB label", jsonWith("", "", `"label":"`+strings.Repeat("a", 1<<20)+`"`), ErrLabel, "label", strings.Repeat("a", 64)},
		{"1 MB of garbage", "{" + strings.Repeat("[", 1<<20), ErrSyntax, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Record
			checkBad(t, "DecodeJSON", DecodeJSON([]byte(tt.in), &r), tt)
		})
	}
}

func TestDecodeJSONMissingCount(t *testing.T) {
	in := strings.Replace(jsonWith("flag", omit), `"duration":0,`, "", 1)
	var r Record
	err := DecodeJSON([]byte(in), &r)
	var fe *FieldError
	if !errors.As(err, &fe) || !errors.Is(err, ErrMissingKey) || fe.Field != "duration" {
		t.Fatalf("DecodeJSON without duration and flag = %v, want missing key duration", err)
	}
	if !strings.Contains(err.Error(), "2 of 41 features missing") {
		t.Errorf("DecodeJSON without duration and flag = %q, want it to count 2 missing", err)
	}
}
