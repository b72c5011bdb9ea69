//go:build !linux

package capture

import (
	"errors"
	"time"
)

// ErrNoPacket is returned by Live.Next when no packet came within the
// poll interval.
var ErrNoPacket = errors.New("no packet within the poll interval")

// LiveStats are the kernel's counters of a live capture.
type LiveStats struct{ Packets, Drops uint64 }

// Live is a live capture; only Linux has one.
type Live struct{}

// OpenLive fails: live capture needs Linux's AF_PACKET.
func OpenLive(iface string, snaplen int, poll time.Duration) (*Live, error) {
	return nil, errors.New("live capture needs Linux (AF_PACKET)")
}

// Next is never reached.
func (l *Live) Next() (Frame, error) { return Frame{}, errors.New("no live capture") }

// Stats is never reached.
func (l *Live) Stats() (LiveStats, error) { return LiveStats{}, nil }

// Close does nothing.
func (l *Live) Close() error { return nil }
