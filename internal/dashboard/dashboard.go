package dashboard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netsentinel/netsentinel/internal/report"
)

// Defaults of Options.
const (
	DefaultHistory            = 36 * time.Hour
	DefaultMaxAlerts          = 100_000
	DefaultMaxIncidents       = 10_000
	DefaultMaxDeadLetters     = 1000
	DefaultMaxDeadLetterBytes = 4096
	DefaultMaxAddresses       = 256
	DefaultTopAddresses       = 10
	DefaultSilentAfter        = 2 * time.Minute
	DefaultPollInterval       = 2 * time.Second
	DefaultSummaryEvery       = time.Second
)

// Options configures a Dashboard. Kafka and the topic names are needed to
// read; everything else has a default.
type Options struct {
	// Kafka are the client options (seed brokers, TLS, SASL) of the
	// clients the dashboard opens.
	Kafka []kgo.Opt
	// AlertsTopic, StatsTopic, DeadLetterTopic and IncidentsTopic are the
	// detector's output topics; an empty name is not read.
	AlertsTopic, StatsTopic, DeadLetterTopic, IncidentsTopic string
	// InputTopic and Group are the detectors' input topic and consumer
	// group, for the group's members and lag; an empty Group is not
	// watched.
	InputTopic, Group string

	// History is how far back the dashboard reads and keeps per-minute
	// statistics and address counts: the longest span (24h) plus the
	// baseline the spike detection compares with (the trailing buckets
	// when there is no history of previous days). Default DefaultHistory;
	// 8 days gives the spike detection the same baseline as the report.
	History time.Duration
	// MaxAlerts is how many recent alerts the table can page through;
	// default DefaultMaxAlerts.
	MaxAlerts int
	// MaxIncidents is how many incidents are kept (their latest state);
	// beyond it the tenth changed longest ago, closed ones first, is
	// dropped. Default DefaultMaxIncidents.
	MaxIncidents int
	// MaxDeadLetters is how many recent dead letters are kept; default
	// DefaultMaxDeadLetters.
	MaxDeadLetters int
	// MaxDeadLetterBytes is how many bytes of a dead letter's value are
	// kept and shown (the page says when a value is longer); default
	// DefaultMaxDeadLetterBytes.
	MaxDeadLetterBytes int
	// MaxAddresses is how many distinct source (and destination) addresses
	// are counted per minute; alerts from further ones are counted as
	// untracked. Default DefaultMaxAddresses.
	MaxAddresses int
	// TopAddresses is how many top sources and targets the page lists;
	// default DefaultTopAddresses.
	TopAddresses int
	// SilentAfter is how long without statistics from any detector before
	// the page warns; default DefaultSilentAfter.
	SilentAfter time.Duration
	// PollInterval is how often the consumer group and the brokers are
	// checked; default DefaultPollInterval.
	PollInterval time.Duration
	// SummaryEvery is the least time between two computations of a span's
	// summary; default DefaultSummaryEvery.
	SummaryEvery time.Duration
	// Report holds the spike detection's settings; zero fields take
	// report.DefaultConfig's.
	Report report.Config
	// Logger receives the dashboard's log; nil discards it.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	started time.Time
}

func (o *Options) fill() {
	defInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur(&o.History, DefaultHistory)
	defInt(&o.MaxAlerts, DefaultMaxAlerts)
	defInt(&o.MaxIncidents, DefaultMaxIncidents)
	defInt(&o.MaxDeadLetters, DefaultMaxDeadLetters)
	defInt(&o.MaxDeadLetterBytes, DefaultMaxDeadLetterBytes)
	defInt(&o.MaxAddresses, DefaultMaxAddresses)
	defInt(&o.TopAddresses, DefaultTopAddresses)
	defDur(&o.SilentAfter, DefaultSilentAfter)
	defDur(&o.PollInterval, DefaultPollInterval)
	defDur(&o.SummaryEvery, DefaultSummaryEvery)
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.started = o.Now()
}

// Dashboard reads the detector's outputs and serves the page and its API.
// Create it with New, read with Run, serve Handler.
type Dashboard struct {
	opts Options
	st   *state
	log  *slog.Logger
	// streams counts the open event streams.
	streams atomic.Int32
}

// New checks opts and fills in the defaults.
func New(opts Options) (*Dashboard, error) {
	if opts.History < 0 || opts.MaxAlerts < 0 || opts.MaxIncidents < 0 || opts.MaxDeadLetters < 0 || opts.MaxAddresses < 0 {
		return nil, errors.New("dashboard: negative history or limit")
	}
	seen := map[string]string{}
	for _, t := range []struct{ what, name string }{{"alerts", opts.AlertsTopic}, {"statistics", opts.StatsTopic},
		{"dead letters", opts.DeadLetterTopic}, {"incidents", opts.IncidentsTopic}} {
		if t.name == "" {
			continue
		}
		if other, ok := seen[t.name]; ok {
			return nil, fmt.Errorf("dashboard: topic %q given for both %s and %s", t.name, other, t.what)
		}
		seen[t.name] = t.what
	}
	opts.fill()
	if opts.History < 24*time.Hour+report.BucketFor(24*time.Hour) {
		return nil, fmt.Errorf("dashboard: history %v is shorter than the longest span (24h) and its current bucket", opts.History)
	}
	return &Dashboard{opts: opts, st: newState(opts), log: opts.Logger}, nil
}

// Run reads the output topics and watches the consumer group until ctx is
// cancelled; it then closes its clients and returns nil. Broker failures
// do not stop it: they show on the page and in the log, and the clients
// keep trying.
func (d *Dashboard) Run(ctx context.Context) error {
	if len(d.opts.Kafka) == 0 {
		return errors.New("dashboard: no Kafka client options")
	}
	// Either part failing for good (a configuration the client rejects)
	// stops the other.
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	for _, f := range []func(context.Context) error{d.read, d.watch} {
		go func() {
			err := f(rctx)
			cancel()
			errc <- err
		}()
	}
	err := errors.Join(<-errc, <-errc)
	if ctx.Err() != nil {
		return nil
	}
	return err
}
