package record

import (
	"strconv"
)

// Identity names the connection a record describes, when its source knows it
// (records extracted from packets or Zeek logs carry it; KDD files do not).
// In JSON it is read from and written as the top-level keys "ts", "src_ip",
// "src_port", "dst_ip", "dst_port" and "uid" beside the features.
type Identity struct {
	// TS is the connection's start in seconds since the Unix epoch; 0 when
	// unknown.
	TS float64
	// SrcIP and DstIP are the originator's and the responder's addresses in
	// their text form; empty when unknown.
	SrcIP, DstIP string
	// SrcPort and DstPort are the ports (ICMP: type and code as Zeek gives
	// them); -1 when unknown.
	SrcPort, DstPort int32
	// UID is the connection's identifier (Zeek's uid, or the extractor's);
	// empty when unknown.
	UID string
}

// Known reports whether any part of the identity is known.
func (id Identity) Known() bool {
	return id.SrcIP != "" || id.DstIP != "" || id.UID != "" || id.TS != 0
}

// setIdentity stores an identity key's value in r.ID; done is false for
// any other key. null leaves the part unknown.
func (r *Record) setIdentity(key []byte, vk jsonKind, v []byte) (done bool, err error) {
	switch string(key) {
	case "ts", "src_port", "dst_port":
		if vk == jsonNull {
			return true, nil
		}
		if vk != jsonNumber && vk != jsonString {
			return true, &FieldError{Field: string(key), Value: clip(v), Err: ErrType, Detail: "want a number, got " + kindNames[vk]}
		}
		x, ok := parseNumber(v)
		if !ok {
			return true, &FieldError{Field: string(key), Value: clip(v), Err: ErrNotNumber}
		}
		if key[0] == 't' {
			if x < 0 || x > 1e11 {
				return true, &FieldError{Field: "ts", Value: clip(v), Err: ErrOverflow, Detail: "want seconds since the epoch"}
			}
			r.ID.TS = x
			return true, nil
		}
		if x < 0 || x > 65535 || x != float64(int32(x)) {
			return true, &FieldError{Field: string(key), Value: clip(v), Err: ErrOverflow, Detail: "want a port 0-65535"}
		}
		if key[0] == 's' {
			r.ID.SrcPort = int32(x)
		} else {
			r.ID.DstPort = int32(x)
		}
		return true, nil
	case "src_ip", "dst_ip", "uid":
		if vk == jsonNull {
			return true, nil
		}
		if vk != jsonString {
			return true, &FieldError{Field: string(key), Value: clip(v), Err: ErrType, Detail: "want a string, got " + kindNames[vk]}
		}
		if len(v) > 128 {
			return true, &FieldError{Field: string(key), Value: clip(v), Err: ErrOverflow, Detail: "longer than 128 bytes"}
		}
		s := string(v)
		switch key[0] {
		case 's':
			r.ID.SrcIP = s
		case 'd':
			r.ID.DstIP = s
		default:
			r.ID.UID = s
		}
		return true, nil
	}
	return false, nil
}

// AppendJSONIdentity appends the known parts of id as JSON members
// (each preceded by a comma): "ts", "src_ip", "src_port", "dst_ip",
// "dst_port", "uid".
func AppendJSONIdentity(b []byte, id Identity) []byte {
	if id.TS != 0 {
		b = append(b, `,"ts":`...)
		b = strconv.AppendFloat(b, id.TS, 'f', -1, 64)
	}
	if id.SrcIP != "" {
		b = append(b, `,"src_ip":`...)
		b = AppendJSONString(b, id.SrcIP)
	}
	if id.SrcPort >= 0 {
		b = append(b, `,"src_port":`...)
		b = strconv.AppendInt(b, int64(id.SrcPort), 10)
	}
	if id.DstIP != "" {
		b = append(b, `,"dst_ip":`...)
		b = AppendJSONString(b, id.DstIP)
	}
	if id.DstPort >= 0 {
		b = append(b, `,"dst_port":`...)
		b = strconv.AppendInt(b, int64(id.DstPort), 10)
	}
	if id.UID != "" {
		b = append(b, `,"uid":`...)
		b = AppendJSONString(b, id.UID)
	}
	return b
}
