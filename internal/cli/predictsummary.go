package cli

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/netsentinel/netsentinel/internal/model"
	"github.com/netsentinel/netsentinel/internal/record"
)

// noSource is the source under which predict --summary groups records
// without a source address.
const noSource = "-"

// sourceTally is one line of predict --summary: the verdicts on the
// connections of one source address.
type sourceTally struct {
	Source      string `json:"source"`
	Connections int64  `json:"connections"`
	Flagged     int64  `json:"flagged"`
	// Share is Flagged / Connections.
	Share float64 `json:"share"`
	// Categories counts the flagged connections by category.
	Categories map[string]int64 `json:"categories"`
}

// sourceSummary gathers verdicts by source address.
type sourceSummary struct {
	bySource map[string]*sourceTally
}

func newSourceSummary() *sourceSummary {
	return &sourceSummary{bySource: make(map[string]*sourceTally)}
}

// tally returns src's tally, creating it.
func (s *sourceSummary) tally(src string) *sourceTally {
	if src == "" {
		src = noSource
	}
	t := s.bySource[src]
	if t == nil {
		t = &sourceTally{Source: src, Categories: make(map[string]int64)}
		s.bySource[src] = t
	}
	return t
}

// add counts verdict v on a connection from src ("" when unknown).
func (s *sourceSummary) add(src string, v *model.Verdict) {
	t := s.tally(src)
	t.Connections++
	if v.IsAttack {
		t.Flagged++
		t.Categories[v.Category.String()]++
	}
}

// merge adds o's counts to s.
func (s *sourceSummary) merge(o *sourceSummary) {
	for src, ot := range o.bySource {
		t := s.tally(src)
		t.Connections += ot.Connections
		t.Flagged += ot.Flagged
		for c, n := range ot.Categories {
			t.Categories[c] += n
		}
	}
}

// sorted returns the tallies, most flagged first, then most connections,
// then by source; Share is set.
func (s *sourceSummary) sorted() []*sourceTally {
	ts := make([]*sourceTally, 0, len(s.bySource))
	for _, t := range s.bySource {
		if t.Connections > 0 {
			t.Share = float64(t.Flagged) / float64(t.Connections)
		}
		ts = append(ts, t)
	}
	slices.SortFunc(ts, func(a, b *sourceTally) int {
		if c := cmp.Compare(b.Flagged, a.Flagged); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Connections, a.Connections); c != 0 {
			return c
		}
		return strings.Compare(a.Source, b.Source)
	})
	return ts
}

// categoryList writes counts as "dos:12 unknown:3" in the order of
// record.Categories, then any other names in alphabetical order.
func categoryList(counts map[string]int64) string {
	var parts []string
	seen := make(map[string]bool, len(counts))
	for _, c := range record.Categories {
		name := c.String()
		seen[name] = true
		if n := counts[name]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s:%d", name, n))
		}
	}
	var rest []string
	for name, n := range counts {
		if !seen[name] && n > 0 {
			rest = append(rest, fmt.Sprintf("%s:%d", name, n))
		}
	}
	slices.Sort(rest)
	return strings.Join(append(parts, rest...), " ")
}

// write prints the summary to w: a table ending in a total line, or one
// JSON object per source.
func (s *sourceSummary) write(w io.Writer, asJSON bool) error {
	ts := s.sorted()
	bw := bufio.NewWriter(w)
	if asJSON {
		enc := json.NewEncoder(bw)
		for _, t := range ts {
			if err := enc.Encode(t); err != nil {
				return err
			}
		}
		return bw.Flush()
	}
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tCONNECTIONS\tFLAGGED\tSHARE\tCATEGORIES")
	var conns, flagged int64
	for _, t := range ts {
		conns += t.Connections
		flagged += t.Flagged
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f%%\t%s\n", t.Source, t.Connections, t.Flagged, 100*t.Share, categoryList(t.Categories))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for line := range strings.Lines(table.String()) {
		// A source without flagged connections has an empty last column.
		bw.WriteString(strings.TrimRight(line, " \n") + "\n")
	}
	fmt.Fprintf(bw, "%d sources, %d connections, %d flagged\n", len(ts), conns, flagged)
	return bw.Flush()
}
