// Package capture reads captured frames: pcap and pcapng files (with
// gopacket's pure-Go pcapgo readers, no libpcap) and, on Linux, live
// traffic from a network interface through an AF_PACKET socket (pure Go),
// with the kernel's drop counter. It hands frames to the caller one at a
// time; it has no goroutines.
package capture

import (
	"bufio"
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

type pcapSource struct {
	r       *pcapgo.Reader
	link    int
	packets uint64
}

func (s *pcapSource) Next() (Frame, error) {
	data, ci, err := s.r.ZeroCopyReadPacketData()
	if err != nil {
		return Frame{}, s.fail(err)
	}
	s.packets++
	return Frame{Data: data, TS: ci.Timestamp.UnixNano(), Link: s.link}, nil
}

func (s *pcapSource) fail(err error) error {
	if err == io.EOF {
		return io.EOF
	}
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
	if !ok {
		br = bufio.NewReaderSize(r, 1<<20)
	}
	head, _ := br.Peek(4)
	switch Sniff(head) {
	case KindPcap:
		pr, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("pcap header: %w", err)
		}
		// Writers that do not cut packets to the snap length exist; read
		// what the records say, as tcpdump does.
		pr.SetSnaplen(1 << 18)
		return &pcapSource{r: pr, link: int(pr.LinkType())}, nil
	case KindPcapNG:
		nr, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{SkipUnknownVersion: true})
		if err != nil {
			return nil, fmt.Errorf("pcapng header: %w", err)
		}
		return &ngSource{r: nr}, nil
	}
	return nil, errors.New("not a pcap or pcapng file")
}
