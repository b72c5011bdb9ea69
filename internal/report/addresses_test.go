package report

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// addressSeries is two hours of 100 records a minute with one neptune
// alert from 10.0.0.9 to 10.0.1.1 each, reported by two instances in
// halves, and in the minutes 14:30-14:34 a burst of 60 alerts a minute
// from 10.6.6.6 (all four attack it: 10.0.1.2), in two messages, one of
// which left 7 alerts out of its top list.
func addressSeries() ([]Minute, Window) {
	start := time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC)
	var a Aggregator
	for i := -60; i < 60; i++ {
		m := start.Add(time.Duration(i) * time.Minute)
		s := statsMsg(m, "det-a", 50, map[string]int64{"neptune": 1})
		s.TopSources = map[string]int64{"10.0.0.9": 1}
		s.TopDestinations = map[string]int64{"10.0.1.1": 1}
		a.Add(s, time.Time{})
		s = statsMsg(m, "det-b", 50, nil)
		if i >= 30 && i < 35 {
			s = statsMsg(m, "det-b", 50, map[string]int64{"neptune": 30, "unknown": 30})
			s.TopSources = map[string]int64{"10.6.6.6": 23, "10.0.0.5": 30}
			s.OtherSources = 7
			s.TopDestinations = map[string]int64{"10.0.1.2": 60}
		}
		a.Add(s, time.Time{})
	}
	return a.Series(), Window{Start: start, End: start.Add(time.Hour), Location: time.UTC}
}

// TestAddresses checks the top sources and destinations summed over
// messages and minutes (only those in the window), bounded by
// TopAddresses with the rest counted, each spike's sources, and that the
// HTML, the text, the charts and summary.json show them.
func TestAddresses(t *testing.T) {
	series, w := addressSeries()
	rep, err := Build(series, w, Config{TopAddresses: 2})
	if err != nil {
		t.Fatal(err)
	}
	const attacks = 60 + 5*60
	if rep.Attacks != attacks {
		t.Fatalf("attacks %d, want %d", rep.Attacks, attacks)
	}
	wantSrc := []AddressCount{
		{Address: "10.0.0.5", Count: 150, Share: 150.0 / attacks},
		{Address: "10.6.6.6", Count: 115, Share: 115.0 / attacks},
	}
	if d := cmp.Diff(wantSrc, rep.TopSources); d != "" || rep.OtherSources != 60+35 {
		t.Errorf("top sources (-want +got):\n%s\nother %d, want 95 (10.0.0.9's 60 and 35 left out by the stats)", d, rep.OtherSources)
	}
	wantDst := []AddressCount{
		{Address: "10.0.1.2", Count: 300, Share: 300.0 / attacks},
		{Address: "10.0.1.1", Count: 60, Share: 60.0 / attacks},
	}
	if d := cmp.Diff(wantDst, rep.TopDestinations); d != "" || rep.OtherDestinations != 0 {
		t.Errorf("top destinations (-want +got):\n%s\nother %d, want 0", d, rep.OtherDestinations)
	}
	if len(rep.Spikes) != 1 {
		t.Fatalf("%d spikes, want the burst at 14:30", len(rep.Spikes))
	}
	sp := rep.Spikes[0]
	wantSpike := []AddressCount{
		{Address: "10.0.0.5", Count: 150, Share: 150.0 / 305},
		{Address: "10.6.6.6", Count: 115, Share: 115.0 / 305},
		{Address: "10.0.0.9", Count: 5, Share: 5.0 / 305},
	}
	if d := cmp.Diff(wantSpike, sp.Sources); d != "" {
		t.Errorf("spike at %v: sources (-want +got):\n%s", sp.Start, d)
	}

	dir := t.TempDir()
	charts, err := Write(dir, rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"top-sources.png", "top-destinations.png"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(bytes.NewReader(b)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	page, err := os.ReadFile(filepath.Join(dir, HTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	html := string(page)
	for _, want := range []string{
		`<h2>Top attacking sources</h2>`, `<table id="top-sources">`, `<td>10.0.0.5</td><td class="n">150</td>`,
		`<td class="sub">other addresses</td><td class="n">95</td>`,
		`<h2>Most attacked hosts</h2>`, `<td>10.0.1.2</td><td class="n">300</td>`,
		`<td>10.0.0.5 150, 10.6.6.6 115, 10.0.0.9 5</td>`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if n := strings.Count(html, "<img "); n != len(charts) {
		t.Errorf("report.html has %d images, want %d", n, len(charts))
	}
	text := PlainText(rep)
	for _, want := range []string{"Top attacking sources (alerts):\n  10.0.0.5 ", "Most attacked hosts (alerts):\n  10.0.1.2 ", "sources: 10.0.0.5 150 10.6.6.6 115 10.0.0.9 5"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	back, err := readSummary(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(rep.TopSources, back.TopSources); d != "" || back.Spikes[0].Sources == nil || back.OtherSources != rep.OtherSources {
		t.Errorf("summary.json top sources (-want +got):\n%s", d)
	}
}

// TestNoAddresses: statistics without addresses give a report without the
// address sections or charts.
func TestNoAddresses(t *testing.T) {
	rep := knownReport(t)
	if rep.TopSources != nil || rep.TopDestinations != nil {
		t.Errorf("top sources %v, destinations %v; want none", rep.TopSources, rep.TopDestinations)
	}
	var page bytes.Buffer
	if err := WriteHTML(&page, rep, nil, DataURI); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(page.String(), "Top attacking sources") || strings.Contains(PlainText(rep), "Top attacking sources") {
		t.Error("report without addresses shows a top-sources section")
	}
}
