package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netsentinel/netsentinel/internal/dataset"
	"github.com/netsentinel/netsentinel/internal/model"
	"github.com/netsentinel/netsentinel/internal/model/forest"
	"github.com/netsentinel/netsentinel/internal/model/logistic"
	"github.com/netsentinel/netsentinel/internal/model/novelty"
	"github.com/netsentinel/netsentinel/internal/record"
)

// learnConfig configures detect's learning period (--learn flags).
type learnConfig struct {
	// Period is how long records are collected, from the detector's start.
	Period time.Duration
	// Every, when above 0, starts a new learning period this long after
	// the start of the previous one.
	Every time.Duration
	// Data are the labelled training files the model is retrained on.
	Data []string
	// Out is where the learned model is written; BaselineOut where the
	// baseline it learned is written as JSON lines ("" for none).
	Out, BaselineOut string
	// MaxRecords bounds the sample of records kept (reservoir sampling).
	MaxRecords int
	// MaxSourceShare and MaxDestShare are the largest share of the
	// baseline one source address, or one destination service (address
	// and service; the service alone without an address), may make up.
	MaxSourceShare, MaxDestShare float64
	// MinRecords and MinSources are the least connections and distinct
	// source addresses a baseline needs for the model to be replaced.
	MinRecords, MinSources int
	// Check is the fraction of Data's rows held back to check the learned
	// model on; MinDetection the share of each attack category's held-back
	// rows it must still flag.
	Check, MinDetection float64
	// Trim is the baseline trim (see DefaultBaselineTrim).
	Trim float64
	// Topic names the input topic in the learned model's sources.
	Topic string
}

// Defaults of the --learn flags.
const (
	defaultLearnMaxRecords   = 100_000
	defaultLearnSourceShare  = 0.2
	defaultLearnDestShare    = 0.5
	defaultLearnMinSources   = 5
	defaultLearnCheck        = 0.1
	defaultLearnMinDetection = 0.95
	// minCheckRows is the least held-back rows of an attack category for
	// the check to judge it.
	minCheckRows = 20
)

// learnFlags are detect's flags of the learning period.
type learnFlags struct {
	period, every          *time.Duration
	data                   stringList
	out, baselineOut       *string
	maxRecords             *int
	sourceShare, destShare *float64
	minRecords, minSources *int
	check, minDetect, trim *float64
}

func addLearnFlags(fs *flag.FlagSet) *learnFlags {
	lf := &learnFlags{}
	lf.period = fs.Duration("learn", 0, "learn this site's normal traffic for this `duration` from the start, then retrain the model with it as a baseline and score with the new model (0: off; see LEARNING above)")
	lf.every = fs.Duration("learn-every", 0, "start a new learning period this `long` after the start of the previous one, so that the baseline follows the site (0: learn once)")
	fs.Var(&lf.data, "learn-data", "labelled training `file` the model is retrained on with the learned baseline, as 'train --data' (required with --learn); repeat for several")
	lf.out = fs.String("learn-out", "", "`path` the learned model is written to (required with --learn; may be the --model file; once the learned model is in use, SIGHUP reloads this file)")
	lf.baselineOut = fs.String("learn-baseline-out", "", "`path` the learned baseline is written to as JSON lines, for 'train --baseline' (default: --learn-out with .baseline.jsonl appended; none: not written)")
	lf.maxRecords = fs.Int("learn-max-records", defaultLearnMaxRecords, "most `records` kept while learning (a uniform random sample of those consumed; about 0.5 KiB each)")
	lf.sourceShare = fs.Float64("learn-max-source-share", defaultLearnSourceShare, "largest `share` of the baseline one source address may make up; its excess records are dropped at random (1: no cap)")
	lf.destShare = fs.Float64("learn-max-dest-share", defaultLearnDestShare, "largest `share` of the baseline one destination service (address and service) may make up (1: no cap)")
	lf.minRecords = fs.Int("learn-min-records", minBaseline, "least `count` of connections the baseline must hold, after the caps and the trim, for the model to be replaced")
	lf.minSources = fs.Int("learn-min-sources", defaultLearnMinSources, "least `count` of distinct source addresses the baseline must hold for the model to be replaced (0 for records without addresses)")
	lf.check = fs.Float64("learn-check", defaultLearnCheck, "`fraction` of the --learn-data rows held back from retraining to check the learned model on (0: no check)")
	lf.minDetect = fs.Float64("learn-min-detection", defaultLearnMinDetection, "the learned model must flag at least this `share` of each attack category's held-back rows (or as many as the model trained without the baseline, if fewer), else it is refused")
	lf.trim = fs.Float64("learn-trim", DefaultBaselineTrim, "baseline records that a model trained on --learn-data alone flags with at least this attack `probability` are left out, as 'train --baseline-trim'")
	return lf
}

// config checks the flags; ok is false when --learn is off.
func (lf *learnFlags) config(topic string) (cfg learnConfig, ok bool, err error) {
	if *lf.period == 0 {
		if len(lf.data) > 0 || *lf.out != "" || *lf.every != 0 {
			return cfg, false, Usagef("--learn-data, --learn-out and --learn-every need --learn DURATION")
		}
		return cfg, false, nil
	}
	cfg = learnConfig{Period: *lf.period, Every: *lf.every, Data: lf.data, Out: *lf.out, BaselineOut: *lf.baselineOut,
		MaxRecords: *lf.maxRecords, MaxSourceShare: *lf.sourceShare, MaxDestShare: *lf.destShare,
		MinRecords: *lf.minRecords, MinSources: *lf.minSources, Check: *lf.check, MinDetection: *lf.minDetect,
		Trim: *lf.trim, Topic: topic}
	switch {
	case cfg.Period < 0:
		return cfg, false, Usagef("--learn %v: want a positive duration", cfg.Period)
	case cfg.Every != 0 && cfg.Every <= cfg.Period:
		return cfg, false, Usagef("--learn-every %v: want 0 or more than --learn %v", cfg.Every, cfg.Period)
	case len(cfg.Data) == 0:
		return cfg, false, Usagef("--learn needs --learn-data FILE: the labelled training data (e.g. data/KDDTrain+.txt.gz) the model is retrained on with the learned baseline")
	case cfg.Out == "":
		return cfg, false, Usagef("--learn needs --learn-out FILE: where the learned model is written")
	case cfg.MaxRecords < 1:
		return cfg, false, Usagef("--learn-max-records %d: want at least 1", cfg.MaxRecords)
	case !(cfg.MaxSourceShare > 0 && cfg.MaxSourceShare <= 1):
		return cfg, false, Usagef("--learn-max-source-share %v: want a share in (0, 1]", cfg.MaxSourceShare)
	case !(cfg.MaxDestShare > 0 && cfg.MaxDestShare <= 1):
		return cfg, false, Usagef("--learn-max-dest-share %v: want a share in (0, 1]", cfg.MaxDestShare)
	case cfg.MinRecords < 1:
		return cfg, false, Usagef("--learn-min-records %d: want at least 1", cfg.MinRecords)
	case cfg.MinSources < 0:
		return cfg, false, Usagef("--learn-min-sources %d: want 0 or more", cfg.MinSources)
	case !(cfg.Check >= 0 && cfg.Check <= 0.5):
		return cfg, false, Usagef("--learn-check %v: want a fraction in [0, 0.5]", cfg.Check)
	case !(cfg.MinDetection >= 0 && cfg.MinDetection <= 1):
		return cfg, false, Usagef("--learn-min-detection %v: want a share in [0, 1]", cfg.MinDetection)
	case !(cfg.Trim > 0 && cfg.Trim <= 1):
		return cfg, false, Usagef("--learn-trim %v: want a probability in (0, 1]", cfg.Trim)
	}
	switch cfg.BaselineOut {
	case "":
		cfg.BaselineOut = cfg.Out + ".baseline.jsonl"
	case "none":
		cfg.BaselineOut = ""
	}
	return cfg, true, nil
}

// collector keeps a uniform random sample of at most max of the records
// the detector commits while it is on (reservoir sampling, Algorithm R):
// memory stays bounded however long the period and fast the traffic. The
// sample is kept in chunks, so that it grows without copying.
type collector struct {
	// on is read without mu first, so that the tap costs one atomic load
	// a record once the period is over.
	on     atomic.Bool
	mu     sync.Mutex
	max    int
	rng    *rand.Rand
	seen   int64 // records offered while on
	bad    int64 // sampled records that did not decode
	chunks [][]record.Record
	n      int // records in the sample
	parts  map[int32]int64
	full   time.Time // when the sample filled up
	onFull func(n int)
}

// sampleChunk is the number of records in one chunk of the sample.
const sampleChunk = 1024

func newCollector(max int, seed uint64) *collector {
	return &collector{max: max, rng: rand.New(rand.NewPCG(seed, 0x1ea54)), parts: map[int32]int64{}}
}

// start starts a new collection.
func (c *collector) start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen, c.bad, c.full = 0, 0, time.Time{}
	clear(c.parts)
	c.on.Store(true)
}

// tap offers one committed input record (stream.Options.Tap). A record is
// decoded only when the sample takes it; one that does not decode is
// counted and leaves the sample as it was. Labels are dropped: the
// baseline is unlabelled.
func (c *collector) tap(partition int32, value []byte) {
	if !c.on.Load() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.on.Load() {
		return
	}
	c.seen++
	c.parts[partition]++
	j := c.n
	if j >= c.max {
		if j = int(c.rng.Int64N(c.seen)); j >= c.max {
			return
		}
	} else if j%sampleChunk == 0 && j/sampleChunk == len(c.chunks) {
		c.chunks = append(c.chunks, make([]record.Record, min(sampleChunk, c.max-j)))
	}
	r := &c.chunks[j/sampleChunk][j%sampleChunk]
	if err := record.DecodePartial(value, r); err != nil {
		c.bad++
		if j < c.n {
			// The slot held a sampled record, now overwritten: take it out
			// by moving the last one in.
			c.n--
			*r = c.chunks[c.n/sampleChunk][c.n%sampleChunk]
		}
		return
	}
	r.Label, r.Difficulty = "", -1
	if j < c.n {
		return
	}
	if c.n++; c.n == c.max {
		c.full = time.Now()
		if c.onFull != nil {
			c.onFull(c.max)
		}
	}
}

// sample is what a collector gathered.
type sample struct {
	recs       []record.Record
	seen, bad  int64
	partitions []int32
	full       time.Time
}

// stop ends the collection and returns the sample.
func (c *collector) stop() sample {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.on.Store(false)
	s := sample{recs: make([]record.Record, 0, c.n), seen: c.seen, bad: c.bad, full: c.full}
	for _, ch := range c.chunks {
		s.recs = append(s.recs, ch[:min(len(ch), c.n-len(s.recs))]...)
	}
	for p := range c.parts {
		s.partitions = append(s.partitions, p)
	}
	slices.Sort(s.partitions)
	c.chunks, c.n = nil, 0
	return s
}

// counts returns the records offered and kept so far.
func (c *collector) counts() (seen int64, kept int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen, c.n
}

// capped is one key whose records a share cap cut.
type capped struct {
	key          string
	before, kept int
}

// capShare keeps at most share of the records under any one key: a key
// over its share keeps a random subset of its records, as many as the
// largest count c with c <= share × (the records kept) allows. Records
// whose key is "" are never cut but count in the total. With fewer keys
// than 1/share and nothing uncut, nothing can be kept.
func capShare(recs []record.Record, key func(*record.Record) string, share float64, rng *rand.Rand) ([]record.Record, []capped) {
	if share >= 1 || len(recs) == 0 {
		return recs, nil
	}
	byKey := map[string][]int{}
	free := 0
	for i := range recs {
		if k := key(&recs[i]); k != "" {
			byKey[k] = append(byKey[k], i)
		} else {
			free++
		}
	}
	total := func(c int) int {
		t := free
		for _, rows := range byKey {
			t += min(len(rows), c)
		}
		return t
	}
	// c - share×total(c) grows with c (each step adds at most share), so
	// the feasible counts are 0..c*: find c* by bisection.
	lo, hi := 0, 0
	for _, rows := range byKey {
		hi = max(hi, len(rows))
	}
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if float64(mid) <= share*float64(total(mid)) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	drop := make([]bool, len(recs))
	var cut []capped
	for k, rows := range byKey {
		if len(rows) <= lo {
			continue
		}
		rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
		for _, i := range rows[lo:] {
			drop[i] = true
		}
		cut = append(cut, capped{key: k, before: len(rows), kept: lo})
	}
	if len(cut) == 0 {
		return recs, nil
	}
	kept := recs[:0:0]
	for i := range recs {
		if !drop[i] {
			kept = append(kept, recs[i])
		}
	}
	sort.Slice(cut, func(i, j int) bool { return cut[i].before > cut[j].before })
	return kept, cut
}

// sourceKey and destKey are the keys of the source and destination caps.
func sourceKey(r *record.Record) string { return r.ID.SrcIP }

func destKey(r *record.Record) string {
	svc := r.UnseenService
	if svc == "" {
		svc = r.Symbol(record.Service)
	}
	if r.ID.DstIP == "" {
		return svc
	}
	return r.ID.DstIP + " " + svc
}

// capBaseline applies both caps until neither cuts more (a destination cut
// can raise a source's share and the other way round).
func capBaseline(recs []record.Record, cfg learnConfig, rng *rand.Rand) (kept []record.Record, bySource, byDest []capped) {
	for range 5 {
		var cs, cd []capped
		recs, cs = capShare(recs, sourceKey, cfg.MaxSourceShare, rng)
		recs, cd = capShare(recs, destKey, cfg.MaxDestShare, rng)
		bySource, byDest = mergeCapped(bySource, cs), mergeCapped(byDest, cd)
		if len(cs) == 0 && len(cd) == 0 {
			break
		}
	}
	return recs, bySource, byDest
}

// mergeCapped adds a later round's cuts to the earlier ones: a key keeps
// its first count before and its last count kept.
func mergeCapped(all, round []capped) []capped {
	for _, c := range round {
		i := slices.IndexFunc(all, func(a capped) bool { return a.key == c.key })
		if i < 0 {
			all = append(all, c)
		} else {
			all[i].kept = c.kept
		}
	}
	return all
}

// describeCapped lists up to 5 cut keys for the log.
func describeCapped(cs []capped, total int) string {
	var b strings.Builder
	for i, c := range cs {
		if i == 5 {
			fmt.Fprintf(&b, " and %d more", len(cs)-5)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d of %d kept (%.0f%% of the sample)", c.key, c.kept, c.before, 100*float64(c.before)/float64(max(total, 1)))
	}
	return b.String()
}

// distinctSources counts the distinct source addresses of recs.
func distinctSources(recs []record.Record) int {
	seen := map[string]struct{}{}
	for i := range recs {
		if s := recs[i].ID.SrcIP; s != "" {
			seen[s] = struct{}{}
		}
	}
	return len(seen)
}

// retrainOptions returns the training options of a model like cur: its
// algorithm, classifier settings and seed, binary threshold and novelty
// P(normal) for confident records; the novelty part gets train's defaults
// (its prototype count and false-positive budgets are not kept in the
// model file). seed is the seed train's --seed would be.
func retrainOptions(cur *model.Detector) (opts model.TrainOptions, seed uint64, err error) {
	info := cur.Info()
	opts = model.TrainOptions{Algo: info.Algorithm, Threshold: info.Threshold}
	seed = forest.DefaultConfig().Seed
	switch info.Algorithm {
	case model.AlgoForest:
		var c forest.Config
		if err := json.Unmarshal(info.Params, &c); err != nil {
			return opts, 0, fmt.Errorf("the model's forest parameters: %w", err)
		}
		opts.BalancedClassWeight = c.ClassWeight != nil
		c.ClassWeight = nil
		// Half the cores: the detector keeps scoring meanwhile. The
		// forest is the same whatever the number of workers.
		c.Workers = max(1, runtime.GOMAXPROCS(0)/2)
		opts.Forest, seed = c, c.Seed
	case model.AlgoLogistic:
		var c logistic.Config
		if err := json.Unmarshal(info.Params, &c); err != nil {
			return opts, 0, fmt.Errorf("the model's logistic parameters: %w", err)
		}
		opts.BalancedClassWeight = c.ClassWeight != nil
		c.ClassWeight, c.Columns = nil, nil
		opts.Logistic = c
	default:
		return opts, 0, fmt.Errorf("the model's algorithm %q cannot be retrained", info.Algorithm)
	}
	if nov, _ := cur.Novelty(); nov == nil {
		return opts, 0, errors.New("the model has no novelty part, which a baseline needs to fill in the content features connections lack (train it without --novelty=false)")
	}
	opts.Novelty = &model.NoveltyOptions{
		Config:       novelty.Config{Prototypes: novelty.DefaultConfig().Prototypes, Seed: seed},
		FPR:          model.DefaultNoveltyFPR,
		Confident:    info.NoveltyConfident,
		ConfidentFPR: model.DefaultConfidentFPR,
	}
	return opts, seed, nil
}

// trainCommand returns the 'netsentinel train' command that trains the
// same model from the written baseline.
func trainCommand(cfg learnConfig, opts model.TrainOptions, seed uint64) string {
	args := []string{"netsentinel", "train"}
	for _, d := range cfg.Data {
		args = append(args, "--data", d)
	}
	args = append(args, "--algo", opts.Algo, "--seed", strconv.FormatUint(seed, 10))
	if opts.Algo == model.AlgoForest {
		f := opts.Forest
		args = append(args, "--trees", strconv.Itoa(f.Trees), "--max-depth", strconv.Itoa(f.MaxDepth), "--min-leaf", strconv.Itoa(f.MinLeaf),
			"--max-features", strconv.Itoa(f.MaxFeatures), "--bins", strconv.Itoa(f.Bins), "--sample", strconv.FormatFloat(f.Sample, 'g', -1, 64))
	} else {
		l := opts.Logistic
		args = append(args, "--l2", strconv.FormatFloat(l.L2, 'g', -1, 64), "--max-iter", strconv.Itoa(l.MaxIter))
	}
	if opts.BalancedClassWeight {
		args = append(args, "--class-weight", "balanced")
	}
	args = append(args, "--threshold", strconv.FormatFloat(opts.Threshold, 'g', -1, 64),
		"--novelty-confident", strconv.FormatFloat(opts.Novelty.Confident, 'g', -1, 64))
	if cfg.Check > 0 {
		args = append(args, "--validate", strconv.FormatFloat(cfg.Check, 'g', -1, 64))
	}
	args = append(args, "--baseline", cfg.BaselineOut, "--baseline-trim", strconv.FormatFloat(cfg.Trim, 'g', -1, 64), "--out", "MODEL")
	return strings.Join(args, " ")
}

// detection is one attack category's held-back rows and how many of them
// the model without the baseline and the learned model flag.
type detection struct {
	category           record.Category
	rows, first, final int
}

// checkHeldBack scores the held-back rows with the model trained without
// the baseline and with the learned one. refusal is not empty when the
// learned model flags less than minDetection of an attack category's rows
// (with at least minCheckRows of them) and less than the first model does.
func checkHeldBack(first, final *model.Detector, hold *dataset.Dataset, minDetection float64) (per []detection, normalRows, firstFP, finalFP int, refusal string) {
	vf, vl := first.PredictBatch(hold), final.PredictBatch(hold)
	byCat := map[record.Category]*detection{}
	for i, l := range hold.Labels {
		c := record.CategoryOf(l)
		if c == record.CategoryNormal {
			normalRows++
			firstFP += b2i(vf[i].IsAttack)
			finalFP += b2i(vl[i].IsAttack)
			continue
		}
		d := byCat[c]
		if d == nil {
			d = &detection{category: c}
			byCat[c] = d
		}
		d.rows++
		d.first += b2i(vf[i].IsAttack)
		d.final += b2i(vl[i].IsAttack)
	}
	for _, d := range byCat {
		per = append(per, *d)
	}
	sort.Slice(per, func(i, j int) bool { return per[i].category < per[j].category })
	var bad []string
	for _, d := range per {
		if d.rows < minCheckRows {
			continue
		}
		want := min(minDetection, float64(d.first)/float64(d.rows))
		if got := float64(d.final) / float64(d.rows); got < want {
			bad = append(bad, fmt.Sprintf("%s %.1f%% of %d held-back rows flagged, want at least %.1f%% (without the baseline: %.1f%%)",
				d.category, 100*got, d.rows, 100*want, 100*float64(d.first)/float64(d.rows)))
		}
	}
	return per, normalRows, firstFP, finalFP, strings.Join(bad, "; ")
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// writeBaseline writes recs as JSON lines (extract's form), atomically.
func writeBaseline(path string, recs []record.Record) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	var buf []byte
	for i := range recs {
		buf = recs[i].AppendJSON(buf[:0])
		buf = append(buf, '\n')
		if _, err = w.Write(buf); err != nil {
			break
		}
	}
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// checkWritable checks that a file can be created in path's directory
// ("" passes).
func checkWritable(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".check*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// Learning states, the values of the netsentinel_detect_learning metric's
// state label.
var learnStates = []string{"collecting", "training", "learned", "refused", "failed", "stopped"}

// learner runs detect's learning period: it collects the records the
// detector commits, then, in the background, caps and checks them,
// retrains the model with them as its baseline, checks the new model and
// hands it to the detector.
type learner struct {
	cfg learnConfig
	log *slog.Logger
	col *collector
	// current returns the model the detector scores with, its fingerprint
	// and its file; swap loads the model file at path and makes the
	// detector score with it, returning its fingerprint.
	current func() (m *model.Detector, fp, path string)
	swap    func(path string) (string, error)
	// partitions returns the number of partitions of the input topic;
	// nil when unknown.
	partitions func(ctx context.Context) (int, error)
	state      *prometheus.GaugeVec
}

// loadLearnData loads --learn-data and checks that it can be trained on.
func loadLearnData(cfg learnConfig) (*dataset.Dataset, error) {
	ds, err := loadData(&Env{Stdout: io.Discard, Stderr: io.Discard}, cfg.Data, false)
	if err != nil {
		return nil, fmt.Errorf("--learn-data: %w", err)
	}
	normal := 0
	for i, l := range ds.Labels {
		if l == "" {
			return nil, fmt.Errorf("--learn-data: row %d has no label: the training data must be labelled", i+1)
		}
		if l == "normal" {
			normal++
		}
	}
	if normal < 2 {
		return nil, fmt.Errorf("--learn-data: %d normal rows; the training data needs normal traffic", normal)
	}
	return ds, nil
}

// newLearner checks that the output files can be written and that the
// training data loads (so that a mistake stops detect at once rather than
// at the end of the period; the data is loaded again then, and not kept
// in memory meanwhile), and registers the learning metrics.
func newLearner(cfg learnConfig, log *slog.Logger, reg prometheus.Registerer) (*learner, error) {
	for _, f := range [][2]string{{"--learn-out", cfg.Out}, {"--learn-baseline-out", cfg.BaselineOut}} {
		if err := checkWritable(f[1]); err != nil {
			return nil, fmt.Errorf("%s %s: cannot write there (%w): the learned files would be lost at the end of the period", f[0], f[1], err)
		}
	}
	if _, err := loadLearnData(cfg); err != nil {
		return nil, err
	}
	l := &learner{cfg: cfg, log: log, col: newCollector(cfg.MaxRecords, 1)}
	l.col.onFull = func(n int) {
		log.Info("learning: the sample is full; each further record now replaces a random one (uniform sample of all records)", "records", n)
	}
	const ns, sub = "netsentinel", "detect"
	l.state = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "learning",
		Help: "1 for the state of the learning period (--learn): collecting, training, learned, refused, failed or stopped."}, []string{"state"})
	seen := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "learn_seen_records",
		Help: "Records consumed during the learning period."}, func() float64 { s, _ := l.col.counts(); return float64(s) })
	kept := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "learn_sample_records",
		Help: "Records kept in the learning sample (at most --learn-max-records)."}, func() float64 { _, k := l.col.counts(); return float64(k) })
	for _, c := range []prometheus.Collector{l.state, seen, kept} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	l.setState("collecting")
	return l, nil
}

func (l *learner) setState(s string) {
	for _, st := range learnStates {
		v := 0.0
		if st == s {
			v = 1
		}
		l.state.WithLabelValues(st).Set(v)
	}
}

// run collects for the learning period, then learns; it returns when the
// new model is in use, refused, or ctx is cancelled.
func (l *learner) run(ctx context.Context) {
	for {
		start := time.Now()
		if !l.period(ctx, start) || l.cfg.Every == 0 {
			return
		}
		next := start.Add(l.cfg.Every)
		l.log.Info("next learning period", "at", next.Format(time.RFC3339))
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
	}
}

// period runs one learning period from start: it collects, then learns;
// it returns false when ctx was cancelled.
func (l *learner) period(ctx context.Context, start time.Time) bool {
	l.setState("collecting")
	l.col.start()
	l.log.Info("learning this site's traffic", "period", l.cfg.Period, "until", start.Add(l.cfg.Period).Format(time.RFC3339), "max_records", l.cfg.MaxRecords)
	tick := time.NewTicker(min(max(l.cfg.Period/5, time.Second), time.Minute))
	defer tick.Stop()
	end := time.NewTimer(l.cfg.Period)
	defer end.Stop()
	for collecting := true; collecting; {
		select {
		case <-ctx.Done():
			s := l.col.stop()
			l.setState("stopped")
			l.log.Warn("learning stopped before the end of its period; nothing learned", "seen", s.seen)
			return false
		case <-tick.C:
			seen, kept := l.col.counts()
			l.log.Info("learning", "seen", seen, "sampled", kept, "left", time.Until(start.Add(l.cfg.Period)).Round(time.Second))
		case <-end.C:
			collecting = false
		}
	}
	s := l.col.stop()
	l.setState("training")
	err := l.learn(ctx, s, start)
	switch {
	case err == nil:
		l.setState("learned")
	case ctx.Err() != nil:
		l.setState("stopped")
		l.log.Warn("learning stopped while training; nothing learned")
		return false
	case errors.As(err, new(refusal)):
		l.setState("refused")
		_, cur, _ := l.current()
		l.log.Error("learned model refused; the detector keeps its model", "model", cur, "reason", err)
	default:
		l.setState("failed")
		_, cur, _ := l.current()
		l.log.Error("learning failed; the detector keeps its model", "model", cur, "err", err)
	}
	return true
}

// refusal is a guard's reason for keeping the current model.
type refusal struct{ reason string }

func (r refusal) Error() string { return r.reason }

func refuse(format string, args ...any) error { return refusal{fmt.Sprintf(format, args...)} }

// learn turns the sample into a model and hands it to the detector.
func (l *learner) learn(ctx context.Context, s sample, start time.Time) error {
	cfg := l.cfg
	l.log.Info("learning period over", "seen", s.seen, "sampled", len(s.recs), "undecodable", s.bad,
		"partitions", fmt.Sprint(s.partitions), "sample_full", !s.full.IsZero())
	l.checkPartitions(ctx, s.partitions)
	cur, curFP, curPath := l.current()
	opts, seed, err := retrainOptions(cur)
	if err != nil {
		return err
	}
	recs := l.trimByCurrent(s.recs, curFP, curPath)
	rng := rand.New(rand.NewPCG(seed, 0xca95))
	recs, bySource, byDest := capBaseline(recs, cfg, rng)
	if len(bySource) > 0 {
		l.log.Warn("guard: sources over their share of the baseline cut", "cap", cfg.MaxSourceShare, "sources", len(bySource), "cut", describeCapped(bySource, len(s.recs)))
	}
	if len(byDest) > 0 {
		l.log.Warn("guard: destination services over their share of the baseline cut", "cap", cfg.MaxDestShare, "destinations", len(byDest), "cut", describeCapped(byDest, len(s.recs)))
	}
	sources := distinctSources(recs)
	l.log.Info("baseline sample", "records", len(recs), "cut_by_caps", len(s.recs)-len(recs), "sources", sources)
	if cfg.BaselineOut != "" && len(recs) > 0 {
		if err := writeBaseline(cfg.BaselineOut, recs); err != nil {
			return fmt.Errorf("write the baseline: %w", err)
		}
		l.log.Info("wrote the baseline", "path", cfg.BaselineOut, "records", len(recs))
	}
	if len(recs) < cfg.MinRecords {
		return refuse("the baseline holds %d connections after the caps (of %d consumed), want at least %d (--learn-min-records): learn for longer", len(recs), s.seen, cfg.MinRecords)
	}
	if sources < cfg.MinSources {
		why := "learn for longer, when more hosts are active"
		if sources == 0 {
			why = "the records carry no source address (src_ip); set --learn-min-sources 0 to learn from them anyway"
		}
		return refuse("the baseline holds %d distinct source addresses, want at least %d (--learn-min-sources): %s", sources, cfg.MinSources, why)
	}

	train, err := loadLearnData(cfg)
	if err != nil {
		return err
	}
	var hold *dataset.Dataset
	if cfg.Check > 0 {
		train, hold = model.StratifiedSplit(train, cfg.Check, seed)
		opts.Validation = hold
	}
	opts.Sources = append(baseNames(cfg.Data), fmt.Sprintf("%s (learned %s to %s)", cfg.Topic, start.UTC().Format(time.RFC3339), time.Now().UTC().Format(time.RFC3339)))
	trained := time.Now()
	first, st, err := withBaseline(ctx, l.train, train, opts, recs, cfg.Trim)
	switch {
	case err != nil && first != nil && st.added == 0:
		return refuse("%v", err) // nothing left after the trim
	case err != nil:
		return err
	}
	l.log.Info("guard: baseline trimmed of what a model trained without it is sure is an attack", "connections", st.records, "summary", st.String())
	if st.added < cfg.MinRecords {
		return refuse("%d connections are left after the trim, want at least %d (--learn-min-records)", st.added, cfg.MinRecords)
	}
	if w := st.thin(); w != "" {
		l.log.Warn("baseline: " + w)
	}
	final, err := l.train(ctx, "training with the baseline", train, opts)
	if err != nil {
		return err
	}
	l.log.Info("retrained", "rows", train.Len(), "seconds", time.Since(trained).Round(time.Millisecond).Seconds())
	if hold != nil {
		per, nn, ffp, lfp, bad := checkHeldBack(first, final, hold, cfg.MinDetection)
		for _, d := range per {
			l.log.Info("check on held-back training rows", "category", d.category.String(), "rows", d.rows,
				"flagged_without_baseline", d.first, "flagged_learned", d.final)
		}
		l.log.Info("check on held-back training rows", "category", "normal", "rows", nn, "flagged_without_baseline", ffp, "flagged_learned", lfp)
		if bad != "" {
			return refuse("the learned model misses known attacks in held-back training rows (an attack learned as normal?): %s", bad)
		}
	} else {
		l.log.Warn("no check of the learned model on held-back training rows (--learn-check 0)")
	}
	if err := final.SaveFile(cfg.Out); err != nil {
		return err
	}
	fp, err := l.swap(cfg.Out)
	if err != nil {
		return err
	}
	l.log.Info("model learned: now scoring with it", "fingerprint", fp, "previous", curFP, "path", cfg.Out,
		"baseline", st.added, "train_command", trainCommand(cfg, opts, seed))
	return nil
}

// checkPartitions warns when the sample lacks records of some of the
// input topic's partitions: the hosts whose records go there (the sensor
// keys records by destination host) are then not in the baseline.
func (l *learner) checkPartitions(ctx context.Context, got []int32) {
	if l.partitions == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n, err := l.partitions(ctx)
	switch {
	case err != nil:
		l.log.Warn("cannot tell whether the sample covers every partition of the topic", "err", err)
	case len(got) < n:
		l.log.Warn("the sample holds records of only some of the topic's partitions: the hosts whose records go to the others are not in the baseline (other detectors of the group held them, or they were idle)",
			"partitions", fmt.Sprint(got), "of", n)
	}
}

// trimByCurrent leaves out the records that the model the detector
// scores with (as its file holds it: without --adapt's learning) calls an
// attack with at least the trim's probability. After an earlier learning
// period that model knows the site, so what its classifier is sure of is
// more likely an attack than what a model trained on the training data
// alone is sure of. It keeps every record when the file no longer holds
// that model.
func (l *learner) trimByCurrent(recs []record.Record, fp, path string) []record.Record {
	m, got, err := loadModel(path, false)
	if err != nil || got != fp {
		l.log.Warn("guard: the current model's trim skipped: its file no longer holds it", "path", path, "fingerprint", fp, "err", err)
		return recs
	}
	kept := recs[:0:0]
	for i := range recs {
		r := recs[i]
		if m.Complete(&r) == nil && sureAttack(m, &r, l.cfg.Trim) {
			continue
		}
		kept = append(kept, recs[i])
	}
	l.log.Info("guard: baseline trimmed of what the current model is sure is an attack", "model", fp, "left_out", len(recs)-len(kept), "of", len(recs), "attack_probability", l.cfg.Trim)
	return kept
}

// train trains one model, logging its progress at most every 2 seconds.
func (l *learner) train(ctx context.Context, what string, ds *dataset.Dataset, opts model.TrainOptions) (*model.Detector, error) {
	var mu sync.Mutex
	last := time.Now()
	opts.Progress = func(done, total int) {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(last) >= 2*time.Second {
			last = time.Now()
			l.log.Info("learning: "+what, "done", done, "of", total)
		}
	}
	l.log.Info("learning: "+what, "rows", ds.Len())
	return model.Train(ctx, ds, opts)
}
