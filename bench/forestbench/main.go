// Command forestbench measures netsentinel's random forest on a labelled
// file: training time, scoring throughput and validation accuracy at the
// attack-type and 5-category level. bench/forest_vs_sklearn.sh runs it next
// to scikit-learn on the same split.
//
// Validation is a stratified 80/20 split (default), k-fold cross-validation
// (-folds), or leave-attack-types-out (-holdout): the named attack types are
// removed from the training rows and the figure is the fraction of their
// rows the model flags as not normal.
//
// With -export DIR the 80/20 split is also written as DIR/train.csv and
// DIR/test.csv (41 numeric features, symbolic ones as their codes, then the
// label) for the scikit-learn side.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/netsentinel/netsentinel/internal/dataset"
	"github.com/netsentinel/netsentinel/internal/model/forest"
	"github.com/netsentinel/netsentinel/internal/record"
	"github.com/netsentinel/netsentinel/internal/testkit"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "forestbench:", err)
		os.Exit(1)
	}
}

// result is one validation run, printed as a JSON line with -json.
type result struct {
	Tool          string  `json:"tool"`
	Data          string  `json:"data"`
	Mode          string  `json:"mode"`
	TrainRows     int     `json:"train_rows"`
	TestRows      int     `json:"test_rows"`
	Config        string  `json:"config"`
	TrainSeconds  float64 `json:"train_seconds"`
	TrainCPU      float64 `json:"train_cpu_seconds"`
	ScoreRecSec   float64 `json:"score_records_per_s"`
	ScoreRecCPU   float64 `json:"score_records_per_cpu_s"`
	AttackAcc     float64 `json:"attack_accuracy"`
	CategoryAcc   float64 `json:"category_accuracy"`
	Nodes         int     `json:"nodes"`
	HeldOut       string  `json:"held_out,omitempty"`
	HeldOutRows   int     `json:"held_out_rows,omitempty"`
	HeldOutFlag   float64 `json:"held_out_flagged,omitempty"`
	NormalFlagged float64 `json:"normal_flagged,omitempty"`
}

func run(args []string) error {
	fs := flag.NewFlagSet("forestbench", flag.ContinueOnError)
	data := fs.String("data", "data/KDDTrain+.txt.gz", "labelled `file` of records")
	cfg := forest.DefaultConfig()
	fs.IntVar(&cfg.Trees, "trees", cfg.Trees, "number of trees")
	fs.IntVar(&cfg.MaxDepth, "max-depth", cfg.MaxDepth, "maximum tree depth (0 = unlimited)")
	fs.IntVar(&cfg.MinLeaf, "min-leaf", cfg.MinLeaf, "minimum rows per leaf")
	fs.IntVar(&cfg.MaxFeatures, "max-features", cfg.MaxFeatures, "features tried per split (0 = sqrt)")
	fs.IntVar(&cfg.Bins, "bins", cfg.Bins, "histogram bins per feature")
	fs.Float64Var(&cfg.Sample, "sample", cfg.Sample, "bootstrap sample fraction")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "training goroutines (0 = GOMAXPROCS)")
	seed := fs.Uint64("seed", 1, "seed of the split and the forest")
	balanced := fs.Bool("balanced", false, "balanced class weights")
	folds := fs.Int("folds", 0, "k-fold cross-validation instead of one 80/20 split")
	holdout := fs.String("holdout", "", "comma-separated attack `types` to leave out of training")
	export := fs.String("export", "", "write the split as CSV files to `dir` (for bench/forest_sklearn.py)")
	asJSON := fs.Bool("json", false, "print results as JSON lines")
	repeat := fs.Int("repeat", 1, "train and score `n` times and report the fastest (other processes sharing the cores add noise)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.Seed = *seed

	d, err := dataset.Load(*data, dataset.Options{})
	if err != nil {
		return err
	}
	for i, l := range d.Labels {
		d.Labels[i] = strings.TrimSuffix(l, ".")
	}
	classes := slices.Compact(slices.Sorted(slices.Values(d.Labels)))
	y := make([]int32, d.Len())
	for i, l := range d.Labels {
		k, _ := slices.BinarySearch(classes, l)
		y[i] = int32(k)
	}
	b := &bench{d: d, y: y, classes: classes, cfg: cfg, balanced: *balanced, name: filepath.Base(*data), repeat: *repeat}

	var results []result
	switch {
	case *holdout != "":
		held := strings.Split(*holdout, ",")
		train, test := stratifiedSplit(y, len(classes), 0.2, *seed)
		r, err := b.holdout(train, test, held, *export)
		if err != nil {
			return err
		}
		results = append(results, r)
	case *folds > 1:
		foldOf := stratifiedFolds(y, len(classes), *folds, *seed)
		for f := range *folds {
			var train, test []int
			for i, k := range foldOf {
				if k == f {
					test = append(test, i)
				} else {
					train = append(train, i)
				}
			}
			r, err := b.validate(train, test, fmt.Sprintf("fold %d/%d", f+1, *folds))
			if err != nil {
				return err
			}
			results = append(results, r)
		}
		results = append(results, mean(results))
	default:
		train, test := stratifiedSplit(y, len(classes), 0.2, *seed)
		if *export != "" {
			if err := b.export(*export, train, test); err != nil {
				return err
			}
		}
		r, err := b.validate(train, test, "80/20")
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	for _, r := range results {
		if *asJSON {
			out, _ := json.Marshal(r)
			fmt.Println(string(out))
			continue
		}
		fmt.Printf("%-10s %-8s train %7.2fs (cpu %6.2fs)  score %9.0f rec/s (%9.0f rec/cpu-s)  attack acc %.4f  5-cat acc %.4f  nodes %d\n",
			r.Mode, r.Tool, r.TrainSeconds, r.TrainCPU, r.ScoreRecSec, r.ScoreRecCPU, r.AttackAcc, r.CategoryAcc, r.Nodes)
		if r.HeldOut != "" {
			fmt.Printf("           held out %s: %d rows, %.4f flagged as attacks; normal test rows flagged %.4f\n",
				r.HeldOut, r.HeldOutRows, r.HeldOutFlag, r.NormalFlagged)
		}
	}
	return nil
}

type bench struct {
	d        *dataset.Dataset
	y        []int32
	classes  []string
	cfg      forest.Config
	balanced bool
	name     string
	repeat   int
}

func (b *bench) columns(rows []int) [][]float32 {
	X := make([][]float32, record.NumFeatures)
	for j := range X {
		col := make([]float32, len(rows))
		for k, i := range rows {
			col[k] = b.d.X[j][i]
		}
		X[j] = col
	}
	return X
}

func (b *bench) labels(rows []int) []int32 {
	y := make([]int32, len(rows))
	for k, i := range rows {
		y[k] = b.y[i]
	}
	return y
}

// train fits a forest on rows and times it.
func (b *bench) train(rows []int, r *result) (*forest.Model, error) {
	X, y := b.columns(rows), b.labels(rows)
	cfg := b.cfg
	if b.balanced {
		cfg.ClassWeight = forest.BalancedWeights(y, len(b.classes))
	}
	var m *forest.Model
	for k := range max(1, b.repeat) {
		runtime.GC()
		c0, t0 := testkit.CPUTime(), time.Now()
		var err error
		m, err = forest.Train(context.Background(), X, y, len(b.classes), cfg, nil)
		if err != nil {
			return nil, err
		}
		wall, cpu := time.Since(t0).Seconds(), (testkit.CPUTime() - c0).Seconds()
		if k == 0 || wall < r.TrainSeconds {
			r.TrainSeconds = wall
		}
		if k == 0 || cpu < r.TrainCPU {
			r.TrainCPU = cpu
		}
	}
	r.TrainRows = len(rows)
	r.Nodes = m.NumNodes()
	r.Config = fmt.Sprintf("trees=%d max-depth=%d min-leaf=%d max-features=%d bins=%d sample=%g balanced=%v",
		cfg.Trees, cfg.MaxDepth, cfg.MinLeaf, cfg.MaxFeatures, cfg.Bins, cfg.Sample, b.balanced)
	return m, nil
}

// predict scores rows and returns the most probable class of each, timing
// the scoring.
func (b *bench) predict(m *forest.Model, rows []int, r *result) []int32 {
	X := b.columns(rows)
	nc := m.NumClasses()
	out := make([]float32, len(rows)*nc)
	for range max(1, b.repeat) {
		c0, t0 := testkit.CPUTime(), time.Now()
		m.PredictProbaBatch(X, out)
		wall, cpu := time.Since(t0).Seconds(), (testkit.CPUTime() - c0).Seconds()
		r.ScoreRecSec = max(r.ScoreRecSec, float64(len(rows))/wall)
		if cpu > 0 {
			r.ScoreRecCPU = max(r.ScoreRecCPU, float64(len(rows))/cpu)
		}
	}
	pred := make([]int32, len(rows))
	for k := range rows {
		p := out[k*nc : (k+1)*nc]
		best := 0
		for c, v := range p {
			if v > p[best] {
				best = c
			}
		}
		pred[k] = int32(best)
	}
	return pred
}

func (b *bench) validate(train, test []int, mode string) (result, error) {
	r := result{Tool: "netsentinel", Data: b.name, Mode: mode, TestRows: len(test)}
	m, err := b.train(train, &r)
	if err != nil {
		return r, err
	}
	pred := b.predict(m, test, &r)
	var attack, cat int
	for k, i := range test {
		if pred[k] == b.y[i] {
			attack++
		}
		if record.CategoryOf(b.classes[pred[k]]) == record.CategoryOf(b.d.Labels[i]) {
			cat++
		}
	}
	r.AttackAcc = float64(attack) / float64(len(test))
	r.CategoryAcc = float64(cat) / float64(len(test))
	return r, nil
}

// holdout trains on the training rows minus the held-out attack types and
// reports how many rows of those types (anywhere in the file) are flagged.
//
// With dir set, the training rows go to dir/train.csv, the held-out rows to
// dir/test.csv and the normal test rows to dir/normal.csv.
func (b *bench) holdout(train, test []int, held []string, dir string) (result, error) {
	isHeld := func(i int) bool { return slices.Contains(held, b.d.Labels[i]) }
	train = slices.DeleteFunc(slices.Clone(train), isHeld)
	var heldRows, normalTest []int
	for i := range b.y {
		if isHeld(i) {
			heldRows = append(heldRows, i)
		}
	}
	for _, i := range test {
		if b.d.Labels[i] == "normal" {
			normalTest = append(normalTest, i)
		}
	}
	if len(heldRows) == 0 {
		return result{}, fmt.Errorf("no rows of %s in %s", strings.Join(held, ","), b.name)
	}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return result{}, err
		}
		for name, rows := range map[string][]int{"train.csv": train, "test.csv": heldRows, "normal.csv": normalTest} {
			if err := b.writeCSV(filepath.Join(dir, name), rows); err != nil {
				return result{}, fmt.Errorf("export %s: %w", name, err)
			}
		}
	}
	r := result{Tool: "netsentinel", Data: b.name, Mode: "holdout", HeldOut: strings.Join(held, ","), HeldOutRows: len(heldRows)}
	m, err := b.train(train, &r)
	if err != nil {
		return r, err
	}
	pred := b.predict(m, heldRows, &r)
	flagged := 0
	for _, p := range pred {
		if b.classes[p] != "normal" {
			flagged++
		}
	}
	r.HeldOutFlag = float64(flagged) / float64(len(heldRows))
	pred = b.predict(m, normalTest, &r)
	flagged = 0
	for _, p := range pred {
		if b.classes[p] != "normal" {
			flagged++
		}
	}
	r.NormalFlagged = float64(flagged) / float64(max(1, len(normalTest)))
	r.TestRows = len(heldRows)
	return r, nil
}

func (b *bench) export(dir string, train, test []int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, rows := range map[string][]int{"train.csv": train, "test.csv": test} {
		if err := b.writeCSV(filepath.Join(dir, name), rows); err != nil {
			return fmt.Errorf("export %s: %w", name, err)
		}
	}
	return nil
}

func (b *bench) writeCSV(path string, rows []int) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	w := bufio.NewWriter(f)
	var line []byte
	for _, i := range rows {
		line = line[:0]
		for j := range record.NumFeatures {
			line = strconv.AppendFloat(line, float64(b.d.X[j][i]), 'g', -1, 32)
			line = append(line, ',')
		}
		line = append(line, b.d.Labels[i]...)
		line = append(line, '\n')
		if _, err := w.Write(line); err != nil {
			return err
		}
	}
	return w.Flush()
}

// stratifiedSplit puts a fraction of each class's rows, chosen at random,
// in test and the rest in train.
func stratifiedSplit(y []int32, nClasses int, frac float64, seed uint64) (train, test []int) {
	fold := make([]int, len(y))
	rng := rand.New(rand.NewPCG(seed, 99))
	for _, rows := range byClass(y, nClasses) {
		rng.Shuffle(len(rows), func(a, b int) { rows[a], rows[b] = rows[b], rows[a] })
		nTest := int(float64(len(rows))*frac + 0.5)
		if nTest >= len(rows) {
			nTest = len(rows) - 1
		}
		for _, i := range rows[:nTest] {
			fold[i] = 1
		}
	}
	for i, f := range fold {
		if f == 1 {
			test = append(test, i)
		} else {
			train = append(train, i)
		}
	}
	return train, test
}

// stratifiedFolds assigns each row a fold in [0,k), dealing each class's
// shuffled rows round-robin.
func stratifiedFolds(y []int32, nClasses, k int, seed uint64) []int {
	fold := make([]int, len(y))
	rng := rand.New(rand.NewPCG(seed, 98))
	next := 0
	for _, rows := range byClass(y, nClasses) {
		rng.Shuffle(len(rows), func(a, b int) { rows[a], rows[b] = rows[b], rows[a] })
		for _, i := range rows {
			fold[i] = next % k
			next++
		}
	}
	return fold
}

func byClass(y []int32, nClasses int) [][]int {
	rows := make([][]int, nClasses)
	for i, c := range y {
		rows[c] = append(rows[c], i)
	}
	return rows
}

// mean averages fold results.
func mean(rs []result) result {
	m := rs[0]
	m.Mode = "mean"
	m.TrainSeconds, m.TrainCPU, m.ScoreRecSec, m.ScoreRecCPU, m.AttackAcc, m.CategoryAcc, m.Nodes = 0, 0, 0, 0, 0, 0, 0
	for _, r := range rs {
		m.TrainSeconds += r.TrainSeconds / float64(len(rs))
		m.TrainCPU += r.TrainCPU / float64(len(rs))
		m.ScoreRecSec += r.ScoreRecSec / float64(len(rs))
		m.ScoreRecCPU += r.ScoreRecCPU / float64(len(rs))
		m.AttackAcc += r.AttackAcc / float64(len(rs))
		m.CategoryAcc += r.CategoryAcc / float64(len(rs))
		m.Nodes += r.Nodes / len(rs)
	}
	return m
}
