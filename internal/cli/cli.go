// Package cli implements netsentinel's subcommands. Each subcommand lives in
// a file of its own, declares its flags there and is listed in commands; no
// other package declares flags. Flag defaults come from the packages'
// DefaultConfig functions and Default constants where they have one.
//
// Every flag can also be set by an environment variable NETSENTINEL_<FLAG>
// (upper case, '-' and '.' as '_') or by a YAML config file given with
// --config or NETSENTINEL_CONFIG, whose top-level keys are flag names.
// Precedence: command line, then environment, then config file, then the
// default.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Exit codes.
const (
	ExitOK      = 0 // success
	ExitFailure = 1 // the command failed (I/O, Kafka, model errors, ...)
	ExitUsage   = 2 // bad command line or configuration
	ExitBadData = 3 // the command ran but some input records were invalid
)

// Command is one subcommand, after cmd/go's base.Command.
type Command struct {
	// Name is the subcommand's name.
	Name string
	// UsageLine is the one-line synopsis after the program name.
	UsageLine string
	// Short is a one-line description for the command list.
	Short string
	// Long is the description shown by -h.
	Long string
	// Flags declares the command's flags into fs and returns the function
	// that runs it once the flags are parsed.
	Flags func(fs *flag.FlagSet) RunFunc
}

// RunFunc runs a command with its positional arguments.
type RunFunc func(ctx context.Context, env *Env, args []string) error

// Env is what a running command may touch: its output streams and input.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// commands lists the subcommands in the order -h shows them.
var commands = []*Command{cmdTrain, cmdEval, cmdPredict, cmdExtract, cmdSensor, cmdPublish, cmdDetect, cmdBroker, cmdReport, cmdDashboard, cmdDemo}

// usageError is a bad command line: it maps to ExitUsage.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// Usagef returns an error that makes the command exit with ExitUsage.
func Usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// ErrBadData is returned (wrapped) by commands that finished but met invalid
// input records; it maps to ExitBadData.
var ErrBadData = errors.New("invalid input records")

// Main runs the program with the arguments after the program name and
// returns the exit code.
func Main(ctx context.Context, args []string, env *Env) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 {
			if c := lookup(args[1]); c != nil {
				return Main(ctx, []string{c.Name, "-h"}, env)
			}
		}
		mainUsage(env.Stdout)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	c := lookup(args[0])
	if c == nil {
		fmt.Fprintf(env.Stderr, "netsentinel: unknown command %q\nRun 'netsentinel -h' for the list of commands.\n", args[0])
		return ExitUsage
	}
	err := runCommand(ctx, c, args[1:], env)
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, new(usageError)):
		fmt.Fprintf(env.Stderr, "netsentinel %s: %v\nRun 'netsentinel %s -h' for usage.\n", c.Name, err, c.Name)
		return ExitUsage
	case errors.Is(err, ErrBadData):
		fmt.Fprintf(env.Stderr, "netsentinel %s: %v\n", c.Name, err)
		return ExitBadData
	default:
		fmt.Fprintf(env.Stderr, "netsentinel %s: %v\n", c.Name, err)
		return ExitFailure
	}
}

func lookup(name string) *Command {
	for _, c := range commands {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func mainUsage(w io.Writer) {
	fmt.Fprintf(w, "netsentinel catches attacks in streams of network connection records.\n\nUsage:\n\n  netsentinel <command> [flags] [arguments]\n\nCommands:\n\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.Name, c.Short)
	}
	fmt.Fprintf(w, `
Run 'netsentinel <command> -h' for a command's flags.

Every flag can also come from the environment (NETSENTINEL_<FLAG>, e.g.
NETSENTINEL_BROKERS) or from a YAML file named by --config or
NETSENTINEL_CONFIG whose keys are flag names. The command line wins, then
the environment, then the file.

Exit codes: 0 success; 1 failure; 2 bad usage or configuration;
3 finished, but some input records were invalid.
`)
}

func runCommand(ctx context.Context, c *Command, args []string, env *Env) error {
	fs := flag.NewFlagSet(c.Name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	run := c.Flags(fs)
	config := fs.String("config", "", "YAML `file` of flag values (also NETSENTINEL_CONFIG)")
	fs.Usage = func() {
		w := env.Stdout
		fmt.Fprintf(w, "Usage: netsentinel %s\n\n%s\n", c.UsageLine, strings.TrimSpace(c.Long))
		fmt.Fprintf(w, "\nFlags (each also NETSENTINEL_<FLAG> in the environment):\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(env.Stderr)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if err := applyEnvAndConfig(fs, *config); err != nil {
		return usageError{err}
	}
	return run(ctx, env, fs.Args())
}

// applyEnvAndConfig sets every flag not given on the command line from the
// environment or the config file.
func applyEnvAndConfig(fs *flag.FlagSet, configPath string) error {
	if configPath == "" {
		configPath = os.Getenv("NETSENTINEL_CONFIG")
	}
	var data []byte
	if configPath != "" {
		b, err := os.ReadFile(configPath)
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		data = b
	}
	return applyConfig(fs, configPath, data)
}

// applyConfig does the work of applyEnvAndConfig once the config file,
// configPath ("" for none), has been read into data.
func applyConfig(fs *flag.FlagSet, configPath string, data []byte) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	fileValues := map[string]any{}
	if configPath != "" {
		if err := yaml.Unmarshal(data, &fileValues); err != nil {
			return fmt.Errorf("config %s: %w", configPath, err)
		}
		var unknown []string
		for k := range fileValues {
			if fs.Lookup(k) == nil {
				unknown = append(unknown, k)
			}
		}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			return fmt.Errorf("config %s: unknown keys for %s: %s", configPath, fs.Name(), strings.Join(unknown, ", "))
		}
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || f.Name == "config" {
			return
		}
		env := "NETSENTINEL_" + strings.NewReplacer("-", "_", ".", "_").Replace(strings.ToUpper(f.Name))
		if v, ok := os.LookupEnv(env); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
			}
			return
		}
		if v, ok := fileValues[f.Name]; ok {
			var s string
			switch v := v.(type) {
			case []any:
				for _, e := range v {
					if err := fs.Set(f.Name, fmt.Sprint(e)); err != nil {
						errs = append(errs, fmt.Errorf("config key %s: %w", f.Name, err))
					}
				}
				return
			default:
				s = fmt.Sprint(v)
			}
			if err := fs.Set(f.Name, s); err != nil {
				errs = append(errs, fmt.Errorf("config key %s=%q: %w", f.Name, s, err))
			}
		}
	})
	return errors.Join(errs...)
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }

func (s *stringList) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// logFlag is the --log-level flag of a long-running command.
type logFlag struct{ level *string }

func addLogFlag(fs *flag.FlagSet) logFlag {
	return logFlag{fs.String("log-level", "info", "log `level`: debug, info, warn or error")}
}

// logger returns a text logger writing to w at the flag's level.
func (f logFlag) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(*f.level)); err != nil {
		return nil, Usagef("--log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), nil
}
