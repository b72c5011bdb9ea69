package novelty

import (
	"math"
	"testing"

	"github.com/netsentinel/netsentinel/internal/record"
)

// TestNearestPrototypePruned checks the pruned search for the nearest
// prototype against an exhaustive one: the same distance to the nearest prototype of
// the record's service for every row.
func TestNearestPrototypePruned(t *testing.T) {
	m := testModel(t)
	ds := load(t)
	var x [record.NumFeatures]float32
	for i := 0; i < ds.Len(); i += 7 {
		ds.Row(i, &x)
		var n Nearest
		m.exact(x[:], &n)
		z, k, best, bestKey := n.z, n.k, n.proto, n.protoKey
		want, wantBest := float32(math.MaxFloat32), -1
		for p := range numProtocols {
			for f := range numFlags {
				o := key{k.s, p, f}
				b := bucketOf(k.s, p, f)
				off := m.mismatch(k, o)
				for c := m.start[b]; c < m.start[b+1]; c++ {
					if d := off + float32(dist2(z[:], m.protos[int(c)*Dims:(int(c)+1)*Dims])); d < want {
						want, wantBest = d, int(c)
					}
				}
			}
		}
		if (best < 0) != (wantBest < 0) {
			t.Fatalf("row %d: best %d, exhaustive %d", i, best, wantBest)
		}
		if best < 0 {
			continue
		}
		got := m.mismatch(k, bestKey) + float32(dist2(z[:], m.protos[best*Dims:(best+1)*Dims]))
		if math.Abs(float64(got-want)) > 1e-4*math.Max(1, float64(want)) {
			t.Fatalf("row %d: nearest at %v (prototype %d), exhaustive %v (prototype %d)", i, got, best, want, wantBest)
		}
	}
}
