package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestEvalAdapt checks that eval --adapt scores every record with an
// adapting novelty part and says so, and refuses a model without a novelty
// part with a clear error.
func TestEvalAdapt(t *testing.T) {
	m := trainSmall(t)
	data := writeLines(t, "test.csv", kddLines(t, 3000, 5000))
	code, stdout, stderr := run(t, "", "eval", "--model", m, "--data", data, "--json", "--adapt")
	if code != ExitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	var rep struct {
		Records int  `json:"records"`
		Adapted bool `json:"adapted"`
		Binary  struct {
			Accuracy float64 `json:"accuracy"`
		} `json:"binary"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
	}
	if rep.Records != 2000 || !rep.Adapted || rep.Binary.Accuracy < 0.95 {
		t.Errorf("records %d, adapted %v, binary accuracy %v; want 2000, true, >= 0.95", rep.Records, rep.Adapted, rep.Binary.Accuracy)
	}
	code, stdout, _ = run(t, "", "eval", "--model", m, "--data", data, "--adapt")
	if code != ExitOK || !strings.Contains(stdout, "adapted") {
		t.Errorf("table with --adapt: exit %d\n%s", code, stdout)
	}
	plain := trainSmall(t, "--novelty=false")
	code, _, stderr = run(t, "", "eval", "--model", plain, "--data", data, "--adapt")
	if code == ExitOK || !strings.Contains(stderr, "no novelty part") {
		t.Errorf("--adapt without a novelty part: exit %d, stderr:\n%s", code, stderr)
	}
}

// TestPredictExplanation checks that predict explains every attack verdict
// and no normal one.
func TestPredictExplanation(t *testing.T) {
	m := trainSmall(t)
	lines := kddLines(t, 3000, 3500)
	code, stdout, stderr := run(t, strings.Join(lines, "\n")+"\n", "predict", "--model", m)
	if code != ExitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	attacks := 0
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var v struct {
			IsAttack    bool   `json:"is_attack"`
			FlaggedBy   string `json:"flagged_by"`
			Explanation []struct {
				Feature      string   `json:"feature"`
				Value        *float64 `json:"value"`
				Typical      *float64 `json:"typical"`
				Contribution float64  `json:"contribution"`
			} `json:"explanation"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if !v.IsAttack {
			if v.Explanation != nil {
				t.Errorf("normal verdict explained: %s", l)
			}
			continue
		}
		attacks++
		if len(v.Explanation) == 0 || v.Explanation[0].Feature == "" || v.Explanation[0].Value == nil ||
			v.Explanation[0].Typical == nil || !(v.Explanation[0].Contribution > 0) {
			t.Errorf("attack verdict (%s) without a full explanation: %s", v.FlaggedBy, l)
		}
	}
	if attacks == 0 {
		t.Error("no attack verdicts to check")
	}
}
