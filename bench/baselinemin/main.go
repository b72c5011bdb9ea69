// Command baselinemin measures how much of a site's own normal traffic the
// baseline (`netsentinel train --baseline`) needs: the normal users' false
// positive rate and every attack tool's detection, with no baseline and
// with the first 1, 5 and 15 minutes of a separate capture of the normal
// users (internal/scenario, run as root).
//
// It runs one Baseline scenario as long as the longest baseline asked for
// and one Attack scenario (-attack long: the tools run in its first ~15 s,
// then the normal users go on alone), extracts both captures, cuts the
// baseline's records at each length (by connection start), trains one model
// per length on -data plus that baseline, scores the attack run's records
// with each and prints a markdown table. Everything is kept in -out; a
// second run with the same -out reuses the captures (delete them to capture
// anew), so the scoring can be repeated with other training settings
// (-train-args).
//
//	bench/baseline_minutes.sh   # go run ./bench/baselinemin -out /tmp/netsentinel-baseline-minutes
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/netsentinel/netsentinel/internal/scenario"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "baselinemin:", err)
		os.Exit(1)
	}
}

func run() error {
	out := flag.String("out", filepath.Join(os.TempDir(), "netsentinel-baseline-minutes"), "`directory` for captures, records, models and verdicts (reused when present)")
	minutesFlag := flag.String("minutes", "1,5,15", "baseline `lengths` in minutes, comma-separated")
	attack := flag.Duration("attack", 40*time.Second, "how long the normal users run in the attack scenario (the tools take its first ~15 s)")
	data := flag.String("data", "data/KDDTrain+.txt.gz", "training `file`")
	trainArgs := flag.String("train-args", "", "further `arguments` for every netsentinel train (space-separated)")
	tag := flag.String("tag", "", "`suffix` of the model and verdict files, to keep runs with other -train-args apart")
	flag.Parse()

	var minutes []int
	for _, f := range strings.Split(*minutesFlag, ",") {
		m, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || m <= 0 {
			return fmt.Errorf("-minutes %q: want positive whole minutes", *minutesFlag)
		}
		minutes = append(minutes, m)
	}
	longest := 0
	for _, m := range minutes {
		longest = max(longest, m)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	bin := filepath.Join(*out, "netsentinel")
	if err := sh("", nil, "go", "build", "-o", bin, "./cmd/netsentinel"); err != nil {
		return err
	}
	ctx := context.Background()

	baseDir, attackDir := filepath.Join(*out, "baseline"), filepath.Join(*out, "attack")
	base, err := scenario.Load(baseDir)
	if err != nil {
		if err := scenario.Available(); err != nil {
			return err
		}
		log("capturing %d minutes of normal users (baseline run)", longest)
		if base, err = scenario.Run(ctx, scenario.Options{Dir: baseDir, Duration: time.Duration(longest) * time.Minute, Phase: scenario.Baseline}); err != nil {
			return err
		}
	} else {
		log("reusing the baseline capture in %s", baseDir)
	}
	res, err := scenario.Load(attackDir)
	if err != nil {
		log("running the attack scenario for %v", *attack)
		if res, err = scenario.Run(ctx, scenario.Options{Dir: attackDir, Duration: *attack, Phase: scenario.Attack}); err != nil {
			return err
		}
	} else {
		log("reusing the attack capture in %s", attackDir)
	}

	baseRecs := filepath.Join(*out, "baseline.jsonl")
	attackRecs := filepath.Join(*out, "attack.jsonl")
	for _, x := range []struct{ capture, records string }{{base.Capture, baseRecs}, {res.Capture, attackRecs}} {
		if _, err := os.Stat(x.records); err == nil {
			continue
		}
		if err := shTo(x.records, bin, "extract", x.capture); err != nil {
			return err
		}
	}

	type row struct {
		name, baseline string
		tallies        scenario.Tallies
	}
	var rows []row
	extra := strings.Fields(*trainArgs)
	models := []struct{ name, baseline string }{{"none", ""}}
	for _, m := range minutes {
		cut := filepath.Join(*out, fmt.Sprintf("baseline-%dmin.jsonl", m))
		n, err := cutRecords(baseRecs, cut, float64(m*60))
		if err != nil {
			return err
		}
		log("baseline of %d minutes: %d connections", m, n)
		models = append(models, struct{ name, baseline string }{fmt.Sprintf("%d min", m), cut})
	}
	for _, m := range models {
		file := strings.ReplaceAll(m.name, " ", "")
		model := filepath.Join(*out, "model-"+file+*tag)
		args := append([]string{"train", "--data", *data, "--out", model}, extra...)
		if m.baseline != "" {
			args = append(args, "--baseline", m.baseline)
		}
		var trainOut bytes.Buffer
		if err := sh("", &trainOut, bin, args...); err != nil {
			return err
		}
		summary := ""
		for _, l := range strings.Split(trainOut.String(), "\n") {
			if strings.HasPrefix(l, "baseline:") {
				summary = strings.TrimPrefix(l, "baseline: ")
				log("%s: %s", m.name, summary)
				break
			}
		}
		verdicts := filepath.Join(*out, "verdicts-"+file+*tag+".jsonl")
		if err := shTo(verdicts, bin, "predict", "--model", model, attackRecs); err != nil {
			return err
		}
		f, err := os.Open(verdicts)
		if err != nil {
			return err
		}
		ts, err := scenario.ScoreVerdicts(f, res)
		f.Close()
		if err != nil {
			return err
		}
		rows = append(rows, row{m.name, summary, ts})
	}

	roles := []string{scenario.RoleNormal, scenario.NormalDuring, scenario.NormalOutside, "nmap-syn-scan", "fping-sweep", "hping3-syn-flood", "hping3-icmp-flood", "hydra-ftp", "slowhttptest-slowloris"}
	fmt.Printf("| baseline | %s |\n|---|%s\n", strings.Join(roles, " | "), strings.Repeat("---:|", len(roles)))
	for _, r := range rows {
		fmt.Printf("| %s |", r.name)
		for _, role := range roles {
			t := r.tallies[role]
			if t == nil {
				fmt.Print(" - |")
				continue
			}
			fmt.Printf(" %.1f%% of %d |", 100*t.Share(), t.Conns)
		}
		fmt.Println()
	}
	fmt.Println()
	for _, r := range rows {
		fmt.Printf("%s: %s\n", r.name, r.baseline)
		for _, role := range roles {
			fmt.Printf("  %-24s %v\n", role, r.tallies[role])
		}
	}
	return nil
}

// cutRecords copies the records of in whose connection started within
// secs of the earliest start to out and returns how many it copied.
func cutRecords(in, out string, secs float64) (int, error) {
	data, err := os.ReadFile(in)
	if err != nil {
		return 0, err
	}
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	starts := make([]float64, len(lines))
	first := -1.0
	for i, l := range lines {
		var r struct {
			TS float64 `json:"ts"`
		}
		if err := json.Unmarshal(l, &r); err != nil {
			return 0, fmt.Errorf("%s:%d: %w", in, i+1, err)
		}
		starts[i] = r.TS
		if first < 0 || r.TS < first {
			first = r.TS
		}
	}
	var w bytes.Buffer
	n := 0
	for i, l := range lines {
		if starts[i]-first < secs {
			w.Write(l)
			w.WriteByte('\n')
			n++
		}
	}
	return n, os.WriteFile(out, w.Bytes(), 0o644)
}

func log(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s baselinemin: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// sh runs a command, its output to stdout (or discarded when nil).
func sh(dir string, stdout io.Writer, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, stderr.Bytes())
	}
	return nil
}

// shTo runs a command with its output in the file path.
func shTo(path, name string, args ...string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = sh("", f, name, args...)
	return errors.Join(err, f.Close())
}
