package capture

import (
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNoPacket is returned by Live.Next when no packet came within the
// poll interval; the caller checks its context and calls Next again.
var ErrNoPacket = errors.New("no packet within the poll interval")

// LiveStats are the kernel's counters of a live capture since it opened.
type LiveStats struct {
	// Packets is the number of packets the kernel passed to the socket.
	Packets uint64
	// Drops is the number it dropped because the socket's buffer was full.
	Drops uint64
}

// Live captures the frames of one network interface through an AF_PACKET
// socket (pure Go; needs CAP_NET_RAW). Frames are time-stamped when read.
// On a loopback interface each packet is seen once (the kernel shows it
// outgoing and incoming; the outgoing copy is skipped). A Live is not safe
// for concurrent use, except Stats.
type Live struct {
	fd       int
	buf      []byte
	link     int
	loopback bool
	stats    LiveStats
}

// OpenLive opens a capture on the named interface. Frames longer than
// snaplen bytes are cut; poll is how long Next waits for a packet.
func OpenLive(iface string, snaplen int, poll time.Duration) (*Live, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("capture on %s: %w", iface, err)
	}
	proto := htons(unix.ETH_P_ALL)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(proto))
	if err != nil {
		return nil, fmt.Errorf("capture on %s: AF_PACKET socket: %w", iface, err)
	}
	l := &Live{fd: fd, buf: make([]byte, max(snaplen, 64)), link: 1, loopback: ifi.Flags&net.FlagLoopback != 0}
	if len(ifi.HardwareAddr) == 0 && !l.loopback {
		l.link = 101 // raw IP (tun devices and the like)
	}
	fail := func(what string, err error) (*Live, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("capture on %s: %s: %w", iface, what, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
		return fail("bind", err)
	}
	tv := unix.NsecToTimeval(int64(max(poll, time.Millisecond)))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fail("receive timeout", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 16<<20)
	// Reset the kernel's counters: they count from here.
	_, _ = unix.GetsockoptTpacketStats(fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	return l, nil
}

func htons(x uint16) uint16 { return x<<8 | x>>8 }

// Next returns the next frame, ErrNoPacket after the poll interval without
// one, or the socket's error.
func (l *Live) Next() (Frame, error) {
	for {
		n, from, err := unix.Recvfrom(l.fd, l.buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				return Frame{}, ErrNoPacket
			}
			return Frame{}, fmt.Errorf("capture: %w", err)
		}
		if sll, ok := from.(*unix.SockaddrLinklayer); ok && l.loopback && sll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		return Frame{Data: l.buf[:min(n, len(l.buf))], TS: time.Now().UnixNano(), Link: l.link}, nil
	}
}

// Stats reads the kernel's counters (packets passed and dropped) and
// returns their totals since OpenLive.
func (l *Live) Stats() (LiveStats, error) {
	s, err := unix.GetsockoptTpacketStats(l.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return l.stats, fmt.Errorf("capture statistics: %w", err)
	}
	l.stats.Packets += uint64(s.Packets)
	l.stats.Drops += uint64(s.Drops)
	return l.stats, nil
}

// Close closes the socket.
func (l *Live) Close() error { return unix.Close(l.fd) }
