package cli

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/netsentinel/netsentinel/internal/model"
)

// TestTrainBaseline trains with a baseline given as a capture and as
// extract's output: its connections become normal rows (the summary says
// how many, and the row count grows by them times their weight), and the
// model scores the baseline's own connections as normal more often than the
// model trained without it.
func TestTrainBaseline(t *testing.T) {
	data := writeLines(t, "train.csv", kddLines(t, 0, 3000))
	pcap, _ := synthPcap(t, 3000)
	capFile := writeFile(t, "site.pcap", pcap)
	code, recs, _ := run(t, "", "extract", capFile)
	if code != ExitOK {
		t.Fatalf("extract exit %d", code)
	}
	jsonFile := writeFile(t, "site.jsonl", []byte(recs))
	flagged := func(m string) int {
		t.Helper()
		code, out, stderr := run(t, recs, "predict", "--model", m, "-")
		if code != ExitOK {
			t.Fatalf("predict exit %d: %s", code, stderr)
		}
		return strings.Count(out, `"is_attack":true`)
	}
	without := filepath.Join(t.TempDir(), "without.model")
	if code, _, stderr := run(t, "", "train", "--data", data, "--trees", "10", "--out", without); code != ExitOK {
		t.Fatalf("train exit %d: %s", code, stderr)
	}
	re := regexp.MustCompile(`baseline: (\d+) connections from 1 files \(0 lines skipped\): (\d+) added as normal \(each counted (\d+) times\), (\d+) left out as attacks`)
	for _, base := range []string{capFile, jsonFile} {
		out := filepath.Join(t.TempDir(), "with.model")
		code, stdout, stderr := run(t, "", "train", "--data", data, "--trees", "10", "--baseline", base, "--out", out)
		if code != ExitOK {
			t.Fatalf("train --baseline %s: exit %d: %s", base, code, stderr)
		}
		m := re.FindStringSubmatch(stdout)
		if m == nil {
			t.Fatalf("train --baseline %s: no baseline summary in\n%s", base, stdout)
		}
		n, _ := strconv.Atoi(m[1])
		added, _ := strconv.Atoi(m[2])
		weight, _ := strconv.Atoi(m[3])
		trimmed, _ := strconv.Atoi(m[4])
		if n != strings.Count(recs, "\n") || added+trimmed != n || added == 0 || weight < 1 {
			t.Errorf("train --baseline %s: %s (extract gave %d records)", base, m[0], strings.Count(recs, "\n"))
		}
		if want := "trained forest on " + strconv.Itoa(3000+added*weight) + " rows"; !strings.Contains(stdout, want) {
			t.Errorf("train --baseline %s: want %q in\n%s", base, want, stdout)
		}
		d, err := model.LoadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if src := d.Info().Training.Sources; len(src) != 2 || src[1] != filepath.Base(base) {
			t.Errorf("sources = %v, want the data and the baseline", src)
		}
		w, b := flagged(without), flagged(out)
		t.Logf("baseline %s: %s; its own connections flagged: %d without it, %d with it", filepath.Base(base), m[0], w, b)
		if b >= w && w > 0 {
			t.Errorf("baseline %s: %d of its own connections flagged with it, %d without; want fewer", base, b, w)
		}
	}
	if code, _, stderr := run(t, "", "train", "--data", data, "--baseline", capFile, "--novelty=false", "--out", filepath.Join(t.TempDir(), "x")); code != ExitUsage || !strings.Contains(stderr, "novelty") {
		t.Errorf("--baseline without novelty: exit %d, %s", code, stderr)
	}
}
