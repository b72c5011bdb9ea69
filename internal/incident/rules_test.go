package incident

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/netsentinel/netsentinel/internal/event"

	"github.com/netsentinel/netsentinel/internal/record"
)

func TestRulesGoodFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.good.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata/*.good.yaml")
	}
	for _, f := range files {
		if _, err := LoadRules(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	r, err := LoadRules("testdata/full.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != 6 || r.Allow[0].Direction != "src" || r.Allow[1].Direction != "either" || r.Thresholds[2].Track != TrackByRule {
		t.Errorf("parsed %+v", r)
	}
	if got := r.Allow[1].Expires; !got.Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("expires = %v", got)
	}
	if got := r.Expired(time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC)); len(got) != 1 || got[0] != "weekly-scan" {
		t.Errorf("Expired(2028) = %v, want [weekly-scan]", got)
	}
}

// TestRulesBadFiles checks that every bad file fails with an error naming
// what is wrong.
func TestRulesBadFiles(t *testing.T) {
	want := map[string][]string{
		"unknown-key.bad.yaml":    {"line 8", "cuont", "not found"},
		"bad-values.bad.yaml":     {`thresholds[0] "t1"`, "10.0.0.300", `type "sometimes"`, `track "by_host"`, "count 0", "seconds -1"},
		"no-reason.bad.yaml":      {`suppressions[0] "s"`, "no reason"},
		"duplicate-name.bad.yaml": {`suppressions[0] "same": name already used by allow[0]`},
		"empty-match.bad.yaml":    {"match is empty"},
		"allow-no-hosts.bad.yaml": {"no hosts", `direction "sideways"`},
		"bad-expiry.bad.yaml":     {"line 5", "next tuesday"},
		"not-a-map.bad.yaml":      {"line 1", "cannot unmarshal"},
	}
	files, _ := filepath.Glob("testdata/*.bad.yaml")
	if len(files) != len(want) {
		t.Errorf("%d bad files, %d expectations", len(files), len(want))
	}
	for _, f := range files {
		_, err := LoadRules(f)
		if err == nil {
			t.Errorf("%s: no error", f)
			continue
		}
		if !strings.Contains(err.Error(), f) {
			t.Errorf("%s: error %q does not name the file", f, err)
		}
		subs, ok := want[filepath.Base(f)]
		if !ok {
			t.Errorf("%s: no expectation for error %q", f, err)
		}
		for _, s := range subs {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: error %q lacks %q", f, err, s)
			}
		}
	}
	if _, err := LoadRules("testdata/missing.yaml"); !os.IsNotExist(err) {
		t.Errorf("missing file: %v", err)
	}
}

func mustRules(t *testing.T, y string) *Rules {
	t.Helper()
	r, err := ParseRules([]byte(y))
	if err != nil {
		t.Fatalf("ParseRules: %v", err)
	}
	return r
}

func verdict(attack, src, dst string, ts time.Time) *Verdict {
	return &Verdict{Time: ts, Attack: attack, Category: record.CategoryOf(attack).String(), Probability: 0.9,
		Identity: record.Identity{SrcIP: src, DstIP: dst, SrcPort: -1, DstPort: 80}, Service: "http", Flag: "SF"}
}

func TestMatch(t *testing.T) {
	r := mustRules(t, `
suppressions:
  - {name: a, match: {attack: dos, src: 10.0.0.0/8, dst: "::ffff:192.168.1.1"}, reason: r}
  - {name: b, match: {service: [ftp, ftp_data], flag: S0}, reason: r}
`)
	a, b := &r.Suppressions[0].Match, &r.Suppressions[1].Match
	f := func(m *Match, v *Verdict, want bool) {
		t.Helper()
		if got := m.matches(v); got != want {
			t.Errorf("matches(%+v) = %v, want %v", v, got, want)
		}
	}
	ts := time.Unix(1e9, 0)
	f(a, verdict("smurf", "10.9.9.9", "192.168.1.1", ts), true)    // category, CIDR, v4-mapped prefix
	f(a, verdict("smurf", "11.0.0.1", "192.168.1.1", ts), false)   // src outside
	f(a, verdict("satan", "10.9.9.9", "192.168.1.1", ts), false)   // probe
	f(a, verdict("smurf", "", "", ts), false)                      // no addresses never match
	f(a, verdict("smurf", "garbage", "192.168.1.1", ts), false)    // unparsable address
	f(a, verdict("neptune", "10.0.0.1", "192.168.1.2", ts), false) // other dst
	v := verdict("warezclient", "", "", ts)
	v.Service, v.Flag = "ftp_data", "S0"
	f(b, v, true)
	v.Flag = "SF"
	f(b, v, false)
}

func TestAllowDirection(t *testing.T) {
	r := mustRules(t, `
allow:
  - {name: s, hosts: [10.1.1.1], direction: src, reason: r}
  - {name: d, hosts: [10.2.2.2], direction: dst, attack: probe, reason: r}
  - {name: e, hosts: [10.3.3.3], reason: r}
`)
	ts := time.Unix(1e9, 0)
	f := func(i int, v *Verdict, want bool) {
		t.Helper()
		if got := r.Allow[i].matches(v); got != want {
			t.Errorf("allow %s matches(%v -> %v %s) = %v, want %v", r.Allow[i].Name, v.Identity.SrcIP, v.Identity.DstIP, v.Attack, got, want)
		}
	}
	f(0, verdict("back", "10.1.1.1", "1.1.1.1", ts), true)
	f(0, verdict("back", "1.1.1.1", "10.1.1.1", ts), false)
	f(1, verdict("satan", "1.1.1.1", "10.2.2.2", ts), true)
	f(1, verdict("smurf", "1.1.1.1", "10.2.2.2", ts), false)
	f(2, verdict("back", "10.3.3.3", "1.1.1.1", ts), true)
	f(2, verdict("back", "1.1.1.1", "10.3.3.3", ts), true)
}

// TestThresholdTypes feeds 25 verdicts, one a second, through each type
// and checks which pass, as Suricata's threshold.config defines them.
func TestThresholdTypes(t *testing.T) {
	f := func(typ string, count, seconds int64, want []int) {
		t.Helper()
		th := Threshold{Name: "t", Type: typ, Count: count, Seconds: seconds}
		tr := &tracker{}
		var got []int
		t0 := time.Unix(1e9, 0)
		for i := range 25 {
			if th.admit(tr, t0.Add(time.Duration(i)*time.Second)) {
				got = append(got, i)
			}
		}
		if !equalInts(got, want) {
			t.Errorf("%s count %d seconds %d: passed %v, want %v", typ, count, seconds, got, want)
		}
	}
	f(TypeLimit, 2, 10, []int{0, 1, 10, 11, 20, 21})
	f(TypeThreshold, 3, 10, []int{2, 5, 8, 12, 15, 18, 22})
	f(TypeBoth, 3, 10, []int{2, 12, 22})
	f(TypeLimit, 1, 1, seq(25))
	f(TypeThreshold, 1, 5, seq(25))
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func FuzzParseRules(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRules(data)
		if err != nil {
			if r != nil {
				t.Errorf("rules and error")
			}
			return
		}
		// A parsed rule set applies without panicking.
		tb := NewTable(Config{})
		now := time.Unix(1e9, 0)
		tb.Observe(verdict("smurf", "10.0.0.1", "10.0.0.2", now), r, now)
		tb.Observe(verdict("satan", "", "", now), r, now)
	})
}

// TestWithheldCounted checks that verdicts a threshold keeps out of an open
// incident are counted in it by rule, and reach its messages.
func TestWithheldCounted(t *testing.T) {
	r := mustRules(t, `
thresholds:
  - {name: first-two, match: {attack: smurf}, type: limit, track: by_src, count: 2, seconds: 60, reason: r}
`)
	tb := newTestTable()
	for i := range 5 {
		d := tb.Observe(verdict("smurf", "10.0.0.1", "10.0.0.2", at(float64(i))), r, at(float64(i)))
		if want := i >= 2; d.Outcome.Withheld() != want || (want && d.Rule != "first-two") {
			t.Fatalf("verdict %d: %+v", i, d)
		}
	}
	msgs := tb.Due(at(5))
	want := []event.Count{{Value: "first-two", Count: 3}}
	if len(msgs) != 1 || msgs[0].Count != 2 || !cmp.Equal(msgs[0].Withheld, want) {
		t.Fatalf("messages %+v, want one of 2 verdicts with 3 withheld by first-two", msgs)
	}
	// A withheld verdict alone brings an update (after the interval).
	tb.Observe(verdict("smurf", "10.0.0.1", "10.0.0.2", at(6)), r, at(6))
	msgs = tb.Due(at(11))
	want[0].Count = 4
	if len(msgs) != 1 || msgs[0].Status != event.IncidentUpdated || msgs[0].Count != 2 || !cmp.Equal(msgs[0].Withheld, want) {
		t.Fatalf("messages %+v, want an update with 4 withheld", msgs)
	}
}
