package cli

import (
	"encoding/json"
	"math"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/netsentinel/netsentinel/internal/model"
	"github.com/netsentinel/netsentinel/internal/record"
)

// round6 is what AppendJSON keeps of a float: 6 significant digits.
func round6(x float64) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'g', 6, 64), 64)
	return v
}

// checkPredictLine encodes l with AppendJSON and checks that
// encoding/json reads back l (floats to 6 digits, non-finite ones as
// null), and that encoding/json's own encoding of l reads back the same.
func checkPredictLine(t *testing.T, l *predictLine) {
	t.Helper()
	out := l.AppendJSON(nil)
	if len(out) == 0 || out[len(out)-1] != '\n' {
		t.Fatalf("AppendJSON = %q, want one line", out)
	}
	var got predictLine
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("encoding/json cannot read %q: %v", out, err)
	}
	want := *l
	for _, p := range []**float64{&want.Probability, &want.CategoryProbability, &want.AttackProbability, &want.Novelty} {
		switch {
		case *p == nil:
		case math.IsNaN(**p) || math.IsInf(**p, 0):
			*p = nil
		default:
			v := round6(**p)
			*p = &v
		}
	}
	if want.Error != "" { // an error line holds the line and the error only
		want = predictLine{Line: want.Line, Error: want.Error}
	} else if want.IsAttack == nil {
		f := false
		want.IsAttack = &f
	}
	opts := cmp.Options{cmpopts.EquateEmpty()}
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Errorf("AppendJSON %q read back differs (-want +got):\n%s", out, diff)
	}
	std, err := json.Marshal(&want)
	if err != nil {
		t.Fatal(err)
	}
	var fromStd predictLine
	if err := json.Unmarshal(std, &fromStd); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fromStd, got, opts); diff != "" {
		t.Errorf("AppendJSON and encoding/json disagree (-json +AppendJSON):\n%s", diff)
	}
}

func TestPredictLineJSON(t *testing.T) {
	v := model.Verdict{Attack: "neptune", Category: record.CategoryDoS, IsAttack: true,
		Probability: 0.987654321, CategoryProbability: 1, AttackProbability: 0.5, Novelty: 0, FlaggedBy: "classifier"}
	checkPredictLine(t, newPredictLine(7, record.Identity{TS: 1.5e9, SrcIP: "10.0.0.1", SrcPort: 4242, DstIP: "::1", DstPort: 0, UID: "C1"}, "neptune", &v, nil))
	u := model.Verdict{Attack: "unknown", Category: record.CategoryUnknown, IsAttack: true,
		Probability: math.NaN(), CategoryProbability: math.Inf(1), AttackProbability: math.Inf(-1), Novelty: 1e-9, FlaggedBy: "novelty"}
	checkPredictLine(t, newPredictLine(8, record.Identity{SrcPort: -1, DstPort: -1}, "", &u, []string{"src_bytes", "flag"}))
	n := model.Verdict{Attack: "normal", Category: record.CategoryNormal, Probability: 0.95, CategoryProbability: 0.95, AttackProbability: 0.05}
	checkPredictLine(t, newPredictLine(9, record.Identity{SrcPort: -1, DstPort: 80}, "weird \"label\"\n\t<é>", &n, nil))
	checkPredictLine(t, &predictLine{Line: 10, Error: `field "flag" value "XX": unknown`})
	if got, want := string(newPredictLine(1, record.Identity{SrcPort: -1, DstPort: -1}, "", &u, nil).AppendJSON(nil)),
		`{"line":1,"attack":"unknown","category":"unknown","binary":"attack","is_attack":true,"probability":null,"category_probability":null,"attack_probability":null,"novelty":1e-09,"flagged_by":"novelty"}`+"\n"; got != want {
		t.Errorf("AppendJSON = %s, want %s", got, want)
	}
}

// FuzzPredictLineJSON checks the round trip against encoding/json for any
// strings and floats.
func FuzzPredictLineJSON(f *testing.F) {
	f.Add(1, "", "neptune", "dos", true, 0.5, 1.0, math.NaN(), math.Inf(1), "classifier", "src_bytes", "")
	f.Add(2, "x\x00\"", "unknown", "unknown", false, math.Copysign(0, -1), 1e300, 1e-300, 3.0, "", "", "bad line")
	f.Fuzz(func(t *testing.T, line int, label, attack, category string, isAttack bool, p, cp, ap, nov float64, flaggedBy, feature, errText string) {
		if !validUTF8(label, attack, category, flaggedBy, feature, errText) {
			t.Skip("encoding/json replaces invalid UTF-8")
		}
		binary := "normal"
		if isAttack {
			binary = "attack"
		}
		l := &predictLine{Line: line, Error: errText, Label: label, Attack: attack, Category: category, Binary: binary,
			IsAttack: &isAttack, Probability: &p, CategoryProbability: &cp, AttackProbability: &ap, Novelty: &nov, FlaggedBy: flaggedBy}
		if feature != "" {
			l.NoveltyFeatures = []string{feature}
		}
		checkPredictLine(t, l)
	})
}

func validUTF8(ss ...string) bool {
	for _, s := range ss {
		for _, r := range s {
			if r == '\uFFFD' {
				return false
			}
		}
	}
	return true
}
