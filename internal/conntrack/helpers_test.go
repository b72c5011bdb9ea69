package conntrack

import (
	"net"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/netsentinel/netsentinel/internal/features"
	"github.com/netsentinel/netsentinel/internal/record"
)

// pkt describes a test packet; frames are serialised with gopacket.
type pkt struct {
	at       time.Duration // since t0
	src, dst string
	sport    uint16
	dport    uint16
	proto    string // "tcp" (default), "udp", "icmp", "icmp6"
	flags    string // TCP flags: S A F R P U
	payload  string
	icmpType uint8
	icmpCode uint8
	vlan     bool
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func frame(t testing.TB, p pkt) []byte {
	t.Helper()
	src, dst := net.ParseIP(p.src), net.ParseIP(p.dst)
	v6 := src.To4() == nil
	var ls []gopacket.SerializableLayer
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	if v6 {
		eth.EthernetType = layers.EthernetTypeIPv6
	}
	ls = append(ls, eth)
	if p.vlan {
		eth.EthernetType = layers.EthernetTypeDot1Q
		et := layers.EthernetTypeIPv4
		if v6 {
			et = layers.EthernetTypeIPv6
		}
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: 7, Type: et})
	}
	var nl gopacket.NetworkLayer
	ipProto := layers.IPProtocolTCP
	switch p.proto {
	case "udp":
		ipProto = layers.IPProtocolUDP
	case "icmp":
		ipProto = layers.IPProtocolICMPv4
	case "icmp6":
		ipProto = layers.IPProtocolICMPv6
	}
	if v6 {
		ip := &layers.IPv6{Version: 6, HopLimit: 64, SrcIP: src, DstIP: dst, NextHeader: ipProto}
		nl = ip
		ls = append(ls, ip)
	} else {
		ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: src.To4(), DstIP: dst.To4(), Protocol: ipProto}
		nl = ip
		ls = append(ls, ip)
	}
	switch p.proto {
	case "udp":
		u := &layers.UDP{SrcPort: layers.UDPPort(p.sport), DstPort: layers.UDPPort(p.dport)}
		_ = u.SetNetworkLayerForChecksum(nl)
		ls = append(ls, u)
	case "icmp":
		ls = append(ls, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(p.icmpType, p.icmpCode), Id: 1})
	case "icmp6":
		ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(p.icmpType, p.icmpCode)}
		_ = ic.SetNetworkLayerForChecksum(nl)
		ls = append(ls, ic)
	default:
		tc := &layers.TCP{SrcPort: layers.TCPPort(p.sport), DstPort: layers.TCPPort(p.dport), Seq: 100, Window: 1024}
		for _, f := range p.flags {
			switch f {
			case 'S':
				tc.SYN = true
			case 'A':
				tc.ACK = true
			case 'F':
				tc.FIN = true
			case 'R':
				tc.RST = true
			case 'P':
				tc.PSH = true
			case 'U':
				tc.URG = true
			}
		}
		_ = tc.SetNetworkLayerForChecksum(nl)
		ls = append(ls, tc)
	}
	if p.payload != "" {
		ls = append(ls, gopacket.Payload(p.payload))
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatalf("serialise %+v: %v", p, err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// run feeds the packets to a new tracker and returns the records.
func run(t testing.TB, cfg Config, ps []pkt) ([]features.Conn, *Tracker) {
	t.Helper()
	var out []features.Conn
	tr := New(cfg, func(c *features.Conn) { out = append(out, *c) })
	for _, p := range ps {
		if err := tr.Packet(t0.Add(p.at).UnixNano(), LinkEthernet, frame(t, p)); err != nil {
			t.Fatalf("packet %+v: %v", p, err)
		}
	}
	tr.Flush()
	return out, tr
}

func sym(c *features.Conn, i int) string { return c.Symbol(i) }

func val(c *features.Conn, name string) float64 {
	return c.Values[featureIndex(name)]
}

func featureIndex(name string) int {
	for i, f := range record.Features {
		if f.Name == name {
			return i
		}
	}
	panic(name)
}
