package record

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// AppendCSV appends r as a CSV line without line end: the 41 features, then
// the label if it is set, then the difficulty if it is set (>= 0) as well.
// The label is written as it is; a decoded label is always safe, one set by
// hand must not hold a comma or line end. A service or flag the vocabulary
// lacks is written as the input gave it (UnseenService, UnseenFlag), or as
// "other" / "OTH" if that text cannot be a CSV field.
func (r *Record) AppendCSV(dst []byte) []byte {
	for i := range NumFeatures {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = r.appendValue(dst, i)
	}
	if r.Label != "" {
		dst = append(dst, ',')
		dst = append(dst, r.Label...)
		if r.Difficulty >= 0 {
			dst = append(dst, ',')
			dst = strconv.AppendInt(dst, int64(r.Difficulty), 10)
		}
	}
	return dst
}

// AppendJSON appends r as a JSON object keyed by feature name, with the
// known parts of its identity (see Identity) before the features, without
// the features in r.Absent, and with "label" and "difficulty" when they
// are set.
func (r *Record) AppendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	start := len(dst)
	if r.ID.Known() || r.ID.SrcPort >= 0 || r.ID.DstPort >= 0 {
		dst = AppendJSONIdentity(dst, r.ID)
		if len(dst) > start {
			dst = append(dst[:start], dst[start+1:]...) // the first member's comma
		}
	}
	for i, f := range Features {
		if r.Absent&(1<<i) != 0 {
			continue
		}
		if len(dst) > start {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, f.Name...)
		dst = append(dst, '"', ':')
		if f.Kind == KindSymbolic {
			dst = AppendJSONString(dst, r.written(i))
			continue
		}
		dst = r.appendValue(dst, i)
	}
	if r.Label != "" {
		dst = append(dst, `,"label":`...)
		dst = AppendJSONString(dst, r.Label)
	}
	if r.Difficulty >= 0 {
		dst = append(dst, `,"difficulty":`...)
		dst = strconv.AppendInt(dst, int64(r.Difficulty), 10)
	}
	return append(dst, '}')
}

func (r *Record) appendValue(dst []byte, i int) []byte {
	if Features[i].Kind == KindSymbolic {
		v := r.written(i)
		if strings.ContainsAny(v, ",\r\n") {
			v = r.Symbol(i) // cannot be a CSV field
		}
		return append(dst, v...)
	}
	x := r.Features[i]
	if x == float64(int64(x)) && x < maxCount {
		return strconv.AppendInt(dst, int64(x), 10)
	}
	return strconv.AppendFloat(dst, x, 'g', -1, 64)
}

// AppendJSONString appends s as a JSON string. Unlike strconv.AppendQuote it
// never writes Go-only escapes such as \x00, so the output is valid JSON
// whatever s holds; invalid UTF-8 becomes U+FFFD. Characters HTML treats
// specially are written as they are (encoding/json escapes them).
func AppendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', byte(c))
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = utf8.AppendRune(dst, c)
		}
	}
	return append(dst, '"')
}

// written returns symbolic feature i as the input gave it: the unseen
// service or flag when the vocabulary lacked it, else its vocabulary value.
func (r *Record) written(i int) string {
	switch {
	case i == Service && r.UnseenService != "":
		return r.UnseenService
	case i == Flag && r.UnseenFlag != "":
		return r.UnseenFlag
	}
	return r.Symbol(i)
}
