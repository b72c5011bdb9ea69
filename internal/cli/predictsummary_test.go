package cli

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/netsentinel/netsentinel/internal/record"
)

// summaryInput returns KDD records as input lines: every third one as a
// CSV line (no identity), the others as JSON with a source address chosen
// by their position, so sources differ in size and mix.
func summaryInput(t *testing.T) []string {
	t.Helper()
	var lines []string
	for i, l := range kddLines(t, 3000, 3400) {
		if i%3 == 0 {
			lines = append(lines, l)
			continue
		}
		var rec record.Record
		if err := record.DecodeCSV([]byte(l), &rec); err != nil {
			t.Fatal(err)
		}
		rec.ID = record.Identity{TS: 1.7e9 + float64(i), SrcIP: fmt.Sprintf("10.0.0.%d", i%7), DstIP: "10.0.1.1", SrcPort: 40000, DstPort: 80}
		lines = append(lines, string(rec.AppendJSON(nil)))
	}
	return lines
}

// TestPredictSummary checks predict --summary against predict's own
// verdicts line by line: the same records, counted by source, records
// without identity under "-"; and the table shows the same rows in the same
// order. A malformed line goes to stderr and makes the exit code 3.
func TestPredictSummary(t *testing.T) {
	m := trainSmall(t)
	lines := summaryInput(t)
	in := strings.Join(lines, "\n") + "\nnot,a,record\n"

	code, out, _ := run(t, in, "predict", "--model", m)
	if code != ExitBadData {
		t.Fatalf("predict exit %d, want %d", code, ExitBadData)
	}
	want := map[string]*sourceTally{}
	for _, v := range decodeRecords(t, out) {
		if v["error"] != nil {
			continue
		}
		src, _ := v["src_ip"].(string)
		if src == "" {
			src = "-"
		}
		tl := want[src]
		if tl == nil {
			tl = &sourceTally{Source: src, Categories: map[string]int64{}}
			want[src] = tl
		}
		tl.Connections++
		if v["is_attack"] == true {
			tl.Flagged++
			tl.Categories[v["category"].(string)]++
		}
	}
	if len(want) != 8 || want["-"] == nil {
		t.Fatalf("test input has sources %v, want 7 addresses and -", slices.Sorted(maps.Keys(want)))
	}
	var flaggedSources int
	for _, tl := range want {
		tl.Share = float64(tl.Flagged) / float64(tl.Connections)
		if tl.Flagged > 0 {
			flaggedSources++
		}
	}
	if flaggedSources < 2 {
		t.Fatalf("only %d sources flagged: the test cannot check the order", flaggedSources)
	}

	code, jout, stderr := run(t, in, "predict", "--model", m, "--summary", "--json")
	if code != ExitBadData || !strings.Contains(stderr, `"line":401,"error"`) {
		t.Fatalf("predict --summary --json: exit %d, stderr %q; want %d and the bad line reported", code, stderr, ExitBadData)
	}
	var got []*sourceTally
	for _, l := range strings.Split(strings.TrimSpace(jout), "\n") {
		var tl sourceTally
		if err := json.Unmarshal([]byte(l), &tl); err != nil {
			t.Fatalf("summary line %q: %v", l, err)
		}
		got = append(got, &tl)
	}
	if diff := cmp.Diff(want, maps.Collect(func(yield func(string, *sourceTally) bool) {
		for _, tl := range got {
			if !yield(tl.Source, tl) {
				return
			}
		}
	})); diff != "" || len(got) != len(want) {
		t.Errorf("summary differs from the verdicts (-want +got):\n%s", diff)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Flagged > got[i-1].Flagged {
			t.Errorf("summary not sorted by flagged: %s (%d) after %s (%d)", got[i].Source, got[i].Flagged, got[i-1].Source, got[i-1].Flagged)
		}
	}

	code, tout, _ := run(t, in, "predict", "--model", m, "--summary")
	if code != ExitBadData {
		t.Fatalf("predict --summary exit %d", code)
	}
	rows := strings.Split(strings.TrimSpace(tout), "\n")
	if len(rows) != len(got)+2 || !strings.HasPrefix(rows[0], "SOURCE") {
		t.Fatalf("table:\n%s\nwant a header, %d rows and a total", tout, len(got))
	}
	for i, tl := range got {
		f := strings.Fields(rows[i+1])
		wantRow := []string{tl.Source, fmt.Sprint(tl.Connections), fmt.Sprint(tl.Flagged), fmt.Sprintf("%.1f%%", 100*tl.Share)}
		if cats := categoryList(tl.Categories); cats != "" {
			wantRow = append(wantRow, strings.Fields(cats)...)
		}
		if !slices.Equal(f, wantRow) {
			t.Errorf("row %d = %q, want %q", i+1, f, wantRow)
		}
	}
	if total := fmt.Sprintf("%d sources, 400 connections", len(got)); !strings.HasPrefix(rows[len(rows)-1], total) {
		t.Errorf("last line %q, want %q...", rows[len(rows)-1], total)
	}

	if code, _, stderr := run(t, "", "predict", "--model", m, "--json"); code != ExitUsage {
		t.Errorf("--json without --summary: exit %d, stderr %q; want %d", code, stderr, ExitUsage)
	}
}

func TestCategoryList(t *testing.T) {
	got := categoryList(map[string]int64{"unknown": 2, "dos": 5, "zeta": 1, "probe": 0})
	if want := "dos:5 unknown:2 zeta:1"; got != want {
		t.Errorf("categoryList = %q, want %q", got, want)
	}
}
