package model

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/netsentinel/netsentinel/internal/dataset"
	"github.com/netsentinel/netsentinel/internal/model/forest"
	"github.com/netsentinel/netsentinel/internal/model/logistic"
	"github.com/netsentinel/netsentinel/internal/record"
)

// TrainOptions configure Train.
type TrainOptions struct {
	// Algo is AlgoForest (the default when empty) or AlgoLogistic.
	Algo string
	// Forest holds the forest's hyper-parameters, with forest.Config's
	// meaning of zero fields (MaxFeatures 0 is sqrt of the features, not
	// the default 12): start from forest.DefaultConfig(), or from
	// DefaultTrainOptions for the whole default detector.
	Forest forest.Config
	// Logistic holds the logistic regression's settings; its Columns are
	// set from the record schema.
	Logistic logistic.Config
	// BalancedClassWeight weighs each class inversely to its frequency
	// (overriding any ClassWeight in Forest or Logistic).
	BalancedClassWeight bool
	// Threshold is the binary threshold on P(normal); 0 means
	// DefaultThreshold.
	Threshold float64
	// Validation, if not nil, is scored after training and its accuracies
	// stored in the model's metrics.
	Validation *dataset.Dataset
	// Progress, if not nil, is called as training advances with the work
	// done and the total (trees for the forest, iterations for logistic).
	Progress func(done, total int)
	// Sources names the files the data came from, for the model's
	// metadata; nil means ds.Source.
	Sources []string
	// Novelty, if not nil, adds a novelty part trained on the normal rows
	// (see novelty.go).
	Novelty *NoveltyOptions
}

// ErrNoData is returned (wrapped) by Train when the training set is empty or
// has unlabelled rows.
var ErrNoData = errors.New("no labelled training data")

// Train trains a Detector on the labelled rows of ds. It returns ctx's
// error if ctx is cancelled first.
func Train(ctx context.Context, ds *dataset.Dataset, opts TrainOptions) (*Detector, error) {
	start := time.Now()
	n := ds.Len()
	if n == 0 {
		return nil, fmt.Errorf("train: %w: no rows", ErrNoData)
	}
	if opts.Threshold == 0 {
		opts.Threshold = DefaultThreshold
	}
	if !(opts.Threshold > 0 && opts.Threshold <= 1) {
		return nil, fmt.Errorf("train: threshold %v: must be in (0, 1]", opts.Threshold)
	}
	labels, y, counts, err := encodeLabels(ds.Labels)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	X := ds.X[:]
	// The novelty part trains alongside the classifier: both use all
	// cores, but each has stretches where it does not (the largest k-means
	// group, the forest's last trees), which the other fills.
	type noveltyResult struct {
		m            Novelty
		thr, confThr float64
		err          error
	}
	var novDone chan noveltyResult
	novCtx, cancelNovelty := context.WithCancel(ctx)
	if opts.Novelty != nil {
		novDone = make(chan noveltyResult, 1)
		go func() {
			m, thr, confThr, err := trainNovelty(novCtx, ds, *opts.Novelty)
			novDone <- noveltyResult{m, thr, confThr, err}
		}()
	}
	// waitNovelty returns the novelty part's result (or nothing when there
	// is none). On an early return the deferred call cancels the novelty
	// part and waits, so the goroutine has ended when Train returns.
	waitNovelty := func() noveltyResult {
		if novDone == nil {
			return noveltyResult{}
		}
		r := <-novDone
		novDone = nil
		return r
	}
	defer func() {
		cancelNovelty()
		waitNovelty()
	}()
	var (
		clf    classifier
		params any
	)
	switch opts.Algo {
	case "", AlgoForest:
		opts.Algo = AlgoForest
		cfg := opts.Forest
		if opts.BalancedClassWeight {
			cfg.ClassWeight = forest.BalancedWeights(y, len(labels))
		}
		m, err := forest.Train(ctx, X, y, len(labels), cfg, opts.Progress)
		if err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		clf, params = m, cfg
	case AlgoLogistic:
		cfg := opts.Logistic.WithDefaults()
		cfg.Columns = logisticColumns()
		if opts.BalancedClassWeight {
			cfg.ClassWeight = forest.BalancedWeights(y, len(labels))
		}
		m, err := logistic.Train(ctx, X, y, len(labels), cfg, opts.Progress)
		if err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		clf, params = m, cfg
	default:
		return nil, fmt.Errorf("train: unknown algorithm %q (want %s or %s)", opts.Algo, AlgoForest, AlgoLogistic)
	}
	pj, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("train: encode parameters: %w", err)
	}
	info := Info{
		FormatVersion: FormatVersion,
		Created:       time.Now().UTC().Truncate(time.Second),
		Version:       buildVersion(),
		Algorithm:     opts.Algo,
		Params:        pj,
		Labels:        labels,
		Threshold:     opts.Threshold,
		Training: TrainingData{
			Rows:        n,
			SHA256:      Fingerprint(ds),
			Sources:     sources(opts.Sources, ds.Source),
			Skipped:     ds.Skipped,
			ClassCounts: counts,
		},
		Metrics: map[string]float64{"train_seconds": math.Round(time.Since(start).Seconds()*1000) / 1000},
	}
	d := newDetector(info, clf)
	if opts.Novelty != nil {
		r := waitNovelty()
		if r.err != nil {
			return nil, fmt.Errorf("train: %w", r.err)
		}
		d.SetNovelty(r.m, r.thr)
		if err := d.SetNoveltyConfident(opts.Novelty.Confident, r.confThr); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		d.info.Metrics["train_seconds"] = math.Round(time.Since(start).Seconds()*1000) / 1000
	}
	if v := opts.Validation; v != nil && v.Len() > 0 {
		a := Accuracy(v, d.PredictBatch(v))
		d.info.Metrics["validation_rows"] = float64(v.Len())
		d.info.Metrics["validation_attack_accuracy"] = a.Attack
		d.info.Metrics["validation_category_accuracy"] = a.Category
		d.info.Metrics["validation_binary_accuracy"] = a.Binary
	}
	return d, nil
}

// encodeLabels maps labels to class indices in sorted label order.
func encodeLabels(rows []string) (labels []string, y []int32, counts map[string]int, err error) {
	counts = map[string]int{}
	for i, l := range rows {
		if l == "" {
			return nil, nil, nil, fmt.Errorf("%w: row %d has no label", ErrNoData, i+1)
		}
		counts[l]++
	}
	for l := range counts {
		labels = append(labels, l)
	}
	slices.Sort(labels)
	index := make(map[string]int32, len(labels))
	for k, l := range labels {
		index[l] = int32(k)
	}
	y = make([]int32, len(rows))
	for i, l := range rows {
		y[i] = index[l]
	}
	return labels, y, counts, nil
}

// logisticColumns returns the logistic regression's input transforms for
// the record schema: symbolic features one-hot over their vocabularies,
// counts and continuous values log1p-transformed (they are heavy-tailed:
// byte counts span ten orders of magnitude), rates and binary flags as they
// are; all but the one-hot columns are then standardized.
func logisticColumns() []logistic.Column {
	cols := make([]logistic.Column, record.NumFeatures)
	for j, f := range record.Features {
		switch f.Kind {
		case record.KindSymbolic:
			cols[j] = logistic.Column{Kind: logistic.OneHot, Levels: len(record.Vocabulary(j))}
		case record.KindCount, record.KindContinuous:
			cols[j] = logistic.Column{Kind: logistic.Log}
		default:
			cols[j] = logistic.Column{Kind: logistic.Numeric}
		}
	}
	return cols
}

func sources(given []string, s string) []string {
	switch {
	case given != nil:
		return slices.Clone(given)
	case s == "":
		return []string{}
	}
	return []string{s}
}

// Fingerprint returns the hex SHA-256 of the rows of ds: for each row in
// order, its features as little-endian float32 bits, its label and "\n".
func Fingerprint(ds *dataset.Dataset) string {
	h := sha256.New()
	buf := make([]byte, 0, 4*record.NumFeatures+64)
	for i := range ds.Len() {
		buf = buf[:0]
		for j := range ds.X {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(ds.X[j][i]))
		}
		buf = append(buf, ds.Labels[i]...)
		buf = append(buf, '\n')
		h.Write(buf)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// buildVersion returns the module version and VCS revision of the binary.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v
}

// Accuracies are the fractions of rows whose verdict matches the true label
// at each granularity.
type Accuracies struct {
	Attack, Category, Binary float64
}

// Accuracy scores verdicts (one per row of ds, as PredictBatch returns)
// against ds's labels. Rows without a label are ignored.
func Accuracy(ds *dataset.Dataset, verdicts []Verdict) Accuracies {
	var a Accuracies
	n := 0
	for i, v := range verdicts {
		l := ds.Labels[i]
		if l == "" {
			continue
		}
		n++
		c := record.CategoryOf(l)
		if v.Attack == strings.TrimSuffix(l, ".") {
			a.Attack++
		}
		if v.Category == c {
			a.Category++
		}
		if v.IsAttack == (c != record.CategoryNormal) {
			a.Binary++
		}
	}
	if n > 0 {
		a.Attack /= float64(n)
		a.Category /= float64(n)
		a.Binary /= float64(n)
	}
	return a
}

// StratifiedSplit splits ds into a training part and a held-out part of
// about fraction of each label's rows, chosen at random with seed.
func StratifiedSplit(ds *dataset.Dataset, fraction float64, seed uint64) (train, holdout *dataset.Dataset) {
	byLabel := map[string][]int{}
	for i, l := range ds.Labels {
		byLabel[l] = append(byLabel[l], i)
	}
	keys := make([]string, 0, len(byLabel))
	for l := range byLabel {
		keys = append(keys, l)
	}
	slices.Sort(keys)
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	var tr, ho []int
	for _, l := range keys {
		rows := byLabel[l]
		r.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
		k := int(math.Round(fraction * float64(len(rows))))
		if k >= len(rows) && len(rows) > 1 {
			k = len(rows) - 1 // keep at least one row of each label for training
		}
		ho = append(ho, rows[:k]...)
		tr = append(tr, rows[k:]...)
	}
	slices.Sort(tr)
	slices.Sort(ho)
	train, holdout = ds.Subset(tr), ds.Subset(ho)
	train.Skipped = ds.Skipped
	return train, holdout
}
