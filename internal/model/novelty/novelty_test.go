package novelty

import (
	"bytes"
	"context"
	"errors"
	"math"
	"slices"
	"sort"
	"sync"
	"testing"

	"github.com/netsentinel/netsentinel/internal/dataset"
	"github.com/netsentinel/netsentinel/internal/record"
)

const kdd20 = "../../../data/KDDTrain+_20Percent.txt.gz"

var (
	loadOnce sync.Once
	loaded   *dataset.Dataset
	loadErr  error
)

func load(tb testing.TB) *dataset.Dataset {
	tb.Helper()
	loadOnce.Do(func() { loaded, loadErr = dataset.Load(kdd20, dataset.Options{}) })
	if loadErr != nil {
		tb.Fatalf("load %s: %v", kdd20, loadErr)
	}
	return loaded
}

// split returns the normal rows at even positions (for training), the
// other normal rows, and the rows of each attack.
func split(ds *dataset.Dataset) (train, heldNormal []int, attacks map[string][]int) {
	attacks = map[string][]int{}
	k := 0
	for i, l := range ds.Labels {
		if l != "normal" {
			attacks[l] = append(attacks[l], i)
			continue
		}
		if k%2 == 0 {
			train = append(train, i)
		} else {
			heldNormal = append(heldNormal, i)
		}
		k++
	}
	return train, heldNormal, attacks
}

var (
	modelOnce sync.Once
	trained   *Model
	trainErr  error
)

// testModel is trained once on half of the normal rows of the 20% file.
func testModel(tb testing.TB) *Model {
	tb.Helper()
	ds := load(tb)
	modelOnce.Do(func() {
		train, _, _ := split(ds)
		trained, trainErr = Train(context.Background(), ds.Subset(train).X[:], Config{Prototypes: 256})
	})
	if trainErr != nil {
		tb.Fatalf("Train: %v", trainErr)
	}
	return trained
}

func row(ds *dataset.Dataset, i int) []float32 {
	var x [record.NumFeatures]float32
	ds.Row(i, &x)
	return x[:]
}

func scores(m *Model, ds *dataset.Dataset, rows []int) []float64 {
	s := make([]float64, len(rows))
	for k, i := range rows {
		s[k] = m.Score(row(ds, i))
	}
	return s
}

// auc is the Mann-Whitney AUC of pos scoring above neg.
func auc(neg, pos []float64) float64 {
	type pt struct {
		s   float64
		pos bool
	}
	var all []pt
	for _, v := range neg {
		all = append(all, pt{v, false})
	}
	for _, v := range pos {
		all = append(all, pt{v, true})
	}
	sort.Slice(all, func(a, b int) bool { return all[a].s < all[b].s })
	var rankSum float64
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].s == all[i].s {
			j++
		}
		r := float64(i+j+1) / 2 // mean 1-based rank of the tie group
		for k := i; k < j; k++ {
			if all[k].pos {
				rankSum += r
			}
		}
		i = j
	}
	np, nn := float64(len(pos)), float64(len(neg))
	return (rankSum - np*(np+1)/2) / (np * nn)
}

func TestHeldOutAttacks(t *testing.T) {
	ds := load(t)
	m := testModel(t)
	_, held, attacks := split(ds)
	neg := scores(m, ds, held)
	// The model never saw any attack; these are types a classifier trained
	// on the others would miss, and very different ones.
	for _, tc := range []struct {
		attack string
		minAUC float64
	}{
		{"neptune", 0.95},
		{"satan", 0.95},
		{"ipsweep", 0.95},
		{"portsweep", 0.95},
		{"back", 0.9},
		{"warezclient", 0.75},
		{"guess_passwd", 0.9},
	} {
		rows := attacks[tc.attack]
		if len(rows) == 0 {
			t.Fatalf("no %s rows in %s", tc.attack, kdd20)
		}
		got := auc(neg, scores(m, ds, rows))
		t.Logf("%s: %d rows, AUC %.3f", tc.attack, len(rows), got)
		if got < tc.minAUC {
			t.Errorf("AUC of %s against held-out normal = %.3f, want >= %.2f", tc.attack, got, tc.minAUC)
		}
	}
	// Held-out normal rows mostly stay below the calibration point.
	var above int
	for _, s := range neg {
		if s >= 0.5 {
			above++
		}
	}
	if frac := float64(above) / float64(len(neg)); frac > 0.05 {
		t.Errorf("%.1f%% of held-out normal rows score >= 0.5, want <= 5%%", 100*frac)
	}
}

func TestSyntheticOutliers(t *testing.T) {
	ds := load(t)
	m := testModel(t)
	train, held, _ := split(ds)
	thr, err := m.Threshold(0.01)
	if err != nil {
		t.Fatal(err)
	}
	src := featureIndex(t, "src_bytes")
	dst := featureIndex(t, "dst_bytes")
	failed := featureIndex(t, "num_failed_logins")
	rootShell := featureIndex(t, "root_shell")
	for _, tc := range []struct {
		name  string
		alter func(x []float32)
	}{
		{"huge byte counts", func(x []float32) { x[src], x[dst] = 5e8, 5e8 }},
		{"failed logins and root shell", func(x []float32) { x[failed], x[rootShell] = 5, 1 }},
		{"all rates 1", func(x []float32) {
			for j, f := range record.Features {
				if f.Kind == record.KindRate {
					x[j] = 1 - x[j]
				}
			}
		}},
	} {
		var flagged int
		const n = 200
		for _, i := range held[:n] {
			x := row(ds, i)
			tc.alter(x)
			if m.Score(x) >= thr {
				flagged++
			}
		}
		if flagged < n*9/10 {
			t.Errorf("%s: %d of %d altered normal rows flagged at threshold %.3f, want >= 90%%", tc.name, flagged, n, thr)
		}
	}
	// Rows seen in training score low.
	s := scores(m, ds, train[:2000])
	slices.Sort(s)
	if med := s[len(s)/2]; med > 0.3 {
		t.Errorf("median score of training rows = %.3f, want <= 0.3", med)
	}
	for _, v := range s {
		if !(v >= 0 && v < 1) {
			t.Fatalf("score %v outside [0,1)", v)
		}
	}
}

func TestScoreOddInput(t *testing.T) {
	m := testModel(t)
	x := make([]float32, record.NumFeatures)
	for _, tc := range []struct {
		name string
		set  func()
	}{
		{"zeros", func() {}},
		{"NaN", func() { x[0] = float32(math.NaN()) }},
		{"negative", func() { x[4] = -1 }},
		{"bad service", func() { x[record.Service] = 1e9 }},
		{"bad flag", func() { x[record.Flag] = -3 }},
		{"bad protocol", func() { x[record.ProtocolType] = 7 }},
		{"inf", func() { x[5] = float32(math.Inf(1)) }},
	} {
		clear(x)
		tc.set()
		if s := m.Score(x); !(s >= 0 && s <= 1) {
			t.Errorf("%s: score %v outside [0,1]", tc.name, s)
		}
	}
	if s := m.Score(x[:3]); s != 1 {
		t.Errorf("score of a short row = %v, want 1", s)
	}
}

func TestThreshold(t *testing.T) {
	for _, tc := range []struct {
		scores []float64
		fpr    float64
		above  int // scores >= threshold
	}{
		{[]float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0}, 0.1, 1},
		{[]float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0}, 0.25, 2},
		{[]float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0}, 0, 0},
		{[]float64{0.5, 0.5, 0.5, 0.5}, 0.5, 0},
		{[]float64{0.3}, 0.5, 0},
	} {
		thr, err := Threshold(tc.scores, tc.fpr)
		if err != nil {
			t.Fatalf("Threshold(%v, %v): %v", tc.scores, tc.fpr, err)
		}
		var above int
		for _, s := range tc.scores {
			if s >= thr {
				above++
			}
		}
		if above != tc.above {
			t.Errorf("Threshold(%v, %v) = %v flags %d, want %d", tc.scores, tc.fpr, thr, above, tc.above)
		}
	}
	for _, fpr := range []float64{-0.1, 1, math.NaN()} {
		if _, err := Threshold([]float64{1}, fpr); err == nil {
			t.Errorf("Threshold with fpr %v: no error", fpr)
		}
	}
	if _, err := Threshold(nil, 0.1); !errors.Is(err, ErrNoData) {
		t.Errorf("Threshold(nil) error = %v, want ErrNoData", err)
	}

	// The model's own thresholds flag about the asked share of held-out
	// normal rows (a different half than the calibration rows).
	ds := load(t)
	m := testModel(t)
	_, held, _ := split(ds)
	s := scores(m, ds, held)
	prev := 2.0
	for _, fpr := range []float64{0.005, 0.01, 0.02, 0.05, 0.1} {
		thr, err := m.Threshold(fpr)
		if err != nil {
			t.Fatal(err)
		}
		if thr > prev {
			t.Errorf("Threshold(%v) = %v > Threshold of a smaller rate %v", fpr, thr, prev)
		}
		prev = thr
		var above int
		for _, v := range s {
			if v >= thr {
				above++
			}
		}
		got := float64(above) / float64(len(s))
		t.Logf("fpr %.3f: threshold %.3f, held-out normal flagged %.4f", fpr, thr, got)
		if got > 2*fpr+0.01 {
			t.Errorf("Threshold(%v) flags %.4f of held-out normal rows", fpr, got)
		}
	}
	for _, fpr := range []float64{0, 0.5, math.NaN()} {
		if _, err := m.Threshold(fpr); err == nil {
			t.Errorf("Model.Threshold(%v): no error", fpr)
		}
	}
}

func TestTrainErrors(t *testing.T) {
	cols := func(n int) [][]float32 {
		X := make([][]float32, record.NumFeatures)
		for j := range X {
			X[j] = make([]float32, n)
		}
		return X
	}
	ragged := cols(5)
	ragged[7] = ragged[7][:3]
	for _, tc := range []struct {
		name string
		X    [][]float32
		cfg  Config
	}{
		{"no rows", cols(0), Config{}},
		{"one row", cols(1), Config{}},
		{"few columns", cols(5)[:40], Config{}},
		{"ragged", ragged, Config{}},
		{"bad holdout", cols(5), Config{Holdout: 1}},
		{"bad quantile", cols(5), Config{Quantile: -1}},
		{"bad prototypes", cols(5), Config{Prototypes: -2}},
	} {
		if _, err := Train(context.Background(), tc.X, tc.cfg); err == nil {
			t.Errorf("%s: Train returned no error", tc.name)
		}
	}
	// Constant rows train and score without dividing by zero.
	m, err := Train(context.Background(), cols(10), Config{})
	if err != nil {
		t.Fatalf("Train on constant rows: %v", err)
	}
	if s := m.Score(make([]float32, record.NumFeatures)); !(s >= 0 && s < 0.5) {
		t.Errorf("score of a training row = %v", s)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Train(ctx, load(t).X[:], Config{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Train with a cancelled context: error %v, want context.Canceled", err)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	ds := load(t)
	m := testModel(t)
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got Model
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatalf("UnmarshalBinary: %v", err)
	}
	for i := 0; i < ds.Len(); i += 37 {
		x := row(ds, i)
		if a, b := m.Score(x), got.Score(x); a != b {
			t.Fatalf("row %d: score %v after round trip, want %v", i, b, a)
		}
	}
	for _, fpr := range []float64{0.01, 0.2} {
		a, _ := m.Threshold(fpr)
		b, _ := got.Threshold(fpr)
		if a != b {
			t.Errorf("Threshold(%v) = %v after round trip, want %v", fpr, b, a)
		}
	}
	b2, _ := got.MarshalBinary()
	if !bytes.Equal(b, b2) {
		t.Error("re-encoding differs")
	}

	bad := func(f func(b []byte) []byte) []byte { return f(slices.Clone(b)) }
	groupsOff := 18 + 8*Dims + 4*(numProtocols+numFlags) // the number of groups
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"magic", bad(func(b []byte) []byte { b[0] = 'X'; return b })},
		{"truncated", b[:len(b)/2]},
		{"newer version", bad(func(b []byte) []byte { b[4] = 3; return b })},
		{"bucket out of range", bad(func(b []byte) []byte { b[groupsOff+3] = 0xff; return b })},
		{"trailing", append(slices.Clone(b), 0)},
		{"version", bad(func(b []byte) []byte { b[4] = 9; return b })},
	} {
		var m2 Model
		if err := m2.UnmarshalBinary(tc.data); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: UnmarshalBinary error = %v, want ErrFormat", tc.name, err)
		}
	}
}

func FuzzUnmarshalBinary(f *testing.F) {
	m, err := Train(context.Background(), load(f).Subset([]int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}).X[:], Config{Prototypes: 4})
	if err != nil {
		f.Fatal(err)
	}
	b, _ := m.MarshalBinary()
	f.Add(b)
	f.Add(b[:40])
	f.Add([]byte("NSNV"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var m Model
		if err := m.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		// A model that decodes scores without panicking.
		s := m.Score(make([]float32, record.NumFeatures))
		if !(s >= 0 && s <= 1) {
			t.Fatalf("score %v", s)
		}
		if _, err := m.Threshold(0.01); err != nil {
			t.Fatal(err)
		}
	})
}

func TestExplain(t *testing.T) {
	ds := load(t)
	m := testModel(t)
	_, held, _ := split(ds)
	failed := featureIndex(t, "num_failed_logins")
	rootShell := featureIndex(t, "root_shell")
	for _, j := range []int{failed, rootShell} {
		x := row(ds, held[3])
		x[j] = 5
		got := m.Explain(x, 3)
		if len(got) != 3 {
			t.Fatalf("Explain returned %d contributions, want 3", len(got))
		}
		if got[0].Feature != j {
			t.Errorf("Explain with %s = 5: %+v, want %s first", record.Features[j].Name, got, record.Features[j].Name)
		}
		if !(got[0].Share >= got[1].Share && got[1].Share >= got[2].Share && got[0].Share <= 1) {
			t.Errorf("shares not decreasing in [0,1]: %+v", got)
		}
	}
	// A service without normal rows is explained by the service.
	x := row(ds, held[3])
	var svc int
	for s := range numServices {
		if m.start[bucketOf(s, 0, 0)] == m.start[bucketOf(s+1, 0, 0)] {
			svc = s
			break
		}
	}
	x[record.Service] = float32(svc)
	if got := m.Explain(x, 2); len(got) == 0 || got[0].Feature != record.Service {
		t.Errorf("Explain of an unseen service = %+v, want the service first", got)
	}
	if m.Explain(x[:5], 3) != nil || m.Explain(x, 0) != nil {
		t.Error("Explain of a short row or n=0 is not nil")
	}
}

// featureIndex returns the schema index of the named feature.
func featureIndex(t *testing.T, name string) int {
	t.Helper()
	i := slices.IndexFunc(record.Features[:], func(f record.Feature) bool { return f.Name == name })
	if i < 0 {
		t.Fatalf("no feature %q", name)
	}
	return i
}
