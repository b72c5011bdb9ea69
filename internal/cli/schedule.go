package cli

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/netsentinel/netsentinel/internal/mail"
	"github.com/netsentinel/netsentinel/internal/report"
)

// scheduler produces a report for every window of its Schedule, a little
// after the window ends, and retries the delivery of queued reports. It
// remembers in State the end of the last window produced, so that after a
// restart no window is produced twice, and after downtime the missed span
// is produced late, once, as one catch-up window.
type scheduler struct {
	Schedule report.Schedule
	// Delay is how long after a boundary the report is produced, to let
	// the detector commit its statistics for the last minutes.
	Delay time.Duration
	// MaxCatchUp is the longest catch-up window after downtime; older
	// time is skipped (and logged). Zero means seven days.
	MaxCatchUp time.Duration
	// State remembers the last window produced.
	State *mail.StateFile
	// Produce builds, writes and queues the report of w. A failure is
	// retried with Backoff; the window is not skipped.
	Produce func(ctx context.Context, w report.Window) error
	// Flush, if set, delivers queued reports; a failure is retried with
	// Backoff.
	Flush func(ctx context.Context) (int, error)
	// Backoff is the retry schedule for failed Produce and Flush calls.
	Backoff mail.Backoff
	// Logger receives progress; nil discards.
	Logger *slog.Logger
}

// Run produces reports until ctx is done, then returns nil. It returns an
// error only if the schedule is invalid or the state cannot be read or
// written.
func (s *scheduler) Run(ctx context.Context) error {
	if err := s.Schedule.Validate(); err != nil {
		return err
	}
	if s.State == nil || s.Produce == nil {
		return errors.New("scheduler: State and Produce are required")
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	maxCatchUp := s.MaxCatchUp
	if maxCatchUp <= 0 {
		maxCatchUp = 7 * 24 * time.Hour
	}
	st, err := s.State.Load()
	if err != nil {
		return err
	}
	lastEnd := st.LastEnd
	if lastEnd.IsZero() {
		// First start: begin with the window now under way.
		lastEnd = s.Schedule.Last(time.Now())
		if err := s.State.Update(func(st *mail.State) error { st.LastEnd = lastEnd; return nil }); err != nil {
			return err
		}
		log.Info("scheduler: first start", "next_report", s.Schedule.Next(lastEnd).Add(s.Delay))
	}
	var produceWait, flushWait time.Duration
	for {
		now := time.Now()
		wake := s.Schedule.Next(now.Add(-s.Delay)).Add(s.Delay)
		if due := s.Schedule.Last(now.Add(-s.Delay)); due.After(lastEnd) {
			start := lastEnd
			if due.Sub(start) > maxCatchUp {
				log.Warn("scheduler: downtime longer than the catch-up limit, skipping", "from", start, "to", due.Add(-maxCatchUp))
				start = s.Schedule.Last(due.Add(-maxCatchUp))
			}
			w := report.Window{Start: start, End: due, Location: s.Schedule.Location}
			if prev := s.Schedule.Prev(due); start.Before(prev) || now.Sub(due) > s.Delay+time.Minute {
				log.Info("scheduler: producing a late report", "window", w.String())
			}
			if err := s.Produce(ctx, w); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				produceWait = s.Backoff.Next(produceWait)
				log.Error("scheduler: report failed, will retry", "window", w.String(), "err", err, "retry_in", produceWait)
				wake = earliest(wake, now.Add(produceWait))
			} else {
				produceWait = 0
				if err := s.State.Update(func(st *mail.State) error { st.LastEnd = due; return nil }); err != nil {
					return err
				}
				lastEnd = due
				log.Info("scheduler: report produced", "window", w.String())
			}
		}
		if s.Flush != nil {
			if _, err := s.Flush(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				flushWait = s.Backoff.Next(flushWait)
				log.Warn("scheduler: delivery failed, will retry", "err", err, "retry_in", flushWait)
				wake = earliest(wake, now.Add(flushWait))
			} else {
				flushWait = 0
			}
		}
		t := time.NewTimer(time.Until(wake))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
