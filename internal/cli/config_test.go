package cli

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func configFlags() (*flag.FlagSet, *string, *int, *bool, *time.Duration) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	s := fs.String("brokers", "x", "")
	n := fs.Int("trees", 30, "")
	b := fs.Bool("json", false, "")
	d := fs.Duration("window", time.Hour, "")
	fs.String("config", "", "")
	return fs, s, n, b, d
}

// TestConfigPrecedence checks command line > environment > file > default,
// and that unknown keys and bad values in the file are errors.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "brokers: file:9092\ntrees: 7\njson: true\nwindow: 24h\n")
	fs, s, n, b, d := configFlags()
	if err := fs.Parse([]string{"--trees", "3"}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NETSENTINEL_BROKERS", "env:9092")
	if err := applyEnvAndConfig(fs, good); err != nil {
		t.Fatal(err)
	}
	if *s != "env:9092" || *n != 3 || !*b || *d != 24*time.Hour {
		t.Errorf("got brokers %q trees %d json %v window %v, want env:9092 3 true 24h", *s, *n, *b, *d)
	}
	for name, body := range map[string]string{
		"unknown.yaml": "brokerz: a\n",
		"badint.yaml":  "trees: many\n",
		"badyaml.yaml": "trees: [\n",
	} {
		fs, _, _, _, _ := configFlags()
		if err := applyEnvAndConfig(fs, write(name, body)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// FuzzConfig checks that no config file content makes flag loading panic.
func FuzzConfig(f *testing.F) {
	f.Add([]byte("brokers: a:1\ntrees: 7\njson: true\nwindow: 1h\n"))
	f.Add([]byte("trees: [1, 2]\nwindow: {a: b}\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fs, _, _, _, _ := configFlags()
		_ = applyConfig(fs, "c.yaml", data)
	})
}
