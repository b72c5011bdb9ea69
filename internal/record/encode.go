package record

import "strconv"

// AppendCSV appends r as a CSV line without line end: the 41 features, then
// the label if it is set, then the difficulty if it is set (>= 0) as well.
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

// AppendJSON appends r as a JSON object keyed by feature name, with "label"
// and "difficulty" when they are set.
func (r *Record) AppendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	for i, f := range Features {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, f.Name...)
		dst = append(dst, '"', ':')
		if f.Kind == KindSymbolic {
			dst = append(dst, '"')
			dst = append(dst, r.Symbol(i)...)
			dst = append(dst, '"')
			continue
		}
		dst = r.appendValue(dst, i)
	}
	if r.Label != "" {
		dst = append(dst, `,"label":`...)
		dst = strconv.AppendQuote(dst, r.Label)
	}
	if r.Difficulty >= 0 {
		dst = append(dst, `,"difficulty":`...)
		dst = strconv.AppendInt(dst, int64(r.Difficulty), 10)
	}
	return append(dst, '}')
}

func (r *Record) appendValue(dst []byte, i int) []byte {
	if Features[i].Kind == KindSymbolic {
		return append(dst, r.Symbol(i)...)
	}
	x := r.Features[i]
	if x == float64(int64(x)) && x < maxCount {
		return strconv.AppendInt(dst, int64(x), 10)
	}
	return strconv.AppendFloat(dst, x, 'g', -1, 64)
}
