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
// (-train-args). With -live-learn D it also runs an attack scenario scored
// live (sensor → Kafka → detect in the namespace) in which detect first
// learns the users' traffic for D (detect --learn) and scores with the
// learned model after that; its row counts the connections that started
// after the switch.
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
	extractArgs := flag.String("extract-args", "", "further `arguments` for netsentinel extract (space-separated), e.g. --host-window 255; use with -tag")
	holdout := flag.Int("holdout", 0, "hold out the last `minutes` of the baseline capture: no baseline uses them, and every model scores them (the normal users' false-positive rate on traffic no model trained on, with no attack around)")
	repeat := flag.Int("baseline-repeat", 1, "pass each baseline to train this many `times` (it then weighs as much more)")
	liveLearn := flag.Duration("live-learn", 0, "also run an attack scenario scored live (sensor → Kafka → detect) where detect first learns the users' traffic for this `duration` (detect --learn), and score it (0: not)")
	tag := flag.String("tag", "", "`suffix` of the record, model and verdict files, to keep runs with other -train-args or -extract-args apart")
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
	if *holdout > 0 && longest+*holdout > 15 {
		log("the baseline capture will be %d minutes: %d for the longest baseline, %d held out", longest+*holdout, longest, *holdout)
	}
	capture := longest + *holdout
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
		log("capturing %d minutes of normal users (baseline run)", capture)
		if base, err = scenario.Run(ctx, scenario.Options{Dir: baseDir, Duration: time.Duration(capture) * time.Minute, Phase: scenario.Baseline}); err != nil {
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

	baseRecs := filepath.Join(*out, "baseline"+*tag+".jsonl")
	attackRecs := filepath.Join(*out, "attack"+*tag+".jsonl")
	for _, x := range []struct{ capture, records string }{{base.Capture, baseRecs}, {res.Capture, attackRecs}} {
		if _, err := os.Stat(x.records); err == nil {
			continue
		}
		args := append(append([]string{"extract"}, strings.Fields(*extractArgs)...), x.capture)
		if err := shTo(x.records, bin, args...); err != nil {
			return err
		}
	}
	var heldOut string
	if *holdout > 0 {
		heldOut = filepath.Join(*out, fmt.Sprintf("baseline-last%dmin%s.jsonl", *holdout, *tag))
		n, err := cutRecords(baseRecs, heldOut, float64(longest*60), 1e18)
		if err != nil {
			return err
		}
		log("held out: %d connections after minute %d of the baseline run", n, longest)
	}

	type row struct {
		name, baseline string
		tallies        scenario.Tallies
	}
	var rows []row
	extra := strings.Fields(*trainArgs)
	models := []struct{ name, baseline string }{{"none", ""}}
	for _, m := range minutes {
		cut := filepath.Join(*out, fmt.Sprintf("baseline-%dmin%s.jsonl", m, *tag))
		n, err := cutRecords(baseRecs, cut, 0, float64(m*60))
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
		for range *repeat {
			if m.baseline != "" {
				args = append(args, "--baseline", m.baseline)
			}
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
		if heldOut != "" {
			hv := filepath.Join(*out, "verdicts-heldout-"+file+*tag+".jsonl")
			if err := shTo(hv, bin, "predict", "--model", model, heldOut); err != nil {
				return err
			}
			f, err := os.Open(hv)
			if err != nil {
				return err
			}
			hts, err := scenario.ScoreVerdicts(f, base)
			f.Close()
			if err != nil {
				return err
			}
			ts[heldOutRole] = hts[scenario.RoleNormal]
		}
		rows = append(rows, row{m.name, summary, ts})
	}

	if *liveLearn > 0 {
		ts, summary, err := learnLive(ctx, *out, bin, *data, *liveLearn, *attack)
		if err != nil {
			return err
		}
		rows = append(rows, row{fmt.Sprintf("%v learned live", *liveLearn), summary, ts})
	}

	roles := []string{}
	if heldOut != "" {
		roles = append(roles, heldOutRole)
	}
	roles = append(roles, scenario.RoleNormal, scenario.NormalDuring, scenario.NormalOutside, "nmap-syn-scan", "fping-sweep", "hping3-syn-flood", "hping3-icmp-flood", "hydra-ftp", "slowhttptest-slowloris")
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

// learnArgs loosen detect --learn's guards to the scenario's four users, who
// make a few hundred connections a minute and each a quarter of them (the
// default 20% cap per source would cut them all down to the smallest
// source's count).
var learnArgs = []string{"--learn-min-sources", "4", "--learn-min-records", "300", "--learn-max-source-share", "1"}

// learnLive runs (or reuses, in out/learn) an attack scenario scored live
// by a detector that first learns the users' traffic for learn with the
// model trained without a baseline, and tallies its alerts.
func learnLive(ctx context.Context, out, bin, data string, learn, attack time.Duration) (scenario.Tallies, string, error) {
	dir := filepath.Join(out, "learn")
	res, err := scenario.Load(dir)
	live := &scenario.LiveResult{Records: filepath.Join(dir, "live-records.jsonl"), Alerts: filepath.Join(dir, "live-alerts.jsonl")}
	if err != nil {
		kafka, err := filepath.Abs("scripts/kafka.sh")
		if err != nil {
			return nil, "", err
		}
		if err := scenario.LiveAvailable(kafka); err != nil {
			return nil, "", err
		}
		log("running an attack scenario scored live, detect learning for %v first", learn)
		res, err = scenario.Run(ctx, scenario.Options{Dir: dir, Duration: attack, Phase: scenario.Attack, Live: &scenario.Live{
			Binary: bin, Model: filepath.Join(out, "model-none"), Kafka: kafka,
			LearnFor: learn, LearnData: data, LearnArgs: learnArgs,
		}})
		if err != nil {
			return nil, "", err
		}
		live = res.Live
	} else {
		log("reusing the live learning run in %s", dir)
	}
	detectLog, err := os.ReadFile(filepath.Join(dir, "detect.log"))
	if err != nil {
		return nil, "", err
	}
	var summary []string
	for _, l := range strings.Split(string(detectLog), "\n") {
		if strings.Contains(l, "learn") && (strings.Contains(l, "baseline") || strings.Contains(l, "learned")) {
			summary = append(summary, l)
		}
	}
	recs, err := os.Open(live.Records)
	if err != nil {
		return nil, "", err
	}
	defer recs.Close()
	alerts, err := os.Open(live.Alerts)
	if err != nil {
		return nil, "", err
	}
	defer alerts.Close()
	ts, err := scenario.ScoreLive(recs, alerts, res)
	return ts, strings.Join(summary, "\n  "), err
}

// heldOutRole names the held-out baseline minutes in the table.
const heldOutRole = "held-out baseline minutes"

// cutRecords copies the records of in whose connection started from `from`
// to `to` seconds after the earliest start to out and returns how many it
// copied.
func cutRecords(in, out string, from, to float64) (int, error) {
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
		if d := starts[i] - first; d >= from && d < to {
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
