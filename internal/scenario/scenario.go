// Package scenario runs real services, normal users and real attack tools on
// the loopback interface of a fresh network namespace and captures their
// packets: ground truth for testing extraction and detection on real traffic.
//
// Run starts scenario.sh under `unshare --net`, so nothing it sends leaves the
// namespace. Every actor has its own 127.0.0.0/8 address (normal users
// 127.0.20.N, attack tools 127.0.30.N, services 127.0.10.N), and Result.Roles
// names the role of each actor's address. Services: Python's http.server on
// port 80, pyftpdlib on 21, aiosmtpd on 25. Normal users download files over
// HTTP and FTP (logged in or anonymous) and send mail. Attack tools, each
// bounded in packets and in time (30 s at most): an nmap SYN port scan, an
// fping ICMP sweep of 128 addresses, hping3 SYN and ICMP floods of 3,000
// packets each, hydra guessing FTP passwords (60 tries) and slowhttptest's
// slowloris (100 connections, 10 s).
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
	// Output is what the script wrote on stderr (progress and tcpdump's
	// packet counts).
	Output string
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
	if out, err := exec.Command("unshare", "--net", "true").CombinedOutput(); err != nil {
		return fmt.Errorf("scenario: cannot create a network namespace (unshare --net needs root or user namespaces): %v: %s", err, bytes.TrimSpace(out))
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
	ctx, cancel := context.WithTimeout(ctx, opts.Duration+90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--net", "--kill-child", "bash", sh, opts.Dir, secs, string(opts.Phase))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("scenario: %s phase: %w\n%s", opts.Phase, err, stderr.Bytes())
	}
	res := &Result{Capture: filepath.Join(opts.Dir, "capture.pcap"), Output: stderr.String()}
	roles, err := readRoles(filepath.Join(opts.Dir, "roles.tsv"))
	if err != nil {
		return nil, err
	}
	res.Roles = roles
	if _, err := os.Stat(res.Capture); err != nil {
		return nil, fmt.Errorf("scenario: no capture: %w\n%s", err, res.Output)
	}
	return res, nil
}

func readRoles(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	defer f.Close()
	roles := make(map[string]string)
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		if line == 1 {
			continue // header
		}
		addr, role, ok := strings.Cut(sc.Text(), "\t")
		if !ok {
			return nil, fmt.Errorf("scenario: %s:%d: want address<TAB>role, got %q", path, line, sc.Text())
		}
		roles[addr] = role
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scenario: %s: %w", path, err)
	}
	return roles, nil
}
