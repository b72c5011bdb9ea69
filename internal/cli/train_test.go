package cli

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netsentinel/netsentinel/internal/model"
)

// kddLines returns lines [from, to) of the shipped NSL-KDD 20% training
// file.
func kddLines(t *testing.T, from, to int) []string {
	t.Helper()
	f, err := os.Open("../../data/KDDTrain+_20Percent.txt.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	var lines []string
	for i := 0; sc.Scan() && i < to; i++ {
		if i >= from {
			lines = append(lines, sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func writeLines(t *testing.T, name string, lines []string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// run runs the program in-process and returns its exit code and output.
func run(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Main(context.Background(), args, &Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut})
	return code, out.String(), errOut.String()
}

// trainSmall trains a small forest on 3000 rows and returns the model path.
func trainSmall(t *testing.T, extra ...string) string {
	t.Helper()
	data := writeLines(t, "train.csv", kddLines(t, 0, 3000))
	out := filepath.Join(t.TempDir(), "m.model")
	args := append([]string{"train", "--data", data, "--trees", "10", "--out", out}, extra...)
	code, stdout, stderr := run(t, "", args...)
	if code != ExitOK {
		t.Fatalf("train exit %d, stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "trained forest on 3000 rows") {
		t.Errorf("train summary:\n%s", stdout)
	}
	return out
}

func TestTrain(t *testing.T) {
	t.Run("validate", func(t *testing.T) {
		data := writeLines(t, "train.csv", kddLines(t, 0, 3000))
		out := filepath.Join(t.TempDir(), "m.model")
		code, stdout, stderr := run(t, "", "train", "--data", data, "--data", data, "--algo", "logistic",
			"--max-iter", "10", "--validate", "0.2", "--class-weight", "balanced", "--out", out)
		if code != ExitOK {
			t.Fatalf("exit %d, stderr:\n%s", code, stderr)
		}
		// Per-class rounding moves a row or two between the parts.
		if !strings.Contains(stdout, "trained logistic on 480") || !strings.Contains(stdout, "validation on 1199 held-out rows") {
			t.Errorf("summary:\n%s", stdout)
		}
		d, err := model.LoadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		info := d.Info()
		if info.Algorithm != "logistic" || info.Metrics["validation_rows"] != 1199 || len(info.Training.Sources) != 2 {
			t.Errorf("model info = %+v, params %s", info, info.Params)
		}
	})
	t.Run("skip bad", func(t *testing.T) {
		lines := kddLines(t, 0, 500)
		lines[10] = "not,a,record"
		data := writeLines(t, "bad.csv", lines)
		out := filepath.Join(t.TempDir(), "m.model")
		code, _, stderr := run(t, "", "train", "--data", data, "--trees", "3", "--out", out)
		if code != ExitFailure || !strings.Contains(stderr, "bad.csv:11:") {
			t.Errorf("without --skip-bad: exit %d, stderr %q; want %d naming bad.csv:11", code, stderr, ExitFailure)
		}
		code, stdout, _ := run(t, "", "train", "--data", data, "--trees", "3", "--skip-bad", "--out", out)
		if code != ExitBadData || !strings.Contains(stdout, "skipped 1 malformed lines") {
			t.Errorf("with --skip-bad: exit %d, stdout %q; want %d", code, stdout, ExitBadData)
		}
		if _, err := model.LoadFile(out); err != nil {
			t.Errorf("model not written with --skip-bad: %v", err)
		}
	})
	usage := []struct {
		name string
		args []string
	}{
		{"no data", []string{"train", "--out", "x"}},
		{"no out", []string{"train", "--data", "x"}},
		{"bad algo", []string{"train", "--data", "x", "--out", "y", "--algo", "svm"}},
		{"bad class weight", []string{"train", "--data", "x", "--out", "y", "--class-weight", "heavy"}},
		{"bad validate", []string{"train", "--data", "x", "--out", "y", "--validate", "1"}},
		{"extra argument", []string{"train", "--data", "x", "--out", "y", "z"}},
	}
	for _, tt := range usage {
		t.Run(tt.name, func(t *testing.T) {
			if code, _, stderr := run(t, "", tt.args...); code != ExitUsage {
				t.Errorf("exit %d, want %d; stderr %q", code, ExitUsage, stderr)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, cmd := range []string{"train", "eval", "predict"} {
		code, stdout, _ := run(t, "", cmd, "-h")
		if code != ExitOK {
			t.Errorf("%s -h: exit %d", cmd, code)
		}
		for _, want := range []string{"Usage: netsentinel " + cmd, "-model", "(default"} {
			if cmd == "train" && want == "-model" {
				want = "-out"
			}
			if cmd != "train" && want == "(default" {
				continue // no flag with a non-zero default
			}
			if !strings.Contains(stdout, want) {
				t.Errorf("%s -h lacks %q:\n%s", cmd, want, stdout)
			}
		}
	}
}

func TestEvalJSON(t *testing.T) {
	m := trainSmall(t)
	data := writeLines(t, "test.csv", kddLines(t, 3000, 5000))
	code, stdout, stderr := run(t, "", "eval", "--model", m, "--data", data, "--json")
	if code != ExitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	dec := json.NewDecoder(strings.NewReader(stdout))
	var rep map[string]any
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
	}
	if dec.More() {
		t.Errorf("more than one JSON value on stdout:\n%s", stdout)
	}
	for key, sub := range map[string][]string{
		"binary":   {"accuracy", "detection_rate", "false_positive_rate", "auc"},
		"category": {"accuracy", "cost_per_example", "recall", "precision", "confusion"},
		"attack":   {"accuracy"},
	} {
		obj, ok := rep[key].(map[string]any)
		if !ok {
			t.Errorf("no object %q in %s", key, stdout)
			continue
		}
		for _, k := range sub {
			if _, ok := obj[k]; !ok {
				t.Errorf("%s lacks %q", key, k)
			}
		}
	}
	if rep["records"] != 2000.0 || rep["skipped"] != 0.0 {
		t.Errorf("records %v, skipped %v; want 2000, 0", rep["records"], rep["skipped"])
	}
	if acc := rep["category"].(map[string]any)["accuracy"].(float64); acc < 0.95 {
		t.Errorf("category accuracy %v, want >= 0.95", acc)
	}
	recall := rep["category"].(map[string]any)["recall"].(map[string]any)
	for _, c := range []string{"normal", "dos", "probe", "r2l", "u2r"} {
		if _, ok := recall[c]; !ok {
			t.Errorf("recall lacks %q", c)
		}
	}

	// The table.
	code, stdout, _ = run(t, "", "eval", "--model", m, "--data", data)
	if code != ExitOK || !strings.Contains(stdout, "confusion") || !strings.Contains(stdout, "records 2000") {
		t.Errorf("table: exit %d\n%s", code, stdout)
	}
	// A bad model file.
	bad := writeLines(t, "bad.model", []string{"garbage"})
	if code, _, stderr := run(t, "", "eval", "--model", bad, "--data", data); code != ExitFailure || !strings.Contains(stderr, "not a netsentinel model") {
		t.Errorf("bad model: exit %d, stderr %q", code, stderr)
	}
}

func TestPredict(t *testing.T) {
	m := trainSmall(t)
	lines := kddLines(t, 3000, 3100)
	// Line 7 is bad, line 8 blank, line 9 a JSON record.
	lines[6] = strings.Replace(lines[6], "tcp", "sctp", 1)
	lines[7] = ""
	lines[8] = `{"duration":0,"protocol_type":"tcp","service":"http","flag":"SF","src_bytes":181,"dst_bytes":5450,"land":0,"wrong_fragment":0,"urgent":0,"hot":0,"num_failed_logins":0,"logged_in":1,"num_compromised":0,"root_shell":0,"su_attempted":0,"num_root":0,"num_file_creations":0,"num_shells":0,"num_access_files":0,"num_outbound_cmds":0,"is_host_login":0,"is_guest_login":0,"count":8,"srv_count":8,"serror_rate":0,"srv_serror_rate":0,"rerror_rate":0,"srv_rerror_rate":0,"same_srv_rate":1,"diff_srv_rate":0,"srv_diff_host_rate":0,"dst_host_count":9,"dst_host_srv_count":9,"dst_host_same_srv_rate":1,"dst_host_diff_srv_rate":0,"dst_host_same_src_port_rate":0.11,"dst_host_srv_diff_host_rate":0,"dst_host_serror_rate":0,"dst_host_srv_serror_rate":0,"dst_host_rerror_rate":0,"dst_host_srv_rerror_rate":0}`
	input := strings.Join(lines, "\n") + "\n"
	for _, tt := range []struct {
		name  string
		stdin string
		args  []string
	}{
		{"stdin", input, []string{"predict", "--model", m}},
		{"dash", input, []string{"predict", "--model", m, "-"}},
		{"file", "", []string{"predict", "--model", m, writeLines(t, "in.csv", lines)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(t, tt.stdin, tt.args...)
			if code != ExitBadData {
				t.Errorf("exit %d, want %d; stderr %q", code, ExitBadData, stderr)
			}
			out := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
			if len(out) != 99 {
				t.Fatalf("%d output lines, want 99 (100 minus a blank one)", len(out))
			}
			for i, l := range out {
				var v map[string]any
				if err := json.Unmarshal([]byte(l), &v); err != nil {
					t.Fatalf("output line %d is not JSON: %v: %s", i+1, err, l)
				}
				wantLine := float64(i + 1)
				if i >= 7 {
					wantLine++ // the blank line 8 has no output
				}
				if v["line"] != wantLine {
					t.Errorf("output %d: line %v, want %v", i+1, v["line"], wantLine)
				}
				if wantLine == 7 {
					if e, _ := v["error"].(string); !strings.Contains(e, "protocol") {
						t.Errorf("line 7: %s, want an error naming the protocol", l)
					}
					continue
				}
				for _, k := range []string{"attack", "category", "binary", "is_attack", "probability", "attack_probability"} {
					if _, ok := v[k]; !ok {
						t.Errorf("line %v lacks %q: %s", v["line"], k, l)
					}
				}
				if wantLine == 9 && v["attack"] != "normal" {
					t.Errorf("JSON record: %s, want normal", l)
				}
			}
		})
	}
	// A gzip file.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(strings.Join(kddLines(t, 0, 10), "\n")))
	zw.Close()
	gzPath := filepath.Join(t.TempDir(), "in.csv.gz")
	if err := os.WriteFile(gzPath, gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := run(t, "", "predict", "--model", m, gzPath); code != ExitOK || strings.Count(stdout, "\n") != 10 {
		t.Errorf("gzip input: exit %d, %d lines, stderr %q", code, strings.Count(stdout, "\n"), stderr)
	}
	// All good lines: exit 0.
	if code, _, stderr := run(t, strings.Join(kddLines(t, 0, 10), "\n"), "predict", "--model", m); code != ExitOK {
		t.Errorf("good input: exit %d, stderr %q", code, stderr)
	}
}
