package incident

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/netsentinel/netsentinel/internal/event"
)

func sampleState() *State {
	return &State{
		Category: "dos", FirstOffset: 1234567,
		FirstSeen: at(0), LastSeen: at(3.5), Touched: at(4), Published: at(2),
		Count: 99, PublishedCount: 50, Seq: 2, MaxProbability: 0.97,
		Srcs:     Top{Values: []string{"10.0.0.1", "::1"}, Counts: []int64{90, 9}},
		Dsts:     Top{Values: []string{"10.0.0.2"}, Counts: []int64{99}, Other: 7},
		Ports:    Top{Values: []string{"80"}, Counts: []int64{99}},
		Svcs:     Top{Values: []string{"ecr_i"}, Counts: []int64{99}},
		Features: Top{Values: []string{"src_bytes"}, Counts: []int64{3}},
		Samples:  []int64{1234567, 1234568, -1},
		Withheld: Top{Values: []string{"neptune-limit"}, Counts: []int64{12}},
		Explanation: []event.Reason{{Feature: "count", Value: 511, Typical: 2, Contribution: 0.5},
			{Feature: "srv_count", Value: 511, Typical: 3, Contribution: 0.25}},
	}
}

// TestStateVersion1 checks that a state written before explanations were
// kept (version 1: no explanation at the end) still decodes.
func TestStateVersion1(t *testing.T) {
	s := sampleState()
	s.Explanation, s.Withheld = nil, Top{}
	b := s.AppendBinary(nil)
	if !bytes.HasSuffix(b, []byte{0, 0, 0}) {
		t.Fatalf("state without withheld counts and explanation ends with %v, want three zeros", b[len(b)-3:])
	}
	v1 := append([]byte{1}, b[1:len(b)-3]...)
	got, err := DecodeState(v1)
	if err != nil {
		t.Fatalf("DecodeState(version 1): %v", err)
	}
	if d := cmp.Diff(s, got); d != "" {
		t.Errorf("version 1 (-want +got):\n%s", d)
	}
}

func TestStateRoundTrip(t *testing.T) {
	for _, s := range []*State{sampleState(), {}} {
		b := s.AppendBinary(nil)
		got, err := DecodeState(b)
		if err != nil {
			t.Fatalf("DecodeState: %v", err)
		}
		if d := cmp.Diff(s, got); d != "" {
			t.Errorf("round trip (-want +got):\n%s", d)
		}
	}
}

// TestStateCorrupt checks that every truncation and a few damaged values
// fail with ErrCorrupt naming a field, never a panic.
func TestStateCorrupt(t *testing.T) {
	b := sampleState().AppendBinary(nil)
	for n := range len(b) {
		_, err := DecodeState(b[:n])
		var ce *CodecError
		if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) || ce.Field == "" {
			t.Fatalf("truncated to %d of %d bytes: %v", n, len(b), err)
		}
	}
	f := func(name string, b []byte, field string) {
		t.Helper()
		_, err := DecodeState(b)
		var ce *CodecError
		if !errors.As(err, &ce) || ce.Field != field {
			t.Errorf("%s: %v, want a CodecError in field %q", name, err, field)
		}
	}
	f("version", append([]byte{9}, b[1:]...), "version")
	f("trailing", append(append([]byte(nil), b...), 0), "end")
	bad := sampleState()
	bad.PublishedCount = bad.Count + 1
	f("counts", bad.AppendBinary(nil), "counts")
	many := sampleState()
	for i := range topCap + 1 {
		many.Srcs.Values = append(many.Srcs.Values, string(rune('a'+i)))
		many.Srcs.Counts = append(many.Srcs.Counts, 1)
	}
	f("top too long", many.AppendBinary(nil), "top sources")
}

func TestKeysRoundTrip(t *testing.T) {
	k := Key{Attack: "smurf", Src: "1.1.1.1", Dst: "", Service: "ecr_i", Flag: "SF"}
	got, err := decodeIncidentKey(appendIncidentKey(nil, k))
	if err != nil || got != k {
		t.Errorf("incident key: %+v, %v", got, err)
	}
	tk := trackKey{"rule", "10.0.0.1"}
	gotT, err := decodeTrackerKey(appendTrackerKey(nil, tk))
	if err != nil || gotT != tk {
		t.Errorf("tracker key: %+v, %v", gotT, err)
	}
	tr := &tracker{start: at(1), count: 5, window: time.Minute}
	gotTr, err := decodeTracker(tr.appendBinary(nil))
	if err != nil || *gotTr != *tr {
		t.Errorf("tracker: %+v, %v", gotTr, err)
	}
	tb := newTestTable()
	for _, bad := range [][]byte{nil, {'x'}, {'i', 5}, {'t', 1, 'a'}} {
		if err := tb.Apply(bad, []byte{1}); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Apply(key %q): %v, want ErrCorrupt", bad, err)
		}
	}
}

// FuzzApply feeds arbitrary changelog entries to a table: they either
// apply or fail with ErrCorrupt; applied incident states re-encode to the
// same bytes.
func FuzzApply(f *testing.F) {
	st := sampleState()
	f.Add(appendIncidentKey(nil, Key{Attack: "smurf", Service: "ecr_i"}), st.AppendBinary(nil))
	f.Add(appendTrackerKey(nil, trackKey{"r", "v"}), (&tracker{start: at(1), count: 2, window: time.Second}).appendBinary(nil))
	f.Add(appendIncidentKey(nil, Key{}), []byte(nil))
	f.Add([]byte{'i'}, []byte{1, 0, 0})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		tb := newTestTable()
		if err := tb.Apply(key, value); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if len(key) == 0 || key[0] != keyIncident || value == nil {
			return
		}
		s, err := DecodeState(value)
		if err != nil {
			t.Fatal(err)
		}
		again := s.AppendBinary(nil)
		s2, err := DecodeState(again)
		if err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
		if d := cmp.Diff(s, s2, cmpopts.EquateNaNs()); d != "" {
			t.Fatalf("re-encode changed the state (-first +second):\n%s", d)
		}
		tb.Due(at(1e6)) // whatever was restored closes without panicking
	})
}
