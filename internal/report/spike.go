package report

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"
)

// madScale makes the median absolute deviation a consistent estimator of
// the standard deviation for normally distributed data.
const madScale = 1.4826

// meanADScale does the same for the mean absolute deviation, used when the
// MAD is zero (more than half the baseline has the same value).
const meanADScale = 1.2533

// robust returns the median of xs and a robust spread: 1.4826·MAD, or
// 1.2533·mean absolute deviation when the MAD is zero.
func robust(xs []float64) (median, scale float64) {
	median = medianOf(xs)
	dev := make([]float64, len(xs))
	var sum float64
	for i, x := range xs {
		dev[i] = math.Abs(x - median)
		sum += dev[i]
	}
	scale = madScale * medianOf(dev)
	if scale == 0 && len(xs) > 0 {
		scale = meanADScale * sum / float64(len(xs))
	}
	return median, scale
}

func medianOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// baselineBucket is one bucket of a baseline.
type baselineBucket struct {
	records, attacks, unknown int64
	byAttack                  map[string]int64
}

// baseline collects the baseline of the bucket starting at t: the same
// bucket of the day on the previous cfg.BaselineDays days, or, with too
// few of those, the cfg.TrailingBuckets buckets before t.
func baseline(ix index, t time.Time, d time.Duration, cfg Config, loc *time.Location) ([]baselineBucket, string) {
	var bs []baselineBucket
	lt := t.In(loc)
	for day := 1; day <= cfg.BaselineDays; day++ {
		r, a, u, by := ix.sum(lt.AddDate(0, 0, -day), d)
		if r > 0 {
			bs = append(bs, baselineBucket{r, a, u, by})
		}
	}
	if len(bs) >= cfg.MinBaselinePoints {
		return bs, fmt.Sprintf("same time of day, %d previous days", len(bs))
	}
	bs = bs[:0]
	for i := 1; i <= cfg.TrailingBuckets; i++ {
		r, a, u, by := ix.sum(t.Add(-time.Duration(i)*cfg.Bucket), cfg.Bucket)
		if r > 0 {
			bs = append(bs, baselineBucket{r, a, u, by})
		}
	}
	if len(bs) >= cfg.MinBaselinePoints {
		return bs, fmt.Sprintf("%d trailing buckets (no history of previous days)", len(bs))
	}
	return nil, ""
}

// detectSpike decides whether bucket b (starting at t, length d) is a
// spike.
func detectSpike(ix index, t time.Time, d time.Duration, b Bucket, cfg Config, loc *time.Location) (Spike, bool) {
	if b.Records == 0 {
		return Spike{}, false
	}
	bs, source := baseline(ix, t, d, cfg, loc)
	if bs == nil {
		return Spike{}, false
	}
	attackRates := make([]float64, len(bs))
	unknownRates := make([]float64, len(bs))
	for i, x := range bs {
		attackRates[i] = rate(x.attacks, x.records)
		unknownRates[i] = rate(x.unknown, x.records)
	}
	best := Spike{}
	found := false
	for _, m := range []struct {
		name  string
		rate  float64
		count int64
		base  []float64
	}{
		{"attack rate", b.AttackRate, b.Attacks, attackRates},
		{"unknown rate", b.UnknownRate, b.Unknown, unknownRates},
	} {
		med, scale := robust(m.base)
		scale = max(scale, cfg.MinScale)
		z := (m.rate - med) / scale
		if z < cfg.SpikeZ || m.rate-med < cfg.MinRateIncrease || m.count < cfg.MinCount {
			continue
		}
		// The unknown rate wins when both fire: novel traffic is the more
		// specific signal (and is part of the attack rate too).
		if !found || m.name == "unknown rate" {
			best = Spike{Metric: m.name, Rate: m.rate, Baseline: med, Z: z, Count: m.count}
			found = true
		}
	}
	if !found {
		return Spike{}, false
	}
	best.Start = t.In(loc)
	best.End = t.Add(d).In(loc)
	best.Records = b.Records
	best.BaselineSource = source
	_, _, _, byAttack := ix.sum(t, d)
	best.Drivers = drivers(byAttack, b.Records, bs, cfg.TopAttacks)
	return best, true
}

// drivers lists the attack types whose count in the bucket most exceeds
// what the baseline's mix predicts for the bucket's record count, leaving
// out those whose excess is under a tenth of the largest.
func drivers(byAttack map[string]int64, records int64, bs []baselineBucket, top int) []AttackCount {
	var baseRecords int64
	baseAttack := map[string]int64{}
	for _, x := range bs {
		baseRecords += x.records
		for k, v := range x.byAttack {
			baseAttack[k] += v
		}
	}
	var out []AttackCount
	for name, n := range byAttack {
		exp := float64(records) * rate(baseAttack[name], baseRecords)
		if float64(n) > exp {
			out = append(out, AttackCount{Name: name, Count: n, Expected: math.Round(exp*10) / 10})
		}
	}
	slices.SortFunc(out, func(x, y AttackCount) int {
		ex, ey := float64(x.Count)-x.Expected, float64(y.Count)-y.Expected
		if c := cmp.Compare(ey, ex); c != 0 {
			return c
		}
		return cmp.Compare(x.Name, y.Name)
	})
	// Keep the types that carry at least a tenth of the largest excess:
	// the others only follow their usual share.
	for i := 1; i < len(out); i++ {
		if float64(out[i].Count)-out[i].Expected < 0.1*(float64(out[0].Count)-out[0].Expected) {
			out = out[:i]
			break
		}
	}
	if len(out) > top {
		out = out[:top]
	}
	return out
}
