// Package model holds the Detector: a trained classifier (a random forest or
// a logistic regression) together with everything needed to use it later —
// the feature schema, the label set, the binary threshold, the
// hyper-parameters, the training-data fingerprint and metrics — saved as one
// self-describing, versioned file (see Save for the format).
//
// A Detector turns class probabilities into a Verdict at three
// granularities: the attack type, its category, and binary normal/attack.
// It may also hold a Novelty part, an unsupervised model that can flag a
// record the classifier calls normal as "unknown"; this package defines the
// interface and stores it in the model file, novelty models live elsewhere.
//
// A Detector is safe for concurrent use once trained or loaded; only
// SetThreshold, SetNovelty, SetNoveltyConfident and SetMetric must not run
// concurrently with anything else. PredictBatch and Train use all cores;
// their goroutines have ended when they return.
package model

import (
	"encoding/json"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"
	"time"

	par "github.com/netsentinel/netsentinel/internal/parallel"

	"github.com/netsentinel/netsentinel/internal/dataset"
	"github.com/netsentinel/netsentinel/internal/model/novelty"
	"github.com/netsentinel/netsentinel/internal/record"
)

// Algorithms the Detector can hold.
const (
	AlgoForest   = "forest"
	AlgoLogistic = "logistic"
)

// DefaultThreshold is the default binary threshold: a record is an attack
// when the probability of "normal" is below it.
const DefaultThreshold = 0.5

// classifier is what the Detector needs from a trained model.
type classifier interface {
	NumClasses() int
	PredictProba(x []float32, out []float32)
	PredictProbaBatch(X [][]float32, out []float32)
	MarshalBinary() ([]byte, error)
}

// Novelty is an optional unsupervised part of a Detector that scores how
// unlike the training data a record is. Model files can hold the kinds
// decodeNovelty knows: package novelty's.
type Novelty interface {
	// Kind names the implementation; it is stored in the model file and
	// selects its decoder.
	Kind() string
	// Score returns the novelty of one row of record.NumFeatures values,
	// in [0,1], higher meaning stranger. It must be safe for concurrent
	// use and should not allocate.
	Score(x []float32) float64
	// MarshalBinary encodes the model for the model file.
	MarshalBinary() ([]byte, error)
}

// Info describes a Detector: what it was trained with and how well it did.
// It is the JSON header of the model file.
type Info struct {
	// FormatVersion is the model file format version.
	FormatVersion int `json:"format_version"`
	// Created is when the model was trained.
	Created time.Time `json:"created"`
	// Version is the netsentinel version that trained it.
	Version string `json:"netsentinel_version"`
	// Algorithm is AlgoForest or AlgoLogistic.
	Algorithm string `json:"algorithm"`
	// Params are the algorithm's hyper-parameters as JSON (a forest.Config
	// or logistic.Config).
	Params json.RawMessage `json:"params"`
	// Labels are the class labels in class order.
	Labels []string `json:"labels"`
	// Threshold is the binary threshold on P(normal).
	Threshold float64 `json:"threshold"`
	// NoveltyThreshold is the novelty score from which a record the
	// classifier calls normal is flagged "unknown"; 0 without a novelty
	// part.
	NoveltyThreshold float64 `json:"novelty_threshold,omitempty"`
	// NoveltyConfident, when above 0, is the P(normal) from which the
	// classifier counts as confident: such a record is flagged "unknown"
	// only from NoveltyConfidentThreshold on, a higher novelty score than
	// NoveltyThreshold.
	NoveltyConfident float64 `json:"novelty_confident,omitempty"`
	// NoveltyConfidentThreshold is the novelty threshold of records with
	// P(normal) >= NoveltyConfident.
	NoveltyConfidentThreshold float64 `json:"novelty_confident_threshold,omitempty"`
	// Training describes the training data.
	Training TrainingData `json:"training"`
	// Metrics holds figures measured at training time, such as
	// "train_seconds" and "validation_category_accuracy".
	Metrics map[string]float64 `json:"metrics"`
}

// TrainingData identifies the data a model was trained on.
type TrainingData struct {
	// Rows is the number of training rows.
	Rows int `json:"rows"`
	// SHA256 is the hex SHA-256 of the training rows (each row's 41
	// float32 features, little-endian, then its label and a newline), in
	// order.
	SHA256 string `json:"sha256"`
	// Sources names the files the rows came from.
	Sources []string `json:"sources"`
	// Skipped counts malformed input lines skipped while loading.
	Skipped int `json:"skipped"`
	// ClassCounts counts the rows of each label.
	ClassCounts map[string]int `json:"class_counts"`
}

// Detector is a trained classifier with its metadata. See the package
// comment for concurrency.
type Detector struct {
	info    Info
	clf     classifier
	normal  int // class index of "normal", or -1
	catOf   []record.Category
	novelty Novelty
	// learner, when not nil, is the novelty part learning the site's
	// traffic from records with P(normal) >= learnFrom (see Adapt).
	learner   learner
	learnFrom float64
	scratch   sync.Pool // *scratch
}

func newDetector(info Info, clf classifier) *Detector {
	d := &Detector{info: info, clf: clf, normal: -1}
	d.catOf = make([]record.Category, len(info.Labels))
	for k, l := range info.Labels {
		d.catOf[k] = record.CategoryOf(l)
		if l == "normal" {
			d.normal = k
		}
	}
	n := clf.NumClasses()
	d.scratch.New = func() any { return &scratch{p: make([]float32, n)} }
	if d.info.Metrics == nil {
		d.info.Metrics = map[string]float64{}
	}
	return d
}

// Info returns a copy of the Detector's metadata.
func (d *Detector) Info() Info {
	i := d.info
	i.Labels = slices.Clone(i.Labels)
	i.Params = slices.Clone(i.Params)
	i.Metrics = maps.Clone(i.Metrics)
	i.Training.Sources = slices.Clone(i.Training.Sources)
	i.Training.ClassCounts = maps.Clone(i.Training.ClassCounts)
	return i
}

// Labels returns the class labels in class order.
func (d *Detector) Labels() []string { return slices.Clone(d.info.Labels) }

// Algorithm returns AlgoForest or AlgoLogistic.
func (d *Detector) Algorithm() string { return d.info.Algorithm }

// FeatureImportance returns the forest's mean decrease in impurity per
// feature (schema order, summing to 1), or nil for other algorithms.
func (d *Detector) FeatureImportance() []float64 {
	if f, ok := d.clf.(interface{ FeatureImportance() []float64 }); ok {
		return f.FeatureImportance()
	}
	return nil
}

// Threshold returns the binary threshold on P(normal).
func (d *Detector) Threshold() float64 { return d.info.Threshold }

// SetThreshold sets the binary threshold: a record is an attack when
// P(normal) < t. t must be in (0, 1].
func (d *Detector) SetThreshold(t float64) error {
	if !(t > 0 && t <= 1) {
		return fmt.Errorf("threshold %v: must be in (0, 1]", t)
	}
	d.info.Threshold = t
	return nil
}

// SetMetric records a metric in the model's metadata (saved with it).
func (d *Detector) SetMetric(name string, v float64) { d.info.Metrics[name] = v }

// Novelty returns the novelty part and its threshold, or nil.
func (d *Detector) Novelty() (Novelty, float64) { return d.novelty, d.info.NoveltyThreshold }

// SetNovelty sets the novelty part (nil removes it): a record the classifier
// calls normal whose novelty score is at least threshold gets the verdict
// "unknown".
func (d *Detector) SetNovelty(n Novelty, threshold float64) {
	d.novelty, d.learner = n, nil
	d.info.NoveltyThreshold = threshold
	if n == nil {
		d.info.NoveltyThreshold = 0
		d.info.NoveltyConfident, d.info.NoveltyConfidentThreshold = 0, 0
	}
}

// NoveltyConfident returns the P(normal) from which the classifier counts as
// confident and the novelty threshold that applies then, or 0, 0 when every
// record gets the threshold of Novelty.
func (d *Detector) NoveltyConfident() (pNormal, threshold float64) {
	return d.info.NoveltyConfident, d.info.NoveltyConfidentThreshold
}

// SetNoveltyConfident sets a second, higher novelty threshold for the
// records the classifier calls normal with P(normal) >= pNormal; pNormal 0
// removes it. pNormal must be in [0, 1].
func (d *Detector) SetNoveltyConfident(pNormal, threshold float64) error {
	if !(pNormal >= 0 && pNormal <= 1) {
		return fmt.Errorf("confident P(normal) %v: must be in [0, 1]", pNormal)
	}
	d.info.NoveltyConfident, d.info.NoveltyConfidentThreshold = pNormal, threshold
	if pNormal == 0 {
		d.info.NoveltyConfidentThreshold = 0
	}
	return nil
}

// Predict returns the verdict on one row of record.NumFeatures values in
// schema order (symbolic features as vocabulary codes). It does not
// allocate and is safe for concurrent use. It panics if len(x) is wrong.
func (d *Detector) Predict(x []float32) Verdict {
	if len(x) != record.NumFeatures {
		panic(fmt.Sprintf("model: Predict with %d features, want %d", len(x), record.NumFeatures))
	}
	s := d.getScratch()
	v := d.predict(x, s)
	d.scratch.Put(s)
	return v
}

// scratch is the space one prediction needs: the class probabilities, the
// novelty part's search (see novelty.Nearest), which Analyze shares between
// filling in, scoring and explaining a record, and room for the record's
// row and for typical normal traffic.
type scratch struct {
	p       []float32
	n       novelty.Nearest
	x, typ  [record.NumFeatures]float32 // a record's row, and typical normal traffic
	reasons [record.NumFeatures]Reason  // room to rank the features of an explanation
}

// getScratch returns a scratch from the pool with an empty search.
func (d *Detector) getScratch() *scratch {
	s := d.scratch.Get().(*scratch)
	s.n.Reset()
	return s
}

// predict is Predict with the scratch s, whose search it uses and keeps.
func (d *Detector) predict(x []float32, s *scratch) Verdict {
	d.clf.PredictProba(x, s.p)
	return d.verdict(s.p, x, &s.n)
}

// PredictRecord returns the verdict on a decoded record.
func (d *Detector) PredictRecord(r *record.Record) Verdict {
	s := d.getScratch()
	for j, v := range r.Features {
		s.x[j] = float32(v)
	}
	v := d.predict(s.x[:], s)
	d.scratch.Put(s)
	return v
}

// batchRows is how many rows PredictBatch scores at a time, bounding the
// memory of the probability matrix.
const batchRows = 1 << 16

// PredictBatch returns the verdicts on every row of ds, using all cores.
func (d *Detector) PredictBatch(ds *dataset.Dataset) []Verdict {
	out := make([]Verdict, ds.Len())
	d.PredictColumns(ds.X[:], out)
	return out
}

// PredictColumns writes the verdicts on the rows of the column-major matrix
// X (X[j][i] is feature j of row i; record.NumFeatures columns of equal
// length) to out, which must hold a verdict per row. Scoring rows together
// is several times faster than calling Predict on each; it uses all cores.
// It panics if a length is wrong.
func (d *Detector) PredictColumns(X [][]float32, out []Verdict) {
	if len(X) != record.NumFeatures {
		panic(fmt.Sprintf("model: PredictColumns with %d features, want %d", len(X), record.NumFeatures))
	}
	n := len(X[0])
	if len(out) < n {
		panic(fmt.Sprintf("model: PredictColumns with %d rows and %d verdicts", n, len(out)))
	}
	k := d.clf.NumClasses()
	probs := make([]float32, min(n, batchRows)*k)
	cols := make([][]float32, record.NumFeatures)
	for lo := 0; lo < n; lo += batchRows {
		hi := min(lo+batchRows, n)
		for j := range cols {
			cols[j] = X[j][lo:hi]
		}
		p := probs[:(hi-lo)*k]
		d.clf.PredictProbaBatch(cols, p)
		parallel(hi-lo, func(a, b int) {
			s := d.getScratch()
			x := &s.x
			for i := a; i < b; i++ {
				if d.novelty != nil {
					for j := range x {
						x[j] = cols[j][i]
					}
				}
				s.n.Reset()
				out[lo+i] = d.verdict(p[i*k:(i+1)*k], x[:], &s.n)
			}
			d.scratch.Put(s)
		})
	}
}

// verdict turns class probabilities p into a Verdict; x (the row) is only
// read by the novelty part, whose search is kept in n.
//
// The binary threshold decides normal versus attack. For an attack, the
// attack type is the most probable attack class and the category the most
// probable attack category (class probabilities summed per category), so
// the three granularities never contradict each other on normality.
func (d *Detector) verdict(p []float32, x []float32, n *novelty.Nearest) Verdict {
	var cat [record.NumCategories]float64
	for k, v := range p {
		cat[d.catOf[k]] += float64(v)
	}
	var pNormal float64
	if d.normal >= 0 {
		pNormal = float64(p[d.normal])
	}
	v := Verdict{AttackProbability: clamp01(1 - pNormal)}
	if d.normal >= 0 && pNormal >= d.info.Threshold {
		v.Attack = "normal"
		v.Category = record.CategoryNormal
		v.Probability = pNormal
		v.CategoryProbability = cat[record.CategoryNormal]
	} else {
		best := -1
		for k, pk := range p {
			if k != d.normal && (best < 0 || pk > p[best]) {
				best = k
			}
		}
		if best < 0 { // only "normal" is known, yet the threshold says attack
			v.Attack, v.Category = "unknown", record.CategoryUnknown
		} else {
			v.Attack = d.info.Labels[best]
			v.Probability = float64(p[best])
			bc := record.CategoryUnknown
			for _, c := range record.Categories {
				if c != record.CategoryNormal && cat[c] > cat[bc] {
					bc = c
				}
			}
			v.Category = bc
			v.CategoryProbability = cat[bc]
		}
		v.IsAttack = true
		v.FlaggedBy = "classifier"
	}
	if d.learner != nil {
		v.Novelty = d.learner.ScoreLearnNearest(x, !v.IsAttack && pNormal >= d.learnFrom, n)
	} else if ns, ok := d.novelty.(nearestScorer); ok {
		v.Novelty = ns.ScoreNearest(x, n)
	} else if d.novelty != nil {
		v.Novelty = d.novelty.Score(x)
	}
	if d.novelty != nil {
		thr := d.info.NoveltyThreshold
		if c := d.info.NoveltyConfident; c > 0 && pNormal >= c {
			thr = d.info.NoveltyConfidentThreshold
		}
		if !v.IsAttack && v.Novelty >= thr {
			v.Attack, v.Category = "unknown", record.CategoryUnknown
			v.IsAttack, v.FlaggedBy = true, "novelty"
			v.Probability, v.CategoryProbability = v.Novelty, v.Novelty
		}
	}
	return v
}

func clamp01(x float64) float64 { return min(max(x, 0), 1) }

// parallel runs f over [0,n) split into up to GOMAXPROCS contiguous
// ranges of at least about 1024 rows and waits for all of them.
func parallel(n int, f func(lo, hi int)) {
	workers := min(runtime.GOMAXPROCS(0), n/1024+1)
	par.Ranges(n, workers, func(_, lo, hi int) { f(lo, hi) })
}
