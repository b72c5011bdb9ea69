// Package scenario runs real services, normal users and real attack tools on
// the loopback interface of a fresh network namespace and captures their
// packets: ground truth for testing extraction and detection on real traffic.
//
// Run starts scenario.sh under `unshare --net --pid`, so nothing it sends
// leaves the namespace and every process it starts ends with it. Every actor has its own 127.0.0.0/8 address (normal users
// 127.0.20.N, attack tools 127.0.30.N, services 127.0.10.N), and Result.Roles
// names the role of each actor's address. Services: Python's http.server on
// port 80, pyftpdlib on 21, aiosmtpd on 25. Normal users download files over
// HTTP and FTP (logged in or anonymous) and send mail. Attack tools, each
// bounded in packets and in time (30 s at most): an nmap SYN port scan, an
// fping ICMP sweep of 128 addresses, hping3 SYN and ICMP floods of 3,000
// packets each, hydra guessing FTP passwords (60 tries) and slowhttptest's
// slowloris (100 connections, 10 s). Result.Periods says when each tool ran.
//
// With Options.Live the run also scores its traffic live, as a site would:
// inside the namespace a real Kafka broker (scripts/kafka.sh), `netsentinel
// sensor` capturing the loopback through AF_PACKET and `netsentinel detect`
// scoring the sensor's records; Result.Live holds what the topics received.
//
// Tally and the Score functions count verdicts (predict's output, or the
// live alerts) per originator role.
package scenario

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

//go:embed scenario.sh
var script []byte

// Phase selects who takes part in a run.
type Phase string

const (
	// Baseline runs the normal users only: the site's own normal traffic.
	Baseline Phase = "baseline"
	// Attack runs the normal users and every attack tool.
	Attack Phase = "attack"
)

// RoleNormal is the role of the normal users' addresses.
const RoleNormal = "normal"

// Options configures a run.
type Options struct {
	// Dir receives capture.pcap, roles.tsv and the tools' logs. Required.
	Dir string
	// Duration is how long the normal users run (default 20 s); the attack
	// tools run during it and are bounded on their own.
	Duration time.Duration
	// Phase is Baseline or Attack (default Attack).
	Phase Phase
	// Live, when not nil, scores the traffic live as well (see Live).
	Live *Live
}

// Live configures the live path of a run: a Kafka broker on the
// namespace's 127.0.0.1:19092, `netsentinel sensor --interface lo`
// publishing to it and `netsentinel detect --alerts both` scoring what the
// sensor publishes.
type Live struct {
	// Binary is the netsentinel executable. Required.
	Binary string
	// Model is the model file detect scores with. Required.
	Model string
	// Kafka is scripts/kafka.sh, which starts the broker from its cached
	// jars (fetching them with Maven on first use). Required.
	Kafka string
	// LearnFor, when positive, makes detect learn the normal users'
	// traffic first (`detect --learn`, retraining on LearnData with
	// LearnArgs added): the attack tools start once detect scores with the
	// learned model, and the run lasts Options.Duration after that.
	LearnFor  time.Duration
	LearnData string
	LearnArgs []string
}

// LiveResult is what the live path produced: the committed contents of
// the records, alerts and incidents topics, one JSON object a line, and the
// sensor's closing summary (records, packets, kernel drops).
type LiveResult struct {
	Records, Alerts, Incidents string // file paths
	// AlertTimes holds the Kafka timestamp of each alert (milliseconds
	// since the Unix epoch, one a line, in the order of Alerts).
	AlertTimes string
	Sensor     string
}

// LiveAvailable reports why this machine cannot run the live path (Java
// and the broker's jars, which kafka, scripts/kafka.sh, fetches with Maven
// once; kcat to read the topics), or nil when it can.
func LiveAvailable(kafka string) error {
	for _, t := range []string{"java", "kcat", "curl"} {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Errorf("scenario: the live path needs %s (scripts/deps.sh installs it): %w", t, err)
		}
	}
	if out, err := exec.Command(kafka, "fetch").CombinedOutput(); err != nil {
		return fmt.Errorf("scenario: the live path needs the Kafka broker's jars: %s fetch: %v: %s", kafka, err, bytes.TrimSpace(out))
	}
	return nil
}

// Period is when one attack tool ran, in seconds since the Unix epoch.
type Period struct {
	Role       string
	Start, End float64
}

// Result is what a run produced.
type Result struct {
	// Capture is the path of the pcap file of everything sent on the
	// namespace's loopback.
	Capture string
	// Roles maps each actor's address to its role: RoleNormal or the attack
	// tool's name (nmap-syn-scan, fping-sweep, hping3-syn-flood,
	// hping3-icmp-flood, hydra-ftp, slowhttptest-slowloris).
	Roles map[string]string
	// Periods says when each attack tool ran (none in a Baseline run).
	Periods []Period
	// Output is what the script wrote on stderr (progress and tcpdump's
	// packet counts).
	Output string
	// Live is what the live path produced, when Options.Live asked for it.
	Live *LiveResult
	// Learned is when detect began to score with the model it learned
	// (Live.LearnFor), in seconds since the Unix epoch; 0 without learning.
	Learned float64
}

// DuringAttacks reports whether ts (seconds since the Unix epoch) falls
// between the first attack tool's start and the last one's end.
func (r *Result) DuringAttacks(ts float64) bool {
	if len(r.Periods) == 0 {
		return false
	}
	first, last := r.Periods[0].Start, r.Periods[0].End
	for _, p := range r.Periods[1:] {
		first, last = min(first, p.Start), max(last, p.End)
	}
	return ts >= first && ts <= last
}

// Role returns the role of a connection from src to dst: the role of its
// originator, or of its responder when only that one is an actor (an ICMP
// echo reply to a flooding tool), or "" when neither is.
func (r *Result) Role(src, dst string) string {
	if role, ok := r.Roles[src]; ok {
		return role
	}
	return r.Roles[dst]
}

// Tools lists the programs a run needs.
var Tools = []string{"unshare", "ip", "tcpdump", "curl", "nmap", "fping", "hping3", "hydra", "slowhttptest", "/usr/bin/python3"}

// Available reports why this machine cannot run a scenario: a missing
// program or Python module, or no permission to create a network namespace.
// It returns nil when it can.
func Available() error {
	var missing []string
	for _, t := range Tools {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("scenario: missing programs %s (Debian: apt-get install iproute2 tcpdump curl nmap fping hping3 hydra slowhttptest python3-pyftpdlib python3-aiosmtpd)", strings.Join(missing, ", "))
	}
	if out, err := exec.Command("/usr/bin/python3", "-c", "import pyftpdlib, aiosmtpd").CombinedOutput(); err != nil {
		return fmt.Errorf("scenario: python3 modules pyftpdlib and aiosmtpd are needed (Debian: python3-pyftpdlib python3-aiosmtpd): %v: %s", err, bytes.TrimSpace(out))
	}
	if out, err := exec.Command("unshare", unshareArgs("true")...).CombinedOutput(); err != nil {
		return fmt.Errorf("scenario: cannot create network and PID namespaces (unshare --net --pid needs root): %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// Run runs one scenario in a fresh network namespace and waits for it to
// end. Cancelling ctx kills it (the namespace and everything in it go with
// the script's processes).
func Run(ctx context.Context, opts Options) (*Result, error) {
	if opts.Dir == "" {
		return nil, errors.New("scenario: Options.Dir is required")
	}
	if opts.Duration <= 0 {
		opts.Duration = 20 * time.Second
	}
	if opts.Phase == "" {
		opts.Phase = Attack
	}
	if opts.Phase != Baseline && opts.Phase != Attack {
		return nil, fmt.Errorf("scenario: unknown phase %q (want %q or %q)", opts.Phase, Baseline, Attack)
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	sh := filepath.Join(opts.Dir, "scenario.sh")
	if err := os.WriteFile(sh, script, 0o755); err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	secs := strconv.Itoa(int((opts.Duration + time.Second - 1) / time.Second))
	// The script bounds every tool; the deadline here is a backstop.
	backstop := opts.Duration + 90*time.Second
	if opts.Live != nil {
		if opts.Live.Binary == "" || opts.Live.Model == "" || opts.Live.Kafka == "" {
			return nil, errors.New("scenario: Live needs Binary, Model and Kafka")
		}
		backstop += 3 * time.Minute                    // the broker's start, the detector's catching up
		backstop += opts.Live.LearnFor + 5*time.Minute // learning, retraining
	}
	ctx, cancel := context.WithTimeout(ctx, backstop)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", unshareArgs("bash", sh, opts.Dir, secs, string(opts.Phase))...)
	if opts.Live != nil {
		// The script runs in Dir: the paths it is given must be absolute.
		l := *opts.Live
		for _, p := range []*string{&l.Binary, &l.Model, &l.Kafka, &l.LearnData} {
			if *p == "" {
				continue
			}
			abs, err := filepath.Abs(*p)
			if err != nil {
				return nil, fmt.Errorf("scenario: %w", err)
			}
			*p = abs
		}
		cmd.Env = append(os.Environ(), "NS_LIVE_BIN="+l.Binary, "NS_LIVE_MODEL="+l.Model, "NS_LIVE_KAFKA="+l.Kafka)
		if l.LearnFor > 0 {
			if l.LearnData == "" {
				return nil, errors.New("scenario: Live.LearnFor needs LearnData")
			}
			cmd.Env = append(cmd.Env, "NS_LIVE_LEARN="+strconv.Itoa(int(l.LearnFor.Seconds())), "NS_LIVE_LEARN_DATA="+l.LearnData,
				"NS_LIVE_LEARN_ARGS="+strings.Join(l.LearnArgs, " "))
		}
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("scenario: %s phase: %w\n%s", opts.Phase, err, stderr.Bytes())
	}
	res, err := Load(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, stderr.Bytes())
	}
	res.Output = stderr.String()
	if opts.Live != nil {
		lr := &LiveResult{
			Records:    filepath.Join(opts.Dir, "live-records.jsonl"),
			Alerts:     filepath.Join(opts.Dir, "live-alerts.jsonl"),
			Incidents:  filepath.Join(opts.Dir, "live-incidents.jsonl"),
			AlertTimes: filepath.Join(opts.Dir, "live-alert-times.txt"),
		}
		for _, l := range strings.Split(res.Output, "\n") {
			if s, ok := strings.CutPrefix(l, "scenario: sensor: "); ok {
				lr.Sensor = s
			}
		}
		for _, p := range []string{lr.Records, lr.Alerts, lr.Incidents, lr.AlertTimes} {
			if _, err := os.Stat(p); err != nil {
				return nil, fmt.Errorf("scenario: live path: %w\n%s", err, res.Output)
			}
		}
		res.Live = lr
	}
	return res, nil
}

// Load returns the result of a run that wrote into dir: its capture, roles
// and attack periods (Output and Live are left empty).
func Load(dir string) (*Result, error) {
	res := &Result{Capture: filepath.Join(dir, "capture.pcap")}
	roles, err := readRoles(filepath.Join(dir, "roles.tsv"))
	if err != nil {
		return nil, err
	}
	res.Roles = roles
	if p := filepath.Join(dir, "periods.tsv"); fileExists(p) {
		if res.Periods, err = readPeriods(p); err != nil {
			return nil, err
		}
	}
	if p := filepath.Join(dir, "learned.ts"); fileExists(p) {
		b, err := os.ReadFile(p)
		if err == nil {
			res.Learned, err = strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
		}
		if err != nil {
			return nil, fmt.Errorf("scenario: %w", err)
		}
	}
	if _, err := os.Stat(res.Capture); err != nil {
		return nil, fmt.Errorf("scenario: no capture: %w", err)
	}
	return res, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// unshareArgs returns unshare's arguments to run command in fresh network
// and PID namespaces (with their own /proc): when the command ends, the
// kernel ends every process it started, the broker's JVM included.
func unshareArgs(command ...string) []string {
	return append([]string{"--net", "--pid", "--fork", "--mount-proc", "--kill-child"}, command...)
}

func readPeriods(path string) ([]Period, error) {
	var ps []Period
	err := readTSV(path, 3, func(f []string) error {
		start, err1 := strconv.ParseFloat(f[1], 64)
		end, err2 := strconv.ParseFloat(f[2], 64)
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		ps = append(ps, Period{Role: f[0], Start: start, End: end})
		return nil
	})
	return ps, err
}

func readRoles(path string) (map[string]string, error) {
	roles := make(map[string]string)
	err := readTSV(path, 2, func(f []string) error {
		roles[f[0]] = f[1]
		return nil
	})
	return roles, err
}

// readTSV calls row with the fields of every line of path after the
// header; each line must have n fields.
func readTSV(path string, n int, row func(fields []string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("scenario: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		if line == 1 {
			continue // header
		}
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) != n {
			return fmt.Errorf("scenario: %s:%d: want %d tab-separated fields, got %q", path, line, n, sc.Text())
		}
		if err := row(fields); err != nil {
			return fmt.Errorf("scenario: %s:%d: %w", path, line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("scenario: %s: %w", path, err)
	}
	return nil
}
