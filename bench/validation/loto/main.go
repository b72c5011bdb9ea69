// Command loto runs the leave-attack-types-out validation of
// docs/validation.md with netsentinel's own forest and novelty model: for
// each fold it trains a Detector without some attack types (and without 20%
// of all rows), then measures on the unseen rows how many records of the
// held-out types are flagged, the detection rate on known types and the
// false-positive rate on unseen normal rows, for several decision rules.
//
//	go run ./bench/validation/loto -data data/KDDTrain+.txt.gz
//	go run ./bench/validation/loto -data data/kddcup.data_10_percent.gz -kdd99
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/netsentinel/netsentinel/bench/validation/folds"
	"github.com/netsentinel/netsentinel/internal/dataset"
	"github.com/netsentinel/netsentinel/internal/eval"
	"github.com/netsentinel/netsentinel/internal/model"
	"github.com/netsentinel/netsentinel/internal/record"
)

type rule struct {
	pNormal float64 // flag when P(normal) < pNormal
	fpr     float64 // novelty target FPR; 0 = no novelty
	// shipped: the novelty part's own thresholds as trained, including the
	// stricter one for records the forest is confident about.
	shipped bool
}

type result struct{ fpr, dHeld, dKnown, catAcc, cost, guessAcc, guessCost float64 }

func main() {
	data := flag.String("data", "data/KDDTrain+.txt.gz", "training `file`")
	kdd99 := flag.Bool("kdd99", false, "also report 5-category accuracy and cost on the test mix")
	trees := flag.Int("trees", 0, "forest trees (0 = default)")
	only := flag.String("folds", "", "comma-separated fold names to run (default all)")
	flag.Parse()
	ds, err := dataset.Load(*data, dataset.Options{})
	if err != nil {
		log.Fatal(err)
	}
	rules := []rule{}
	for _, p := range []float64{0.5, 0.7, 0.9} {
		for _, q := range []float64{0, 0.005, 0.01, 0.02, 0.03, 0.05} {
			rules = append(rules, rule{p, q, false})
		}
	}
	def := model.DefaultTrainOptions()
	rules = append(rules, rule{def.Threshold, def.Novelty.FPR, true})
	sum := make([]result, len(rules))
	nf := 0
	fmt.Printf("data=%s rows=%d\n", *data, ds.Len())
	for k, f := range folds.ByType(ds.Labels) {
		if *only != "" && !slices.Contains(strings.Split(*only, ","), f.Name) {
			continue
		}
		nf++
		start := time.Now()
		rng := rand.New(rand.NewPCG(uint64(k)+7, 3))
		var trainRows, testNormal, testKnown, held []int
		for i, l := range ds.Labels {
			test := rng.Float64() < 0.2
			switch {
			case slices.Contains(f.Held, l):
				held = append(held, i)
			case test && l == "normal":
				testNormal = append(testNormal, i)
			case test:
				testKnown = append(testKnown, i)
			default:
				trainRows = append(trainRows, i)
			}
		}
		opts := model.DefaultTrainOptions() // the shipped detector's settings
		opts.Forest.Trees = *trees
		det, err := model.Train(context.Background(), ds.Subset(trainRows), opts)
		if err != nil {
			log.Fatal(err)
		}
		nov, _ := det.Novelty()
		conf, confThr := det.NoveltyConfident()
		// guess[...] holds, per evaluated row set, the forest's most
		// probable attack category of each row (unknown when P(normal)=1).
		guess := map[string][]record.Category{}
		if err := det.SetThreshold(1); err != nil {
			log.Fatal(err)
		}
		det.SetNovelty(nil, 0)
		for _, rows := range [][]int{testNormal, held, testKnown} {
			sub := ds.Subset(rows)
			cats := make([]record.Category, len(rows))
			for i, v := range det.PredictBatch(sub) {
				cats[i] = v.Category
				if v.AttackProbability == 0 {
					cats[i] = record.CategoryUnknown
				}
			}
			guess[rowsKey(rows)] = cats
		}
		eval3 := func(r rule) result {
			if err := det.SetThreshold(r.pNormal); err != nil {
				log.Fatal(err)
			}
			thr := 2.0
			if r.fpr > 0 {
				thr, _ = nov.(interface {
					Threshold(float64) (float64, error)
				}).Threshold(r.fpr)
			}
			det.SetNovelty(nov, thr)
			if r.shipped {
				if err := det.SetNoveltyConfident(conf, confThr); err != nil {
					log.Fatal(err)
				}
			} else if err := det.SetNoveltyConfident(0, 0); err != nil {
				log.Fatal(err)
			}
			var res result
			ev, evGuess := eval.New(), eval.New()
			rate := func(rows []int) float64 {
				sub := ds.Subset(rows)
				vs := det.PredictBatch(sub)
				n := 0
				for i, v := range vs {
					if v.IsAttack {
						n++
					}
					ev.Add(sub.Labels[i], v)
					if v.FlaggedBy == "novelty" {
						// The variant: the forest's most probable attack
						// category instead of unknown.
						v.Category = guess[rowsKey(rows)][i]
					}
					evGuess.Add(sub.Labels[i], v)
				}
				return float64(n) / float64(max(1, len(rows)))
			}
			res.fpr, res.dHeld, res.dKnown = rate(testNormal), rate(held), rate(testKnown)
			rep := ev.Report()
			res.catAcc, res.cost = float64(rep.Category.Accuracy), float64(rep.Category.CostPerExample)
			rep = evGuess.Report()
			res.guessAcc, res.guessCost = float64(rep.Category.Accuracy), float64(rep.Category.CostPerExample)
			return res
		}
		// AUC of the novelty score alone: held-out types vs unseen normal.
		var scores []float64
		var pos []bool
		var x [record.NumFeatures]float32
		for _, rows := range [][]int{testNormal, held} {
			for _, i := range rows {
				ds.Row(i, &x)
				scores = append(scores, nov.Score(x[:]))
				pos = append(pos, ds.Labels[i] != "normal")
			}
		}
		fmt.Printf("%-6s held=%6d %s\n       novelty AUC (held vs normal) = %.3f  (%s)\n", f.Name, len(held),
			strings.Join(f.Held, ","), eval.AUC(scores, pos), time.Since(start).Round(time.Second))
		for j, r := range rules {
			res := eval3(r)
			s := &sum[j]
			s.fpr += res.fpr
			s.dHeld += res.dHeld
			s.dKnown += res.dKnown
			s.catAcc += res.catAcc
			s.cost += res.cost
			s.guessAcc += res.guessAcc
			s.guessCost += res.guessCost
			extra := ""
			if *kdd99 {
				extra = fmt.Sprintf(" cat_acc=%.4f cost=%.4f | guess: cat_acc=%.4f cost=%.4f", res.catAcc, res.cost, res.guessAcc, res.guessCost)
			}
			fmt.Printf("       %s: FPR=%.4f DR_held=%.4f DR_known=%.4f%s\n",
				r, res.fpr, res.dHeld, res.dKnown, extra)
		}
		os.Stdout.Sync()
	}
	fmt.Printf("\nmean over %d folds; mix = 0.43*(1-FPR) + 0.57*(DR_held+DR_known)/2\n", nf)
	for j, r := range rules {
		s := sum[j]
		n := float64(nf)
		fpr, dh, dk := s.fpr/n, s.dHeld/n, s.dKnown/n
		extra := ""
		if *kdd99 {
			extra = fmt.Sprintf(" cat_acc=%.4f cost=%.4f | guess: cat_acc=%.4f cost=%.4f", s.catAcc/n, s.cost/n, s.guessAcc/n, s.guessCost/n)
		}
		fmt.Printf("  %s: FPR=%.4f DR_held=%.4f DR_known=%.4f mix=%.4f%s\n",
			r, fpr, dh, dk, 0.43*(1-fpr)+0.57*(dh+dk)/2, extra)
	}
}

// rowsKey identifies a row set by its first rows and length.
func rowsKey(rows []int) string {
	if len(rows) == 0 {
		return ""
	}
	return fmt.Sprint(len(rows), rows[0], rows[len(rows)-1])
}

func (r rule) String() string {
	s := fmt.Sprintf("P(normal)<%.1f novelty fpr=%-5v", r.pNormal, r.fpr)
	if r.shipped {
		s += " + confident 0.5% (shipped default)"
	}
	return s
}
