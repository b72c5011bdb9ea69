package cli

import (
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/netsentinel/netsentinel/internal/incident"
	"github.com/netsentinel/netsentinel/internal/stream"
)

// alertModes maps --alerts to which outputs detect writes.
var alertModes = map[string]struct{ records, incidents bool }{
	"incidents": {false, true},
	"records":   {true, false},
	"both":      {true, true},
}

// incidentFlags are detect's incident settings.
type incidentFlags struct {
	mode, topic, changelog, rules *string
	update, quiet                 *time.Duration
}

func (f *incidentFlags) options(alertsTopic string, log *slog.Logger) (alerts string, o stream.IncidentOptions, stop func(), err error) {
	m, ok := alertModes[*f.mode]
	if !ok {
		return "", o, nil, Usagef("--alerts %q: want incidents, records or both", *f.mode)
	}
	stop = func() {}
	if m.records {
		alerts = alertsTopic
	}
	if !m.incidents {
		return alerts, o, stop, nil
	}
	if *f.topic == "" {
		return "", o, nil, Usagef("--alerts %s needs --incidents-topic", *f.mode)
	}
	o = stream.IncidentOptions{Topic: *f.topic, ChangelogTopic: *f.changelog}
	o.Table.UpdateInterval, o.Table.QuietPeriod = *f.update, *f.quiet
	if *f.rules != "" {
		rs := &reloadableRules{}
		if err := rs.load(*f.rules, log); err != nil {
			return "", o, nil, err
		}
		o.Rules = rs.r.Load
		stop = rs.reloadOnHUP(*f.rules, log)
	}
	return alerts, o, stop, nil
}

// reloadableRules holds the rules in force; SIGHUP reloads them.
type reloadableRules struct {
	r atomic.Pointer[incident.Rules]
}

func (s *reloadableRules) load(path string, log *slog.Logger) error {
	r, err := incident.LoadRules(path)
	if err != nil {
		return Usagef("--rules: %w", err)
	}
	if exp := r.Expired(time.Now()); len(exp) > 0 {
		log.Warn("rules past their expiry are ignored", "rules", exp)
	}
	s.r.Store(r)
	log.Info("rules loaded", "file", path, "rules", r.Len())
	return nil
}

// reloadOnHUP reloads the rules from path on every SIGHUP (a file that
// fails to parse is reported and the rules in force kept) until the
// returned stop function is called.
func (s *reloadableRules) reloadOnHUP(path string, log *slog.Logger) (stop func()) {
	return onHUP(func() {
		if err := s.load(path, log); err != nil {
			log.Error("rules reload failed; keeping the rules in force", "err", err)
		}
	})
}

// onHUP calls f on every SIGHUP until the returned stop function is
// called; stop returns once f is no longer running.
func onHUP(f func()) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-hup:
				f()
			}
		}
	})
	return func() {
		signal.Stop(hup)
		close(done)
		wg.Wait()
	}
}
