package conntrack

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// Link types (pcap LINKTYPE_* values) that Decode understands.
const (
	LinkNull      = 0   // BSD loopback: 4-byte address family in host order
	LinkEthernet  = 1   // Ethernet II, with 802.1Q / 802.1ad tags
	LinkRaw       = 101 // raw IPv4 or IPv6
	LinkLoop      = 108 // OpenBSD loopback: address family in network order
	LinkLinuxSLL  = 113 // Linux cooked capture v1
	LinkIPv4      = 228 // raw IPv4
	LinkIPv6      = 229 // raw IPv6
	LinkLinuxSLL2 = 276 // Linux cooked capture v2
	linkRawAlt1   = 12  // DLT_RAW on some systems
	linkRawAlt2   = 14  // DLT_RAW on others
)

// IP protocol numbers the tracker follows.
const (
	ProtoICMP   = 1
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoICMPv6 = 58
)

// TCP flag bits.
const (
	FlagFIN = 0x01
	FlagSYN = 0x02
	FlagRST = 0x04
	FlagPSH = 0x08
	FlagACK = 0x10
	FlagURG = 0x20
)

// Errors of Decode. A corrupt packet is counted and skipped; the others are
// counted as traffic the tracker does not follow.
var (
	// ErrCorrupt: a header is truncated or inconsistent.
	ErrCorrupt = errors.New("corrupt packet")
	// ErrNotIP: the frame does not carry IPv4 or IPv6 (ARP, LLDP, ...).
	ErrNotIP = errors.New("not an IP packet")
	// ErrUnsupported: the IP payload is not TCP, UDP, ICMP or ICMPv6, or
	// the link type is unknown.
	ErrUnsupported = errors.New("unsupported protocol")
)

// Packet is one decoded packet. Payload aliases the frame given to Decode.
type Packet struct {
	// TS is the capture time in nanoseconds since the Unix epoch.
	TS       int64
	Src, Dst netip.Addr
	// SrcPort and DstPort are the TCP/UDP ports; for ICMP, SrcPort holds
	// the type and DstPort the code (Zeek's convention).
	SrcPort, DstPort uint16
	// Proto is the transport protocol (ProtoTCP, ...).
	Proto uint8
	// TCPFlags holds the TCP flag bits.
	TCPFlags uint8
	// Len is the transport payload length as the IP header gives it (what
	// the sender sent, even when the capture cut the packet short); for
	// ICMP it is the whole ICMP message.
	Len int
	// Payload is the captured part of the transport payload.
	Payload []byte
	// Frag is set for an IP fragment; then FragID, FragOff (bytes), More
	// and FragData (the fragment's IP payload) describe it and the
	// transport fields are not set.
	Frag     bool
	More     bool
	FragID   uint32
	FragOff  int
	FragData []byte
	// WrongFrag counts the wrong fragments of a reassembled datagram.
	WrongFrag int
}

// Decode decodes a frame of the given link type into p (TS is left as it
// is). It does not allocate.
func Decode(link int, data []byte, p *Packet) error {
	ts := p.TS
	*p = Packet{TS: ts}
	switch link {
	case LinkEthernet:
		if len(data) < 14 {
			return ErrCorrupt
		}
		et := binary.BigEndian.Uint16(data[12:])
		data = data[14:]
		for et == 0x8100 || et == 0x88a8 || et == 0x9100 {
			if len(data) < 4 {
				return ErrCorrupt
			}
			et = binary.BigEndian.Uint16(data[2:])
			data = data[4:]
		}
		return decodeEther(et, data, p)
	case LinkRaw, LinkIPv4, LinkIPv6, linkRawAlt1, linkRawAlt2:
		return decodeIP(data, p)
	case LinkNull, LinkLoop:
		if len(data) < 4 {
			return ErrCorrupt
		}
		af := binary.LittleEndian.Uint32(data)
		if link == LinkLoop || af > 0xffff {
			af = binary.BigEndian.Uint32(data)
		}
		switch af {
		case 2, 24, 28, 30: // AF_INET, AF_INET6 on the BSDs and macOS
		default:
			if af != 10 { // AF_INET6 on Linux
				return ErrNotIP
			}
		}
		return decodeIP(data[4:], p)
	case LinkLinuxSLL:
		if len(data) < 16 {
			return ErrCorrupt
		}
		return decodeEther(binary.BigEndian.Uint16(data[14:]), data[16:], p)
	case LinkLinuxSLL2:
		if len(data) < 20 {
			return ErrCorrupt
		}
		return decodeEther(binary.BigEndian.Uint16(data[0:]), data[20:], p)
	}
	return ErrUnsupported
}

func decodeEther(et uint16, data []byte, p *Packet) error {
	switch et {
	case 0x0800, 0x86dd:
		return decodeIP(data, p)
	}
	return ErrNotIP
}

func decodeIP(data []byte, p *Packet) error {
	if len(data) < 1 {
		return ErrCorrupt
	}
	switch data[0] >> 4 {
	case 4:
		return decodeIPv4(data, p)
	case 6:
		return decodeIPv6(data, p)
	}
	return ErrCorrupt
}

func decodeIPv4(data []byte, p *Packet) error {
	if len(data) < 20 {
		return ErrCorrupt
	}
	ihl := int(data[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(data[2:]))
	if ihl < 20 || len(data) < ihl {
		return ErrCorrupt
	}
	if total == 0 { // segmentation offload on the capturing host
		total = len(data)
	}
	if total < ihl {
		return ErrCorrupt
	}
	p.Src = netip.AddrFrom4([4]byte(data[12:16]))
	p.Dst = netip.AddrFrom4([4]byte(data[16:20]))
	proto := data[9]
	p.Proto = proto
	ff := binary.BigEndian.Uint16(data[6:])
	payload := data[ihl:min(len(data), total)]
	plen := total - ihl
	if ff&0x3fff != 0 { // MF set or offset non-zero
		p.Frag = true
		p.More = ff&0x2000 != 0
		p.FragOff = int(ff&0x1fff) * 8
		p.FragID = uint32(binary.BigEndian.Uint16(data[4:]))
		p.FragData = payload
		p.Len = plen
		return checkProto(proto)
	}
	return decodeTransport(proto, payload, plen, p)
}

func checkProto(proto uint8) error {
	switch proto {
	case ProtoTCP, ProtoUDP, ProtoICMP, ProtoICMPv6:
		return nil
	}
	return ErrUnsupported
}

func decodeIPv6(data []byte, p *Packet) error {
	if len(data) < 40 {
		return ErrCorrupt
	}
	plen := int(binary.BigEndian.Uint16(data[4:]))
	if plen == 0 { // jumbogram or offload
		plen = len(data) - 40
	}
	p.Src = netip.AddrFrom16([16]byte(data[8:24]))
	p.Dst = netip.AddrFrom16([16]byte(data[24:40]))
	next := data[6]
	rest := data[40:min(len(data), 40+plen)]
	for range 8 { // extension headers
		switch next {
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if len(rest) < 8 {
				return ErrCorrupt
			}
			n := (int(rest[1]) + 1) * 8
			if len(rest) < n {
				return ErrCorrupt
			}
			next = rest[0]
			rest = rest[n:]
			plen -= n
		case 44: // fragment
			if len(rest) < 8 {
				return ErrCorrupt
			}
			fo := binary.BigEndian.Uint16(rest[2:])
			p.Proto = rest[0]
			p.Frag = true
			p.More = fo&1 != 0
			p.FragOff = int(fo>>3) * 8
			p.FragID = binary.BigEndian.Uint32(rest[4:])
			p.FragData = rest[8:]
			p.Len = plen - 8
			if p.Len < 0 {
				return ErrCorrupt
			}
			if !p.More && p.FragOff == 0 { // an atomic fragment
				p.Frag = false
				return decodeTransport(p.Proto, p.FragData, p.Len, p)
			}
			return checkProto(p.Proto)
		default:
			p.Proto = next
			if plen < 0 {
				return ErrCorrupt
			}
			return decodeTransport(next, rest, plen, p)
		}
	}
	return ErrUnsupported
}

// decodeTransport decodes the transport header in data (the captured IP
// payload) of an IP payload of plen bytes.
func decodeTransport(proto uint8, data []byte, plen int, p *Packet) error {
	p.Proto = proto
	switch proto {
	case ProtoTCP:
		if len(data) < 20 {
			return ErrCorrupt
		}
		off := int(data[12]>>4) * 4
		if off < 20 || off > plen {
			return ErrCorrupt
		}
		p.SrcPort = binary.BigEndian.Uint16(data)
		p.DstPort = binary.BigEndian.Uint16(data[2:])
		p.TCPFlags = data[13]
		p.Len = plen - off
		if off <= len(data) {
			p.Payload = data[off:]
		}
	case ProtoUDP:
		if len(data) < 8 || plen < 8 {
			return ErrCorrupt
		}
		p.SrcPort = binary.BigEndian.Uint16(data)
		p.DstPort = binary.BigEndian.Uint16(data[2:])
		p.Len = plen - 8
		p.Payload = data[8:]
	case ProtoICMP, ProtoICMPv6:
		if len(data) < 4 || plen < 4 {
			return ErrCorrupt
		}
		p.SrcPort = uint16(data[0])
		p.DstPort = uint16(data[1])
		p.Len = plen
		p.Payload = data
	default:
		return ErrUnsupported
	}
	return nil
}
