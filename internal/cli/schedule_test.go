package cli

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/netsentinel/netsentinel/internal/mail"
	"github.com/netsentinel/netsentinel/internal/report"
)

// recorder is a Produce function that records the windows and when they
// were produced.
type recorder struct {
	mu      sync.Mutex
	windows []report.Window
	at      []time.Time
	fail    int // fail this many calls first
}

func (r *recorder) produce(ctx context.Context, w report.Window) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail > 0 {
		r.fail--
		return errors.New("kafka unreachable")
	}
	r.windows = append(r.windows, w)
	r.at = append(r.at, time.Now())
	return nil
}

func (r *recorder) list() ([]report.Window, []time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]report.Window(nil), r.windows...), append([]time.Time(nil), r.at...)
}

// runFor runs the scheduler for d of fake time and stops it.
func runFor(t *testing.T, s *scheduler, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	time.Sleep(d)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func checkWindows(t *testing.T, got []report.Window, want ...[2]time.Time) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d windows %v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if !got[i].Start.Equal(want[i][0]) || !got[i].End.Equal(want[i][1]) {
			t.Errorf("window %d = %v–%v, want %v–%v", i, got[i].Start, got[i].End, want[i][0], want[i][1])
		}
	}
}

func TestSchedulerAlignment(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The bubble's clock starts at 2000-01-01 00:00 UTC; start at 00:20.
		time.Sleep(20 * time.Minute)
		t0 := time.Now()
		hour := func(h int) time.Time { return t0.Truncate(time.Hour).Add(time.Duration(h) * time.Hour) }
		rec := &recorder{}
		s := &scheduler{
			Schedule: report.Schedule{Every: time.Hour},
			Delay:    2 * time.Minute,
			State:    mail.NewStateFile(filepath.Join(t.TempDir(), mail.StateFileName)),
			Produce:  rec.produce,
		}
		runFor(t, s, 3*time.Hour)
		ws, at := rec.list()
		checkWindows(t, ws, [2]time.Time{hour(0), hour(1)}, [2]time.Time{hour(1), hour(2)}, [2]time.Time{hour(2), hour(3)})
		for i, a := range at {
			if want := hour(i + 1).Add(2 * time.Minute); !a.Equal(want) {
				t.Errorf("report %d produced at %v, want %v", i, a, want)
			}
		}
	})
}

func TestSchedulerDailyAt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		berlin, err := time.LoadLocation("Europe/Berlin")
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{}
		s := &scheduler{
			Schedule: report.Schedule{Every: 24 * time.Hour, At: 6*time.Hour + 30*time.Minute, Location: berlin},
			Delay:    time.Minute,
			State:    mail.NewStateFile(filepath.Join(t.TempDir(), mail.StateFileName)),
			Produce:  rec.produce,
		}
		runFor(t, s, 48*time.Hour)
		ws, at := rec.list()
		d := func(day int) time.Time { return time.Date(1999, 12, 31+day, 6, 30, 0, 0, berlin) }
		checkWindows(t, ws, [2]time.Time{d(0), d(1)}, [2]time.Time{d(1), d(2)})
		if want := d(1).Add(time.Minute); !at[0].Equal(want) {
			t.Errorf("first report at %v, want %v", at[0].In(berlin), want)
		}
	})
}

func TestSchedulerRestartNoDoubleSend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		hour := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
		rec := &recorder{}
		state := mail.NewStateFile(filepath.Join(t.TempDir(), mail.StateFileName))
		s := &scheduler{Schedule: report.Schedule{Every: time.Hour}, Delay: 2 * time.Minute, State: state, Produce: rec.produce}
		runFor(t, s, 2*time.Hour+5*time.Minute) // produces 0–1 and 1–2
		// Restart at once, several times, and run on.
		runFor(t, s, time.Minute)
		runFor(t, s, time.Second)
		runFor(t, s, time.Hour)
		ws, _ := rec.list()
		checkWindows(t, ws, [2]time.Time{hour(0), hour(1)}, [2]time.Time{hour(1), hour(2)}, [2]time.Time{hour(2), hour(3)})
		st, err := state.Load()
		if err != nil || !st.LastEnd.Equal(hour(3)) {
			t.Errorf("state %+v (%v), want last end %v", st, err, hour(3))
		}
	})
}

func TestSchedulerLateAfterDowntime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		hour := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
		rec := &recorder{}
		s := &scheduler{
			Schedule: report.Schedule{Every: time.Hour}, Delay: 2 * time.Minute,
			State: mail.NewStateFile(filepath.Join(t.TempDir(), mail.StateFileName)), Produce: rec.produce,
		}
		runFor(t, s, time.Hour+5*time.Minute) // produces 0–1
		time.Sleep(5 * time.Hour)             // down from 01:05 to 06:05
		restart := time.Now()
		runFor(t, s, 2*time.Hour) // to 08:05
		ws, at := rec.list()
		// One late report for the whole gap, produced at the restart, then
		// the regular ones.
		checkWindows(t, ws, [2]time.Time{hour(0), hour(1)}, [2]time.Time{hour(1), hour(6)},
			[2]time.Time{hour(6), hour(7)}, [2]time.Time{hour(7), hour(8)})
		if !at[1].Equal(restart) {
			t.Errorf("late report produced at %v, want at the restart %v", at[1], restart)
		}
	})
}

func TestSchedulerRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		rec := &recorder{fail: 3}
		var flushes []time.Time
		flushFails := 2
		s := &scheduler{
			Schedule: report.Schedule{Every: time.Hour}, Delay: 2 * time.Minute,
			State:   mail.NewStateFile(filepath.Join(t.TempDir(), mail.StateFileName)),
			Produce: rec.produce,
			Flush: func(ctx context.Context) (int, error) {
				flushes = append(flushes, time.Now())
				if flushFails > 0 {
					flushFails--
					return 0, errors.New("smtp down")
				}
				return 1, nil
			},
			Backoff: mail.Backoff{Initial: time.Minute, Max: 10 * time.Minute},
		}
		runFor(t, s, time.Hour+30*time.Minute)
		ws, at := rec.list()
		checkWindows(t, ws, [2]time.Time{t0, t0.Add(time.Hour)})
		// Failed at 01:02, 01:03, 01:05; produced at 01:09 (waits 1, 2, 4 minutes).
		if want := t0.Add(time.Hour + 9*time.Minute); !at[0].Equal(want) {
			t.Errorf("produced at %v, want %v", at[0].Sub(t0), want.Sub(t0))
		}
		if len(flushes) < 3 {
			t.Errorf("flush called %d times, want retries", len(flushes))
		}
	})
}
