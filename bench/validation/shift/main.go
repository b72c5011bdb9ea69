// Command shift runs the validation of docs/validation.md for normal
// traffic unlike the training file's bulk ("shifted" normal traffic), next to
// the leave-attack-types-out validation, and compares decision rules of the
// default detector on both.
//
// It trains the default detector (model.DefaultTrainOptions) once per fold
// and keeps, for every evaluated row, P(normal) and the novelty score; every
// rule is then applied to the same scores. The folds are:
//
//   - types: leave attack types out, as bench/validation/loto (8 folds; a
//     random 20% of the other rows is held out too). Gives DR_held (share of
//     held-out types' rows flagged), DR_known, FPR on random unseen normal
//     rows and, on NSL-KDD, FPR on the unseen normal rows of difficulty < 21
//     ("hard": rows most of NSL-KDD's 21 reference learners got wrong).
//   - services (NSL-KDD): the services are dealt into 5 groups; each fold
//     keeps only 5% of a group's normal rows in training and measures the
//     FPR on the rest: normal traffic of services the model has seen little of.
//   - time (KDD'99 10% file, which is in time order): the normal rows are cut
//     into 5 consecutive stretches; each fold trains on the rows outside one
//     stretch and measures the FPR on its normal rows: the traffic of a
//     later (or earlier) day.
//
// A rule flags a record when P(normal) < t1, or when its novelty score
// reaches the novelty threshold for a false-positive rate q on the novelty
// model's own held-out normal rows: qLow when P(normal) < t2, qHigh from
// t2 on (qLow = qHigh for a single novelty threshold).
//
//	go run ./bench/validation/shift -data data/KDDTrain+.txt.gz
//	go run ./bench/validation/shift -data data/kddcup.data_10_percent.gz
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"

	heldout "github.com/netsentinel/netsentinel/bench/validation/folds"
	"github.com/netsentinel/netsentinel/internal/dataset"
	"github.com/netsentinel/netsentinel/internal/model"
	"github.com/netsentinel/netsentinel/internal/model/novelty"
	"github.com/netsentinel/netsentinel/internal/record"
)

// Row groups of a fold.
const (
	gNormal  = iota // random unseen normal rows
	gHard           // the same, difficulty < 21 (NSL-KDD)
	gShifted        // normal rows of thinly seen services / another time
	gHeld           // rows of held-out attack types
	gKnown          // unseen rows of trained attack types
	numGroups
)

var groupNames = [numGroups]string{"FPR", "FPR_hard", "FPR_shift", "DR_held", "DR_known"}

// scored is one evaluated row.
type scored struct {
	pNormal, novelty float32
}

// fold is one trained detector's scores.
type fold struct {
	kind, name string
	rows       [numGroups][]scored
	thr        map[float64]float64 // novelty threshold per q
}

type rule struct {
	t1, t2, qLow, qHigh float64
}

// show lists extra rules printed per fold (-show).
var show []rule

// adaptCfg configures the adapted runs.
var adaptCfg novelty.AdaptConfig

var qs = []float64{0, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05}

func main() {
	data := flag.String("data", "data/KDDTrain+.txt.gz", "training `file`")
	keep := flag.Float64("keep", 0.05, "services folds: fraction of the held services' normal rows kept in training")
	noTypes := flag.Bool("no-types", false, "skip the leave-attack-types-out folds")
	noShift := flag.Bool("no-shift", false, "skip the services and time folds")
	only := flag.String("folds", "", "comma-separated leave-types-out fold `names` to run (default all)")
	flag.Func("show", "also print per fold the rule `t1,t2,qLow,qHigh` (repeatable)", func(v string) error {
		var r rule
		if _, err := fmt.Sscanf(v, "%g,%g,%g,%g", &r.t1, &r.t2, &r.qLow, &r.qHigh); err != nil {
			return fmt.Errorf("rule %q: want t1,t2,qLow,qHigh: %w", v, err)
		}
		if !slices.Contains(qs, r.qLow) || !slices.Contains(qs, r.qHigh) {
			return fmt.Errorf("rule %q: qLow and qHigh must be among %v", v, qs)
		}
		show = append(show, r)
		return nil
	})
	flag.Float64Var(&adaptCfg.MinShare, "adapt-min-share", 0, "adapted runs: novelty.AdaptConfig.MinShare (0 = default)")
	flag.Float64Var(&adaptCfg.Radius, "adapt-radius", 0, "adapted runs: novelty.AdaptConfig.Radius (0 = default)")
	flag.IntVar(&adaptCfg.MaxPerService, "adapt-per-service", 0, "adapted runs: novelty.AdaptConfig.MaxPerService (0 = default)")
	flag.Float64Var(&adaptCfg.MaxRate, "adapt-max-rate", 0, "adapted runs: novelty.AdaptConfig.MaxRate (0 = default)")
	flag.Float64Var(&adaptCfg.MaxRelief, "adapt-max-relief", 0, "adapted runs: novelty.AdaptConfig.MaxRelief (0 = default)")
	flag.Parse()
	ds, err := dataset.Load(*data, dataset.Options{})
	if err != nil {
		log.Fatal(err)
	}
	diff, err := difficulty(*data, ds.Len())
	if err != nil {
		log.Fatal(err)
	}
	nsl := diff != nil
	fmt.Printf("data=%s rows=%d\n", *data, ds.Len())
	var folds []*fold
	for k, f := range heldout.ByType(ds.Labels) {
		if *noTypes {
			break
		}
		if *only != "" && !slices.Contains(strings.Split(*only, ","), f.Name) {
			continue
		}
		rng := rand.New(rand.NewPCG(uint64(k)+7, 3))
		var train []int
		var groups [numGroups][]int
		for i, l := range ds.Labels {
			test := rng.Float64() < 0.2
			switch {
			case slices.Contains(f.Held, l):
				groups[gHeld] = append(groups[gHeld], i)
			case test && l == "normal":
				groups[gNormal] = append(groups[gNormal], i)
				if nsl && diff[i] < 21 {
					groups[gHard] = append(groups[gHard], i)
				}
			case test:
				groups[gKnown] = append(groups[gKnown], i)
			default:
				train = append(train, i)
			}
		}
		folds = append(folds, run(ds, "types", f.Name, train, groups))
	}
	if *noShift {
		// nothing more
	} else if nsl {
		for k, svc := range serviceGroups(ds, 5) {
			rng := rand.New(rand.NewPCG(uint64(k)+11, 5))
			var train []int
			var groups [numGroups][]int
			for i, l := range ds.Labels {
				if l == "normal" && svc[int(ds.X[record.Service][i])] && rng.Float64() >= *keep {
					groups[gShifted] = append(groups[gShifted], i)
				} else {
					train = append(train, i)
				}
			}
			folds = append(folds, run(ds, "services", fmt.Sprint("group", k), train, groups))
		}
	} else {
		var normal []int
		for i, l := range ds.Labels {
			if l == "normal" {
				normal = append(normal, i)
			}
		}
		for k := range 5 {
			lo, hi := normal[k*len(normal)/5], normal[(k+1)*len(normal)/5-1]
			var train []int
			var groups [numGroups][]int
			for i, l := range ds.Labels {
				switch {
				case i < lo || i > hi:
					train = append(train, i)
				case l == "normal":
					groups[gShifted] = append(groups[gShifted], i)
				default:
					groups[gKnown] = append(groups[gKnown], i)
				}
			}
			folds = append(folds, run(ds, "time", fmt.Sprintf("rows %d-%d", lo+1, hi+1), train, groups))
		}
	}
	report(folds, nsl)
}

// run trains the default detector on the train rows and scores the groups.
func run(ds *dataset.Dataset, kind, name string, train []int, groups [numGroups][]int) *fold {
	det, err := model.Train(context.Background(), ds.Subset(train), model.DefaultTrainOptions())
	if err != nil {
		log.Fatal(err)
	}
	nov, _ := det.Novelty()
	if kind != "types" {
		f := adaptRun(det, ds, groups)
		fmt.Printf("%-8s %-10s default rule, novelty part static / adapted (records in file order): %s\n", kind, name, f)
		_, thr := det.Novelty()
		det.SetNovelty(nov, thr)
	}
	th := nov.(interface {
		Threshold(float64) (float64, error)
	})
	f := &fold{kind: kind, name: name, thr: map[float64]float64{0: 2}}
	for _, q := range qs[1:] {
		if f.thr[q], err = th.Threshold(q); err != nil {
			log.Fatal(err)
		}
	}
	if err := det.SetThreshold(1); err != nil {
		log.Fatal(err)
	}
	det.SetNovelty(nov, 2) // verdicts carry the scores; nothing is flagged by novelty
	for g, rows := range groups {
		if len(rows) == 0 {
			continue
		}
		for _, v := range det.PredictBatch(ds.Subset(rows)) {
			f.rows[g] = append(f.rows[g], scored{float32(1 - v.AttackProbability), float32(v.Novelty)})
		}
	}
	fmt.Printf("%-8s %-10s train=%d", kind, name, len(train))
	for g, rows := range f.rows {
		if len(rows) > 0 {
			fmt.Printf(" %s_rows=%d", groupNames[g], len(rows))
		}
	}
	fmt.Println()
	return f
}

// flagged returns the share of rows the rule flags.
func (r rule) flagged(rows []scored, thr map[float64]float64) float64 {
	lo, hi := thr[r.qLow], thr[r.qHigh]
	n := 0
	for _, s := range rows {
		p, v := float64(s.pNormal), float64(s.novelty)
		switch {
		case p < r.t1:
			n++
		case p < r.t2 && v >= lo:
			n++
		case p >= r.t2 && v >= hi:
			n++
		}
	}
	return float64(n) / float64(len(rows))
}

// means returns, per kind of fold and group, the mean over folds of the
// share flagged.
func means(folds []*fold, r rule) map[string]float64 {
	sum, cnt := map[string]float64{}, map[string]float64{}
	for _, f := range folds {
		for g, rows := range f.rows {
			if len(rows) == 0 {
				continue
			}
			k := groupNames[g]
			if g == gShifted {
				k += "_" + f.kind
			}
			sum[k] += r.flagged(rows, f.thr)
			cnt[k]++
		}
	}
	for k := range sum {
		sum[k] /= cnt[k]
	}
	return sum
}

func report(folds []*fold, nsl bool) {
	var rules []rule
	for _, t1 := range []float64{0.5, 0.6, 0.7, 0.8, 0.9} {
		for _, t2 := range []float64{t1, 0.95, 0.99, 0.999, 1.01} {
			if t2 < t1 {
				continue
			}
			for _, lo := range qs {
				for _, hi := range qs {
					if hi > lo || (t2 == t1 && lo != hi) || (t2 > 1 && lo != hi) {
						continue
					}
					rules = append(rules, rule{t1, t2, lo, hi})
				}
			}
		}
	}
	shiftKey := "FPR_shift_time"
	if nsl {
		shiftKey = "FPR_shift_services"
	}
	type row struct {
		r rule
		m map[string]float64
	}
	var rows []row
	for _, r := range rules {
		rows = append(rows, row{r, means(folds, r)})
	}
	sort.SliceStable(rows, func(a, b int) bool { return rows[a].m[shiftKey] < rows[b].m[shiftKey] })
	keys := []string{"FPR", "FPR_hard", shiftKey, "DR_held", "DR_known"}
	if !nsl {
		keys = slices.Delete(keys, 1, 2)
	}
	fmt.Printf("\nrules: attack when P(normal) < t1, or novelty >= threshold(qLow) when P(normal) < t2, >= threshold(qHigh) from t2 on\n")
	fmt.Printf("%-5s %-6s %-6s %-6s", "t1", "t2", "qLow", "qHigh")
	for _, k := range keys {
		fmt.Printf(" %18s", k)
	}
	fmt.Println()
	for _, r := range rows {
		fmt.Printf("%-5v %-6v %-6v %-6v", r.r.t1, r.r.t2, r.r.qLow, r.r.qHigh)
		for _, k := range keys {
			fmt.Printf(" %18.4f", r.m[k])
		}
		fmt.Println()
	}
	def := model.DefaultTrainOptions()
	shipped := rule{def.Threshold, def.Novelty.Confident, def.Novelty.FPR, def.Novelty.ConfidentFPR}
	old := rule{0.9, 0.9, 0.02, 0.02}
	fmt.Printf("\nper fold, shipped default rule %+v (and the earlier default %+v):\n", shipped, old)
	for _, f := range folds {
		fmt.Printf("%-8s %-16s", f.kind, f.name)
		for g, rs := range f.rows {
			if len(rs) > 0 {
				fmt.Printf(" %s=%.4f (%.4f)", groupNames[g], shipped.flagged(rs, f.thr), old.flagged(rs, f.thr))
				for _, r := range show {
					fmt.Printf(" [%v,%v,%v,%v: %.4f]", r.t1, r.t2, r.qLow, r.qHigh, r.flagged(rs, f.thr))
				}
			}
		}
		fmt.Println()
	}
}

// difficulty returns the NSL-KDD difficulty column of the file's rows, or
// nil when the file has none (KDD'99).
func difficulty(path string, n int) ([]int, error) {
	zr, err := dataset.Open(path)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	var d []int
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		f := strings.Split(strings.TrimSpace(sc.Text()), ",")
		if len(f) != 43 {
			return nil, nil
		}
		v, err := strconv.Atoi(f[42])
		if err != nil {
			return nil, fmt.Errorf("%s line %d: difficulty %q: %w", path, len(d)+1, f[42], err)
		}
		d = append(d, v)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(d) != n {
		return nil, fmt.Errorf("%s: %d difficulty values for %d rows", path, len(d), n)
	}
	return d, nil
}

// serviceGroups deals the services with normal rows into k groups, by
// decreasing number of normal rows, so each group mixes common and rare
// services.
func serviceGroups(ds *dataset.Dataset, k int) []map[int]bool {
	count := map[int]int{}
	for i, l := range ds.Labels {
		if l == "normal" {
			count[int(ds.X[record.Service][i])]++
		}
	}
	var svcs []int
	for s := range count {
		svcs = append(svcs, s)
	}
	sort.Slice(svcs, func(a, b int) bool {
		if count[svcs[a]] != count[svcs[b]] {
			return count[svcs[a]] > count[svcs[b]]
		}
		return svcs[a] < svcs[b]
	})
	groups := make([]map[int]bool, k)
	for g := range groups {
		groups[g] = map[int]bool{}
	}
	for i, s := range svcs {
		groups[i%k][s] = true
	}
	return groups
}

// adaptRun scores the rows of the groups in file order with det's own
// rule, first as trained, then with the novelty part adapting to them
// (model.Detector.Adapt), and returns the share flagged of each group.
func adaptRun(det *model.Detector, ds *dataset.Dataset, groups [numGroups][]int) string {
	type ref struct{ row, group int }
	var rows []ref
	for g, rs := range groups {
		for _, i := range rs {
			rows = append(rows, ref{i, g})
		}
	}
	slices.SortFunc(rows, func(a, b ref) int { return a.row - b.row })
	var static, adapted, total [numGroups]int
	var x [record.NumFeatures]float32
	for _, r := range rows {
		ds.Row(r.row, &x)
		total[r.group]++
		if det.Predict(x[:]).IsAttack {
			static[r.group]++
		}
	}
	if err := det.Adapt(adaptCfg, 0); err != nil {
		log.Fatal(err)
	}
	for _, r := range rows {
		ds.Row(r.row, &x)
		if det.Predict(x[:]).IsAttack {
			adapted[r.group]++
		}
	}
	var b strings.Builder
	for g := range total {
		if total[g] > 0 {
			fmt.Fprintf(&b, " %s=%.4f/%.4f", groupNames[g], float64(static[g])/float64(total[g]), float64(adapted[g])/float64(total[g]))
		}
	}
	return b.String()
}
