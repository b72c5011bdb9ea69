package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/netsentinel/netsentinel/internal/mail"
	"github.com/netsentinel/netsentinel/internal/report"
	"github.com/netsentinel/netsentinel/internal/stream"
)

// envSMTPPassword names the environment variable holding the SMTP
// password. There is deliberately no --smtp-password flag.
const envSMTPPassword = "NETSENTINEL_SMTP_PASSWORD"

// noStatsYet is what report says when the statistics topic does not exist.
const noStatsYet = "no detector has written statistics yet"

// defaultReportDir is where reports go without --out.
const defaultReportDir = "netsentinel-report"

var cmdReport = &Command{
	Name:      "report",
	UsageLine: "report --brokers HOST:PORT,... [--stats-topic S] [--alerts-topic A] [--dead-letter-topic D] [--incidents-topic I] [--window 1h|24h|...] [--end TIME] [--tz ZONE] [--out DIR] [--every 1h|24h [--at HH:MM]] [--smtp HOST:PORT --mail-to ADDR,... --mail-from ADDR ...]",
	Short:     "report on a time window (or every hour/day): charts, spikes, HTML, email",
	Long: `
Report reads the detector's per-minute statistics from --stats-topic (and,
if named, the most novel alerts from --alerts-topic, the dead-letter
reasons from --dead-letter-topic and the incidents from --incidents-topic:
the top ones of the window, and under each spike those active in it) by
timestamp, so it sums any number of
detector instances and survives their restarts. For the window it writes
to --out: report.html (self-contained, charts embedded), summary.json and
the PNG charts - a pie of verdicts by category, a bar chart of attack types
per attack category, and the attack rate over time with spikes marked.

A bucket (an hour, or 5 minutes for windows up to 6h) is a spike when its
attack or unknown rate stands far above its baseline: a robust z-score
(median and MAD) against the same time of day on the previous
--baseline-days days, or the trailing buckets when there is no history.
The thresholds are flags; the report's footer explains them. A report is
produced even when nothing happened ("all quiet", with the numbers).

Without --every, one report is built for the window ending at --end
(default: the last full hour, or the last local midnight for --window 24h).
With --every 1h or 24h, report runs until stopped and produces a report
aligned to the wall clock in --tz (top of the hour, local midnight or
--at HH:MM) into --out/<window>/, remembering in --out/state.json what it
produced: after a restart nothing is produced twice, and after downtime the
missed span is produced late, once.

With --smtp, the report is mailed (HTML with inline charts, a plain-text
alternative, the charts attached) to --mail-to. The SMTP password comes
from ` + envSMTPPassword + ` or --smtp-password-file, never from the command
line. Undelivered reports wait in --out/outbox and are retried with backoff,
and by the next run; each is sent once.
`,
	Flags: reportFlags,
}

// mailFlags are the SMTP flags, shared by report and demo.
type mailFlags struct {
	addr, tlsMode, auth, user, passwordFile, ca, from, to *string
}

func addMailFlags(fs *flag.FlagSet) *mailFlags {
	return &mailFlags{
		addr:         fs.String("smtp", "", "SMTP server `host:port`; mail the report (needs --mail-to and --mail-from)"),
		tlsMode:      fs.String("smtp-tls", mail.TLSStartTLS, "SMTP TLS `mode`: none, starttls or tls (implicit, port 465)"),
		auth:         fs.String("smtp-auth", mail.AuthPlain, "SMTP AUTH `mechanism` when --smtp-user is set: plain or login"),
		user:         fs.String("smtp-user", "", "SMTP user `name` (password from "+envSMTPPassword+" or --smtp-password-file)"),
		passwordFile: fs.String("smtp-password-file", "", "`file` holding the SMTP password"),
		ca:           fs.String("smtp-ca", "", "PEM `file` of CA certificates to trust for the SMTP server"),
		from:         fs.String("mail-from", "", "sender `address`"),
		to:           fs.String("mail-to", "", "recipient `addresses`, comma-separated"),
	}
}

// config returns the mail configuration, or ok false when --smtp is not
// set.
func (m *mailFlags) config() (cfg mail.Config, ok bool, err error) {
	if *m.addr == "" {
		return cfg, false, nil
	}
	cfg = mail.Config{Addr: *m.addr, TLS: *m.tlsMode, Auth: *m.auth, User: *m.user, From: *m.from}
	for _, a := range strings.Split(*m.to, ",") {
		if a = strings.TrimSpace(a); a != "" {
			cfg.To = append(cfg.To, a)
		}
	}
	if cfg.User != "" {
		if *m.passwordFile != "" {
			b, err := os.ReadFile(*m.passwordFile)
			if err != nil {
				return cfg, false, fmt.Errorf("smtp password file: %w", err)
			}
			cfg.Password = strings.TrimRight(string(b), "\r\n")
		} else {
			cfg.Password = os.Getenv(envSMTPPassword)
		}
	}
	if *m.ca != "" {
		pem, err := os.ReadFile(*m.ca)
		if err != nil {
			return cfg, false, fmt.Errorf("smtp ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return cfg, false, Usagef("--smtp-ca %s: no PEM certificates", *m.ca)
		}
		cfg.TLSConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, false, Usagef("%w", err)
	}
	return cfg, true, nil
}

// deliverReport queues rep in dir's outbox and tries to send it (and any
// report still waiting there) with a few retries. It returns false when
// rep had been sent before (it is not sent again).
func deliverReport(ctx context.Context, dir string, rep *report.Report, cfg mail.Config, attempts int, log *slog.Logger) (bool, error) {
	ob := &mail.Outbox{Dir: dir, Deliver: mail.Deliver(cfg), Logger: log}
	queued, err := ob.Enqueue(rep)
	if err != nil {
		return false, err
	}
	if err := ob.FlushRetry(ctx, mail.Backoff{Initial: 2 * time.Second, Max: time.Minute}, attempts); err != nil {
		return false, fmt.Errorf("%w; the report waits in %s and is sent by the next run", err, filepath.Join(dir, mail.OutboxDir))
	}
	return queued, nil
}

// writeReport builds the report of series for w, writes it into dir
// (report.html, summary.json, PNG charts) and, when mf names an SMTP
// server, mails it (retrying a few times; an undelivered report waits in
// dir/outbox for the next run). mf may be nil. The demo calls it with the
// aggregates it collected, e.g.
//
//	var agg report.Aggregator // agg.Add(stats, time.Time{}) for each event.Stats
//	series := agg.Series()
//	rep, err := writeReport(ctx, series, report.SeriesWindow(series, time.Local), report.Config{}, dir, mf, log)
func writeReport(ctx context.Context, series []report.Minute, w report.Window, cfg report.Config, dir string, mf *mailFlags, log *slog.Logger) (*report.Report, error) {
	var mcfg mail.Config
	mailing := false
	if mf != nil {
		var err error
		if mcfg, mailing, err = mf.config(); err != nil {
			return nil, err
		}
	}
	rep, err := report.Build(series, w, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := report.Write(dir, rep); err != nil {
		return nil, err
	}
	if mailing {
		if _, err := deliverReport(ctx, dir, rep, mcfg, 3, log); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// parseClock parses "HH:MM" as a duration since midnight.
func parseClock(s string) (time.Duration, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("time of day %q: want HH:MM", s)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

// parseEnd parses --end: RFC 3339, or a date and time in loc.
func parseEnd(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--end %q: want RFC 3339, YYYY-MM-DD HH:MM or YYYY-MM-DD", s)
}

func reportFlags(fs *flag.FlagSet) RunFunc {
	kf := addKafkaFlags(fs)
	mf := addMailFlags(fs)
	statsTopic := fs.String("stats-topic", stream.DefaultStatsTopic, "`topic` of the detector's per-minute statistics")
	alertsTopic := fs.String("alerts-topic", stream.DefaultAlertsTopic, "`topic` of the detector's alerts, for the most novel ones (empty: skip)")
	incidentsTopic := fs.String("incidents-topic", stream.DefaultIncidentsTopic, "`topic` of the detector's incidents, for the top incidents and each spike's (empty: skip)")
	deadTopic := fs.String("dead-letter-topic", stream.DefaultDeadLetterTopic, "`topic` of dead letters, for their reasons (empty: skip)")
	window := fs.Duration("window", 0, "window `length` (default: --every, else 1h)")
	endFlag := fs.String("end", "", "window end `time` (RFC 3339 or YYYY-MM-DD HH:MM in --tz; default: the last boundary)")
	tz := fs.String("tz", "Local", "time `zone` of the report and the schedule (e.g. UTC, Europe/Berlin)")
	out := fs.String("out", defaultReportDir, "output `directory`")
	every := fs.Duration("every", 0, "keep running and produce a report every `interval` (1h or 24h), aligned to the clock")
	at := fs.String("at", "00:00", "with --every 24h, the local `time` of day the window ends (HH:MM)")
	delay := fs.Duration("delay", 2*time.Minute, "with --every, wait this long after the window ends (lets detectors commit)")
	retries := fs.Int("mail-retries", 5, "delivery attempts before a one-off report is left in the outbox")
	def := report.DefaultConfig()
	spikeZ := fs.Float64("spike-z", def.SpikeZ, "robust z-score at or above which a bucket is a spike")
	baselineDays := fs.Int("baseline-days", def.BaselineDays, "previous days of the same time of day that form a bucket's baseline")
	minCount := fs.Int64("spike-min-count", def.MinCount, "least attacks (or unknown verdicts) in a bucket for a spike")
	minRise := fs.Float64("spike-min-rise", def.MinRateIncrease, "least rise of the rate above its baseline for a spike (0.02 = 2 percentage points)")
	maxExtras := fs.Int("extras-max", stream.DefaultMaxExtras, "most `messages` read from the alerts and dead-letter topics per report")
	lf := addLogFlag(fs)
	return func(ctx context.Context, env *Env, args []string) error {
		if len(args) > 0 {
			return Usagef("unexpected arguments %q", args)
		}
		log, err := lf.logger(env.Stderr)
		if err != nil {
			return err
		}
		loc, err := time.LoadLocation(*tz)
		if err != nil {
			return Usagef("--tz: %w", err)
		}
		atDur, err := parseClock(*at)
		if err != nil {
			return Usagef("--at: %w", err)
		}
		if *window == 0 {
			*window = *every
			if *window == 0 {
				*window = time.Hour
			}
		}
		if *window < 5*time.Minute || *window%time.Minute != 0 {
			return Usagef("--window %v: want whole minutes, at least 5m", *window)
		}
		if *statsTopic == "" {
			return Usagef("--stats-topic is required")
		}
		cfg := report.Config{SpikeZ: *spikeZ, BaselineDays: *baselineDays, MinCount: *minCount, MinRateIncrease: *minRise}
		mcfg, mailing, err := mf.config()
		if err != nil {
			return err
		}
		ccfg, err := kf.config()
		if err != nil {
			return err
		}
		opts, err := stream.ClientOptions(ccfg)
		if err != nil {
			return Usagef("kafka: %w", err)
		}
		src := &stream.StatsReader{Opts: opts, StatsTopic: *statsTopic, AlertsTopic: *alertsTopic, DeadLetterTopic: *deadTopic, IncidentsTopic: *incidentsTopic, MaxExtras: *maxExtras, Logger: log}

		// With --every, a cache reads the week of history once and then only
		// what is new; a one-off report reads its span directly.
		readSeries := src.Stats
		if *every != 0 {
			readSeries = src.NewStatsCache().Series
		}
		build := func(ctx context.Context, w report.Window, dir string) (*report.Report, error) {
			series, err := readSeries(ctx, w.Start.Add(-cfg.History()), w.End)
			noStats := errors.Is(err, stream.ErrNoTopic)
			if noStats {
				// Before the first detect: say so, and report the empty window.
				log.Warn(noStatsYet, "topic", *statsTopic)
				series, err = nil, nil
			}
			if err != nil {
				return nil, err
			}
			rep, err := report.Build(series, w, cfg)
			if err != nil {
				return nil, err
			}
			if noStats {
				rep.Notes = append(rep.Notes, fmt.Sprintf("No detector has written statistics yet: topic %s does not exist.", *statsTopic))
			}
			ex, err := src.Extras(ctx, w, 10)
			if err != nil {
				return nil, err
			}
			rep.TopAlerts, rep.DeadLetterReasons = ex.TopAlerts, ex.DeadLetterReasons
			report.AddIncidents(rep, ex.Incidents, 10)
			report.AddSpikeFeatures(rep, ex.Incidents, ex.AlertFeatures, 5)
			for _, t := range ex.Truncated {
				rep.Notes = append(rep.Notes, fmt.Sprintf("Only the first %d messages of topic %s in the window were examined for this report.", *maxExtras, t))
			}
			if _, err := report.Write(dir, rep); err != nil {
				return nil, err
			}
			log.Info("report written", "window", rep.WindowLabel, "title", rep.Title, "dir", dir)
			return rep, nil
		}

		if *every == 0 {
			sched := report.Schedule{Every: *window, At: atDur, Location: loc}
			end := sched.Last(time.Now())
			if sched.Validate() != nil {
				end = time.Now().Truncate(time.Minute)
			}
			if *endFlag != "" {
				if end, err = parseEnd(*endFlag, loc); err != nil {
					return Usagef("%w", err)
				}
			}
			w := report.Window{Start: end.Add(-*window), End: end, Location: loc}
			if *window == 24*time.Hour {
				// A calendar day keeps its local clock times across DST.
				le := end.In(loc)
				w.Start = time.Date(le.Year(), le.Month(), le.Day()-1, le.Hour(), le.Minute(), 0, 0, loc)
			}
			rep, err := build(ctx, w, *out)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "%s: %s\n%s\n", rep.WindowLabel, rep.Title, filepath.Join(*out, report.HTMLFile))
			if mailing {
				sent, err := deliverReport(ctx, *out, rep, mcfg, *retries, log)
				if err != nil {
					return err
				}
				if sent {
					fmt.Fprintf(env.Stdout, "mailed to %s\n", strings.Join(mcfg.To, ", "))
				} else {
					fmt.Fprintf(env.Stdout, "already mailed before (%s), not sent again\n", filepath.Join(*out, mail.StateFileName))
				}
			}
			return nil
		}

		if *window != *every {
			return Usagef("--window %v differs from --every %v", *window, *every)
		}
		sched := report.Schedule{Every: *every, At: atDur, Location: loc}
		if err := sched.Validate(); err != nil {
			return Usagef("%w", err)
		}
		if err := os.MkdirAll(*out, 0o755); err != nil {
			return fmt.Errorf("report: %w", err)
		}
		state := mail.NewStateFile(filepath.Join(*out, mail.StateFileName))
		ob := &mail.Outbox{Dir: *out, State: state, Logger: log}
		s := &scheduler{
			Schedule: sched,
			Delay:    *delay,
			State:    state,
			Backoff:  mail.Backoff{Initial: 30 * time.Second, Max: 15 * time.Minute},
			Logger:   log,
			Produce: func(ctx context.Context, w report.Window) error {
				rep, err := build(ctx, w, filepath.Join(*out, w.ID()))
				if err != nil {
					return err
				}
				if mailing {
					_, err := ob.Enqueue(rep)
					return err
				}
				return nil
			},
		}
		if mailing {
			ob.Deliver = mail.Deliver(mcfg)
			s.Flush = ob.Flush
		}
		log.Info("report scheduler started", "every", *every, "tz", loc.String(), "out", *out, "mail", mailing)
		err = s.Run(ctx)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
}
