// Package capture reads captured frames: pcap and pcapng files (with
// gopacket's pure-Go pcapgo readers, no libpcap) and, on Linux, live
// traffic from a network interface through an AF_PACKET socket (pure Go),
// with the kernel's drop counter. It hands frames to the caller one at a
// time; it has no goroutines.
package capture

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/gopacket/gopacket/pcapgo"
)

// Frame is one captured frame. Data is only valid until the next call to
// the Source's Next.
type Frame struct {
	Data []byte
	// TS is the capture time in nanoseconds since the Unix epoch.
	TS int64
	// Link is the frame's link type (pcap LINKTYPE_* value).
	Link int
}

// Source yields frames until io.EOF.
type Source interface {
	Next() (Frame, error)
}

// Kind is what the first bytes of an input say it is.
type Kind uint8

const (
	// KindUnknown is neither a capture nor a Zeek log.
	KindUnknown Kind = iota
	// KindPcap is a classic pcap file.
	KindPcap
	// KindPcapNG is a pcapng file.
	KindPcapNG
	// KindGzip is gzip-compressed; look again after decompressing.
	KindGzip
	// KindText is text that may be a Zeek log (TSV or JSON lines).
	KindText
)

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case KindPcap:
		return "pcap"
	case KindPcapNG:
		return "pcapng"
	case KindGzip:
		return "gzip"
	case KindText:
		return "text"
	}
	return "unknown"
}

// Sniff tells from the first bytes of an input (at least 4 are needed)
// what it holds.
func Sniff(b []byte) Kind {
	if len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b {
		return KindGzip
	}
	if len(b) < 4 {
		if len(b) > 0 && (b[0] == '#' || b[0] == '{') {
			return KindText
		}
		return KindUnknown
	}
	switch binary.BigEndian.Uint32(b) {
	case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1:
		return KindPcap
	case 0x0a0d0d0a:
		return KindPcapNG
	}
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	if i < len(b) && (b[i] == '#' || b[i] == '{') {
		return KindText
	}
	return KindUnknown
}

// ErrTruncated is wrapped by Next's error when a file ends inside a packet
// record or a record's framing is corrupt, so that nothing after it can be
// read.
var ErrTruncated = errors.New("capture file truncated or corrupt")

// TruncatedError says where a capture file stopped being readable.
type TruncatedError struct {
	// Packets is the number of whole packets read before.
	Packets uint64
	Err     error
}

func (e *TruncatedError) Error() string {
	return fmt.Sprintf("truncated after %d packets: %v", e.Packets, e.Err)
}

// Unwrap returns the cause.
func (e *TruncatedError) Unwrap() []error { return []error{ErrTruncated, e.Err} }

// pcapSource reads a classic pcap file straight from the bufio.Reader's
// buffer: a frame is a slice of that buffer, so nothing is copied. (pcapgo's
// reader copies each frame once more and builds a time.Time for it, which
// costs a third of extract's time on a capture of small packets.) The
// header is read and checked by pcapgo.NewReader.
type pcapSource struct {
	br      *bufio.Reader
	order   binary.ByteOrder
	nano    bool
	link    int
	packets uint64
	pending int // bytes of the last frame still to discard
}

// maxFrame is the largest capture length accepted (tcpdump's MAXIMUM_SNAPLEN).
const maxFrame = 1 << 18

func (s *pcapSource) Next() (Frame, error) {
	if s.pending > 0 {
		_, _ = s.br.Discard(s.pending)
		s.pending = 0
	}
	h, err := s.br.Peek(16)
	if err != nil {
		if err == io.EOF && len(h) == 0 {
			return Frame{}, io.EOF
		}
		return Frame{}, s.fail(fmt.Errorf("record header: %w", io.ErrUnexpectedEOF))
	}
	sec, frac := s.order.Uint32(h[0:]), s.order.Uint32(h[4:])
	caplen := s.order.Uint32(h[8:])
	if caplen > maxFrame {
		return Frame{}, s.fail(fmt.Errorf("capture length %d over %d bytes", caplen, maxFrame))
	}
	ts := int64(sec) * 1e9
	if s.nano {
		ts += int64(frac)
	} else {
		ts += int64(frac) * 1e3
	}
	_, _ = s.br.Discard(16)
	data, err := s.br.Peek(int(caplen))
	if err != nil {
		return Frame{}, s.fail(fmt.Errorf("packet of %d bytes: %w", caplen, io.ErrUnexpectedEOF))
	}
	s.pending = int(caplen)
	s.packets++
	return Frame{Data: data, TS: ts, Link: s.link}, nil
}

func (s *pcapSource) fail(err error) error {
	return &TruncatedError{Packets: s.packets, Err: err}
}

type ngSource struct {
	r       *pcapgo.NgReader
	packets uint64
}

func (s *ngSource) Next() (Frame, error) {
	data, ci, err := s.r.ZeroCopyReadPacketData()
	if err != nil {
		if err == io.EOF {
			return Frame{}, io.EOF
		}
		return Frame{}, &TruncatedError{Packets: s.packets, Err: err}
	}
	s.packets++
	link := 1
	if iface, err := s.r.Interface(ci.InterfaceIndex); err == nil {
		link = int(iface.LinkType)
	}
	return Frame{Data: data, TS: ci.Timestamp.UnixNano(), Link: link}, nil
}

// OpenFile starts reading a pcap or pcapng file from r (uncompressed; see
// Sniff). It reads the file header; a file that is neither gives an error
// saying so.
func OpenFile(r io.Reader) (Source, error) {
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < 2*maxFrame {
		br = bufio.NewReaderSize(r, 2*maxFrame)
	}
	head, _ := br.Peek(4)
	switch Sniff(head) {
	case KindPcap:
		fh, _ := br.Peek(24)
		pr, err := pcapgo.NewReader(bytes.NewReader(fh))
		if err != nil {
			return nil, fmt.Errorf("pcap header: %w", err)
		}
		_, _ = br.Discard(24)
		var order binary.ByteOrder = binary.LittleEndian
		if m := binary.BigEndian.Uint32(fh); m == 0xa1b2c3d4 || m == 0xa1b23c4d {
			order = binary.BigEndian
		}
		nano := order.Uint32(fh) == 0xa1b23c4d
		// Writers that do not cut packets to the snap length exist; read
		// what the records say (up to maxFrame), as tcpdump does.
		return &pcapSource{br: br, order: order, nano: nano, link: int(pr.LinkType())}, nil
	case KindPcapNG:
		nr, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{SkipUnknownVersion: true})
		if err != nil {
			return nil, fmt.Errorf("pcapng header: %w", err)
		}
		return &ngSource{r: nr}, nil
	}
	return nil, errors.New("not a pcap or pcapng file")
}
