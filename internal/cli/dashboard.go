package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/netsentinel/netsentinel/internal/dashboard"
	"github.com/netsentinel/netsentinel/internal/stream"
)

// envDashboardPassword names the environment variable holding the
// dashboard's basic-authentication password. There is deliberately no
// password flag.
const envDashboardPassword = "NETSENTINEL_DASHBOARD_PASSWORD"

// defaultDashboardListen is the dashboard's default address: loopback only.
const defaultDashboardListen = "127.0.0.1:9110"

var cmdDashboard = &Command{
	Name:      "dashboard",
	UsageLine: "dashboard --brokers HOST:PORT,... [--listen 127.0.0.1:9110] [--web-tls-cert F --web-tls-key F | --insecure] [--auth-user U]",
	Short:     "serve a live web page of the detector's incidents, alerts, statistics, dead letters and health",
	Long: `
Dashboard reads the detector's output topics (--incidents-topic,
--alerts-topic, --stats-topic, --dead-letter-topic; read-committed, from
--history ago) and serves a page
at --listen that updates live (server-sent events):

  - records and attacks, their current rates and the counts by category over
    the last 5 minutes, hour or 24 hours; the attack rate over time with
    spikes marked as the report marks them; a chart of the categories;
  - the incidents (the latest state of at most --max-incidents): open or
    closed, attack, source and destination or service, first and last
    seen, verdicts and their rate, top destinations, ports and services,
    the features that drove the first verdict and the rules that withheld
    verdicts; filtered by state, category, attack, address and text; a
    click shows the incident's explanation, top values and sample offsets;
  - the recent alerts (the newest --max-alerts), filtered by category,
    attack, address and text; a click shows the alert's features, the ones
    that made it stand out, the top classes when the alert carries them,
    and where it came from (topic, partition, offset);
  - the top attacking sources and most attacked hosts, from alerts (or
    incidents) whose records carried addresses;
  - dead letters with their reasons, the bytes shown escaped;
  - detector health: the instances that reported, their records per second
    and last commit, consumer group --group's members and lag per partition
    of --topic; a banner when no detector runs or reports, or the brokers
    cannot be reached.

The page needs no internet (its chart library is embedded). It listens on
loopback by default; another address needs --web-tls-cert and --web-tls-key
(HTTPS), or --insecure. --auth-user turns on HTTP basic authentication with
the password from --auth-password-file or ` + envDashboardPassword + `.
The dashboard runs until SIGINT or SIGTERM.
`,
	Flags: dashboardFlags,
}

// dashboardServeFlags are the flags of the dashboard's web server, shared
// by dashboard and demo --serve.
type dashboardServeFlags struct {
	tlsCert, tlsKey  *string
	insecure         *bool
	authUser         *string
	authPasswordFile *string
}

func addDashboardServeFlags(fs *flag.FlagSet) *dashboardServeFlags {
	return &dashboardServeFlags{
		tlsCert:          fs.String("web-tls-cert", "", "PEM certificate `file`: serve the dashboard over HTTPS (needs --web-tls-key)"),
		tlsKey:           fs.String("web-tls-key", "", "PEM private key `file` of --web-tls-cert"),
		insecure:         fs.Bool("insecure", false, "allow serving the dashboard on a non-loopback address without TLS"),
		authUser:         fs.String("auth-user", "", "require HTTP basic authentication as this `user` (password from --auth-password-file or "+envDashboardPassword+")"),
		authPasswordFile: fs.String("auth-password-file", "", "`file` holding the basic-authentication password"),
	}
}

// options checks the flags against the listen address and returns the
// server options.
func (f *dashboardServeFlags) options(listen string) (dashboard.ServerOptions, error) {
	so := dashboard.ServerOptions{Listen: listen, TLSCert: *f.tlsCert, TLSKey: *f.tlsKey, User: *f.authUser}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return so, Usagef("--listen %q: want host:port", listen)
	}
	if (so.TLSCert == "") != (so.TLSKey == "") {
		return so, Usagef("--web-tls-cert and --web-tls-key go together")
	}
	if !isLoopback(host) && so.TLSCert == "" && !*f.insecure {
		return so, Usagef("--listen %s is not a loopback address: give --web-tls-cert and --web-tls-key, or --insecure to serve plain HTTP there", listen)
	}
	if so.User != "" {
		if *f.authPasswordFile != "" {
			b, err := os.ReadFile(*f.authPasswordFile)
			if err != nil {
				return so, fmt.Errorf("auth password file: %w", err)
			}
			so.Password = strings.TrimRight(string(b), "\r\n")
		} else {
			so.Password = os.Getenv(envDashboardPassword)
		}
		if so.Password == "" {
			return so, Usagef("--auth-user needs a password in --auth-password-file or %s", envDashboardPassword)
		}
	} else if *f.authPasswordFile != "" {
		return so, Usagef("--auth-password-file needs --auth-user")
	}
	return so, nil
}

// isLoopback reports whether host is a loopback address or "localhost".
// An empty host (all interfaces) is not.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// runDashboard serves d at so until ctx ends, printing the URL to env's
// standard output, and reads Kafka meanwhile.
func runDashboard(ctx context.Context, d *dashboard.Dashboard, so dashboard.ServerOptions, env *Env, log *slog.Logger) error {
	srv, err := dashboard.NewServer(d.Handler(), so)
	if err != nil {
		return Usagef("%w", err)
	}
	if err := srv.Start(); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "dashboard at %s\n", srv.URL())
	runErr := d.Run(ctx)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	log.Info("dashboard shutting down")
	return errors.Join(runErr, srv.Shutdown(sctx))
}

func dashboardFlags(fs *flag.FlagSet) RunFunc {
	kf := addKafkaFlags(fs)
	sf := addDashboardServeFlags(fs)
	listen := fs.String("listen", defaultDashboardListen, "`address` to serve the dashboard on")
	alerts := fs.String("alerts-topic", stream.DefaultAlertsTopic, "`topic` of the detector's alerts (empty: not read)")
	stats := fs.String("stats-topic", stream.DefaultStatsTopic, "`topic` of the detector's per-minute statistics (empty: not read)")
	dead := fs.String("dead-letter-topic", stream.DefaultDeadLetterTopic, "`topic` of dead letters (empty: not read)")
	incidents := fs.String("incidents-topic", stream.DefaultIncidentsTopic, "`topic` of the detector's incidents (detect --alerts incidents, the default; empty: not read)")
	maxIncidents := fs.Int("max-incidents", dashboard.DefaultMaxIncidents, "incidents kept for the table (their latest state)")
	topic := fs.String("topic", stream.DefaultTopic, "the detectors' input `topic`, for their lag")
	group := fs.String("group", stream.DefaultGroup, "the detectors' consumer `group`, for their members and lag (empty: not watched)")
	history := fs.Duration("history", dashboard.DefaultHistory, "how far back to read and keep statistics: 24h plus the spike baseline (8 days: the report's)")
	maxAlerts := fs.Int("max-alerts", dashboard.DefaultMaxAlerts, "recent alerts kept for the table")
	silentAfter := fs.Duration("silent-after", dashboard.DefaultSilentAfter, "warn when no detector has reported statistics for this long")
	poll := fs.Duration("poll-interval", dashboard.DefaultPollInterval, "how often the consumer group and brokers are checked")
	lf := addLogFlag(fs)
	return func(ctx context.Context, env *Env, args []string) error {
		if len(args) > 0 {
			return Usagef("unexpected arguments %q", args)
		}
		log, err := lf.logger(env.Stderr)
		if err != nil {
			return err
		}
		so, err := sf.options(*listen)
		if err != nil {
			return err
		}
		ccfg, err := kf.config()
		if err != nil {
			return err
		}
		ccfg.ClientID = "netsentinel-dashboard"
		kopts, err := stream.ClientOptions(ccfg)
		if err != nil {
			return Usagef("kafka: %w", err)
		}
		d, err := dashboard.New(dashboard.Options{
			Kafka: kopts, AlertsTopic: *alerts, StatsTopic: *stats, DeadLetterTopic: *dead, IncidentsTopic: *incidents,
			InputTopic: *topic, Group: *group, History: *history, MaxAlerts: *maxAlerts, MaxIncidents: *maxIncidents,
			SilentAfter: *silentAfter, PollInterval: *poll, Logger: log,
		})
		if err != nil {
			return Usagef("%w", err)
		}
		ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		return runDashboard(ctx, d, so, env, log)
	}
}
