package event

import (
	"encoding/json"
	"maps"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/netsentinel/netsentinel/internal/record"
)

// appender is a message with a fast encoder.
type appender interface{ AppendJSON([]byte) []byte }

// messages returns a fresh value of every message type.
func messages() []appender { return []appender{&Alert{}, &Stats{}, &DeadLetter{}, &Incident{}} }

// TestRoundTrip fills every field of every message with random values by
// reflection, encodes it with AppendJSON and checks that encoding/json
// decodes it to what encoding/json's own encoding decodes to. A field added
// to a message but not to its encoder fails here.
func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		for _, m := range messages() {
			fill(reflect.ValueOf(m).Elem(), rng)
			checkRoundTrip(t, m)
		}
	}
}

// TestRoundTripEveryField checks that the filler reaches every field: each
// one is non-zero after decoding the fast encoding.
func TestRoundTripEveryField(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, m := range messages() {
		fill(reflect.ValueOf(m).Elem(), rng)
		got := reflect.New(reflect.TypeOf(m).Elem())
		if err := json.Unmarshal(m.AppendJSON(nil), got.Interface()); err != nil {
			t.Fatal(err)
		}
		var walk func(v reflect.Value, path string)
		walk = func(v reflect.Value, path string) {
			for i := range v.NumField() {
				f := v.Type().Field(i)
				if !f.IsExported() || f.Tag.Get("json") == "-" {
					continue
				}
				fv := v.Field(i)
				if f.Anonymous && fv.Kind() == reflect.Pointer {
					if fv.IsNil() {
						t.Errorf("%s.%s: nil after decoding", path, f.Name)
						continue
					}
					walk(fv.Elem(), path+"."+f.Name)
					continue
				}
				if fv.IsZero() {
					t.Errorf("%s.%s: zero after decoding the fast encoding", path, f.Name)
				}
			}
		}
		walk(got.Elem(), got.Elem().Type().Name())
	}
}

func checkRoundTrip(t *testing.T, m appender) {
	t.Helper()
	fast := m.AppendJSON(nil)
	if !json.Valid(fast) {
		t.Fatalf("%T: invalid JSON: %s", m, fast)
	}
	std, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("%T: encoding/json: %v", m, err)
	}
	typ := reflect.TypeOf(m).Elem()
	got, want := reflect.New(typ).Interface(), reflect.New(typ).Interface()
	if err := json.Unmarshal(fast, got); err != nil {
		t.Fatalf("%T: decode %s: %v", m, fast, err)
	}
	if err := json.Unmarshal(std, want); err != nil {
		t.Fatalf("%T: decode %s: %v", m, std, err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("%T: decoded fast encoding differs (-encoding/json +AppendJSON):\n%s\nfast: %s\nstd:  %s", m, d, fast, std)
	}
}

// fill sets every exported, JSON-visible field of v to a random non-zero
// value.
func fill(v reflect.Value, rng *rand.Rand) {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			sec := rng.Int64N(4e9)
			zone := time.FixedZone("", (rng.IntN(48)-24)*1800)
			if rng.IntN(2) == 0 {
				zone = time.UTC
			}
			v.Set(reflect.ValueOf(time.Unix(sec, rng.Int64N(1e9)+1).In(zone)))
			return
		}
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if f.IsExported() && f.Tag.Get("json") != "-" {
				fill(v.Field(i), rng)
			}
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), rng)
	case reflect.String:
		v.SetString(randString(rng))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		bits := v.Type().Bits()
		x := rng.Int64() >> (64 - bits)
		if x == 0 {
			x = 1
		}
		v.SetInt(x)
	case reflect.Float64:
		x := rng.NormFloat64() * math.Pow(10, float64(rng.IntN(30)-15))
		if x == 0 {
			x = 0.5
		}
		v.SetFloat(x)
	case reflect.Slice:
		n := 1 + rng.IntN(4)
		if v.Type().Elem().Kind() == reflect.Uint8 {
			b := make([]byte, 1+rng.IntN(40))
			for i := range b {
				b[i] = byte(rng.IntN(256))
			}
			v.SetBytes(b)
			return
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fill(s.Index(i), rng)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for range 1 + rng.IntN(5) {
			k := reflect.New(v.Type().Key()).Elem()
			fill(k, rng)
			e := reflect.New(v.Type().Elem()).Elem()
			if e.Kind() == reflect.Interface {
				if rng.IntN(2) == 0 {
					e.Set(reflect.ValueOf(randString(rng)))
				} else {
					e.Set(reflect.ValueOf(rng.NormFloat64() * 1000))
				}
			} else {
				fill(e, rng)
			}
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	default:
		panic("fill: no random value for " + v.Type().String() + ": extend fill")
	}
}

// randString returns a non-empty string, sometimes with characters JSON
// must escape, non-ASCII and invalid UTF-8.
func randString(rng *rand.Rand) string {
	const alphabet = "abcXYZ019 _-.:/\"\\<>&\n\t\x00\x1f\x7féü€😀\u2028\u2029\xff\xc3"
	runes := []string{}
	for _, r := range alphabet {
		runes = append(runes, string(r))
	}
	runes = append(runes, "\xff", "\xc3", "\xe2\x82")
	var b strings.Builder
	for range 1 + rng.IntN(12) {
		b.WriteString(runes[rng.IntN(len(runes))])
	}
	return b.String()
}

// TestAlertFeaturesFromRecord checks that an alert built from a decoded
// record carries the same features as the map readers get.
func TestAlertFeaturesFromRecord(t *testing.T) {
	const line = "0,tcp,private,REJ,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,136,1,0.00,0.00,1.00,1.00,0.01,0.06,0.00,255,1,0.00,0.06,0.00,0.00,0.00,0.00,1.00,1.00,neptune,21"
	var r record.Record
	if err := record.DecodeCSV([]byte(line), &r); err != nil {
		t.Fatal(err)
	}
	r.Features[record.Duration] = 1.25
	a := Alert{Attack: "neptune", Record: &r}
	var got Alert
	if err := json.Unmarshal(a.AppendJSON(nil), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{}
	for i, f := range record.Features {
		if f.Kind == record.KindSymbolic {
			want[f.Name] = r.Symbol(i)
		} else {
			want[f.Name] = r.Features[i]
		}
	}
	if d := cmp.Diff(want, got.Features); d != "" {
		t.Errorf("features (-want +got):\n%s", d)
	}
	if got.Features["service"] != "private" || got.Features["duration"] != 1.25 || got.Features["dst_host_count"] != 255.0 {
		t.Errorf("features: %v", got.Features)
	}
}

// TestNonFiniteIsNull checks that NaN and infinities encode as null, and
// that an alert without a connection has none of its keys.
func TestNonFiniteIsNull(t *testing.T) {
	a := Alert{Probability: math.NaN(), AttackProbability: math.Inf(1), Novelty: math.Inf(-1),
		Connection: &Connection{TS: math.NaN(), SrcIP: "10.0.0.1"}, Features: map[string]any{"x": math.NaN(), "y": 2.0}}
	b := a.AppendJSON(nil)
	if !json.Valid(b) {
		t.Fatalf("invalid JSON: %s", b)
	}
	for _, want := range []string{`"probability":null`, `"attack_probability":null`, `"novelty":null`, `"ts":null`, `"x":null`, `"y":2`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s: no %s", b, want)
		}
	}
	a.Connection = nil
	b = a.AppendJSON(nil)
	for _, key := range []string{"ts", "src_ip", "src_port", "dst_ip", "dst_port", "uid"} {
		if strings.Contains(string(b), `"`+key+`":`) {
			t.Errorf("alert without a connection has key %q: %s", key, b)
		}
	}
}

func TestConnectionOf(t *testing.T) {
	if c := ConnectionOf(record.Identity{SrcPort: -1, DstPort: -1}); c != nil {
		t.Errorf("ConnectionOf(unknown) = %+v, want nil", c)
	}
	id := record.Identity{TS: 1.5, SrcIP: "10.0.0.1", SrcPort: 1234, DstIP: "10.0.0.2", DstPort: 80, UID: "C1"}
	want := &Connection{TS: 1.5, SrcIP: "10.0.0.1", SrcPort: 1234, DstIP: "10.0.0.2", DstPort: 80, UID: "C1"}
	if d := cmp.Diff(want, ConnectionOf(id)); d != "" {
		t.Errorf("ConnectionOf (-want +got):\n%s", d)
	}
}

// FuzzAppendJSON checks the fast encoders against encoding/json on
// arbitrary strings, numbers and bytes.
func FuzzAppendJSON(f *testing.F) {
	f.Add("in", "neptune", "dos", "normal", "foo", 0.5, int64(3), int64(1700000000), []byte("0,tcp,http"))
	f.Add("t\x00<>&", "a\u2028b", "\xff", "é", "\\\"", math.Inf(1), int64(-1), int64(0), []byte{})
	f.Add("", "", "", "", "", math.NaN(), int64(math.MaxInt64), int64(-62135596800), []byte(nil))
	f.Fuzz(func(t *testing.T, topic, attack, category, label, service string, p float64, off, sec int64, value []byte) {
		ts := time.Unix(sec%253402300799, 0).UTC() // years 1-9999, as encoding/json allows
		if ts.Year() < 1 {
			ts = time.Unix(0, 0).UTC()
		}
		pOK := p
		if math.IsNaN(p) || math.IsInf(p, 0) {
			pOK = 0
		}
		a := &Alert{Time: ts, Topic: topic, Offset: off, Attack: attack, Category: category, Probability: p, Label: label,
			UnseenService: service, NoveltyFeatures: []string{attack, label}, Features: map[string]any{service: topic, label: pOK},
			Connection: &Connection{SrcIP: topic, UID: label, SrcPort: int32(off)}, Model: category, Instance: service}
		fast := a.AppendJSON(nil)
		if !json.Valid(fast) {
			t.Fatalf("invalid alert JSON: %s", fast)
		}
		a.Probability = pOK
		checkRoundTrip(t, a)
		checkRoundTrip(t, &DeadLetter{Time: ts, Topic: topic, Offset: off, Reason: attack, Value: value, Instance: label})
		checkRoundTrip(t, &Stats{Minute: ts, Instance: topic, Model: label, Records: off,
			ByCategory: map[string]int64{category: off, label: 1}, ByAttack: map[string]int64{attack: sec}, Unseen: map[string]int64{service: 2},
			TopSources: map[string]int64{topic: off, service: 1}, OtherSources: sec, TopDestinations: map[string]int64{label: 3}, OtherDestinations: off})
	})
}

func TestTop(t *testing.T) {
	counts := map[string]int64{"a": 5, "b": 9, "c": 5, "d": 1, "e": 5}
	top, rest := Top(counts, 3)
	if want := map[string]int64{"b": 9, "a": 5, "c": 5}; !maps.Equal(top, want) || rest != 6 {
		t.Errorf("Top(%v, 3) = %v, %d; want %v, 6 (ties by key)", counts, top, rest, want)
	}
	if top, rest := Top(counts, 10); !maps.Equal(top, counts) || rest != 0 {
		t.Errorf("Top(%v, 10) = %v, %d; want all, 0", counts, top, rest)
	}
	if top, rest := Top(nil, 3); top != nil || rest != 0 {
		t.Errorf("Top(nil) = %v, %d", top, rest)
	}
}
