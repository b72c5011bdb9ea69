package dashboard

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/netsentinel/netsentinel/internal/event"
	"github.com/netsentinel/netsentinel/internal/report"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is a settable time source.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

var t0 = time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC)

func newTestState(t testing.TB, o Options) (*state, *fakeClock) {
	t.Helper()
	c := &fakeClock{t: t0}
	o.Now = c.now
	o.fill()
	return newState(o), c
}

func alertJSON(id int, attack, category, src, dst string, at time.Time) []byte {
	m := map[string]any{"time": at, "topic": "in", "partition": id % 3, "offset": id, "attack": attack, "category": category,
		"probability": 0.9, "novelty": 0.1, "flagged_by": "classifier", "instance": "d1",
		"features": map[string]any{"duration": 0, "service": "http", "src_bytes": id}}
	if src != "" {
		m["src_ip"] = src
	}
	if dst != "" {
		m["dst_ip"] = dst
	}
	b, _ := json.Marshal(m)
	return b
}

func TestSummaryCountsAndSpans(t *testing.T) {
	s, c := newTestState(t, Options{})
	// Two instances, one minute each, 10 minutes ago and 2 hours ago.
	s.addStats(event.Stats{Minute: t0.Add(-10 * time.Minute), Instance: "a", Records: 100,
		ByCategory: map[string]int64{"normal": 90, "dos": 10}, ByAttack: map[string]int64{"neptune": 10}, DeadLetters: 2}, t0.Add(-9*time.Minute))
	s.addStats(event.Stats{Minute: t0.Add(-10 * time.Minute), Instance: "b", Records: 50,
		ByCategory: map[string]int64{"normal": 45, "unknown": 5}}, t0.Add(-9*time.Minute))
	s.addStats(event.Stats{Minute: t0.Add(-2 * time.Hour), Instance: "a", Records: 1000,
		ByCategory: map[string]int64{"normal": 1000}}, t0.Add(-2*time.Hour))
	s.addStats(event.Stats{Minute: t0.Add(-30 * time.Second), Instance: "a", Records: 600,
		ByCategory: map[string]int64{"normal": 540, "probe": 60}, ByAttack: map[string]int64{"satan": 60}}, t0.Add(-time.Second))
	c.t = t0.Add(-time.Second)

	for _, tc := range []struct {
		span                               string
		records, attacks, unknown, dead    int64
		buckets                            int
		recordsPerSecond, attacksPerSecond float64
	}{
		{"5m", 600, 60, 0, 0, 5, 10, 1},
		{"1h", 750, 75, 5, 2, 12, 10, 1},
		{"24h", 1750, 75, 5, 2, 24, 10, 1},
	} {
		span, _ := spanByName(tc.span)
		sum, err := s.summary(span, c.t)
		if err != nil {
			t.Fatal(err)
		}
		got := []any{sum.Records, sum.Attacks, sum.Unknown, sum.DeadLetters, len(sum.Buckets), sum.RecordsPerSecond, sum.AttacksPerSecond}
		want := []any{tc.records, tc.attacks, tc.unknown, tc.dead, tc.buckets, tc.recordsPerSecond, tc.attacksPerSecond}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("span %s: records, attacks, unknown, dead, buckets, rates (-want +got):\n%s", tc.span, d)
		}
	}
}

func TestSummaryMarksSpikes(t *testing.T) {
	s, c := newTestState(t, Options{})
	// An hour of 1% attacks per minute, then a minute of 50%.
	for i := 60; i >= 1; i-- {
		m := t0.Add(-time.Duration(i) * time.Minute)
		s.addStats(event.Stats{Minute: m, Instance: "a", Records: 1000, ByCategory: map[string]int64{"normal": 990, "dos": 10},
			ByAttack: map[string]int64{"neptune": 10}}, m.Add(time.Minute))
	}
	s.addStats(event.Stats{Minute: t0, Instance: "a", Records: 1000, ByCategory: map[string]int64{"normal": 500, "dos": 500},
		ByAttack: map[string]int64{"smurf": 500}}, t0.Add(30*time.Second))
	// Alerts of the spike's minute name what drove them; one before it
	// does not count.
	for i := range 4 {
		var m map[string]any
		_ = json.Unmarshal(alertJSON(i, "smurf", "dos", "", "", t0.Add(time.Duration(i)*time.Second)), &m)
		m["explanation"] = []map[string]any{{"feature": "count", "value": 511, "typical": 2, "contribution": 0.5}, {"feature": "src_bytes"}}
		if i == 3 {
			m["time"] = t0.Add(-time.Minute)
		}
		b, _ := json.Marshal(m)
		if err := s.addAlert(b); err != nil {
			t.Fatal(err)
		}
	}
	c.t = t0.Add(30 * time.Second)
	sum, err := s.summary(Spans[0], c.t)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Spikes) != 1 || !sum.Spikes[0].Start.Equal(t0) || sum.Spikes[0].Drivers[0].Name != "smurf" {
		t.Fatalf("spikes = %+v, want one at %v driven by smurf", sum.Spikes, t0)
	}
	if d := cmp.Diff([]report.AttackCount{{Name: "count", Count: 3}, {Name: "src_bytes", Count: 3}}, sum.Spikes[0].Features); d != "" {
		t.Errorf("spike features (-want +got):\n%s", d)
	}
	var marked int
	for _, b := range sum.Buckets {
		if b.Spike {
			marked++
			if !b.Start.Equal(t0) {
				t.Errorf("bucket %v marked as a spike", b.Start)
			}
		}
	}
	if marked != 1 {
		t.Errorf("%d buckets marked, want 1", marked)
	}
}

func TestAlertsFilterAndPage(t *testing.T) {
	s, _ := newTestState(t, Options{MaxAlerts: 10})
	for i := 1; i <= 25; i++ {
		attack, cat := "neptune", "dos"
		if i%5 == 0 {
			attack, cat = "satan", "probe"
		}
		src := fmt.Sprintf("10.0.0.%d", i%4)
		if err := s.addAlert(alertJSON(i, attack, cat, src, "192.0.2.1", t0)); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(p AlertPage) []uint64 {
		var out []uint64
		for _, a := range p.Alerts {
			out = append(out, a.ID)
		}
		return out
	}
	f := func(q AlertQuery, want []uint64, matching int, next uint64) {
		t.Helper()
		if q.Limit == 0 {
			q.Limit = 50
		}
		p := s.queryAlerts(q)
		if d := cmp.Diff(want, ids(p)); d != "" || p.Matching != matching || p.Next != next || p.Kept != 10 || p.Total != 25 {
			t.Errorf("query %+v: ids (-want +got) %s; matching %d want %d; next %d want %d; kept %d total %d",
				q, d, p.Matching, matching, p.Next, next, p.Kept, p.Total)
		}
	}
	f(AlertQuery{}, []uint64{25, 24, 23, 22, 21, 20, 19, 18, 17, 16}, 10, 0)
	f(AlertQuery{Limit: 3}, []uint64{25, 24, 23}, 10, 23)
	f(AlertQuery{Limit: 3, Before: 23}, []uint64{22, 21, 20}, 10, 20)
	f(AlertQuery{Before: 17}, []uint64{16}, 10, 0)
	f(AlertQuery{Category: "probe"}, []uint64{25, 20}, 2, 0)
	f(AlertQuery{Attack: "satan", Limit: 1}, []uint64{25}, 2, 25)
	f(AlertQuery{Addr: "10.0.0.1"}, []uint64{25, 21, 17}, 3, 0)
	f(AlertQuery{Addr: "192.0.2."}, []uint64{25, 24, 23, 22, 21, 20, 19, 18, 17, 16}, 10, 0)
	f(AlertQuery{Text: "SATAN"}, []uint64{25, 20}, 2, 0)
	f(AlertQuery{Text: "nothing"}, nil, 0, 0)

	if _, ok := s.alert(15); ok {
		t.Error("alert 15 is still kept, but only the newest 10 should be")
	}
	a, ok := s.alert(16)
	if !ok || a.offset != 16 {
		t.Fatalf("alert 16 = %+v, %v", a, ok)
	}
	for _, id := range []uint64{0, 26, 1 << 63} {
		if _, ok := s.alert(id); ok {
			t.Errorf("alert(%d) found", id)
		}
	}
}

func TestOutOfRangeCounted(t *testing.T) {
	s, c := newTestState(t, Options{})
	for _, m := range []time.Time{t0.Add(-40 * time.Hour), t0.Add(2 * time.Hour), t0.Add(-time.Minute)} {
		s.addStats(event.Stats{Minute: m, Instance: "a", Records: 10, ByCategory: map[string]int64{"normal": 10}}, t0)
		if err := s.addAlert(alertJSON(1, "neptune", "dos", "10.0.0.1", "", m)); err != nil {
			t.Fatal(err)
		}
	}
	h := s.health(c.t)
	if h.Reader.OutOfRange != 4 || h.Reader.Stats != 3 || h.Reader.Alerts != 3 {
		t.Errorf("reader = %+v, want 4 out of range of 3 statistics and 3 alerts", h.Reader)
	}
	if n := len(s.agg.Series()); n != 1 {
		t.Errorf("%d minutes kept, want 1", n)
	}
	if n := len(s.addrs); n != 1 {
		t.Errorf("address counts for %d minutes, want 1", n)
	}
}

func TestTopAddressesBounded(t *testing.T) {
	s, c := newTestState(t, Options{MaxAddresses: 3, TopAddresses: 2})
	for i := range 10 {
		src := fmt.Sprintf("10.0.0.%d", i)
		for range i + 1 {
			if err := s.addAlert(alertJSON(i, "neptune", "dos", src, "", t0)); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.t = t0.Add(time.Second)
	sum, err := s.summary(Spans[0], c.t)
	if err != nil {
		t.Fatal(err)
	}
	// The first three addresses (1, 2 and 3 alerts) are counted by name, the
	// other 49 alerts as untracked.
	want := []AddressCount{{"10.0.0.2", 3}, {"10.0.0.1", 2}}
	if d := cmp.Diff(want, sum.TopSources); d != "" || sum.UntrackedSources != 49 || len(sum.TopTargets) != 0 {
		t.Errorf("top sources (-want +got):\n%s\nuntracked %d, targets %v", d, sum.UntrackedSources, sum.TopTargets)
	}
}

func TestDecodeAlertTolerant(t *testing.T) {
	intern := func(s string) string { return s }
	for _, tc := range []struct {
		name             string
		in               string
		src, dst         string
		srcPort, dstPort int32
		category         string
		err              bool
	}{
		{"plain", `{"attack":"neptune","category":"dos"}`, "", "", -1, -1, "dos", false},
		{"addresses", `{"attack":"neptune","src_ip":"10.0.0.1","dst_ip":"::1","src_port":1234,"dst_port":"80"}`, "10.0.0.1", "::1", 1234, 80, "dos", false},
		{"odd types", `{"attack":"satan","src_ip":17,"dst_ip":null,"src_port":"http","dst_port":70000,"ts":"x","uid":5}`, "", "", -1, -1, "probe", false},
		{"fraction port", `{"attack":"satan","src_port":1.5,"dst_port":-1}`, "", "", -1, -1, "probe", false},
		{"array", `[1,2]`, "", "", 0, 0, "", true},
		{"bad type", `{"partition":"x"}`, "", "", 0, 0, "", true},
		{"truncated", `{"attack":`, "", "", 0, 0, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := decodeAlert([]byte(tc.in), intern)
			if tc.err {
				if err == nil {
					t.Fatalf("decodeAlert(%s) = nil error", tc.in)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := []any{a.src, a.dst, a.srcPort, a.dstPort, a.category}
			if d := cmp.Diff([]any{tc.src, tc.dst, tc.srcPort, tc.dstPort, tc.category}, got); d != "" {
				t.Errorf("src, dst, ports, category (-want +got):\n%s", d)
			}
		})
	}
}

func TestAlertDetail(t *testing.T) {
	raw := `{"time":"2026-11-26T13:59:00Z","topic":"in","partition":2,"offset":77,"attack":"ipsweep","category":"probe",
		"probability":0.8,"attack_probability":0.95,"novelty":0.6,"flagged_by":"novelty","novelty_features":["count","src_bytes"],
		"explanation":[{"feature":"flag","value":3,"typical":9,"contribution":0.2},{"name":"bad"},7],
		"class_probabilities":{"ipsweep":0.8,"nmap":0.15,"normal":0.05},
		"features":{"src_bytes":10,"duration":0,"flag":"SF","count":3,"zz_extra":1},"instance":"d","label":"ipsweep","src_ip":"10.1.1.1","why":{"a":1}}`
	a, err := decodeAlert([]byte(raw), func(s string) string { return s })
	if err != nil {
		t.Fatal(err)
	}
	d := a.detail()
	var names, standout []string
	for _, f := range d.Features {
		names = append(names, f.Name)
		if f.Standout {
			standout = append(standout, f.Name)
		}
	}
	if diff := cmp.Diff([]string{"duration", "flag", "src_bytes", "count", "zz_extra"}, names); diff != "" {
		t.Errorf("feature order (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"flag", "src_bytes", "count"}, standout); diff != "" {
		t.Errorf("standout features (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Reason{{"flag", 3, 9, 0.2}}, d.Reasons); diff != "" {
		t.Errorf("reasons (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]ClassProbability{{"ipsweep", 0.8}, {"nmap", 0.15}, {"normal", 0.05}}, d.TopClasses); diff != "" {
		t.Errorf("top classes (-want +got):\n%s", diff)
	}
	if d.Offset != 77 || d.Partition != 2 || d.Topic != "in" || d.AttackProbability != 0.95 || d.Label != "ipsweep" || d.Src != "10.1.1.1" {
		t.Errorf("detail = %+v", d)
	}
	if diff := cmp.Diff(map[string]string{"why": `{"a":1}`}, d.Extra); diff != "" {
		t.Errorf("extra (-want +got):\n%s", diff)
	}
}

func TestDeadLettersEscapedAndCut(t *testing.T) {
	s, _ := newTestState(t, Options{MaxDeadLetters: 2, MaxDeadLetterBytes: 8})
	for i, v := range [][]byte{[]byte("first"), []byte("a\\b\n\x00\xff<script>"), []byte("ok")} {
		b, _ := json.Marshal(event.DeadLetter{Offset: int64(i), Reason: "bad", Value: v})
		if err := s.addDeadLetter(b); err != nil {
			t.Fatal(err)
		}
	}
	p := s.queryDeadLetters(0, 10)
	if p.Total != 3 || p.Kept != 2 || len(p.DeadLetters) != 2 {
		t.Fatalf("page = %+v", p)
	}
	got := p.DeadLetters[1]
	if got.Value != `a\\b\n\x00\xff<s` || got.Size != 14 || got.Shown != 8 {
		t.Errorf("dead letter value %q size %d shown %d, want the first 8 of 14 bytes escaped", got.Value, got.Size, got.Shown)
	}
	if p := s.queryDeadLetters(3, 1); len(p.DeadLetters) != 1 || p.DeadLetters[0].Offset != 1 || p.Next != 0 {
		t.Errorf("second page = %+v", p)
	}
	if err := s.addDeadLetter([]byte(`{"value":"not base64!"}`)); err == nil {
		t.Error("dead letter with a bad value decoded")
	}
}

func TestHealthBanners(t *testing.T) {
	s, c := newTestState(t, Options{Group: "g", SilentAfter: time.Minute})
	texts := func() string {
		var out []string
		for _, b := range s.health(c.t).Banners {
			out = append(out, b.Level+": "+b.Text)
		}
		return strings.Join(out, "\n")
	}
	if got := texts(); got != "" {
		t.Errorf("banners at start = %q", got)
	}
	if g := s.health(c.t).Group; g.Name != "g" || g.Members == nil || g.Partitions == nil {
		t.Errorf("group before the first poll = %+v, want the name and empty lists", g)
	}
	s.setBroker(errors.New("dial tcp 127.0.0.1:9: connection refused"))
	if got := texts(); !strings.Contains(got, "error: Cannot reach the Kafka brokers since 2026-11-26 14:00:00 UTC: dial tcp") {
		t.Errorf("banners with the broker down = %q", got)
	}
	s.setBroker(nil)
	s.setGroup(GroupStatus{Name: "g", State: "Empty", PolledAt: c.t})
	if got := texts(); got != "error: No detector is running: consumer group g has no members (state Empty)." {
		t.Errorf("banners with an empty group = %q", got)
	}
	s.setGroup(GroupStatus{Name: "g", State: "Stable", PolledAt: c.t, Members: []Member{{ID: "m1"}},
		Partitions: []PartitionLag{{Topic: "in", Partition: 0, Committed: 5, End: 9, Lag: 4}}, TotalLag: 4})
	s.addStats(event.Stats{Minute: c.t, Instance: "d1", Records: 60}, c.t)
	c.t = c.t.Add(90 * time.Second)
	want := "warning: No detector has reported for over 1m0s (since 2026-11-26 14:00:00 UTC). 1 detector(s) in group g; 4 records waiting: the detectors are stuck or failing."
	if got := texts(); got != want {
		t.Errorf("banners after silence = %q\nwant %q", got, want)
	}
	h := s.health(c.t)
	if len(h.Instances) != 1 || h.Instances[0].Status != "silent" {
		t.Errorf("instances = %+v", h.Instances)
	}
	// A new committed offset is stamped with the poll that saw it.
	s.setGroup(GroupStatus{Name: "g", State: "Stable", PolledAt: c.t, Members: []Member{{ID: "m1"}},
		Partitions: []PartitionLag{{Topic: "in", Partition: 0, Committed: 9, End: 9}}})
	if p := s.health(c.t).Group.Partitions[0]; !p.LastCommit.Equal(c.t) {
		t.Errorf("last commit = %v, want %v", p.LastCommit, c.t)
	}
}
