// Package features owns the connection record that netsentinel builds from
// real traffic (Conn: an identity plus those of the 41 KDD'99 features its
// source can show, the others absent) and computes the KDD'99 traffic
// features of a stream of such records (Window): the nine 2-second window
// features and the ten dst_host_* features over the last 100 connections,
// as Lee & Stolfo define them, incrementally and in bounded memory.
//
// The package is pure: no I/O, no goroutines. conntrack (packets) and zeek
// (conn.log) produce Conns; the extract and sensor commands run them through
// a Window and write them with AppendJSON.
package features

import (
	"math"
	"net/netip"
	"strconv"

	"github.com/netsentinel/netsentinel/internal/record"
)

// Conn is one finished connection.
type Conn struct {
	// ID is the connection's identity (start time, addresses, ports, uid).
	ID record.Identity
	// End is the time of the connection's last packet, in nanoseconds since
	// the Unix epoch; the traffic features are computed in order of End.
	End int64
	// Dst is the responder's address, the "destination host" of the
	// traffic features.
	Dst netip.Addr
	// SrcPort is the originator's port (dst_host_same_src_port_rate).
	SrcPort uint16
	// Values holds the feature values in record.Features order; symbolic
	// features hold their vocabulary index (record.Services, ...).
	Values [record.NumFeatures]float64
	// Has has bit i set when feature i is known; a feature whose bit is
	// clear is absent and is not written.
	Has uint64
}

// Set sets feature i to v and marks it present.
func (c *Conn) Set(i int, v float64) {
	c.Values[i] = v
	c.Has |= 1 << i
}

// Present reports whether feature i is known.
func (c *Conn) Present(i int) bool { return c.Has&(1<<i) != 0 }

// SetSymbol sets symbolic feature i to the vocabulary entry name; a name
// outside the vocabulary maps to its catch-all ("other", "OTH").
func (c *Conn) SetSymbol(i int, name string) {
	c.Set(i, float64(symbolIndex(i, name)))
}

// Symbol returns the value of symbolic feature i as text.
func (c *Conn) Symbol(i int) string {
	v := record.Vocabulary(i)
	k := int(c.Values[i])
	if k < 0 || k >= len(v) {
		return ""
	}
	return v[k]
}

var symbolIndexes = func() [3]map[string]int {
	var m [3]map[string]int
	for j, i := range []int{record.ProtocolType, record.Service, record.Flag} {
		m[j] = map[string]int{}
		for k, s := range record.Vocabulary(i) {
			m[j][s] = k
		}
	}
	return m
}()

func symbolIndex(i int, name string) int {
	m := symbolIndexes[i-record.ProtocolType]
	if k, ok := m[name]; ok {
		return k
	}
	switch i {
	case record.Service:
		return m["other"]
	case record.Flag:
		return m["OTH"]
	}
	return 0
}

// ServiceIndex returns the index of a KDD service name in record.Services
// and whether the name is in the vocabulary.
func ServiceIndex(name string) (int, bool) {
	k, ok := symbolIndexes[record.Service-record.ProtocolType][name]
	return k, ok
}

// AppendJSON appends c as one JSON object: the identity keys ts, src_ip,
// src_port, dst_ip, dst_port and uid (each only when known), then the
// present features under their KDD names in schema order. Rates are written
// with two decimals as in the KDD files.
func (c *Conn) AppendJSON(b []byte) []byte {
	b = append(b, '{')
	first := true
	key := func(k string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, '"', ':')
	}
	id := &c.ID
	if id.TS != 0 {
		key("ts")
		b = strconv.AppendFloat(b, id.TS, 'f', 6, 64)
	}
	if id.SrcIP != "" {
		key("src_ip")
		b = record.AppendJSONString(b, id.SrcIP)
	}
	if id.SrcPort >= 0 {
		key("src_port")
		b = strconv.AppendInt(b, int64(id.SrcPort), 10)
	}
	if id.DstIP != "" {
		key("dst_ip")
		b = record.AppendJSONString(b, id.DstIP)
	}
	if id.DstPort >= 0 {
		key("dst_port")
		b = strconv.AppendInt(b, int64(id.DstPort), 10)
	}
	if id.UID != "" {
		key("uid")
		b = record.AppendJSONString(b, id.UID)
	}
	for i, f := range record.Features {
		if !c.Present(i) {
			continue
		}
		key(f.Name)
		v := c.Values[i]
		switch f.Kind {
		case record.KindSymbolic:
			b = record.AppendJSONString(b, c.Symbol(i))
		case record.KindRate:
			b = appendRate(b, v)
		case record.KindContinuous:
			if v == math.Trunc(v) && v < 1<<53 {
				b = strconv.AppendInt(b, int64(v), 10)
			} else {
				b = strconv.AppendFloat(b, v, 'f', -1, 64)
			}
		default:
			b = strconv.AppendInt(b, int64(v), 10)
		}
	}
	return append(b, '}')
}

// appendRate appends a rate in [0, 1] with two decimals ("0.07"), without
// strconv's general float formatting, which is most of the cost of a
// record otherwise.
func appendRate(b []byte, v float64) []byte {
	if !(v >= 0 && v <= 1) {
		return strconv.AppendFloat(b, v, 'f', 2, 64)
	}
	h := int(math.Round(v * 100))
	return append(b, byte('0'+h/100), '.', byte('0'+h/10%10), byte('0'+h%10))
}
