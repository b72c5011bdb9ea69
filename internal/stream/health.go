package stream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrStalled is wrapped by Health's error when the detector has made no
// progress for Options.StallTimeout.
var ErrStalled = errors.New("detector stalled")

// health tracks whether a detector makes progress. Progress is a committed
// transaction, or a lag check that finds no record waiting in the
// partitions the detector owns. Errors come from the Kafka client's hooks
// (dial failures, group management errors), from fetches and from lag
// checks; each is remembered until the next progress.
type health struct {
	mu       sync.Mutex
	progress time.Time // last progress
	commit   time.Time // last committed transaction
	err      error     // last error since progress
	errAt    time.Time
	warned   time.Time // last "no progress" warning
	joined   bool      // the session has an assignment (possibly empty)
	owned    map[int32]bool
	waiting  int64 // records waiting in owned partitions, as of the last lag check
}

func (h *health) reset(now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.progress = now
	h.joined = false
	clear(h.owned)
}

func (h *health) noteErr(err error) {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.err, h.errAt = err, time.Now()
}

func (h *health) noteCommit(now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.progress, h.commit, h.err = now, now, nil
}

func (h *health) assign(ps []int32, add bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.owned == nil {
		h.owned = map[int32]bool{}
	}
	if add {
		h.joined = true
	}
	for _, p := range ps {
		if add {
			h.owned[p] = true
		} else {
			delete(h.owned, p)
		}
	}
}

func (h *health) ownedPartitions() (joined bool, ps []int32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for p := range h.owned {
		ps = append(ps, p)
	}
	return h.joined, ps
}

// status returns the error to report: nil while the detector makes
// progress, ErrStalled (wrapping the last error) after stall without it.
func (h *health) status(now time.Time, stall time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	since := now.Sub(h.progress)
	if since <= stall {
		return nil
	}
	if h.err != nil {
		return fmt.Errorf("%w: no progress for %s (%d records waiting): %w", ErrStalled, since.Round(time.Second), h.waiting, h.err)
	}
	return fmt.Errorf("%w: no progress for %s (%d records waiting)", ErrStalled, since.Round(time.Second), h.waiting)
}

// Health returns nil while the detector makes progress, and an error
// wrapping ErrStalled once it has gone Options.StallTimeout without a
// committed transaction while records waited for it (or while it could not
// tell, because Kafka was unreachable). It is safe to call from any
// goroutine, e.g. a health endpoint.
func (d *Detector) Health() error {
	return d.health.status(time.Now(), d.opts.StallTimeout)
}

// hooks feeds client events into the detector's health.
type hooks struct{ d *Detector }

var (
	_ kgo.HookBrokerConnect           = hooks{}
	_ kgo.HookGroupManageError        = hooks{}
	_ kgo.HookBrokerE2E               = hooks{}
	_ kgo.HookProduceRecordUnbuffered = hooks{}
)

// OnBrokerConnect notes failed dials ("connection refused").
func (h hooks) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		h.d.noteErr(fmt.Errorf("broker %s: %w", net.JoinHostPort(meta.Host, fmt.Sprint(meta.Port)), err))
	}
}

// OnGroupManageError notes errors of the consumer group session (such as a
// coordinator that keeps answering NOT_COORDINATOR).
func (h hooks) OnGroupManageError(err error) { h.d.noteErr(fmt.Errorf("consumer group: %w", err)) }

// OnBrokerE2E notes failed requests (connection lost mid-request).
func (h hooks) OnBrokerE2E(meta kgo.BrokerMetadata, _ int16, e kgo.BrokerE2E) {
	if err := e.Err(); err != nil {
		h.d.noteErr(fmt.Errorf("broker %s: %w", net.JoinHostPort(meta.Host, fmt.Sprint(meta.Port)), err))
	}
}

// OnProduceRecordUnbuffered notes output records that failed.
func (h hooks) OnProduceRecordUnbuffered(r *kgo.Record, err error) {
	if err != nil {
		h.d.noteErr(fmt.Errorf("produce to %s: %w", r.Topic, err))
	}
}

// noteErr remembers err for Health and warns at once if no warning was
// given since the last progress.
func (d *Detector) noteErr(err error) {
	d.health.noteErr(err)
	d.warnIfStuck(time.Now(), false)
}

// warnIfStuck logs a warning naming the last error when the detector has an
// error since its last progress, at most once per CheckInterval (or once
// after each progress, when first is false). It also updates the stalled
// gauge.
func (d *Detector) warnIfStuck(now time.Time, periodic bool) {
	h := &d.health
	h.mu.Lock()
	err, since, waiting := h.err, now.Sub(h.progress), h.waiting
	due := err != nil && (h.warned.Before(h.progress) || (periodic && now.Sub(h.warned) >= d.opts.CheckInterval))
	if due {
		h.warned = now
	}
	h.mu.Unlock()
	stalled := since > d.opts.StallTimeout
	if stalled {
		d.m.stalled.Set(1)
	} else {
		d.m.stalled.Set(0)
	}
	if !due {
		return
	}
	d.log.Warn("detector making no progress", "err", err, "since_progress", since.Round(100*time.Millisecond),
		"records_waiting", waiting, "stalled", stalled)
}

// watch checks the detector's progress every second and measures its lag
// every CheckInterval until ctx ends.
func (d *Detector) watch(ctx context.Context, cl func() *kgo.Client) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastLag time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if now.Sub(lastLag) >= d.opts.CheckInterval {
				lastLag = now
				if c := cl(); c != nil {
					d.checkLag(ctx, c)
				}
			}
			d.warnIfStuck(time.Now(), true)
		}
	}
}

// checkLag measures the records waiting in the partitions this detector
// owns, from the topic's end offsets and the group's committed offsets. A
// detector that has joined its group and has none waiting is making
// progress.
func (d *Detector) checkLag(ctx context.Context, cl *kgo.Client) {
	joined, owned := d.health.ownedPartitions()
	ctx, cancel := context.WithTimeout(ctx, d.opts.CheckInterval)
	defer cancel()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, d.opts.Topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		d.noteErr(fmt.Errorf("lag check: end offsets: %w", err))
		return
	}
	var waiting int64
	if len(owned) > 0 {
		offs, err := adm.FetchOffsets(ctx, d.opts.Group)
		if err == nil {
			err = offs.Error()
		}
		if err != nil {
			d.noteErr(fmt.Errorf("lag check: committed offsets: %w", err))
			return
		}
		for _, p := range owned {
			end, ok := ends.Lookup(d.opts.Topic, p)
			if !ok {
				continue
			}
			at := int64(0)
			if o, ok := offs.Lookup(d.opts.Topic, p); ok && o.At >= 0 {
				at = o.At
			}
			lag := max(0, end.Offset-at)
			waiting += lag
			d.m.setLag(p, lag)
		}
	}
	d.m.waiting.Set(float64(waiting))
	h := &d.health
	h.mu.Lock()
	defer h.mu.Unlock()
	h.waiting = waiting
	if joined && waiting == 0 {
		h.progress, h.err = time.Now(), nil
	}
}
