package scenario

import (
	"fmt"
	"strings"
	"testing"
)

// verdictLines writes n verdict lines from src to dst starting at ts,
// flagged or not, with uids prefix0, prefix1...
func verdictLines(b *strings.Builder, n int, prefix, src, dst string, ts float64, flagged bool) {
	for i := range n {
		fmt.Fprintf(b, `{"ts":%v,"uid":"%s%d","src_ip":%q,"dst_ip":%q,"is_attack":%v,"category":"dos","flagged_by":"classifier"}`+"\n",
			ts, prefix, i, src, dst, flagged)
	}
}

func testResult() *Result {
	return &Result{
		Roles:   map[string]string{"127.0.20.1": RoleNormal, "127.0.30.3": "hping3-syn-flood"},
		Periods: []Period{{Role: "hping3-syn-flood", Start: 100, End: 110}},
	}
}

func TestScoreVerdicts(t *testing.T) {
	var b strings.Builder
	verdictLines(&b, 10, "a", "127.0.20.1", "127.0.10.1", 50, false)             // before: outside
	verdictLines(&b, 30, "b", "127.0.30.3", "127.0.10.1", 105, true)             // the flood
	verdictLines(&b, 5, "c", "127.0.20.1", "127.0.10.1", 106, true)              // during
	verdictLines(&b, HostWindow+20, "d", "127.0.20.1", "127.0.10.1", 120, false) // after the flood
	verdictLines(&b, 3, "e", "127.0.10.1", "127.0.30.3", 107, true)              // replies to the flood: its role
	verdictLines(&b, 2, "f", "127.0.0.1", "127.0.0.1", 108, false)               // no actor's
	ts, err := ScoreVerdicts(strings.NewReader(b.String()), testResult())
	if err != nil {
		t.Fatal(err)
	}
	f := func(role string, conns, flagged int) {
		t.Helper()
		if got := ts[role]; got == nil || got.Conns != conns || got.Flagged != flagged {
			t.Errorf("%s: %v; want %d connections, %d flagged", role, got, conns, flagged)
		}
	}
	f(RoleNormal, 10+5+HostWindow+20, 5)
	// The 5 "c" and the first HostWindow-1-5 "d" connections have a flood
	// connection in their host window (itself and the HostWindow-1 before).
	f(NormalDuring, HostWindow-1, 5)
	f(NormalOutside, 10+HostWindow+20-(HostWindow-1-5), 0)
	f("hping3-syn-flood", 33, 33)
	f(RoleOther, 2, 0)
	if got := ts["hping3-syn-flood"].ByCategory["dos"]; got != 33 {
		t.Errorf("hping3-syn-flood: %d dos, want 33", got)
	}

	if _, err := ScoreVerdicts(strings.NewReader(`{"line":3,"error":"bad"}`+"\n"), testResult()); err == nil {
		t.Error("ScoreVerdicts of an error line: nil error, want one")
	}
}

func TestScoreLive(t *testing.T) {
	var records, alerts strings.Builder
	verdictLines(&records, 4, "n", "127.0.20.1", "127.0.10.1", 50, false)
	verdictLines(&records, 6, "h", "127.0.30.3", "127.0.10.1", 105, false)
	verdictLines(&alerts, 1, "n", "127.0.20.1", "127.0.10.1", 50, true)
	verdictLines(&alerts, 6, "h", "127.0.30.3", "127.0.10.1", 105, true)
	ts, err := ScoreLive(strings.NewReader(records.String()), strings.NewReader(alerts.String()), testResult())
	if err != nil {
		t.Fatal(err)
	}
	if n, h := ts[RoleNormal], ts["hping3-syn-flood"]; n.Conns != 4 || n.Flagged != 1 || h.Conns != 6 || h.Flagged != 6 {
		t.Errorf("normal %v, flood %v; want 1 of 4 and 6 of 6 flagged", n, h)
	}
	if o := ts[NormalOutside]; o == nil || o.Flagged != 1 {
		t.Errorf("normal outside attacks: %v; want 1 flagged", o)
	}
	// After a learning period, only what started once the learned model
	// scored counts: here the flood, not the users' earlier connections.
	learned := testResult()
	learned.Learned = 100
	ts, err = ScoreLive(strings.NewReader(records.String()), strings.NewReader(alerts.String()), learned)
	if err != nil {
		t.Fatal(err)
	}
	if n, h := ts[RoleNormal], ts["hping3-syn-flood"]; n != nil || h == nil || h.Flagged != 6 {
		t.Errorf("learned at 100: normal %v, flood %v; want no normal connection, 6 of 6 flood ones flagged", n, h)
	}
	// An alert for no record, or a repeated one, is an error.
	for _, extra := range []string{`{"uid":"x9","src_ip":"127.0.20.1"}`, `{"uid":"h0","src_ip":"127.0.30.3"}`} {
		_, err := ScoreLive(strings.NewReader(records.String()), strings.NewReader(alerts.String()+extra+"\n"), testResult())
		if err == nil {
			t.Errorf("alert %s: nil error, want one", extra)
		}
	}
}

func TestAlertDelays(t *testing.T) {
	alerts := `{"ts":100.5,"features":{"duration":2}}
{"ts":200,"features":{"duration":0}}
`
	d, err := AlertDelays(strings.NewReader(alerts), strings.NewReader("110500\n201250\n"))
	if err != nil || len(d) != 2 || d[0] != 1.25 || d[1] != 8 {
		t.Errorf("AlertDelays = %v, %v; want [1.25 8]", d, err)
	}
	if _, err := AlertDelays(strings.NewReader(alerts), strings.NewReader("110500\n")); err == nil {
		t.Error("AlertDelays with a timestamp missing: nil error, want one")
	}
}
