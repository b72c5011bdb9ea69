package report

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Schedule says when reports fall due: at boundaries aligned to the wall
// clock in Location, every Every, counted from local midnight plus At.
// Every 1h with At 0 gives the top of every hour; Every 24h with At 6h30m
// gives 06:30 every day (DST-aware: the local clock time is kept).
type Schedule struct {
	Every    time.Duration
	At       time.Duration
	Location *time.Location
}

// Validate checks that Every divides a day (or is a day) and At is within
// a day.
func (s Schedule) Validate() error {
	switch {
	case s.Every < time.Minute || s.Every > 24*time.Hour || (24*time.Hour)%s.Every != 0:
		return fmt.Errorf("schedule: every %v: want a whole number of minutes that divides 24h (e.g. 1h, 24h)", s.Every)
	case s.At < 0 || s.At >= 24*time.Hour:
		return fmt.Errorf("schedule: at %v: want a time of day", s.At)
	}
	return nil
}

func (s Schedule) loc() *time.Location {
	if s.Location == nil {
		return time.UTC
	}
	return s.Location
}

// dayBase returns the first boundary of t's local day: midnight plus At.
func (s Schedule) dayBase(t time.Time, days int) time.Time {
	lt := t.In(s.loc())
	return time.Date(lt.Year(), lt.Month(), lt.Day()+days, 0, 0, 0, 0, s.loc()).Add(s.At)
}

// Last returns the latest boundary at or before t.
func (s Schedule) Last(t time.Time) time.Time {
	base := s.dayBase(t, 0)
	if base.After(t) {
		base = s.dayBase(t, -1)
	}
	if s.Every >= 24*time.Hour {
		return base
	}
	k := t.Sub(base) / s.Every
	b := base.Add(k * s.Every)
	// On a DST day the day is 23 or 25 hours long: never step past the
	// next day's base.
	if next := s.dayBase(base, 1); !b.Before(next) {
		return next
	}
	return b
}

// Next returns the first boundary after t.
func (s Schedule) Next(t time.Time) time.Time {
	last := s.Last(t)
	if s.Every >= 24*time.Hour {
		return s.dayBase(last, 1)
	}
	b := last.Add(s.Every)
	if next := s.dayBase(last, 1); b.After(next) && last.Before(next) {
		return next
	}
	return b
}

// Prev returns the boundary before the boundary b.
func (s Schedule) Prev(b time.Time) time.Time { return s.Last(b.Add(-time.Nanosecond)) }

// Scheduler produces a report for every window of its Schedule, a little
// after the window ends, and retries the delivery of queued reports. It
// remembers in State the end of the last window produced, so that after a
// restart no window is produced twice, and after downtime the missed span
// is produced late, once, as one catch-up window.
type Scheduler struct {
	Schedule Schedule
	// Delay is how long after a boundary the report is produced, to let
	// the detector commit its statistics for the last minutes.
	Delay time.Duration
	// MaxCatchUp is the longest catch-up window after downtime; older
	// time is skipped (and logged). Zero means seven days.
	MaxCatchUp time.Duration
	// State remembers the last window produced.
	State *StateFile
	// Produce builds, writes and queues the report of w. A failure is
	// retried with Backoff; the window is not skipped.
	Produce func(ctx context.Context, w Window) error
	// Flush, if set, delivers queued reports; a failure is retried with
	// Backoff.
	Flush func(ctx context.Context) (int, error)
	// Backoff is the retry schedule for failed Produce and Flush calls.
	Backoff Backoff
	// Logger receives progress; nil discards.
	Logger *slog.Logger
}

// Run produces reports until ctx is done, then returns nil. It returns an
// error only if the schedule is invalid or the state cannot be read or
// written.
func (s *Scheduler) Run(ctx context.Context) error {
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
		if err := s.State.Update(func(st *State) error { st.LastEnd = lastEnd; return nil }); err != nil {
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
			w := Window{Start: start, End: due, Location: s.Schedule.loc()}
			if prev := s.Schedule.Prev(due); start.Before(prev) || now.Sub(due) > s.Delay+time.Minute {
				log.Info("scheduler: producing a late report", "window", w.String())
			}
			if err := s.Produce(ctx, w); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				produceWait = s.Backoff.next(produceWait)
				log.Error("scheduler: report failed, will retry", "window", w.String(), "err", err, "retry_in", produceWait)
				wake = earliest(wake, now.Add(produceWait))
			} else {
				produceWait = 0
				if err := s.State.Update(func(st *State) error { st.LastEnd = due; return nil }); err != nil {
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
				flushWait = s.Backoff.next(flushWait)
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
