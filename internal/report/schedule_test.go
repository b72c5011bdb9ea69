package report

import (
	"testing"
	"time"
)

func TestScheduleBoundaries(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name          string
		s             Schedule
		t, last, next string
	}{
		{"hourly", Schedule{Every: time.Hour}, "2026-11-26T14:20:00Z", "2026-11-26T14:00:00Z", "2026-11-26T15:00:00Z"},
		{"hourly on the boundary", Schedule{Every: time.Hour}, "2026-11-26T14:00:00Z", "2026-11-26T14:00:00Z", "2026-11-26T15:00:00Z"},
		{"daily midnight Berlin", Schedule{Every: 24 * time.Hour, Location: berlin}, "2026-11-26T14:20:00Z", "2026-11-25T23:00:00Z", "2026-11-26T23:00:00Z"},
		{"daily at 06:30 Berlin, before", Schedule{Every: 24 * time.Hour, At: 6*time.Hour + 30*time.Minute, Location: berlin}, "2026-11-26T05:00:00Z", "2026-11-25T05:30:00Z", "2026-11-26T05:30:00Z"},
		{"daily across DST end", Schedule{Every: 24 * time.Hour, Location: berlin}, "2026-10-25T12:00:00Z", "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z"}, // a 25-hour day,
		{"hourly across DST end", Schedule{Every: time.Hour, Location: berlin}, "2026-10-25T00:30:00Z", "2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z"},
		{"15 minutes", Schedule{Every: 15 * time.Minute}, "2026-11-26T14:20:00Z", "2026-11-26T14:15:00Z", "2026-11-26T14:30:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.Last(utc(tc.t)); !got.Equal(utc(tc.last)) {
				t.Errorf("Last(%s) = %v, want %s", tc.t, got.UTC(), tc.last)
			}
			if got := tc.s.Next(utc(tc.t)); !got.Equal(utc(tc.next)) {
				t.Errorf("Next(%s) = %v, want %s", tc.t, got.UTC(), tc.next)
			}
		})
	}
	for _, bad := range []Schedule{{Every: 7 * time.Hour}, {Every: 48 * time.Hour}, {Every: time.Hour, At: 25 * time.Hour}, {}} {
		if bad.Validate() == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}
