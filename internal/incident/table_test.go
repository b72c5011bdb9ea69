package incident

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/netsentinel/netsentinel/internal/event"
)

var t0 = time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func newTestTable() *Table {
	return NewTable(Config{Topic: "in", Partition: 3, Instance: "x", UpdateInterval: 5 * time.Second, QuietPeriod: 20 * time.Second})
}

func TestKeyOf(t *testing.T) {
	f := func(v *Verdict, want Key) {
		t.Helper()
		if got := KeyOf(v); got != want {
			t.Errorf("KeyOf(%s %s->%s) = %+v, want %+v", v.Attack, v.Identity.SrcIP, v.Identity.DstIP, got, want)
		}
	}
	f(verdict("smurf", "1.1.1.1", "2.2.2.2", t0), Key{Attack: "smurf", Src: "1.1.1.1", Dst: "2.2.2.2"})
	f(verdict("portsweep", "1.1.1.1", "2.2.2.2", t0), Key{Attack: "portsweep", Src: "1.1.1.1"}) // probes sweep destinations
	f(verdict("portsweep", "", "2.2.2.2", t0), Key{Attack: "portsweep", Dst: "2.2.2.2"})
	f(verdict("neptune", "", "", t0), Key{Attack: "neptune", Service: "http", Flag: "SF"})
}

// TestLifecycle follows one incident from its first verdict to its close,
// and a second one opened by the same key afterwards.
func TestLifecycle(t *testing.T) {
	tb := newTestTable()
	obs := func(s float64, off int64, src string) Decision {
		v := verdict("smurf", src, "10.0.0.9", at(s))
		v.Offset = off
		v.Identity.DstPort = int32(off % 3)
		return tb.Observe(v, nil, at(s))
	}
	if d := obs(0, 100, "1.1.1.1"); d.Outcome != OutcomeOpened {
		t.Fatalf("first verdict: %v, want opened", d.Outcome)
	}
	why := []event.Reason{{Feature: "count", Value: 511, Typical: 2, Contribution: 0.7}}
	tb.Get(Key{Attack: "smurf", Src: "1.1.1.1", Dst: "10.0.0.9"}).Explanation = why
	if d := obs(0.5, 101, "1.1.1.1"); d.Outcome != OutcomeJoined {
		t.Fatalf("second verdict: %v, want joined", d.Outcome)
	}
	msgs := tb.Due(at(0.5))
	if len(msgs) != 1 || msgs[0].Status != event.IncidentOpened || msgs[0].Seq != 1 || msgs[0].Count != 2 || msgs[0].ID != "in/3/100" {
		t.Fatalf("first Due: %+v", msgs)
	}
	// More verdicts within UpdateInterval: no message yet.
	for i := range 10 {
		obs(1+float64(i)/10, int64(102+i), "1.1.1.1")
	}
	if msgs := tb.Due(at(2)); len(msgs) != 0 {
		t.Fatalf("Due within the update interval: %+v", msgs)
	}
	if msgs := tb.Due(at(5.4)); len(msgs) != 0 {
		t.Fatalf("Due at 4.9s after the last message: %+v", msgs)
	}
	msgs = tb.Due(at(5.5))
	if len(msgs) != 1 || msgs[0].Status != event.IncidentUpdated || msgs[0].Seq != 2 || msgs[0].Count != 12 {
		t.Fatalf("update: %+v", msgs)
	}
	want := event.Incident{
		ID: "in/3/100", Seq: 2, Status: "updated", Topic: "in", Partition: 3, Attack: "smurf", Category: "dos",
		Src: "1.1.1.1", Dst: "10.0.0.9", FirstSeen: at(0), LastSeen: at(1.9), Count: 12, Rate: 12 / 1.9,
		MaxProbability: 0.9, TopSources: []event.Count{{Value: "1.1.1.1", Count: 12}}, TopDestinations: []event.Count{{Value: "10.0.0.9", Count: 12}},
		TopPorts:    []event.Count{{Value: "0", Count: 4}, {Value: "1", Count: 4}, {Value: "2", Count: 4}},
		TopServices: []event.Count{{Value: "http", Count: 12}}, Samples: []int64{100, 101, 102, 103, 104}, Updated: at(5.5), Instance: "x",
		Explanation: why,
	}
	if d := cmp.Diff(want, msgs[0]); d != "" {
		t.Errorf("update message (-want +got):\n%s", d)
	}
	// Nothing new: no update, however long we wait, until the close.
	if msgs := tb.Due(at(15)); len(msgs) != 0 {
		t.Fatalf("Due without news: %+v", msgs)
	}
	msgs = tb.Due(at(1.9 + 20))
	if len(msgs) != 1 || msgs[0].Status != event.IncidentClosed || msgs[0].Seq != 3 || msgs[0].Count != 12 {
		t.Fatalf("close: %+v", msgs)
	}
	if tb.Open() != 0 {
		t.Fatalf("%d open after close", tb.Open())
	}
	if d := obs(30, 500, "1.1.1.1"); d.Outcome != OutcomeOpened {
		t.Fatalf("verdict after close: %v, want opened", d.Outcome)
	}
	if msgs := tb.Due(at(30)); len(msgs) != 1 || msgs[0].ID != "in/3/500" || msgs[0].Seq != 1 {
		t.Fatalf("reopened: %+v", msgs)
	}
}

func TestGroupingSeparatesKeys(t *testing.T) {
	tb := newTestTable()
	var off int64
	add := func(attack, src, dst string) {
		off++
		v := verdict(attack, src, dst, at(0))
		v.Offset = off
		tb.Observe(v, nil, at(0))
	}
	for range 3 {
		add("smurf", "1.1.1.1", "2.2.2.2")
		add("smurf", "1.1.1.1", "3.3.3.3")
		add("neptune", "1.1.1.1", "2.2.2.2")
		add("satan", "4.4.4.4", "5.5.5.5")
		add("satan", "4.4.4.4", "6.6.6.6") // same probe incident
		add("back", "", "")
	}
	msgs := tb.Due(at(0))
	got := map[string]int64{}
	for _, m := range msgs {
		got[m.Attack+" "+m.Src+" "+m.Dst+" "+m.Service] = m.Count
	}
	want := map[string]int64{"smurf 1.1.1.1 2.2.2.2 ": 3, "smurf 1.1.1.1 3.3.3.3 ": 3, "neptune 1.1.1.1 2.2.2.2 ": 3,
		"satan 4.4.4.4  ": 6, "back   http": 3}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("incidents (-want +got):\n%s", d)
	}
	for _, m := range msgs {
		if m.Attack == "satan" && (len(m.TopDestinations) != 2 || m.TopDestinations[0].Count != 3) {
			t.Errorf("probe destinations: %+v", m.TopDestinations)
		}
	}
}

func TestRulesInTable(t *testing.T) {
	r := mustRules(t, `
allow:
  - {name: backup, hosts: [10.9.9.9], reason: backups}
suppressions:
  - {name: scanner, match: {attack: satan, src: 10.0.0.5}, reason: our scanner}
  - {name: old, match: {attack: back}, reason: expired, expires: 2020-01-01}
thresholds:
  - {name: smurf-limit, match: {attack: smurf}, type: limit, track: by_src, count: 2, seconds: 10, reason: flood}
`)
	tb := newTestTable()
	byRule := map[string]int{}
	grouped := 0
	obs := func(attack, src string, s float64) {
		v := verdict(attack, src, "10.0.0.1", at(s))
		d := tb.Observe(v, r, at(s))
		if d.Outcome.Withheld() {
			byRule[d.Rule]++
			if d.Rule == "" {
				t.Errorf("withheld without a rule: %+v", d)
			}
		} else {
			grouped++
		}
	}
	for i := range 5 {
		obs("smurf", "1.1.1.1", float64(i)) // 2 pass
		obs("smurf", "2.2.2.2", float64(i)) // 2 pass: tracked by source
		obs("satan", "10.0.0.5", float64(i))
		obs("satan", "10.0.0.6", float64(i))
		obs("back", "10.9.9.9", float64(i)) // allowed
		obs("back", "3.3.3.3", float64(i))  // expired suppression: grouped
	}
	for i := range 5 {
		obs("smurf", "1.1.1.1", float64(i)+10) // a new window: 2 pass
	}
	want := map[string]int{"smurf-limit": 3 + 3 + 3, "scanner": 5, "backup": 5}
	if d := cmp.Diff(want, byRule); d != "" {
		t.Errorf("withheld by rule (-want +got):\n%s", d)
	}
	if grouped != 35-19 {
		t.Errorf("grouped %d, want %d", grouped, 35-19)
	}
}

func TestMaxOpenEvicts(t *testing.T) {
	tb := NewTable(Config{Topic: "in", MaxOpen: 3})
	for i := range 5 {
		v := verdict("smurf", fmt.Sprintf("1.1.1.%d", i), "2.2.2.2", at(float64(i)))
		v.Offset = int64(i)
		tb.Observe(v, nil, at(float64(i)))
	}
	if tb.Open() != 3 || tb.Evicted() != 2 {
		t.Fatalf("open %d evicted %d, want 3 and 2", tb.Open(), tb.Evicted())
	}
	msgs := tb.Due(at(5))
	var closed []string
	for _, m := range msgs {
		if m.Status == event.IncidentClosed {
			closed = append(closed, m.ID)
		}
	}
	if d := cmp.Diff([]string{"in/0/0", "in/0/1"}, closed); d != "" {
		t.Errorf("closed (-want +got):\n%s", d)
	}
}

// TestRestore checks that a table rebuilt from its changelog behaves like
// the original: same open incidents, same next messages, same threshold
// windows.
func TestRestore(t *testing.T) {
	r := mustRules(t, `
thresholds:
  - {name: lim, match: {attack: neptune}, type: limit, count: 3, seconds: 100, reason: r}
`)
	a := newTestTable()
	log := map[string][]byte{} // a compacted changelog
	commit := func() {
		for _, c := range a.Changes() {
			if c.Value == nil {
				delete(log, string(c.Key))
			} else {
				log[string(c.Key)] = c.Value
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	attacks := []string{"smurf", "neptune", "satan", "back"}
	off := int64(0)
	for step := range 40 {
		now := at(float64(step))
		for range rng.IntN(20) {
			off++
			v := verdict(attacks[rng.IntN(len(attacks))], fmt.Sprintf("10.0.0.%d", rng.IntN(4)), "10.1.0.1", now)
			v.Offset = off
			v.Features = []string{"src_bytes", "count"}[:rng.IntN(3)]
			a.Observe(v, r, now)
		}
		a.Due(now)
		commit()
	}
	b := newTestTable()
	for k, v := range log {
		if err := b.Apply([]byte(k), v); err != nil {
			t.Fatal(err)
		}
	}
	if d := cmp.Diff(a.open, b.open); d != "" {
		t.Fatalf("restored incidents (-orig +restored):\n%s", d)
	}
	if d := cmp.Diff(a.trackers, b.trackers, cmp.AllowUnexported(tracker{})); d != "" {
		t.Fatalf("restored trackers (-orig +restored):\n%s", d)
	}
	for _, s := range []float64{41, 47, 70} {
		now := at(s)
		v := verdict("neptune", "10.0.0.1", "10.1.0.1", now)
		da, db := a.Observe(v, r, now), b.Observe(v, r, now)
		if da != db {
			t.Errorf("at %v: original %+v, restored %+v", s, da, db)
		}
		if d := cmp.Diff(a.Due(now), b.Due(now)); d != "" {
			t.Errorf("Due at %v (-orig +restored):\n%s", s, d)
		}
	}
}

// TestCrashReplay simulates the detector around a table: batches of
// verdicts, each committed with its messages and changelog entries, or
// lost in a crash (state discarded, table restored from the committed
// changelog, batch redelivered). The committed messages must number every
// incident's updates 1, 2, 3... without gap or repeat, and the incidents'
// final counts must add up to the grouped verdicts.
func TestCrashReplay(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	log := map[string][]byte{}
	var published []event.Incident
	restore := func() *Table {
		tb := newTestTable()
		for k, v := range log {
			if err := tb.Apply([]byte(k), v); err != nil {
				t.Fatal(err)
			}
		}
		return tb
	}
	tb := restore()
	attacks := []string{"smurf", "neptune", "satan", "back", "teardrop"}
	var off int64
	var verdicts int64
	crashes := 0
	for batch := 0; batch < 300; {
		now := at(float64(batch) * 0.7)
		n := rng.IntN(30)
		vs := make([]*Verdict, n)
		for i := range vs {
			vs[i] = verdict(attacks[rng.IntN(len(attacks))], fmt.Sprintf("10.0.%d.1", rng.IntN(3)), "10.1.0.1", now)
			vs[i].Offset = off + int64(i)
		}
		if batch > 100 && batch < 150 {
			n = 0 // a quiet spell: incidents close
			vs = nil
		}
		for _, v := range vs {
			tb.Observe(v, nil, now)
		}
		msgs := tb.Due(now)
		changes := tb.Changes()
		if rng.IntN(5) == 0 {
			crashes++
			tb = restore()
			continue // the same batch again
		}
		published = append(published, msgs...)
		for _, c := range changes {
			if c.Value == nil {
				delete(log, string(c.Key))
			} else {
				log[string(c.Key)] = c.Value
			}
		}
		off += int64(n)
		verdicts += int64(n)
		batch++
	}
	for len(tb.open) > 0 { // let everything close
		published = append(published, tb.Due(at(1e6))...)
	}
	lastSeq := map[string]int64{}
	final := map[string]int64{}
	var total int64
	for _, m := range published {
		if m.Seq != lastSeq[m.ID]+1 {
			t.Fatalf("incident %s: message seq %d after %d", m.ID, m.Seq, lastSeq[m.ID])
		}
		if (m.Seq == 1) != (m.Status == event.IncidentOpened) {
			t.Fatalf("incident %s: seq %d has status %s", m.ID, m.Seq, m.Status)
		}
		lastSeq[m.ID] = m.Seq
		if m.Status == event.IncidentClosed {
			final[m.ID] = m.Count
			total += m.Count
		}
	}
	if len(final) != len(lastSeq) {
		t.Errorf("%d incidents, %d closed", len(lastSeq), len(final))
	}
	if total != verdicts {
		t.Errorf("closed incidents count %d verdicts, %d were grouped", total, verdicts)
	}
	t.Logf("%d verdicts, %d incidents, %d messages, %d crashes", verdicts, len(final), len(published), crashes)
	if crashes == 0 {
		t.Error("no crash simulated")
	}
}

func TestOutcomeString(t *testing.T) {
	seen := map[string]bool{}
	for o := OutcomeUnknown; o <= OutcomeThresholded; o++ {
		s := o.String()
		if seen[s] {
			t.Errorf("%d: duplicate name %q", o, s)
		}
		seen[s] = true
	}
	if Outcome(99).String() != "unknown" {
		t.Error("out of range outcome")
	}
}

func TestTopCap(t *testing.T) {
	var tp Top
	for i := range topCap + 10 {
		tp.Add(fmt.Sprint(i))
		tp.Add(fmt.Sprint(i))
	}
	tp.Add("")
	if len(tp.Values) != topCap || tp.Other != 20 {
		t.Errorf("%d values, other %d", len(tp.Values), tp.Other)
	}
	if m := tp.Most(2); len(m) != 2 || m[0].Value != "0" || m[1].Value != "1" {
		t.Errorf("Most(2) = %v", m)
	}
}
