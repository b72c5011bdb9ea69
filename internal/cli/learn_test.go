package cli

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netsentinel/netsentinel/internal/dataset"
	"github.com/netsentinel/netsentinel/internal/model"
	"github.com/netsentinel/netsentinel/internal/record"
)

// withSource returns n records from addresses src(i), one per i.
func withSources(n int, src func(i int) string) []record.Record {
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i].ID.SrcIP = src(i)
		recs[i].ID.DstIP = fmt.Sprintf("10.2.0.%d", i%50)
		recs[i].Features[0] = float64(i)
	}
	return recs
}

func shares(recs []record.Record, key func(*record.Record) string) map[string]int {
	n := map[string]int{}
	for i := range recs {
		n[key(&recs[i])]++
	}
	return n
}

func TestCapShare(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// 60 records from a, 20 from b, 10 each from c and d: with a 30% cap
	// the most that can be kept is 15 each of a and b and all of c and d.
	var recs []record.Record
	for _, s := range []struct {
		src string
		n   int
	}{{"a", 60}, {"b", 20}, {"c", 10}, {"d", 10}} {
		recs = append(recs, withSources(s.n, func(int) string { return s.src })...)
	}
	kept, cut := capShare(recs, sourceKey, 0.3, rng)
	got := shares(kept, sourceKey)
	if len(kept) != 50 || got["a"] != 15 || got["b"] != 15 || got["c"] != 10 || got["d"] != 10 {
		t.Errorf("kept %d: %v, want a 15 b 15 c 10 d 10", len(kept), got)
	}
	if len(cut) != 2 || cut[0] != (capped{"a", 60, 15}) || cut[1] != (capped{"b", 20, 15}) {
		t.Errorf("cut %v", cut)
	}
	// Random inputs: every key within its share, records without a key
	// all kept, and one more record per cut key would break the cap.
	for trial := range 200 {
		keys := 1 + rng.IntN(12)
		share := 0.05 + 0.9*rng.Float64()
		recs := withSources(rng.IntN(400), func(int) string {
			if rng.IntN(10) == 0 {
				return ""
			}
			return fmt.Sprint("s", int(float64(keys)*rng.Float64()*rng.Float64()))
		})
		free := shares(recs, sourceKey)[""]
		kept, cut := capShare(recs, sourceKey, share, rng)
		got := shares(kept, sourceKey)
		if got[""] != free {
			t.Fatalf("trial %d: %d records without a source kept of %d", trial, got[""], free)
		}
		for k, n := range got {
			if k != "" && float64(n) > share*float64(len(kept))+1e-9 {
				t.Fatalf("trial %d: %s has %d of %d kept, over the %.3f share", trial, k, n, len(kept), share)
			}
		}
		for _, c := range cut {
			if float64(c.kept+1) <= share*float64(len(kept)+len(cut)) {
				t.Fatalf("trial %d: %v could keep one more (total %d, share %.3f)", trial, c, len(kept), share)
			}
		}
	}
	// Fewer sources than 1/share, and nothing without one: nothing is kept.
	if kept, _ := capShare(withSources(100, func(i int) string { return fmt.Sprint(i % 3) }), sourceKey, 0.2, rng); len(kept) != 0 {
		t.Errorf("3 sources under a 20%% cap: %d kept, want 0", len(kept))
	}
}

func TestCapBaseline(t *testing.T) {
	// One attacker makes 70% of the records, all to one host and service.
	recs := withSources(3000, func(i int) string {
		if i%10 < 7 {
			return "10.9.9.9"
		}
		return fmt.Sprintf("10.1.0.%d", i%97)
	})
	for i := range recs {
		if recs[i].ID.SrcIP == "10.9.9.9" {
			recs[i].ID.DstIP = "10.2.0.1"
		}
	}
	cfg := learnConfig{MaxSourceShare: 0.2, MaxDestShare: 0.5}
	kept, bySrc, byDst := capBaseline(recs, cfg, rand.New(rand.NewPCG(1, 2)))
	n := shares(kept, sourceKey)["10.9.9.9"]
	if share := float64(n) / float64(len(kept)); share > 0.2 || n == 0 {
		t.Errorf("attacker keeps %d of %d records (%.2f)", n, len(kept), share)
	}
	for k, n := range shares(kept, destKey) {
		if float64(n) > 0.5*float64(len(kept)) {
			t.Errorf("destination %q keeps %d of %d", k, n, len(kept))
		}
	}
	if len(bySrc) != 1 || bySrc[0].key != "10.9.9.9" || bySrc[0].before != 2100 {
		t.Errorf("source cuts %v", bySrc)
	}
	t.Logf("kept %d of %d; cut: sources %s; destinations %v", len(kept), len(recs), describeCapped(bySrc, len(recs)), byDst)
}

func TestCollector(t *testing.T) {
	c := newCollector(100, 7)
	line := func(i int) []byte {
		return fmt.Appendf(nil, `{"src_ip":"10.1.0.%d","duration":%d,"protocol_type":"tcp","service":"http","flag":"SF","src_bytes":1,"dst_bytes":2,"label":"normal"}`, i%200, i)
	}
	c.tap(0, line(0)) // before start: ignored
	c.start()
	const n = 20000
	sum := 0.0
	for i := range n {
		c.tap(int32(i%3), line(i))
	}
	c.tap(1, []byte("not a record"))
	seen, kept := c.counts()
	s := c.stop()
	c.tap(0, line(1)) // after stop: ignored
	if seen != n+1 || kept != 100 || len(s.recs) != 100 || s.seen != n+1 || fmt.Sprint(s.partitions) != "[0 1 2]" {
		t.Fatalf("seen %d kept %d; sample %d of %d, partitions %v", seen, kept, len(s.recs), s.seen, s.partitions)
	}
	for _, r := range s.recs {
		if r.Label != "" || r.Difficulty != -1 || r.ID.SrcIP == "" {
			t.Fatalf("record %+v: label kept or identity lost", r)
		}
		sum += r.Features[record.Duration]
	}
	// A uniform sample of 0..n-1: mean n/2, standard error n/sqrt(12*100).
	if mean := sum / 100; mean < n/2-3*n/35 || mean > n/2+3*n/35 {
		t.Errorf("sample mean %.0f, want about %d (uniform)", mean, n/2)
	}
	if s.full.IsZero() {
		t.Error("the sample never filled")
	}
}

// siteRecords returns the records extract makes of a synthetic capture.
func siteRecords(t *testing.T, packets int) (lines string, recs []record.Record) {
	t.Helper()
	pcap, _ := synthPcap(t, packets)
	code, out, stderr := run(t, "", "extract", writeFile(t, "site.pcap", pcap))
	if code != ExitOK {
		t.Fatalf("extract exit %d: %s", code, stderr)
	}
	for l := range strings.Lines(out) {
		var r record.Record
		if err := record.DecodePartial([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		r.Difficulty = -1
		recs = append(recs, r)
	}
	return out, recs
}

// testLearner returns a learner retraining on KDD rows 0-3000 from the
// small model, with its log, and the swapped-in fingerprints.
func testLearner(t *testing.T, cfg learnConfig) (*learner, *lockedBuffer, *[]string) {
	t.Helper()
	cur := trainSmall(t)
	m, fp, err := loadModel(cur, false)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Data = []string{writeLines(t, "train.csv", kddLines(t, 0, 3000))}
	dir := t.TempDir()
	cfg.Out = filepath.Join(dir, "learned.model")
	cfg.BaselineOut = cfg.Out + ".baseline.jsonl"
	cfg.Topic = "in"
	cfg.MaxRecords = max(cfg.MaxRecords, 1)
	var logBuf lockedBuffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	l, err := newLearner(cfg, log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var swapped []string
	l.current = func() (*model.Detector, string, string) { return m, fp, cur }
	l.swap = func(path string) (string, error) {
		_, fp, err := loadModel(path, false)
		swapped = append(swapped, fp)
		return fp, err
	}
	return l, &logBuf, &swapped
}

func defaultTestLearnConfig() learnConfig {
	return learnConfig{MaxRecords: 1000, MaxSourceShare: 0.2, MaxDestShare: 0.5, MinRecords: 50, MinSources: 5,
		Check: 0.1, MinDetection: 0.95, Trim: DefaultBaselineTrim}
}

// TestLearnGuards runs the learning's end on samples each guard refuses:
// the old model stays and the log says why.
func TestLearnGuards(t *testing.T) {
	_, site := siteRecords(t, 3000)
	noAddr := make([]record.Record, len(site))
	for i := range site {
		noAddr[i] = site[i]
		noAddr[i].ID = record.Identity{SrcPort: -1, DstPort: -1}
	}
	tests := []struct {
		name string
		cfg  func(*learnConfig)
		recs []record.Record
		want string
	}{
		{"few records", func(c *learnConfig) { c.MinRecords = len(site) + 1 }, site, "want at least"},
		{"few sources", func(c *learnConfig) { c.MinSources = 100000 }, site, "distinct source addresses"},
		{"no addresses", func(*learnConfig) {}, noAddr, "set --learn-min-sources 0"},
		{"one source", func(c *learnConfig) { c.MinSources = 0 }, withSources(500, func(int) string { return "10.9.9.9" }), "after the caps"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := defaultTestLearnConfig()
			tt.cfg(&cfg)
			l, log, swapped := testLearner(t, cfg)
			err := l.learn(context.Background(), sample{recs: tt.recs, seen: int64(len(tt.recs))}, time.Now())
			if _, ok := err.(refusal); !ok || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("learn: %v, want a refusal saying %q; log:\n%s", err, tt.want, log)
			}
			if len(*swapped) > 0 {
				t.Errorf("the model was swapped: %v", *swapped)
			}
			if _, err := os.Stat(l.cfg.Out); err == nil {
				t.Error("a refused model was written")
			}
		})
	}
}

// TestLearnMatchesTrain learns from a synthetic site's records and checks
// that 'train --baseline' on the written baseline, with the command the
// log gives, trains on the same rows and gives the same verdicts.
func TestLearnMatchesTrain(t *testing.T) {
	_, site := siteRecords(t, 3000)
	l, log, swapped := testLearner(t, defaultTestLearnConfig())
	l.cfg.Period = time.Second
	l.partitions = func(context.Context) (int, error) { return 3, nil }
	done := make(chan struct{})
	go func() { l.run(context.Background()); close(done) }()
	waitUntil(t, 10*time.Second, "learning start", func() bool { return strings.Contains(log.String(), "learning this site's traffic") }, log)
	for i := range site {
		l.col.tap(0, site[i].AppendJSON(nil))
	}
	<-done
	if got := testutil.ToFloat64(l.state.WithLabelValues("learned")); got != 1 || len(*swapped) != 1 {
		t.Fatalf("state learned = %v, swaps %v; log:\n%s", got, *swapped, log)
	}
	if !strings.Contains(log.String(), `the sample holds records of only some of the topic's partitions`) {
		t.Errorf("no warning about the partitions missing from the sample; log:\n%s", log)
	}
	m := regexp.MustCompile(`train_command="netsentinel (train [^"]*)"`).FindStringSubmatch(log.String())
	if m == nil {
		t.Fatalf("no train command in the log:\n%s", log)
	}
	out := filepath.Join(t.TempDir(), "train.model")
	args := strings.Fields(strings.Replace(m[1], "MODEL", out, 1))
	code, stdout, stderr := run(t, "", args...)
	if code != ExitOK {
		t.Fatalf("%s: exit %d: %s", m[1], code, stderr)
	}
	learned, err := model.LoadFile(l.cfg.Out)
	if err != nil {
		t.Fatal(err)
	}
	trained, err := model.LoadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := learned.Info().Training, trained.Info().Training; a.SHA256 != b.SHA256 || a.Rows != b.Rows {
		t.Errorf("learned on %d rows (%.12s), train --baseline on %d (%.12s)\n%s", a.Rows, a.SHA256, b.Rows, b.SHA256, stdout)
	}
	before, _, _ := l.current()
	flagged := func(d *model.Detector) (n int) {
		for i := range site {
			r := site[i]
			if err := d.Complete(&r); err != nil {
				t.Fatal(err)
			}
			if d.PredictRecord(&r).IsAttack {
				n++
			}
		}
		return n
	}
	fb, fl, ft := flagged(before), flagged(learned), flagged(trained)
	t.Logf("site records flagged: %d of %d before, %d learned, %d by train --baseline", fb, len(site), fl, ft)
	if fl != ft || fl >= fb {
		t.Errorf("flagged: %d before, %d learned, %d train --baseline: want learned = train < before", fb, fl, ft)
	}
}

// kddRecords decodes KDD lines, keeping those whose category keep accepts.
func kddRecords(t *testing.T, lines []string, keep func(record.Category) bool) []record.Record {
	t.Helper()
	var recs []record.Record
	for _, l := range lines {
		var r record.Record
		if err := record.Decode([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		if keep(record.CategoryOf(r.Label)) {
			recs = append(recs, r)
		}
	}
	return recs
}

// TestCheckHeldBack compares a model with one that learned the
// denial-of-service rows as normal (what a successful poisoning does): the
// check refuses it, naming dos, and accepts the model itself.
func TestCheckHeldBack(t *testing.T) {
	train := kddRecords(t, kddLines(t, 0, 3000), func(record.Category) bool { return true })
	ds, poisoned := &dataset.Dataset{}, &dataset.Dataset{}
	for i := range train {
		r := train[i]
		ds.Append(&r)
		if record.CategoryOf(r.Label) == record.CategoryDoS {
			r.Label = "normal"
		}
		poisoned.Append(&r)
	}
	hold := &dataset.Dataset{}
	for _, r := range kddRecords(t, kddLines(t, 3000, 4000), func(record.Category) bool { return true }) {
		hold.Append(&r)
	}
	opts := model.DefaultTrainOptions()
	opts.Forest.Trees = 5
	first, err := model.Train(context.Background(), ds, opts)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := model.Train(context.Background(), poisoned, opts)
	if err != nil {
		t.Fatal(err)
	}
	per, normal, _, _, refusal := checkHeldBack(first, bad, hold, 0.95)
	if !strings.HasPrefix(refusal, "dos ") || strings.Contains(refusal, "probe") {
		t.Errorf("refusal %q, want dos alone; per category %+v", refusal, per)
	}
	if normal == 0 || len(per) < 3 {
		t.Errorf("%d normal rows, categories %+v", normal, per)
	}
	if _, _, _, _, refusal := checkHeldBack(first, first, hold, 0.95); refusal != "" {
		t.Errorf("the model against itself: %q", refusal)
	}
	t.Logf("per category: %+v; refusal: %s", per, refusal)
}

// TestLearnPoisoned learns from a "site" whose traffic is mostly an
// attacker's denial-of-service and probe records from many addresses, with
// the trim nearly off: the remaining guards keep the old model.
func TestLearnPoisoned(t *testing.T) {
	attacks := kddRecords(t, kddLines(t, 3000, 12000), func(c record.Category) bool {
		return c == record.CategoryDoS || c == record.CategoryProbe
	})
	_, site := siteRecords(t, 3000)
	for i := range attacks {
		attacks[i].Label, attacks[i].Difficulty = "", -1
		attacks[i].ID = record.Identity{SrcIP: fmt.Sprintf("10.9.%d.%d", i%7, i%31), DstIP: fmt.Sprintf("10.2.0.%d", i%40), SrcPort: -1, DstPort: -1}
	}
	cfg := defaultTestLearnConfig()
	cfg.Trim = 1
	l, log, swapped := testLearner(t, cfg)
	recs := append(append([]record.Record{}, site...), attacks...)
	err := l.learn(context.Background(), sample{recs: recs, seen: int64(len(recs))}, time.Now())
	if _, ok := err.(refusal); !ok || len(*swapped) > 0 {
		t.Errorf("learn: %v, swaps %v; want a refusal; log:\n%s", err, *swapped, log)
	}
	for l := range strings.Lines(log.String()) {
		if strings.Contains(l, "guard:") {
			t.Log(strings.TrimSpace(l))
		}
	}
	t.Logf("%d site and %d attack records: %v", len(site), len(attacks), err)
}

func TestDetectLearnUsage(t *testing.T) {
	m := trainSmall(t)
	data := writeLines(t, "train.csv", kddLines(t, 0, 300))
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--learn", "1m"}, ExitUsage, "--learn needs --learn-data FILE"},
		{[]string{"--learn", "1m", "--learn-data", data}, ExitUsage, "--learn needs --learn-out FILE"},
		{[]string{"--learn-data", data}, ExitUsage, "need --learn DURATION"},
		{[]string{"--learn-every", "1h"}, ExitUsage, "need --learn DURATION"},
		{[]string{"--learn", "1m", "--learn-every", "30s", "--learn-data", data, "--learn-out", "x"}, ExitUsage, "--learn-every 30s: want 0 or more than --learn 1m0s"},
		{[]string{"--learn", "-1s", "--learn-data", data, "--learn-out", "x"}, ExitUsage, "positive duration"},
		{[]string{"--learn", "1m", "--learn-data", data, "--learn-out", "x", "--learn-max-source-share", "0"}, ExitUsage, "--learn-max-source-share 0"},
		{[]string{"--learn", "1m", "--learn-data", data, "--learn-out", "x", "--learn-check", "0.9"}, ExitUsage, "--learn-check 0.9"},
		{[]string{"--learn", "1m", "--learn-data", "/nonexistent/kdd.csv", "--learn-out", filepath.Join(t.TempDir(), "x")}, ExitFailure, "/nonexistent/kdd.csv"},
		{[]string{"--learn", "1m", "--learn-data", data, "--learn-out", "/nonexistent/dir/m.model"}, ExitFailure, "--learn-out /nonexistent/dir/m.model: cannot write there"},
		{[]string{"--learn", "1m", "--learn-data", writeLines(t, "bad.csv", []string{"1,2,3"}), "--learn-out", filepath.Join(t.TempDir(), "x")}, ExitFailure, "bad.csv:1"},
	}
	for _, tt := range tests {
		args := append([]string{"detect", "--model", m, "--brokers", "127.0.0.1:1", "--listen", "none"}, tt.args...)
		code, _, stderr := run(t, "", args...)
		if code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("detect %v: exit %d, stderr %q; want %d and %q", tt.args, code, stderr, tt.code, tt.want)
		}
	}
}

// BenchmarkCollectorTap is what detect's learning period costs per
// committed record on Run's goroutine: "filling" decodes every record (the
// sample's first --learn-max-records), "full" only draws whether to take
// it (a 100,000-record sample after 10^6 records).
func BenchmarkCollectorTap(b *testing.B) {
	line := []byte(`{"ts":1700000000.5,"src_ip":"10.1.2.3","src_port":40000,"dst_ip":"10.2.0.1","dst_port":80,"uid":"C1","duration":0,"protocol_type":"tcp","service":"http","flag":"SF","src_bytes":220,"dst_bytes":5400,"land":0,"wrong_fragment":0,"urgent":0,"logged_in":1,"count":3,"srv_count":3,"serror_rate":0,"srv_serror_rate":0,"rerror_rate":0,"srv_rerror_rate":0,"same_srv_rate":1,"diff_srv_rate":0,"srv_diff_host_rate":0,"dst_host_count":12,"dst_host_srv_count":12,"dst_host_same_srv_rate":1,"dst_host_diff_srv_rate":0,"dst_host_same_src_port_rate":0.08,"dst_host_srv_diff_host_rate":0,"dst_host_serror_rate":0,"dst_host_srv_serror_rate":0,"dst_host_rerror_rate":0,"dst_host_srv_rerror_rate":0}`)
	b.Run("filling", func(b *testing.B) {
		c := newCollector(100_000, 1)
		c.start()
		for b.Loop() {
			if c.n == c.max {
				c.n = 0 // keep filling
			}
			c.tap(0, line)
		}
	})
	b.Run("full", func(b *testing.B) {
		c := newCollector(100_000, 1)
		c.start()
		for range 1_000_000 {
			c.tap(0, line)
		}
		for b.Loop() {
			c.tap(0, line)
		}
	})
}

// TestLearnStopped stops detect during the period: nothing is learned or
// written, and the state says so.
func TestLearnStopped(t *testing.T) {
	l, log, swapped := testLearner(t, defaultTestLearnConfig())
	l.cfg.Period = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.run(ctx); close(done) }()
	waitUntil(t, 10*time.Second, "learning start", func() bool { return strings.Contains(log.String(), "learning this site's traffic") }, log)
	cancel()
	<-done
	if got := testutil.ToFloat64(l.state.WithLabelValues("stopped")); got != 1 || len(*swapped) != 0 {
		t.Errorf("state stopped = %v, swaps %v", got, *swapped)
	}
	if _, err := os.Stat(l.cfg.Out); err == nil {
		t.Error("a model was written")
	}
}

// TestLearnEvery learns again after --learn-every: two periods, two models.
func TestLearnEvery(t *testing.T) {
	_, site := siteRecords(t, 3000)
	l, log, swapped := testLearner(t, defaultTestLearnConfig())
	l.cfg.Period, l.cfg.Every = 300*time.Millisecond, 400*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.run(ctx); close(done) }()
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		for ctx.Err() == nil {
			for i := range site {
				l.col.tap(int32(i%2), site[i].AppendJSON(nil))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	waitUntil(t, 40*time.Second, "two learned models", func() bool { return strings.Count(log.String(), "model learned") >= 2 }, log)
	cancel()
	<-done
	<-fed
	if n := strings.Count(log.String(), "next learning period"); n < 2 || len(*swapped) < 2 {
		t.Errorf("%d next periods announced, swaps %v", n, *swapped)
	}
}
