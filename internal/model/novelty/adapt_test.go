package novelty

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/netsentinel/netsentinel/internal/record"
)

// TestAdaptivePoisoning ramps an attack up slowly inside a stream of
// unseen normal traffic, in the worst case for an Adaptive profile: every
// record, attack or not, is offered for learning, as if the classifier that
// vouches for records were fooled every time (the detector-level test,
// model.TestAdaptPoisoning, has the classifier decide). Then only the
// profile's own safeguards stand, and they bound what can be learned: an
// attack record further from normal traffic than the threshold distance
// divided by 1-MaxRelief must be flagged however it ramps up, and the
// safeguards must catch more of the attack than a profile without them fed
// the same stream (which shows that the stream does poison).
func TestAdaptivePoisoning(t *testing.T) {
	m := testModel(t)
	ds := load(t)
	_, heldNormal, attacks := split(ds)
	thr, err := m.Threshold(0.02)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := AdaptConfig{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	// Scores from which the relief cannot bring a record below thr:
	// d/(d+s) >= thr  <=>  d >= thr*s/(1-thr).
	dThr := thr / (1 - thr) // in units of scale
	dFar := dThr / (1 - cfg.MaxRelief)
	farScore := dFar / (dFar + 1)
	unsafe := AdaptConfig{MinShare: 1e-9, MaxRate: 1, MaxScore: 1, MaxRelief: 0.999999, HalfLife: 1e6}
	for _, attack := range []string{"neptune", "satan", "back", "warezclient", "ipsweep"} {
		// The attack's records the trained profile flags.
		var pool [][record.NumFeatures]float32
		for _, i := range attacks[attack] {
			var x [record.NumFeatures]float32
			ds.Row(i, &x)
			if m.Score(x[:]) >= thr {
				pool = append(pool, x)
			}
		}
		if len(pool) < 20 {
			t.Fatalf("%s: %d records flagged by the trained profile, want at least 20", attack, len(pool))
		}
		// run returns, for the last quarter of the ramp, the attack
		// records caught, of all and of the far ones.
		run := func(cfg AdaptConfig) (caught, late, farCaught, far int) {
			a, err := NewAdaptive(m, cfg)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			var x [record.NumFeatures]float32
			n := len(heldNormal)
			for k, i := range heldNormal {
				ds.Row(i, &x)
				a.ScoreLearn(x[:], true)
				// The attack's share of the stream rises from 0.1% to 10%.
				if rng.Float64() < 0.001+0.099*float64(k)/float64(n) {
					p := pool[rng.IntN(len(pool))]
					got := a.ScoreLearn(p[:], true) >= thr
					if k >= 3*n/4 {
						late++
						caught += b2i(got)
						if m.Score(p[:]) >= farScore {
							far++
							farCaught += b2i(got)
						}
					}
				}
			}
			return caught, late, farCaught, far
		}
		caught, late, farCaught, far := run(AdaptConfig{})
		uCaught, uLate, _, _ := run(unsafe)
		t.Logf("%s (%d distinct records): last quarter of the ramp, %d of %d caught with the safeguards (%d of %d far ones), %d of %d without",
			attack, len(pool), caught, late, farCaught, far, uCaught, uLate)
		if farCaught != far {
			t.Errorf("%s: %d of %d records beyond the relief bound caught, want all", attack, farCaught, far)
		}
		if late == 0 || caught <= uCaught && uCaught < uLate {
			t.Errorf("%s: %d of %d caught with the safeguards, %d without; want more with them", attack, caught, late, uCaught)
		}
	}
}

// TestAdaptiveLearnsShift trains on normal traffic without one kind of
// connection the site has plenty of (rejected http connections) and
// streams unseen normal traffic: adapting must flag fewer of those records
// than the trained profile alone once it has seen some, and no more of the
// others.
func TestAdaptiveLearnsShift(t *testing.T) {
	ds := load(t)
	train, heldNormal, _ := split(ds)
	http := float32(slices.Index(record.Services, "http"))
	rej := float32(slices.Index(record.Flags, "REJ"))
	shifted := func(i int) bool { return ds.X[record.Service][i] == http && ds.X[record.Flag][i] == rej }
	var without []int
	for _, i := range train {
		if !shifted(i) {
			without = append(without, i)
		}
	}
	m, err := Train(context.Background(), ds.Subset(without).X[:], Config{Prototypes: 256})
	if err != nil {
		t.Fatal(err)
	}
	thr, err := m.Threshold(0.02)
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAdaptive(m, AdaptConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var static, adapted, n, other, otherStatic, otherAdapted int
	var x [record.NumFeatures]float32
	for j, i := range heldNormal {
		ds.Row(i, &x)
		s, v := m.Score(x[:]), a.ScoreLearn(x[:], true)
		if j < len(heldNormal)/2 {
			continue // learning
		}
		if !shifted(i) {
			other++
			otherStatic += b2i(s >= thr)
			otherAdapted += b2i(v >= thr)
			continue
		}
		n++
		static += b2i(s >= thr)
		adapted += b2i(v >= thr)
	}
	learned, counting := a.SitePrototypes()
	t.Logf("http REJ: %d of %d flagged by the trained profile, %d adapted; other rows %d / %d of %d; http site prototypes %v, counting %v",
		static, n, adapted, otherStatic, otherAdapted, other, learned["http"], counting["http"])
	if n == 0 || static == 0 || float64(adapted) > 0.5*float64(static) {
		t.Errorf("http REJ: %d of %d flagged adapted, %d by the trained profile; want at most half", adapted, n, static)
	}
	if otherAdapted > otherStatic {
		t.Errorf("other rows: %d flagged adapted, more than the trained profile's %d", otherAdapted, otherStatic)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestAdaptiveConcurrent scores and learns from several goroutines at once
// (run with -race), and checks that Score learns nothing.
func TestAdaptiveConcurrent(t *testing.T) {
	m := testModel(t)
	ds := load(t)
	_, heldNormal, _ := split(ds)
	a, err := NewAdaptive(m, AdaptConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var x [record.NumFeatures]float32
	ds.Row(heldNormal[0], &x)
	for range 50 {
		a.Score(x[:])
	}
	if learned, _ := a.SitePrototypes(); len(learned) != 0 {
		t.Fatalf("Score learned %v", learned)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			var x [record.NumFeatures]float32
			for k := w; k < min(len(heldNormal), 2000); k += 4 {
				ds.Row(heldNormal[k], &x)
				if s := a.ScoreLearn(x[:], true); !(s >= 0 && s <= 1) {
					t.Errorf("score %v", s)
				}
				a.Score(x[:])
			}
		})
	}
	wg.Wait()
	if learned, _ := a.SitePrototypes(); len(learned) == 0 {
		t.Error("nothing learned from 2000 normal records")
	}
}
