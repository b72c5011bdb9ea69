package report

import (
	"encoding/json"
	"fmt"
	"time"
)

// Window is the time span a report covers: [Start, End), shown in Location.
type Window struct {
	Start    time.Time
	End      time.Time
	Location *time.Location
}

// Duration returns the window's length.
func (w Window) Duration() time.Duration { return w.End.Sub(w.Start) }

// ID names the window in file and directory names, e.g.
// "20261126T1400Z-20261126T1500Z".
func (w Window) ID() string {
	const f = "20060102T1504Z"
	return w.Start.UTC().Format(f) + "-" + w.End.UTC().Format(f)
}

func (w Window) loc() *time.Location {
	if w.Location == nil {
		return time.UTC
	}
	return w.Location
}

// String formats the window like "2026-11-26 14:00–15:00 UTC", a day as
// "2026-11-26 00:00–24:00 UTC", and longer windows with both dates.
func (w Window) String() string {
	loc := w.loc()
	s, e := w.Start.In(loc), w.End.In(loc)
	zone := e.Format("MST")
	sameDay := func(a, b time.Time) bool { return a.Year() == b.Year() && a.YearDay() == b.YearDay() }
	if e.Sub(s) <= 25*time.Hour {
		if sameDay(s, e) {
			return s.Format("2006-01-02 15:04") + "–" + e.Format("15:04") + " " + zone
		}
		if e.Hour() == 0 && e.Minute() == 0 && sameDay(s, e.Add(-time.Minute)) {
			return s.Format("2006-01-02 15:04") + "–24:00 " + zone
		}
	}
	return s.Format("2006-01-02 15:04") + " – " + e.Format("2006-01-02 15:04") + " " + zone
}

// Config holds the settings of the spike detection and the health checks.
// The zero value of a field means its default (see DefaultConfig).
type Config struct {
	// SpikeZ is the robust z-score at or above which a bucket is a spike.
	SpikeZ float64 `json:"spike_z"`
	// MinRateIncrease is the least rise of the rate above its baseline
	// (as a fraction: 0.02 is two percentage points) for a spike.
	MinRateIncrease float64 `json:"min_rate_increase"`
	// MinCount is the least number of attacks (or unknown verdicts) in a
	// bucket for a spike, so that tiny counts do not fire.
	MinCount int64 `json:"min_count"`
	// MinScale is the floor of the baseline's spread (a fraction), which
	// keeps a perfectly flat baseline from making every wiggle a spike.
	MinScale float64 `json:"min_scale"`
	// BaselineDays is how many previous days of the same bucket of the day
	// form the baseline.
	BaselineDays int `json:"baseline_days"`
	// MinBaselinePoints is the least number of non-empty baseline buckets;
	// with fewer, the trailing buckets are used, and with fewer of those
	// no spike is called.
	MinBaselinePoints int `json:"min_baseline_points"`
	// TrailingBuckets is how many buckets before a bucket form its
	// fallback baseline when there is no history of previous days.
	TrailingBuckets int `json:"trailing_buckets"`
	// Bucket is the bucket size; zero picks BucketFor(the window's
	// length).
	Bucket time.Duration `json:"bucket"`
	// SilentAfter is how long an instance may stay without statistics at
	// the end of the window before it is reported as silent.
	SilentAfter time.Duration `json:"silent_after"`
	// LagWarn is the delay between a minute's end and its statistics above
	// which an instance is reported as lagging.
	LagWarn time.Duration `json:"lag_warn"`
	// TopAttacks is how many attack types a spike lists as its drivers.
	TopAttacks int `json:"top_attacks"`
	// QuietMaxAttackShare is the largest attack share a quiet window may
	// have: above it the report says so even without a spike (a baseline
	// as high as the window hides no spike, but is news).
	QuietMaxAttackShare float64 `json:"quiet_max_attack_share"`
}

// DefaultConfig returns the default settings.
func DefaultConfig() Config {
	return Config{
		SpikeZ:            3.5,
		MinRateIncrease:   0.02,
		MinCount:          20,
		MinScale:          0.005,
		BaselineDays:      7,
		MinBaselinePoints: 3,
		TrailingBuckets:   12,
		SilentAfter:       10 * time.Minute,
		LagWarn:           5 * time.Minute,
		TopAttacks:        5,
		// Attacks are rare in most networks; a tenth of all records is
		// far above any usual level.
		QuietMaxAttackShare: 0.10,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.SpikeZ <= 0 {
		c.SpikeZ = d.SpikeZ
	}
	if c.MinRateIncrease <= 0 {
		c.MinRateIncrease = d.MinRateIncrease
	}
	if c.MinCount <= 0 {
		c.MinCount = d.MinCount
	}
	if c.MinScale <= 0 {
		c.MinScale = d.MinScale
	}
	if c.BaselineDays <= 0 {
		c.BaselineDays = d.BaselineDays
	}
	if c.MinBaselinePoints <= 0 {
		c.MinBaselinePoints = d.MinBaselinePoints
	}
	if c.TrailingBuckets <= 0 {
		c.TrailingBuckets = d.TrailingBuckets
	}
	if c.SilentAfter <= 0 {
		c.SilentAfter = d.SilentAfter
	}
	if c.LagWarn <= 0 {
		c.LagWarn = d.LagWarn
	}
	if c.TopAttacks <= 0 {
		c.TopAttacks = d.TopAttacks
	}
	if c.QuietMaxAttackShare <= 0 {
		c.QuietMaxAttackShare = d.QuietMaxAttackShare
	}
	return c
}

// BucketFor returns the bucket size used for a window of length d: a
// minute up to 30 minutes (a demo run), five minutes up to six hours, an
// hour above.
func BucketFor(d time.Duration) time.Duration {
	switch {
	case d <= 30*time.Minute:
		return time.Minute
	case d <= 6*time.Hour:
		return 5 * time.Minute
	}
	return time.Hour
}

// SeriesWindow returns the window that just covers series: from its first
// minute to the end of its last, shown in loc. It is the window of a
// report on everything a run (e.g. the demo) processed. For an empty
// series it is the current minute.
func SeriesWindow(series []Minute, loc *time.Location) Window {
	if len(series) == 0 {
		now := time.Now().UTC().Truncate(time.Minute)
		return Window{Start: now, End: now.Add(time.Minute), Location: loc}
	}
	w := Window{Location: loc}
	for i, m := range series {
		if i == 0 || m.Time.Before(w.Start) {
			w.Start = m.Time
		}
		if end := m.Time.Add(time.Minute); end.After(w.End) {
			w.End = end
		}
	}
	return w
}

// History returns how far before a window's start the series given to
// Build should reach for the baseline.
func (c Config) History() time.Duration {
	c = c.withDefaults()
	return time.Duration(c.BaselineDays)*24*time.Hour + time.Hour
}

// MarshalJSON writes the durations as strings ("5m0s").
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config
	return json.Marshal(struct {
		plain
		Bucket      Duration `json:"bucket"`
		SilentAfter Duration `json:"silent_after"`
		LagWarn     Duration `json:"lag_warn"`
	}{plain(c), Duration(c.Bucket), Duration(c.SilentAfter), Duration(c.LagWarn)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *Config) UnmarshalJSON(b []byte) error {
	type plain Config
	v := struct {
		*plain
		Bucket      Duration `json:"bucket"`
		SilentAfter Duration `json:"silent_after"`
		LagWarn     Duration `json:"lag_warn"`
	}{plain: (*plain)(c)}
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("report config: %w", err)
	}
	c.Bucket, c.SilentAfter, c.LagWarn = time.Duration(v.Bucket), time.Duration(v.SilentAfter), time.Duration(v.LagWarn)
	return nil
}
