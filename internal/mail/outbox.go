package mail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/netsentinel/netsentinel/internal/report"
)

// OutboxDir is the directory, inside an output directory, of reports
// waiting for delivery.
const OutboxDir = "outbox"

// DeliverFunc delivers one report, e.g. by mail.
type DeliverFunc func(ctx context.Context, rep *report.Report) error

// Outbox keeps reports on disk until they are delivered. Enqueue stores a
// report's summary in Dir/outbox/<id>.json; Flush delivers the queued
// reports oldest first, records each success in Dir/state.json and only
// then removes it from the outbox. A report is thus never lost; it is sent
// twice only if the process dies between the server accepting it and the
// state file being written (each message carries a Message-ID derived from
// the window, so mail clients can tell).
type Outbox struct {
	// Dir is the output directory.
	Dir string
	// State is the state file; nil means Dir/state.json.
	State *StateFile
	// Deliver sends a report.
	Deliver DeliverFunc
	// Logger receives progress; nil discards.
	Logger *slog.Logger
}

func (o *Outbox) state() *StateFile {
	if o.State == nil {
		o.State = NewStateFile(filepath.Join(o.Dir, StateFileName))
	}
	return o.State
}

func (o *Outbox) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

// Enqueue stores rep for delivery and reports whether it did: a report
// already delivered (by ID) is not queued again.
func (o *Outbox) Enqueue(rep *report.Report) (bool, error) {
	s, err := o.state().Load()
	if err != nil {
		return false, err
	}
	if s.wasSent(rep.ID) {
		o.logger().Info("report already sent", "id", rep.ID)
		return false, nil
	}
	dir := filepath.Join(o.Dir, OutboxDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("outbox: %w", err)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		return false, fmt.Errorf("outbox: %w", err)
	}
	return true, report.WriteFile(filepath.Join(dir, rep.ID+".json"), b)
}

// Pending returns the IDs of the reports waiting in the outbox, oldest
// first.
func (o *Outbox) Pending() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(o.Dir, OutboxDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if name := e.Name(); !e.IsDir() && strings.HasSuffix(name, ".json") && !strings.HasPrefix(name, ".") {
			ids = append(ids, strings.TrimSuffix(name, ".json"))
		}
	}
	slices.Sort(ids) // IDs start with the window's start time
	return ids, nil
}

// Flush tries to deliver every queued report once, oldest first, and stops
// at the first failure, which it returns. It returns the number delivered.
func (o *Outbox) Flush(ctx context.Context) (int, error) {
	ids, err := o.Pending()
	if err != nil {
		return 0, err
	}
	sent := 0
	for _, id := range ids {
		path := filepath.Join(o.Dir, OutboxDir, id+".json")
		s, err := o.state().Load()
		if err != nil {
			return sent, err
		}
		if s.wasSent(id) {
			// Delivered, but the process stopped before removing it.
			os.Remove(path)
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return sent, fmt.Errorf("outbox: %w", err)
		}
		var rep report.Report
		if err := json.Unmarshal(b, &rep); err != nil {
			// A corrupt entry would block the queue forever: set it aside.
			o.logger().Error("outbox entry unreadable, moved aside", "id", id, "err", err)
			os.Rename(path, path+".bad")
			continue
		}
		if err := o.Deliver(ctx, &rep); err != nil {
			return sent, fmt.Errorf("deliver report %s: %w", id, err)
		}
		if err := o.state().Update(func(s *State) error {
			s.Sent = append(s.Sent, Delivery{ID: id, At: time.Now().UTC()})
			return nil
		}); err != nil {
			return sent, err
		}
		if err := os.Remove(path); err != nil {
			return sent, fmt.Errorf("outbox: %w", err)
		}
		sent++
		o.logger().Info("report delivered", "id", id)
	}
	return sent, nil
}

// Backoff is the retry schedule of FlushRetry: the wait doubles from
// Initial up to Max.
type Backoff struct {
	Initial, Max time.Duration
}

// Next returns the wait after a wait of d: Initial (5s when unset) after
// none, then double the last, capped at Max.
func (b Backoff) Next(d time.Duration) time.Duration {
	if d <= 0 {
		if b.Initial <= 0 {
			return 5 * time.Second
		}
		return b.Initial
	}
	d *= 2
	if b.Max > 0 && d > b.Max {
		d = b.Max
	}
	return d
}

// FlushRetry calls Flush until the outbox is empty, attempts failures
// have happened (0: no limit) or ctx is done, waiting between attempts as
// b says. It returns the last error when the outbox is not empty.
func (o *Outbox) FlushRetry(ctx context.Context, b Backoff, attempts int) error {
	var wait time.Duration
	for try := 1; ; try++ {
		_, err := o.Flush(ctx)
		if err == nil {
			return nil
		}
		if attempts > 0 && try >= attempts {
			return err
		}
		wait = b.Next(wait)
		o.logger().Warn("delivery failed, will retry", "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (report kept in the outbox)", err)
		case <-t.C:
		}
	}
}
