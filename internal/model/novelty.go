package model

import (
	"context"
	"fmt"

	"github.com/netsentinel/netsentinel/internal/dataset"
	"github.com/netsentinel/netsentinel/internal/model/forest"
	"github.com/netsentinel/netsentinel/internal/model/novelty"
	"github.com/netsentinel/netsentinel/internal/record"
)

// This file adds the novelty part of package novelty to Train and to model
// files (see docs/validation.md for how its defaults were chosen).

// decodeNovelty decodes the novelty part of a model file, of the given
// kind.
func decodeNovelty(kind string, b []byte) (Novelty, error) {
	switch kind {
	case novelty.Kind:
		m := new(novelty.Model)
		if err := m.UnmarshalBinary(b); err != nil {
			return nil, fmt.Errorf("%w: novelty model: %w", ErrCorrupt, err)
		}
		return m, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrNoveltyKind, kind)
}

// DefaultNoveltyFPR is the default share of normal rows the novelty part may
// flag: its threshold is the score exceeded by this fraction of the normal
// rows it held out from training.
const DefaultNoveltyFPR = 0.02

// DefaultConfident and DefaultConfidentFPR set the novelty part's stricter
// threshold for records the classifier is confident about: from P(normal)
// 0.99 on (with 30 trees: when every tree calls the record normal) the
// novelty part flags only what 0.5% of held-out normal rows reach.
// Validation on normal rows unlike the training file's bulk (hard rows,
// thinly seen services, another stretch of time) found that this halves
// the false positives there while most records of unseen attack types are
// still caught, because those are rarely called normal by every tree.
const (
	DefaultConfident    = 0.99
	DefaultConfidentFPR = 0.005
)

// DefaultNoveltyThreshold is the binary threshold on P(normal) that goes
// with the novelty part by default: validation holding out whole attack
// types found that flagging records the forest is unsure about catches
// many unseen attacks; with the stricter novelty threshold for confident
// records, 0.8 flagged fewer shifted normal rows than 0.9 for 0.5 points of
// detection (docs/validation.md).
const DefaultNoveltyThreshold = 0.8

// NoveltyOptions configure the novelty part Train adds to a Detector.
type NoveltyOptions struct {
	// Config configures the novelty model; zero fields take
	// novelty.DefaultConfig's values.
	Config novelty.Config
	// FPR is the share of held-out normal rows the novelty part may flag,
	// in (0, 0.2]; 0 means DefaultNoveltyFPR.
	FPR float64
	// Confident, when above 0, is the P(normal) from which the classifier
	// counts as confident; such records get the stricter novelty threshold
	// of ConfidentFPR. It must be in [0, 1].
	Confident float64
	// ConfidentFPR is the share of held-out normal rows the novelty part
	// may flag among records the classifier is confident about, in
	// (0, FPR]; 0 means DefaultConfidentFPR.
	ConfidentFPR float64
}

// trainNovelty trains a novelty model on the normal rows of ds and returns
// it with its thresholds (the second is 0 without opts.Confident).
func trainNovelty(ctx context.Context, ds *dataset.Dataset, opts NoveltyOptions) (*novelty.Model, float64, float64, error) {
	if opts.FPR == 0 {
		opts.FPR = DefaultNoveltyFPR
	}
	if opts.ConfidentFPR == 0 {
		opts.ConfidentFPR = DefaultConfidentFPR
	}
	if !(opts.Confident >= 0 && opts.Confident <= 1) {
		return nil, 0, 0, fmt.Errorf("novelty part: confident P(normal) %v: must be in [0, 1]", opts.Confident)
	}
	if opts.Confident > 0 && !(opts.ConfidentFPR > 0 && opts.ConfidentFPR <= opts.FPR) {
		return nil, 0, 0, fmt.Errorf("novelty part: false-positive rate %v for confident records: must be in (0, %v], the rate for the others", opts.ConfidentFPR, opts.FPR)
	}
	var rows []int
	for i, l := range ds.Labels {
		if l == "normal" {
			rows = append(rows, i)
		}
	}
	if len(rows) < 2 {
		return nil, 0, 0, fmt.Errorf("novelty part: %w: %d normal rows, need at least 2 (or train without a novelty part)", ErrNoData, len(rows))
	}
	m, err := novelty.Train(ctx, ds.Subset(rows).X[:], opts.Config)
	if err != nil {
		return nil, 0, 0, err
	}
	thr, err := m.Threshold(opts.FPR)
	if err != nil {
		return nil, 0, 0, err
	}
	var confThr float64
	if opts.Confident > 0 {
		if confThr, err = m.Threshold(opts.ConfidentFPR); err != nil {
			return nil, 0, 0, err
		}
	}
	return m, thr, confThr, nil
}

// explainer is what NoveltyFeatures needs from a novelty part.
type explainer interface {
	Explain(x []float32, n int) []novelty.Contribution
}

// NoveltyFeatures returns the names of up to n features that make the row x
// (as for Predict) most unlike normal traffic, most telling first, or nil
// when the Detector has no novelty part that can explain itself. It is
// meant for records the novelty part flagged; it allocates.
func (d *Detector) NoveltyFeatures(x []float32, n int) []string {
	e, ok := d.novelty.(explainer)
	if !ok {
		return nil
	}
	var names []string
	for _, c := range e.Explain(x, n) {
		names = append(names, record.Features[c.Feature].Name)
	}
	return names
}

// DefaultTrainOptions returns the options of the default detector, what
// 'netsentinel train' builds without flags: the forest's DefaultConfig, a
// novelty part at DefaultNoveltyFPR, and the binary threshold
// DefaultNoveltyThreshold.
func DefaultTrainOptions() TrainOptions {
	return TrainOptions{
		Algo:      AlgoForest,
		Forest:    forest.DefaultConfig(),
		Novelty:   &NoveltyOptions{FPR: DefaultNoveltyFPR, Confident: DefaultConfident, ConfidentFPR: DefaultConfidentFPR},
		Threshold: DefaultNoveltyThreshold,
	}
}

// learner is a novelty part that learns from the records it scores
// (novelty.Adaptive).
type learner interface {
	ScoreLearnNearest(x []float32, learn bool, n *novelty.Nearest) float64
}

// nearestScorer is a novelty part that keeps its search for the nearest
// normal prototype for reuse (package novelty's).
type nearestScorer interface {
	ScoreNearest(x []float32, n *novelty.Nearest) float64
}

// DefaultLearnFrom is the P(normal) from which an adapting Detector learns
// a record as the site's normal traffic: every tree of the forest must call
// it normal.
const DefaultLearnFrom = 0.999

// Learns reports whether the Detector learns from the records it scores
// (Adapt): its verdicts then depend on the records before, and equal
// records can get different verdicts.
func (d *Detector) Learns() bool { return d.learner != nil }

// Adapt makes the novelty part learn the normal traffic the Detector scores
// (see novelty.Adaptive): every record the classifier calls normal with
// P(normal) >= learnFrom (0 means DefaultLearnFrom) is offered to it. The
// learned profile lives in memory only; Save writes the trained one, and a
// Detector loaded again starts from it. Verdicts then depend on the order
// of the records: score them one at a time in arrival order (Predict), not
// with PredictColumns. It fails if the Detector has no novelty part of
// package novelty.
func (d *Detector) Adapt(cfg novelty.AdaptConfig, learnFrom float64) error {
	if learnFrom == 0 {
		learnFrom = DefaultLearnFrom
	}
	if !(learnFrom > 0 && learnFrom <= 1) {
		return fmt.Errorf("adapt: P(normal) %v to learn from: must be in (0, 1]", learnFrom)
	}
	var base *novelty.Model
	switch n := d.novelty.(type) {
	case *novelty.Model:
		base = n
	case *novelty.Adaptive:
		base = n.Model
	default:
		return fmt.Errorf("adapt: the model has no novelty part of kind %q to adapt", novelty.Kind)
	}
	a, err := novelty.NewAdaptive(base, cfg)
	if err != nil {
		return err
	}
	d.novelty, d.learner, d.learnFrom = a, a, learnFrom
	return nil
}
