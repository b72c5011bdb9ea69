package model

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/netsentinel/netsentinel/internal/model/novelty"
	"github.com/netsentinel/netsentinel/internal/record"
)

// TestAdaptPoisoning streams unseen normal traffic into an adapting
// detector while an attack of a type it never saw ramps up slowly, from
// 0.1% to 10% of the records, and checks that at the end of the ramp the
// attack is caught as often as by the detector that does not adapt.
func TestAdaptPoisoning(t *testing.T) {
	train, test := kddSlices(t, 15000, 10192)
	held := []string{"satan", "ipsweep", "back", "warezclient", "nmap"}
	var keep []int
	for i, l := range train.Labels {
		if !contains(held, l) {
			keep = append(keep, i)
		}
	}
	opts := DefaultTrainOptions()
	opts.Forest.Trees = 15
	d, err := Train(context.Background(), train.Subset(keep), opts)
	if err != nil {
		t.Fatal(err)
	}
	base, thr := d.Novelty()
	var normal []int
	pools := map[string][][record.NumFeatures]float32{}
	for i, l := range test.Labels {
		var x [record.NumFeatures]float32
		test.Row(i, &x)
		switch {
		case l == "normal":
			normal = append(normal, i)
		case contains(held, l):
			pools[l] = append(pools[l], x)
		}
	}
	for _, attack := range held {
		pool := pools[attack]
		// stream returns how many attack records in the last quarter of
		// the ramp were flagged, of how many, and the normal rows flagged.
		stream := func() (caught, late, fp int) {
			rng := rand.New(rand.NewPCG(5, 6))
			var x [record.NumFeatures]float32
			for k, i := range normal {
				test.Row(i, &x)
				if d.Predict(x[:]).IsAttack {
					fp++
				}
				if rng.Float64() < 0.001+0.099*float64(k)/float64(len(normal)) {
					p := pool[rng.IntN(len(pool))]
					v := d.Predict(p[:])
					if k >= 3*len(normal)/4 {
						late++
						if v.IsAttack {
							caught++
						}
					}
				}
			}
			return caught, late, fp
		}
		d.SetNovelty(base, thr)
		sCaught, sLate, sFP := stream()
		if err := d.Adapt(novelty.AdaptConfig{}, 0); err != nil {
			t.Fatal(err)
		}
		aCaught, aLate, aFP := stream()
		t.Logf("%s: end of the ramp, %d of %d caught adapting, %d of %d without; normal rows flagged %d adapting, %d without (of %d)",
			attack, aCaught, aLate, sCaught, sLate, aFP, sFP, len(normal))
		if aLate == 0 || float64(aCaught) < 0.95*float64(sCaught) {
			t.Errorf("%s: %d of %d records caught at the end of a slow ramp when adapting, %d without; want at least 95%% as many",
				attack, aCaught, aLate, sCaught)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
