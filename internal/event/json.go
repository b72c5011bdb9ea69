package event

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/netsentinel/netsentinel/internal/record"
)

// AppendJSON appends the alert as a JSON object to dst and returns the
// extended buffer.
func (a *Alert) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"time":`...)
	dst = appendTime(dst, a.Time)
	dst = append(dst, `,"topic":`...)
	dst = appendString(dst, a.Topic)
	dst = append(dst, `,"partition":`...)
	dst = strconv.AppendInt(dst, int64(a.Partition), 10)
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendInt(dst, a.Offset, 10)
	if c := a.Connection; c != nil {
		dst = append(dst, `,"ts":`...)
		dst = appendFloat(dst, c.TS)
		dst = append(dst, `,"src_ip":`...)
		dst = appendString(dst, c.SrcIP)
		dst = append(dst, `,"src_port":`...)
		dst = strconv.AppendInt(dst, int64(c.SrcPort), 10)
		dst = append(dst, `,"dst_ip":`...)
		dst = appendString(dst, c.DstIP)
		dst = append(dst, `,"dst_port":`...)
		dst = strconv.AppendInt(dst, int64(c.DstPort), 10)
		dst = append(dst, `,"uid":`...)
		dst = appendString(dst, c.UID)
	}
	dst = append(dst, `,"attack":`...)
	dst = appendString(dst, a.Attack)
	dst = append(dst, `,"category":`...)
	dst = appendString(dst, a.Category)
	dst = append(dst, `,"probability":`...)
	dst = appendFloat(dst, a.Probability)
	dst = append(dst, `,"attack_probability":`...)
	dst = appendFloat(dst, a.AttackProbability)
	dst = append(dst, `,"novelty":`...)
	dst = appendFloat(dst, a.Novelty)
	dst = append(dst, `,"flagged_by":`...)
	dst = appendString(dst, a.FlaggedBy)
	if len(a.NoveltyFeatures) > 0 {
		dst = append(dst, `,"novelty_features":`...)
		dst = appendStrings(dst, a.NoveltyFeatures)
	}
	if len(a.Explanation) > 0 {
		dst = append(dst, `,"explanation":`...)
		dst = appendReasons(dst, a.Explanation)
	}
	dst = appendOptString(dst, `,"label":`, a.Label)
	dst = appendOptString(dst, `,"unseen_service":`, a.UnseenService)
	dst = appendOptString(dst, `,"unseen_flag":`, a.UnseenFlag)
	dst = append(dst, `,"features":`...)
	if a.Record != nil {
		dst = appendFeatures(dst, a.Record)
	} else {
		dst = appendAny(dst, a.Features)
	}
	dst = appendOptString(dst, `,"model":`, a.Model)
	dst = append(dst, `,"instance":`...)
	dst = appendString(dst, a.Instance)
	return append(dst, '}')
}

// AppendJSON appends the statistics as a JSON object to dst and returns the
// extended buffer.
func (s *Stats) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"minute":`...)
	dst = appendTime(dst, s.Minute)
	dst = append(dst, `,"instance":`...)
	dst = appendString(dst, s.Instance)
	dst = appendOptString(dst, `,"model":`, s.Model)
	dst = append(dst, `,"records":`...)
	dst = strconv.AppendInt(dst, s.Records, 10)
	dst = append(dst, `,"by_category":`...)
	dst = appendCounts(dst, s.ByCategory)
	dst = append(dst, `,"by_attack":`...)
	dst = appendCounts(dst, s.ByAttack)
	if len(s.Unseen) > 0 {
		dst = append(dst, `,"unseen":`...)
		dst = appendCounts(dst, s.Unseen)
	}
	dst = append(dst, `,"dead_letters":`...)
	dst = strconv.AppendInt(dst, s.DeadLetters, 10)
	if len(s.ByRule) > 0 {
		dst = append(dst, `,"by_rule":`...)
		dst = appendCounts(dst, s.ByRule)
	}
	if len(s.TopSources) > 0 {
		dst = append(dst, `,"top_sources":`...)
		dst = appendCounts(dst, s.TopSources)
	}
	if s.OtherSources != 0 {
		dst = append(dst, `,"other_sources":`...)
		dst = strconv.AppendInt(dst, s.OtherSources, 10)
	}
	if len(s.TopDestinations) > 0 {
		dst = append(dst, `,"top_destinations":`...)
		dst = appendCounts(dst, s.TopDestinations)
	}
	if s.OtherDestinations != 0 {
		dst = append(dst, `,"other_destinations":`...)
		dst = strconv.AppendInt(dst, s.OtherDestinations, 10)
	}
	return append(dst, '}')
}

// AppendJSON appends the dead letter as a JSON object to dst and returns
// the extended buffer.
func (d *DeadLetter) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"time":`...)
	dst = appendTime(dst, d.Time)
	dst = append(dst, `,"topic":`...)
	dst = appendString(dst, d.Topic)
	dst = append(dst, `,"partition":`...)
	dst = strconv.AppendInt(dst, int64(d.Partition), 10)
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendInt(dst, d.Offset, 10)
	dst = append(dst, `,"reason":`...)
	dst = appendString(dst, d.Reason)
	dst = append(dst, `,"value":`...)
	if d.Value == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, d.Value)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"instance":`...)
	dst = appendString(dst, d.Instance)
	return append(dst, '}')
}

// appendFeatures appends r's 41 features as a JSON object in schema order:
// symbolic features as their string, integral numbers without a fraction.
func appendFeatures(dst []byte, r *record.Record) []byte {
	dst = append(dst, '{')
	for i, f := range record.Features {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, f.Name)
		dst = append(dst, ':')
		if f.Kind == record.KindSymbolic {
			dst = appendString(dst, r.Symbol(i))
			continue
		}
		x := r.Features[i]
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			dst = strconv.AppendInt(dst, int64(x), 10)
		} else {
			dst = appendFloat(dst, x)
		}
	}
	return append(dst, '}')
}

// appendTime appends t as encoding/json does (RFC 3339 with nanoseconds).
func appendTime(dst []byte, t time.Time) []byte {
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"')
}

// appendFloat appends x, or null when x is NaN or infinite.
func appendFloat(dst []byte, x float64) []byte {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return append(dst, "null"...)
	}
	return strconv.AppendFloat(dst, x, 'g', -1, 64)
}

func appendOptString(dst []byte, key, s string) []byte {
	if s == "" {
		return dst
	}
	dst = append(dst, key...)
	return appendString(dst, s)
}

func appendStrings(dst []byte, ss []string) []byte {
	if ss == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, s)
	}
	return append(dst, ']')
}

// appendCounts appends m as a JSON object with sorted keys (as
// encoding/json does).
func appendCounts(dst []byte, m map[string]int64) []byte {
	if m == nil {
		return append(dst, "null"...)
	}
	var buf [16]string
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		dst = strconv.AppendInt(dst, m[k], 10)
	}
	return append(dst, '}')
}

// appendAny appends v with encoding/json, with NaN and infinities inside a
// map[string]any as null. It serves values built by hand (tests, tools);
// the detector's hot path uses appendFeatures.
func appendAny(dst []byte, v map[string]any) []byte {
	if v == nil {
		return append(dst, "null"...)
	}
	clean := v
	for _, x := range v {
		if f, ok := x.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			clean = make(map[string]any, len(v))
			for k, x := range v {
				if f, ok := x.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
					x = nil
				}
				clean[k] = x
			}
			break
		}
	}
	b, err := json.Marshal(clean)
	if err != nil {
		return append(dst, "null"...)
	}
	return append(dst, b...)
}

// appendString appends s as a JSON string, escaped as encoding/json escapes
// it (HTML characters too); invalid UTF-8 becomes U+FFFD.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendReasons appends rs as a JSON array of Reason objects.
func appendReasons(dst []byte, rs []Reason) []byte {
	dst = append(dst, '[')
	for i, r := range rs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"feature":`...)
		dst = appendString(dst, r.Feature)
		dst = append(dst, `,"value":`...)
		dst = appendFloat(dst, r.Value)
		dst = append(dst, `,"typical":`...)
		dst = appendFloat(dst, r.Typical)
		dst = append(dst, `,"contribution":`...)
		dst = appendFloat(dst, r.Contribution)
		dst = append(dst, '}')
	}
	return append(dst, ']')
}
