package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"image/png"
	"os"
	"path/filepath"

	"strings"
	"testing"
	"time"

	"github.com/netsentinel/netsentinel/internal/record"
)

var updateExample = flag.String("example-out", "", "write the example report of testdata/planted-spike.txt into `dir` (docs/example-report)")

// knownReport builds a report from fixed counts: 1000 records in one hour,
// 120 dos (neptune 100, smurf 20), 30 probe (satan), 5 unknown.
func knownReport(t *testing.T) *Report {
	t.Helper()
	start := time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC)
	var a Aggregator
	for i := range 10 {
		m := start.Add(time.Duration(i) * time.Minute)
		s := statsMsg(m, "det-a", 100, map[string]int64{})
		switch i {
		case 0:
			s = statsMsg(m, "det-a", 100, map[string]int64{"neptune": 60, "satan": 30})
		case 1:
			s = statsMsg(m, "det-a", 100, map[string]int64{"neptune": 40, "smurf": 20, "unknown": 5})
		}
		s.DeadLetters = 1
		a.Add(s, time.Time{})
	}
	rep, err := Build(a.Series(), Window{Start: start, End: start.Add(time.Hour), Location: time.UTC}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestKnownCounts(t *testing.T) {
	rep := knownReport(t)
	if rep.Records != 1000 || rep.Attacks != 155 || rep.Unknown != 5 || rep.DeadLetters != 10 {
		t.Fatalf("records %d attacks %d unknown %d dead %d, want 1000 155 5 10", rep.Records, rep.Attacks, rep.Unknown, rep.DeadLetters)
	}
	want := map[string]int64{"normal": 845, "dos": 120, "probe": 30, "r2l": 0, "u2r": 0, "unknown": 5}
	for _, c := range rep.Categories {
		if c.Count != want[c.Name] {
			t.Errorf("category %s = %d, want %d", c.Name, c.Count, want[c.Name])
		}
	}
	if dos := rep.Categories[1]; dos.Name != "dos" || len(dos.Attacks) != 2 || dos.Attacks[0].Name != "neptune" || dos.Attacks[0].Count != 100 {
		t.Errorf("dos = %+v, want neptune 100 first, smurf second", dos)
	}
	if len(rep.Buckets) != 12 {
		t.Errorf("%d buckets, want 12 of 5 minutes", len(rep.Buckets))
	}
	if rep.Title != "15.5% attacks (high), 0 spikes, 1 problem" { // det-a went silent at 14:10; 15.5% is above the quiet 10%
		t.Errorf("title %q", rep.Title)
	}
}

func TestChartsDecode(t *testing.T) {
	charts, err := Charts(knownReport(t))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]int{
		"categories.png":    {PieWidth, PieHeight},
		"attacks-dos.png":   {BarWidth, BarHeight},
		"attacks-probe.png": {BarWidth, BarHeight},
		// unknown verdicts are an attack category of their own
		"attacks-unknown.png": {BarWidth, BarHeight},
		"attack-rate.png":     {LineWidth, LineHeight},
	}
	if len(charts) != len(want) {
		var names []string
		for _, c := range charts {
			names = append(names, c.Name)
		}
		t.Fatalf("charts %v, want %d", names, len(want))
	}
	for _, c := range charts {
		size, ok := want[c.Name]
		if !ok {
			t.Errorf("unexpected chart %s", c.Name)
			continue
		}
		img, err := png.Decode(bytes.NewReader(c.PNG))
		if err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		if b := img.Bounds(); b.Dx() != size[0] || b.Dy() != size[1] {
			t.Errorf("%s is %dx%d, want %dx%d", c.Name, b.Dx(), b.Dy(), size[0], size[1])
		}
	}
}

func TestWrite(t *testing.T) {
	rep := knownReport(t)
	dir := t.TempDir()
	charts, err := Write(dir, rep)
	if err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(dir, HTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	html := string(page)
	for _, want := range []string{
		`id="records">1000<`, `id="attacks">155 (15.5%)<`, `id="dead-letters">10<`, `id="spikes">0<`,
		"neptune 100", "satan 30", "data:image/png;base64,", "z ≥ 3.5", "No spikes",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if n := strings.Count(html, "<img "); n != len(charts) {
		t.Errorf("report.html has %d images, want %d", n, len(charts))
	}
	for _, c := range charts {
		if _, err := os.Stat(filepath.Join(dir, c.Name)); err != nil {
			t.Error(err)
		}
	}
	back, err := readSummary(dir)
	if err != nil {
		t.Fatal(err)
	}
	if back.Records != rep.Records || back.Bucket != rep.Bucket || !back.Start.Equal(rep.Start) || len(back.Categories) != 6 || back.Method != rep.Method {
		t.Errorf("summary.json round trip: got %+v", back)
	}
	var raw map[string]any
	b, _ := os.ReadFile(filepath.Join(dir, SummaryFile))
	if err := json.Unmarshal(b, &raw); err != nil || raw["bucket"] != "5m0s" {
		t.Errorf("summary.json bucket = %v (%v), want \"5m0s\"", raw["bucket"], err)
	}
	if m, _ := raw["method"].(map[string]any); m["silent_after"] != "10m0s" || m["spike_z"] != 3.5 {
		t.Errorf("summary.json method = %v", raw["method"])
	}
}

func TestAllQuiet(t *testing.T) {
	start := time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC)
	var a Aggregator
	for i := range 60 {
		a.Add(statsMsg(start.Add(time.Duration(i)*time.Minute), "det-a", 50, nil), time.Time{})
	}
	rep, err := Build(a.Series(), Window{Start: start, End: start.Add(time.Hour)}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Quiet || rep.Title != "all quiet, 0% attacks, 0 spikes" {
		t.Errorf("quiet %v title %q problems %v", rep.Quiet, rep.Title, rep.Problems)
	}
	text := PlainText(rep)
	if !strings.Contains(text, "All quiet") || !strings.Contains(text, "Records scored:  3000") {
		t.Errorf("plain text:\n%s", text)
	}
	var page bytes.Buffer
	charts, _ := Charts(rep)
	if err := WriteHTML(&page, rep, charts, ContentID); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.String(), "All quiet: 3000 records scored") || !strings.Contains(page.String(), `src="cid:attack-rate.png"`) {
		t.Errorf("quiet html lacks the banner or the cid image")
	}
}

func TestEmptyWindow(t *testing.T) {
	start := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	rep, err := Build(nil, Window{Start: start, End: start.Add(24 * time.Hour)}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Quiet || len(rep.Problems) != 1 || len(rep.Buckets) != 24 {
		t.Errorf("empty window: quiet %v problems %v buckets %d", rep.Quiet, rep.Problems, len(rep.Buckets))
	}
	if _, err := Write(t.TempDir(), rep); err != nil {
		t.Errorf("write empty report: %v", err)
	}
	if _, err := Build(nil, Window{Start: start, End: start}, Config{}); err == nil {
		t.Error("empty window: no error")
	}
}

func TestSeriesWindow(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 14, 3, 0, 0, time.UTC)
	w := SeriesWindow([]Minute{{Time: t0.Add(2 * time.Minute)}, {Time: t0}}, time.UTC)
	if !w.Start.Equal(t0) || !w.End.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("SeriesWindow = %v–%v, want 14:03–14:06", w.Start, w.End)
	}
	w = SeriesWindow(nil, time.UTC)
	if w.Duration() != time.Minute {
		t.Errorf("empty SeriesWindow = %v–%v, want one minute", w.Start, w.End)
	}
	if _, err := Build(nil, w, Config{}); err != nil {
		t.Errorf("report of an empty run: %v", err)
	}
}

func TestInstanceHealth(t *testing.T) {
	start := time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC)
	var a Aggregator
	for i := range 60 {
		m := start.Add(time.Duration(i) * time.Minute)
		a.Add(statsMsg(m, "ok", 10, nil), m.Add(time.Minute+2*time.Second))
		if i < 30 {
			a.Add(statsMsg(m, "died", 10, nil), m.Add(time.Minute+2*time.Second))
		}
		a.Add(statsMsg(m, "slow", 10, nil), m.Add(9*time.Minute))
	}
	// Died two hours before the window, in the history read for the
	// baseline: still reported as silent.
	a.Add(statsMsg(start.Add(-2*time.Hour), "gone", 10, nil), time.Time{})
	// Last seen two days ago: decommissioned, not reported.
	a.Add(statsMsg(start.Add(-48*time.Hour), "old", 10, nil), time.Time{})
	rep, err := Build(a.Series(), Window{Start: start, End: start.Add(time.Hour)}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, in := range rep.Instances {
		got[in.Name] = in.Status
	}
	want := map[string]string{"ok": "ok", "died": "silent", "slow": "lagging", "gone": "silent"}
	if len(got) != len(want) {
		t.Errorf("instances %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("instance %s status %q, want %q", k, got[k], v)
		}
	}
	if len(rep.Problems) != 3 || rep.Quiet {
		t.Errorf("problems %v quiet %v, want 3 problems", rep.Problems, rep.Quiet)
	}
}

func TestWindowString(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	at := func(h int) time.Time { return time.Date(2026, 11, 26, h, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		w    Window
		want string
	}{
		{Window{at(14), at(15), nil}, "2026-11-26 14:00–15:00 UTC"},
		{Window{at(0), at(24), time.UTC}, "2026-11-26 00:00–24:00 UTC"},
		{Window{at(13), at(14), berlin}, "2026-11-26 14:00–15:00 CET"},
		{Window{at(0), at(72), nil}, "2026-11-26 00:00 – 2026-11-29 00:00 UTC"},
	} {
		if got := tc.w.String(); got != tc.want {
			t.Errorf("%v–%v: %q, want %q", tc.w.Start, tc.w.End, got, tc.want)
		}
	}
}

func TestPercent(t *testing.T) {
	for in, want := range map[float64]string{0: "0%", 0.0025: "0.25%", 0.032: "3.2%", 1: "100.0%"} {
		if got := Percent(in); got != want {
			t.Errorf("Percent(%v) = %q, want %q", in, got, want)
		}
	}
}

// TestExampleReport renders testdata/example.txt; with -example-out it
// writes it to docs/example-report:
//
//	go test ./internal/report -run TestExampleReport -example-out $PWD/docs/example-report
func TestExampleReport(t *testing.T) {
	sc := parseScenario(t, "testdata/example.txt")
	rep, err := Build(sc.series(), sc.window, Config{})
	if err != nil {
		t.Fatal(err)
	}
	rep.GeneratedAt = sc.window.End.Add(2 * time.Minute)
	dir := *updateExample
	if dir == "" {
		dir = t.TempDir()
	}
	charts, err := Write(dir, rep)
	if err != nil {
		t.Fatal(err)
	}
	var total int
	for _, c := range charts {
		total += len(c.PNG)
	}
	if total > 150<<10 {
		t.Errorf("example charts take %d bytes, want < 150 KB", total)
	}
}

func statsMsg(minute time.Time, instance string, records int64, attacks map[string]int64) eventStats {
	s := eventStats{Minute: minute, Instance: instance, Records: records,
		ByCategory: map[string]int64{}, ByAttack: map[string]int64{}}
	var n int64
	for name, c := range attacks {
		s.ByAttack[name] += c
		s.ByCategory[record.CategoryOf(name).String()] += c
		n += c
	}
	s.ByCategory["normal"] = records - n
	return s
}

// readSummary reads a report back from the summary.json in dir.
func readSummary(dir string) (*Report, error) {
	b, err := os.ReadFile(filepath.Join(dir, SummaryFile))
	if err != nil {
		return nil, err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return &rep, nil
}

// TestHighAttackShareNotQuiet: a window where 48% of the records are
// attacks, as in every minute before it, has no spike (the baseline is as
// high) but is not "all quiet"; 9% attacks is.
func TestHighAttackShareNotQuiet(t *testing.T) {
	start := time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC)
	build := func(attacks int64) *Report {
		t.Helper()
		var a Aggregator
		for i := -120; i < 60; i++ {
			a.Add(statsMsg(start.Add(time.Duration(i)*time.Minute), "det-a", 100, map[string]int64{"neptune": attacks}), time.Time{})
		}
		rep, err := Build(a.Series(), Window{Start: start, End: start.Add(time.Hour)}, Config{})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	rep := build(48)
	if len(rep.Spikes) != 0 || len(rep.Problems) != 0 {
		t.Fatalf("spikes %v problems %v, want none (a flat 48%%)", rep.Spikes, rep.Problems)
	}
	if rep.Quiet || !rep.HighAttackShare || rep.Title != "48.0% attacks (high), 0 spikes" {
		t.Errorf("48%% attacks: quiet %v high %v title %q; want not quiet, high", rep.Quiet, rep.HighAttackShare, rep.Title)
	}
	var page bytes.Buffer
	if err := WriteHTML(&page, rep, nil, ContentID); err != nil {
		t.Fatal(err)
	}
	if html := page.String(); strings.Contains(html, "All quiet") || !strings.Contains(html, "48.0% of the records were attacks, above the 10.0% a quiet window may have (no spike") {
		t.Errorf("html banner wrong for 48%% attacks")
	}
	if text := PlainText(rep); strings.Contains(text, "All quiet") || !strings.Contains(text, "HIGH ATTACK SHARE: 48.0%") {
		t.Errorf("plain text:\n%s", text)
	}
	if rep := build(9); !rep.Quiet || rep.HighAttackShare {
		t.Errorf("9%% attacks: quiet %v high %v, want quiet", rep.Quiet, rep.HighAttackShare)
	}
	// The threshold is a setting.
	rep, err := Build(nil, Window{Start: start, End: start.Add(time.Hour)}, Config{QuietMaxAttackShare: 0.5})
	if err != nil || rep.Method.QuietMaxAttackShare != 0.5 {
		t.Errorf("QuietMaxAttackShare not kept: %v %v", rep.Method.QuietMaxAttackShare, err)
	}
}
