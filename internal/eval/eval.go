// Package eval scores a detector's verdicts against true labels at three
// granularities: binary (normal or attack), category (normal, dos, probe,
// r2l, u2r, unknown) and attack name. It is pure: it does no I/O
// except writing a finished Report to an io.Writer.
//
// # Truth
//
// A true label is mapped with record.CategoryOf. "normal" is the negative
// class for the binary metrics; every other label, including a name the
// taxonomy lacks (true category "unknown"), is an attack. Records whose true
// category is unknown appear under "unknown" in the confusion matrix and in
// recall, and are left out of cost_per_example. Callers should not add
// records without a label.
//
// # Predicted "unknown"
//
// A verdict whose Category is record.CategoryUnknown (the novelty part
// flagged a record the classifier calls normal) is an attack for the binary
// metrics (Verdict.IsAttack is used as given, so the detector decides). For
// cost_per_example it is an attack alarm without a type: it never earns the
// zero cost of the correct type, and it is charged the cheapest wrong attack
// column of the KDD'99 matrix for the true row. The "unknown" column is
// therefore (normal 1, probe 2, dos 1, u2r 2, r2l 2): a false alarm costs
// what a false probe alarm costs, and flagging an attack as unknown is never
// dearer than misnaming its type, and cheaper than missing a u2r or r2l
// attack (3 and 4). A predicted unknown matches a true unknown for category
// accuracy.
//
// # Undefined metrics
//
// A metric whose denominator is zero (the detection rate of a set without
// attacks, the precision of a category never predicted, the AUC of a set with
// one class) is NaN in Go and null in JSON.
package eval

import (
	"cmp"
	"encoding/json"
	"math"
	"slices"
	"strings"

	"github.com/netsentinel/netsentinel/internal/model"
	"github.com/netsentinel/netsentinel/internal/record"
)

// Metric is a metric value. NaN means undefined; it marshals to JSON null,
// and null unmarshals to NaN.
type Metric float64

// MarshalJSON encodes m as a JSON number, or null when m is NaN or infinite.
func (m Metric) MarshalJSON() ([]byte, error) {
	f := float64(m)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(f)
}

// UnmarshalJSON decodes a JSON number, or null as NaN.
func (m *Metric) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*m = Metric(math.NaN())
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*m = Metric(f)
	return nil
}

// Defined reports whether m is a number (not NaN).
func (m Metric) Defined() bool { return !math.IsNaN(float64(m)) }

// Report holds the metrics of one evaluation. It marshals to the JSON object
// that netsentinel eval --json prints.
type Report struct {
	// Records is the number of records evaluated.
	Records int64 `json:"records"`
	// Skipped is the number of input records skipped as malformed (see
	// Evaluator.AddSkipped).
	Skipped  int64          `json:"skipped"`
	Binary   BinaryReport   `json:"binary"`
	Category CategoryReport `json:"category"`
	Attack   AttackReport   `json:"attack"`
	// Novelty holds the metrics of the novelty score alone; nil unless
	// Evaluator.TrackNovelty was called.
	Novelty *NoveltyReport `json:"novelty,omitempty"`
	// Adapted is true when the detector's novelty part learned the
	// records' normal traffic while scoring them in order (eval --adapt).
	Adapted bool `json:"adapted,omitempty"`
}

// NoveltyReport holds the metrics of a detector's novelty score alone.
type NoveltyReport struct {
	// AUC is the area under the ROC curve of Verdict.Novelty for telling
	// attacks from normal records.
	AUC Metric `json:"auc"`
}

// BinaryReport holds the normal-versus-attack metrics.
type BinaryReport struct {
	// Accuracy is the fraction of records whose IsAttack matches the truth.
	Accuracy Metric `json:"accuracy"`
	// DetectionRate is the fraction of attacks flagged (recall, TPR).
	DetectionRate Metric `json:"detection_rate"`
	// FalsePositiveRate is the fraction of normal records flagged.
	FalsePositiveRate Metric `json:"false_positive_rate"`
	// AUC is the area under the ROC curve of Verdict.AttackProbability.
	AUC Metric `json:"auc"`
}

// CategoryReport holds the five-category (plus unknown) metrics.
type CategoryReport struct {
	// Accuracy is the fraction of records whose predicted category equals
	// the true one.
	Accuracy Metric `json:"accuracy"`
	// CostPerExample is the mean KDD'99 contest cost over records with a
	// known true category.
	CostPerExample Metric `json:"cost_per_example"`
	// Recall maps each true category name to its recall. It holds the five
	// known categories always, and "unknown" when a record is truly or
	// predicted unknown.
	Recall map[string]Metric `json:"recall"`
	// Precision maps each predicted category name to its precision, with
	// the same keys as Recall.
	Precision map[string]Metric `json:"precision"`
	// Confusion counts records by true category, then predicted category,
	// with the same keys as Recall on both levels.
	Confusion map[string]map[string]int64 `json:"confusion"`
}

// AttackReport holds the attack-name metrics.
type AttackReport struct {
	// Accuracy is the fraction of records whose predicted attack name equals
	// the true label (KDD'99's trailing dot ignored).
	Accuracy Metric `json:"accuracy"`
}

// costOrder is the row and column order of the KDD'99 contest cost matrix.
var costOrder = [...]record.Category{record.CategoryNormal, record.CategoryProbe, record.CategoryDoS, record.CategoryU2R, record.CategoryR2L}

// costMatrix is the KDD'99 contest cost matrix in costOrder, rows true,
// columns predicted, with a sixth column for a predicted "unknown" (see the
// package documentation).
var costMatrix = [5][6]int{
	{0, 1, 2, 2, 2, 1},
	{1, 0, 2, 2, 2, 2},
	{2, 1, 0, 2, 2, 1},
	{3, 2, 2, 0, 2, 2},
	{4, 2, 2, 2, 0, 2},
}

// Cost returns the KDD'99 contest cost of predicting category pred for a
// record of true category truth, and false when truth is unknown (such
// records carry no cost). A predicted unknown is charged as the package
// documentation explains.
func Cost(truth, pred record.Category) (int, bool) {
	row := slices.Index(costOrder[:], truth)
	if row < 0 {
		return 0, false
	}
	col := slices.Index(costOrder[:], pred)
	if col < 0 {
		col = 5
	}
	return costMatrix[row][col], true
}

// Evaluator accumulates true labels and verdicts. The zero value is not
// ready; use New. An Evaluator is not safe for concurrent use.
type Evaluator struct {
	records, skipped int64
	// confusion[true][predicted] over record.Category values.
	confusion      [record.NumCategories][record.NumCategories]int64
	tp, fp, tn, fn int64
	attackHits     int64
	cost, costed   int64
	scores         []float64
	positive       []bool
	trackNovelty   bool
	novelty        []float64
}

// TrackNovelty makes the Evaluator keep Verdict.Novelty of the records
// added from now on and the Report include the novelty score's AUC. Call it
// before the first Add, for a detector with a novelty part.
func (e *Evaluator) TrackNovelty() { e.trackNovelty = true }

// New returns an empty Evaluator.
func New() *Evaluator { return &Evaluator{} }

// Add records one record's true label (an attack name or "normal", with or
// without KDD'99's trailing dot) and the detector's verdict on it. The AUC
// uses v.AttackProbability as the attack score.
func (e *Evaluator) Add(trueLabel string, v model.Verdict) {
	truth := record.CategoryOf(trueLabel)
	pred := v.Category
	if int(pred) >= record.NumCategories {
		pred = record.CategoryUnknown
	}
	e.records++
	e.confusion[truth][pred]++
	isAttack := truth != record.CategoryNormal
	switch {
	case isAttack && v.IsAttack:
		e.tp++
	case isAttack:
		e.fn++
	case v.IsAttack:
		e.fp++
	default:
		e.tn++
	}
	if strings.TrimSuffix(trueLabel, ".") == v.Attack {
		e.attackHits++
	}
	if c, ok := Cost(truth, pred); ok {
		e.cost += int64(c)
		e.costed++
	}
	e.scores = append(e.scores, v.AttackProbability)
	e.positive = append(e.positive, isAttack)
	if e.trackNovelty {
		e.novelty = append(e.novelty, v.Novelty)
	}
}

// AddSkipped counts n input records that were skipped as malformed; they
// appear as "skipped" in the report and in no metric.
func (e *Evaluator) AddSkipped(n int) { e.skipped += int64(n) }

// Report computes the metrics of everything added so far.
func (e *Evaluator) Report() Report {
	r := Report{Records: e.records, Skipped: e.skipped}
	r.Binary = BinaryReport{
		Accuracy:          ratio(e.tp+e.tn, e.records),
		DetectionRate:     ratio(e.tp, e.tp+e.fn),
		FalsePositiveRate: ratio(e.fp, e.fp+e.tn),
		AUC:               Metric(AUC(e.scores, e.positive)),
	}

	var rowSum, colSum [record.NumCategories]int64
	var hits int64
	for t := range record.NumCategories {
		for p := range record.NumCategories {
			n := e.confusion[t][p]
			rowSum[t] += n
			colSum[p] += n
			if t == p {
				hits += n
			}
		}
	}
	cats := e.categories(&rowSum, &colSum)
	c := CategoryReport{
		Accuracy:       ratio(hits, e.records),
		CostPerExample: ratio(e.cost, e.costed),
		Recall:         make(map[string]Metric, len(cats)),
		Precision:      make(map[string]Metric, len(cats)),
		Confusion:      make(map[string]map[string]int64, len(cats)),
	}
	for _, t := range cats {
		c.Recall[t.String()] = ratio(e.confusion[t][t], rowSum[t])
		c.Precision[t.String()] = ratio(e.confusion[t][t], colSum[t])
		row := make(map[string]int64, len(cats))
		for _, p := range cats {
			row[p.String()] = e.confusion[t][p]
		}
		c.Confusion[t.String()] = row
	}
	r.Category = c
	r.Attack = AttackReport{Accuracy: ratio(e.attackHits, e.records)}
	if e.trackNovelty && len(e.novelty) == len(e.positive) {
		r.Novelty = &NoveltyReport{AUC: Metric(AUC(e.novelty, e.positive))}
	}
	return r
}

// categories returns the categories a report lists: the five known ones,
// and unknown when a record is truly or predicted unknown, in the order of
// record.Categories.
func (e *Evaluator) categories(rowSum, colSum *[record.NumCategories]int64) []record.Category {
	var cats []record.Category
	for _, c := range record.Categories {
		if c == record.CategoryUnknown && rowSum[c] == 0 && colSum[c] == 0 {
			continue
		}
		cats = append(cats, c)
	}
	return cats
}

func ratio(num, den int64) Metric {
	if den == 0 {
		return Metric(math.NaN())
	}
	return Metric(float64(num) / float64(den))
}

// AUC returns the exact area under the ROC curve of scores for telling the
// positive examples from the others: the probability that a random positive
// scores above a random negative, ties counting one half (the Mann-Whitney
// U statistic over the product of the class sizes). It takes O(n log n)
// time and returns NaN when either class is empty. NaN scores rank below
// every number. It panics if the slices differ in length.
func AUC(scores []float64, positive []bool) float64 {
	if len(scores) != len(positive) {
		panic("eval.AUC: len(scores) != len(positive)")
	}
	type point struct {
		score float64
		pos   bool
	}
	pts := make([]point, len(scores))
	var npos int
	for i, s := range scores {
		pts[i] = point{s, positive[i]}
		if positive[i] {
			npos++
		}
	}
	nneg := len(pts) - npos
	if npos == 0 || nneg == 0 {
		return math.NaN()
	}
	slices.SortFunc(pts, func(a, b point) int { return cmp.Compare(a.score, b.score) })
	// u counts, for each positive, the negatives below it plus half the
	// negatives tied with it; 2u is kept in integers to stay exact.
	var twiceU, negBelow int64
	for i := 0; i < len(pts); {
		j := i
		var p, n int64
		for ; j < len(pts) && cmp.Compare(pts[j].score, pts[i].score) == 0; j++ {
			if pts[j].pos {
				p++
			} else {
				n++
			}
		}
		twiceU += p * (2*negBelow + n)
		negBelow += n
		i = j
	}
	return float64(twiceU) / (2 * float64(npos) * float64(nneg))
}
