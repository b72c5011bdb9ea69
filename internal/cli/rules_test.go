package cli

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDetectIncidentFlags checks that bad incident settings stop detect
// before it connects anywhere, with a usage error naming the problem.
func TestDetectIncidentFlags(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("thresholds:\n  - {name: t, match: {attack: smurf}, type: often, count: 1, seconds: 1, reason: r}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := func(want string, args ...string) {
		t.Helper()
		args = append([]string{"detect", "--brokers", "127.0.0.1:1", "--model", "unused.model", "--listen", "none"}, args...)
		code, _, stderr := run(t, "", args...)
		if code != ExitUsage || !strings.Contains(stderr, want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", args[7:], code, stderr, ExitUsage, want)
		}
	}
	f(`--alerts "sometimes"`, "--alerts", "sometimes")
	f("needs --incidents-topic", "--incidents-topic", "")
	f(`type "often"`, "--rules", bad)
	f("no such file", "--rules", bad+".missing")
}

// TestRulesReloadOnHUP changes the rules file and sends SIGHUP: the new
// rules take over; a broken file then keeps them.
func TestRulesReloadOnHUP(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("suppressions:\n  - {name: a, match: {attack: satan}, reason: r}\n")
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	rs := &reloadableRules{}
	if err := rs.load(path, log); err != nil {
		t.Fatal(err)
	}
	stop := rs.reloadOnHUP(path, log)
	defer stop()
	hup := func(what string, cond func() bool) {
		t.Helper()
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not seen within 10s; log:\n%s", what, logs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	write("suppressions:\n  - {name: b, match: {attack: satan}, reason: r}\n  - {name: c, match: {attack: nmap}, reason: r}\n")
	hup("new rules", func() bool { return rs.r.Load().Len() == 2 })
	write("suppressions: [{name: broken}]\n")
	hup("reload failure logged", func() bool { return strings.Contains(logs.String(), "rules reload failed") })
	if r := rs.r.Load(); r.Len() != 2 || r.Suppressions[0].Name != "b" {
		t.Errorf("rules after a failed reload: %+v, want the previous ones", r)
	}
}
