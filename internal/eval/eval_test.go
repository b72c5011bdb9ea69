package eval

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/netsentinel/netsentinel/internal/model"
	"github.com/netsentinel/netsentinel/internal/record"
)

// verdict builds a verdict for tests.
func verdict(attack string, cat record.Category, isAttack bool, p float64) model.Verdict {
	return model.Verdict{Attack: attack, Category: cat, IsAttack: isAttack, AttackProbability: p}
}

// sample is a hand-worked example; the expected figures are computed in the
// comments of TestReport.
func sample() *Evaluator {
	e := New()
	e.Add("normal", verdict("normal", record.CategoryNormal, false, 0.1))
	e.Add("normal", verdict("satan", record.CategoryProbe, true, 0.8))
	e.Add("smurf.", verdict("smurf", record.CategoryDoS, true, 0.9))
	e.Add("smurf", verdict("neptune", record.CategoryDoS, true, 0.8))
	e.Add("guess_passwd", verdict("normal", record.CategoryNormal, false, 0.3))
	e.Add("rootkit", verdict("unknown", record.CategoryUnknown, true, 0.4))
	e.Add("mystery", verdict("neptune", record.CategoryDoS, true, 0.7))
	e.Add("ipsweep", verdict("ipsweep", record.CategoryProbe, true, 0.1))
	e.AddSkipped(2)
	return e
}

func nan() Metric { return Metric(math.NaN()) }

var cmpMetric = cmp.Comparer(func(a, b Metric) bool {
	if math.IsNaN(float64(a)) || math.IsNaN(float64(b)) {
		return math.IsNaN(float64(a)) && math.IsNaN(float64(b))
	}
	return math.Abs(float64(a-b)) < 1e-12
})

func TestReport(t *testing.T) {
	got := sample().Report()
	want := Report{
		Records: 8,
		Skipped: 2,
		// Attacks are rows 3-8 (6), normal rows 1-2 (2). Flagged attacks:
		// 3, 4, 6, 7, 8 (tp 5, fn 1); flagged normal: 2 (fp 1, tn 1).
		// AUC: positives 0.9 0.8 0.3 0.4 0.7 0.1 against negatives 0.1 and
		// 0.8: 5 + 0.5 (tie at 0.1) above 0.1, 1 + 0.5 (tie at 0.8) above
		// 0.8, so 7/12.
		Binary: BinaryReport{Accuracy: 6.0 / 8, DetectionRate: 5.0 / 6, FalsePositiveRate: 0.5, AUC: 7.0 / 12},
		// Category hits: rows 1, 3, 4, 8. Cost over the 7 known rows:
		// normal->probe 1, r2l->normal 4, u2r->unknown 2 = 7.
		Category: CategoryReport{
			Accuracy:       4.0 / 8,
			CostPerExample: 1,
			Recall:         map[string]Metric{"normal": 0.5, "dos": 1, "probe": 1, "r2l": 0, "u2r": 0, "unknown": 0},
			Precision: map[string]Metric{
				"normal": 0.5, "dos": 2.0 / 3, "probe": 0.5, "r2l": nan(), "u2r": nan(), "unknown": 0,
			},
			Confusion: map[string]map[string]int64{
				"normal":  {"normal": 1, "dos": 0, "probe": 1, "r2l": 0, "u2r": 0, "unknown": 0},
				"dos":     {"normal": 0, "dos": 2, "probe": 0, "r2l": 0, "u2r": 0, "unknown": 0},
				"probe":   {"normal": 0, "dos": 0, "probe": 1, "r2l": 0, "u2r": 0, "unknown": 0},
				"r2l":     {"normal": 1, "dos": 0, "probe": 0, "r2l": 0, "u2r": 0, "unknown": 0},
				"u2r":     {"normal": 0, "dos": 0, "probe": 0, "r2l": 0, "u2r": 0, "unknown": 1},
				"unknown": {"normal": 0, "dos": 1, "probe": 0, "r2l": 0, "u2r": 0, "unknown": 0},
			},
		},
		// Exact names: rows 1, 3 (trailing dot dropped), 8.
		Attack: AttackReport{Accuracy: 3.0 / 8},
	}
	if diff := cmp.Diff(want, got, cmpMetric); diff != "" {
		t.Errorf("Report() mismatch (-want +got):\n%s", diff)
	}
}

func TestReportEmptyAndNoUnknown(t *testing.T) {
	got := New().Report()
	if got.Records != 0 || got.Binary.Accuracy.Defined() || got.Binary.AUC.Defined() || got.Category.CostPerExample.Defined() {
		t.Errorf("empty Report() = %+v, want zero counts and undefined metrics", got)
	}
	e := New()
	e.Add("normal", verdict("normal", record.CategoryNormal, false, 0))
	e.Add("neptune", verdict("neptune", record.CategoryDoS, true, 1))
	r := e.Report()
	if _, ok := r.Category.Recall["unknown"]; ok {
		t.Errorf("Recall has key unknown with no unknown truth or prediction: %v", r.Category.Recall)
	}
	if len(r.Category.Confusion) != 5 {
		t.Errorf("Confusion has %d rows, want the 5 known categories", len(r.Category.Confusion))
	}
	if r.Binary.AUC != 1 || r.Category.CostPerExample != 0 || r.Attack.Accuracy != 1 {
		t.Errorf("perfect detector: AUC %v cost %v attack accuracy %v, want 1 0 1", r.Binary.AUC, r.Category.CostPerExample, r.Attack.Accuracy)
	}
}

func TestCost(t *testing.T) {
	// The KDD'99 contest cost matrix (Elkan 2000), rows true, columns predicted.
	order := []record.Category{record.CategoryNormal, record.CategoryProbe, record.CategoryDoS, record.CategoryU2R, record.CategoryR2L}
	want := [5][5]int{
		{0, 1, 2, 2, 2},
		{1, 0, 2, 2, 2},
		{2, 1, 0, 2, 2},
		{3, 2, 2, 0, 2},
		{4, 2, 2, 2, 0},
	}
	wantUnknown := [5]int{1, 2, 1, 2, 2}
	for i, truth := range order {
		for j, pred := range order {
			if got, ok := Cost(truth, pred); !ok || got != want[i][j] {
				t.Errorf("Cost(%v, %v) = %d, %v; want %d, true", truth, pred, got, ok, want[i][j])
			}
		}
		if got, ok := Cost(truth, record.CategoryUnknown); !ok || got != wantUnknown[i] {
			t.Errorf("Cost(%v, unknown) = %d, %v; want %d, true", truth, got, ok, wantUnknown[i])
		}
		// Predicting unknown is never dearer than the dearest wrong attack
		// type, and never cheaper than the cheapest.
		lo, hi := 99, 0
		for j, pred := range order {
			if j == 0 || j == i {
				continue
			}
			c, _ := Cost(truth, pred)
			lo, hi = min(lo, c), max(hi, c)
		}
		if c, _ := Cost(truth, record.CategoryUnknown); c != lo || c > hi {
			t.Errorf("Cost(%v, unknown) = %d, want the cheapest wrong attack column %d", truth, c, lo)
		}
	}
	if _, ok := Cost(record.CategoryUnknown, record.CategoryDoS); ok {
		t.Error("Cost(unknown, dos) is defined, want unknown truth left out")
	}
}

func TestAUC(t *testing.T) {
	tests := []struct {
		name   string
		scores []float64
		pos    []bool
		want   float64
	}{
		{"perfect", []float64{0.1, 0.2, 0.8, 0.9}, []bool{false, false, true, true}, 1},
		{"reversed", []float64{0.9, 0.8, 0.2, 0.1}, []bool{false, false, true, true}, 0},
		{"all tied", []float64{0.5, 0.5, 0.5, 0.5}, []bool{false, true, false, true}, 0.5},
		// Positives 0.35, 0.8; negatives 0.1, 0.4: 0.35 beats 1 of 2,
		// 0.8 beats 2 of 2 -> 3/4 (the scikit-learn example).
		{"sklearn example", []float64{0.1, 0.4, 0.35, 0.8}, []bool{false, false, true, true}, 0.75},
		// Positives 0.5 0.5 0.9; negatives 0.5 0.2: 0.5 -> 1 + 0.5 twice,
		// 0.9 -> 2: (1.5+1.5+2)/6.
		{"ties across classes", []float64{0.5, 0.5, 0.9, 0.5, 0.2}, []bool{true, true, true, false, false}, 5.0 / 6},
		{"nan ranks lowest", []float64{math.NaN(), 0.1}, []bool{false, true}, 1},
		{"only positives", []float64{0.1, 0.2}, []bool{true, true}, math.NaN()},
		{"only negatives", []float64{0.1}, []bool{false}, math.NaN()},
		{"empty", nil, nil, math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AUC(tt.scores, tt.pos)
			if !(math.Abs(got-tt.want) < 1e-12 || math.IsNaN(got) && math.IsNaN(tt.want)) {
				t.Errorf("AUC(%v, %v) = %v, want %v", tt.scores, tt.pos, got, tt.want)
			}
		})
	}
}

// TestAUCBruteForce compares AUC with the O(n²) pair count on random data
// with many ties.
func TestAUCBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 50 {
		n := 1 + rng.IntN(200)
		scores, pos := make([]float64, n), make([]bool, n)
		for i := range n {
			scores[i] = float64(rng.IntN(10)) / 10
			pos[i] = rng.IntN(3) == 0
		}
		var wins float64
		var np, nn int
		for i := range n {
			if !pos[i] {
				nn++
				continue
			}
			np++
			for j := range n {
				switch {
				case pos[j]:
				case scores[i] > scores[j]:
					wins++
				case scores[i] == scores[j]:
					wins += 0.5
				}
			}
		}
		want := math.NaN()
		if np > 0 && nn > 0 {
			want = wins / float64(np*nn)
		}
		got := AUC(scores, pos)
		if !(math.Abs(got-want) < 1e-12 || math.IsNaN(got) && math.IsNaN(want)) {
			t.Fatalf("trial %d: AUC = %v, brute force %v (n=%d)", trial, got, want, n)
		}
	}
}

func TestAUCLengthMismatchPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("AUC with slices of different lengths did not panic")
		}
	}()
	AUC([]float64{1}, nil)
}

func TestReportJSON(t *testing.T) {
	b, err := json.Marshal(sample().Report())
	if err != nil {
		t.Fatalf("json.Marshal(Report) error: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("json.Unmarshal error: %v\n%s", err, b)
	}
	keys := map[string][]string{
		"binary":   {"accuracy", "detection_rate", "false_positive_rate", "auc"},
		"category": {"accuracy", "cost_per_example", "recall", "precision", "confusion"},
		"attack":   {"accuracy"},
	}
	if m["records"] != 8.0 || m["skipped"] != 2.0 {
		t.Errorf("records, skipped = %v, %v; want 8, 2", m["records"], m["skipped"])
	}
	for obj, ks := range keys {
		sub, ok := m[obj].(map[string]any)
		if !ok {
			t.Fatalf("key %q is %T, want an object\n%s", obj, m[obj], b)
		}
		for _, k := range ks {
			if _, ok := sub[k]; !ok {
				t.Errorf("%s has no key %q\n%s", obj, k, b)
			}
		}
	}
	prec := m["category"].(map[string]any)["precision"].(map[string]any)
	if v, ok := prec["r2l"]; !ok || v != nil {
		t.Errorf(`precision["r2l"] = %v, want null (r2l never predicted)`, v)
	}
	if !strings.Contains(string(b), `"confusion":{"dos":{"dos":2,`) {
		t.Errorf("confusion not as expected in %s", b)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("json.Unmarshal into Report: %v", err)
	}
	if diff := cmp.Diff(sample().Report(), back, cmpMetric); diff != "" {
		t.Errorf("JSON round trip mismatch (-want +got):\n%s", diff)
	}
}

func TestWriteTable(t *testing.T) {
	var buf bytes.Buffer
	if err := sample().Report().WriteTable(&buf); err != nil {
		t.Fatalf("WriteTable: %v", err)
	}
	out := buf.String()
	for _, want := range []string{
		"records 8, skipped 2",
		"accuracy 75.00%", "detection rate 83.33%", "false positive rate 50.00%", "AUC 0.5833",
		"cost per example 1.0000", "accuracy 37.50%",
		"confusion (rows true, columns predicted)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("WriteTable output lacks %q:\n%s", want, out)
		}
	}
	// Per-category line: r2l has support 1, recall 0, precision undefined.
	if !strings.Contains(out, "r2l                1    0.00%         -") {
		t.Errorf("WriteTable r2l line not as expected:\n%s", out)
	}
	t.Logf("\n%s", out)
}
