package report

import (
	"fmt"
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
