package sensor

import (
	"context"
	"errors"
	"time"

	"github.com/netsentinel/netsentinel/internal/capture"
	"github.com/netsentinel/netsentinel/internal/conntrack"
)

// LiveSource is a live capture (capture.Live).
type LiveSource interface {
	Next() (capture.Frame, error)
	Stats() (capture.LiveStats, error)
}

// Capture publishes the connections of a live capture until ctx is done;
// then it reads the packets already captured, finishes the open
// connections, publishes them and returns nil.
// The kernel's drop counter is read at every commit (Stats().Kernel) and
// logged when it grows.
func (s *Sensor) Capture(ctx context.Context, src LiveSource) error {
	tr := conntrack.New(s.opt.Tracker, s.add)
	var drops uint64
	commit := func(ctx context.Context, last bool) error {
		s.stats.Tracker = tr.Stats()
		if ks, err := src.Stats(); err == nil {
			s.stats.Kernel = ks
			if ks.Drops > drops {
				s.log.Warn("the kernel dropped packets", "drops", ks.Drops-drops, "total", ks.Drops)
				drops = ks.Drops
			}
		}
		if last {
			return s.commitDetached(ctx, nil)
		}
		return s.commit(ctx, nil)
	}
	for {
		if ctx.Err() != nil {
			// Take in what the socket holds already (for at most a
			// second), then finish every open connection.
			for end := time.Now().Add(time.Second); time.Now().Before(end); {
				f, err := src.Next()
				if err != nil {
					break
				}
				_ = tr.Packet(f.TS, f.Link, f.Data)
			}
			tr.Flush()
			return commit(ctx, true)
		}
		f, err := src.Next()
		switch {
		case err == nil:
			_ = tr.Packet(f.TS, f.Link, f.Data)
		case errors.Is(err, capture.ErrNoPacket):
			tr.Advance(time.Now().UnixNano())
		default:
			tr.Flush()
			return errors.Join(err, commit(ctx, true))
		}
		if ctx.Err() == nil && s.due() {
			if err := commit(ctx, false); err != nil {
				return err
			}
		}
	}
}
