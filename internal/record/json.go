package record

import (
	"encoding/json"
	"strconv"
)

// DecodeJSON decodes one JSON object keyed by feature name into r. Every one
// of the 41 features must be present; numbers may also be given as strings
// ("0.5") and binary features as true/false. Optional keys are "label",
// "difficulty" and the identity keys (see Identity) read into r.ID; other
// keys are ignored. A duplicate key is an error. On
// error r is left in an unspecified state.
func DecodeJSON(data []byte, r *Record) error {
	if err := DecodeJSONPartial(data, r); err != nil {
		return err
	}
	if r.Absent != 0 {
		return absentError(r.Absent)
	}
	return nil
}

// DecodeJSONPartial is DecodeJSON for records that may leave features out:
// a source that cannot show a feature (connections extracted from packets
// or Zeek logs lack most content features) omits its key. The bits of the
// missing features are set in r.Absent and their values are 0; every
// other rule of DecodeJSON holds.
func DecodeJSONPartial(data []byte, r *Record) error {
	p := jsonParser{b: data}
	p.ws()
	if p.i == len(p.b) {
		return &FieldError{Err: ErrEmpty}
	}
	if !p.eat('{') {
		return p.syntax("want '{'")
	}
	var st jsonState
	r.Label = ""
	r.Difficulty = -1
	r.ID = Identity{SrcPort: -1, DstPort: -1}
	p.ws()
	if !p.eat('}') {
		for {
			p.ws()
			key, ok := p.str()
			if !ok {
				return p.syntax("want a string key")
			}
			p.ws()
			if !p.eat(':') {
				return p.syntax("want ':'")
			}
			p.ws()
			vk, v, ok := p.value()
			if !ok {
				return p.syntax("bad value for key " + strconv.Quote(string(key)))
			}
			if err := r.setJSON(key, vk, v, &st); err != nil {
				return err
			}
			p.ws()
			if p.eat(',') {
				continue
			}
			if p.eat('}') {
				break
			}
			return p.syntax("want ',' or '}'")
		}
	}
	p.ws()
	if p.i != len(p.b) {
		return p.syntax("data after the object")
	}
	r.Absent = (1<<NumFeatures - 1) &^ st.seen
	for i := 0; i < NumFeatures; i++ {
		if r.Absent&(1<<i) != 0 {
			r.Features[i] = 0
		}
	}
	return nil
}

// absentError is the error of a record whose features in the mask absent
// are missing: it names the first, and how many are missing in all.
func absentError(absent uint64) error {
	missing := 0
	first := -1
	for i := 0; i < NumFeatures; i++ {
		if absent&(1<<i) != 0 {
			if first < 0 {
				first = i
			}
			missing++
		}
	}
	e := &FieldError{Field: Features[first].Name, Err: ErrMissingKey}
	if missing > 1 {
		e.Detail = strconv.Itoa(missing) + " of 41 features missing: " + missingNames(^absent) + "; the model needs all 41"
	}
	return e
}

// AbsentError returns the error for a record whose features in the mask
// absent are missing (see Record.Absent), or nil for an empty mask.
func AbsentError(absent uint64) error {
	if absent == 0 {
		return nil
	}
	return absentError(absent)
}

// missingNames lists the features whose bit is clear in seen, the first
// six by name.
func missingNames(seen uint64) string {
	var b []byte
	n := 0
	for i := 0; i < NumFeatures; i++ {
		if seen&(1<<i) != 0 {
			continue
		}
		if n++; n > 6 {
			continue
		}
		if len(b) > 0 {
			b = append(b, ", "...)
		}
		b = append(b, Features[i].Name...)
	}
	if n > 6 {
		b = append(b, " and "...)
		b = strconv.AppendInt(b, int64(n-6), 10)
		b = append(b, " more"...)
	}
	return string(b)
}

type jsonKind uint8

const (
	jsonString jsonKind = iota + 1
	jsonNumber
	jsonTrue
	jsonFalse
	jsonNull
	jsonComposite
)

var kindNames = [...]string{jsonString: "string", jsonNumber: "number", jsonTrue: "true", jsonFalse: "false", jsonNull: "null", jsonComposite: "object or array"}

// jsonState is what DecodeJSON has seen so far.
type jsonState struct {
	seen                uint64 // bit i: feature i
	labelSeen, diffSeen bool
	next                int // the feature expected next in schema order
}

// setJSON stores one key's value. The key is []byte and the map lookup
// and switch convert it in place, so known keys cost no allocation. Keys
// usually come in schema order, so the expected name is tried before the
// map.
func (r *Record) setJSON(key []byte, vk jsonKind, v []byte, st *jsonState) error {
	switch string(key) {
	case "label":
		if st.labelSeen {
			return &FieldError{Field: "label", Err: ErrDuplicate}
		}
		st.labelSeen = true
		if vk == jsonNull {
			return nil
		}
		if vk != jsonString {
			return &FieldError{Field: "label", Value: clip(v), Err: ErrType, Detail: "want a string, got " + kindNames[vk]}
		}
		l, err := parseLabel(v)
		if err != nil {
			return &FieldError{Field: "label", Value: clip(v), Err: err}
		}
		r.Label = l
		return nil
	case "difficulty":
		if st.diffSeen {
			return &FieldError{Field: "difficulty", Err: ErrDuplicate}
		}
		st.diffSeen = true
		if vk == jsonNull {
			return nil
		}
		if vk != jsonNumber && vk != jsonString {
			return &FieldError{Field: "difficulty", Value: clip(v), Err: ErrType, Detail: "want a number, got " + kindNames[vk]}
		}
		d, err := parseDifficulty(v)
		if err != nil {
			return &FieldError{Field: "difficulty", Value: clip(v), Err: err}
		}
		r.Difficulty = d
		return nil
	}
	if done, err := r.setIdentity(key, vk, v); done {
		return err
	}
	i := st.next
	if i >= NumFeatures || string(key) != Features[i].Name {
		var ok bool
		if i, ok = featureIndex[string(key)]; !ok {
			return nil
		}
	}
	st.next = i + 1
	f := Features[i]
	if st.seen&(1<<i) != 0 {
		return &FieldError{Field: f.Name, Err: ErrDuplicate}
	}
	st.seen |= 1 << i
	switch {
	case vk == jsonString:
		return r.setField(i, 0, v)
	case vk == jsonNumber && f.Kind != KindSymbolic:
		return r.setField(i, 0, v)
	case (vk == jsonTrue || vk == jsonFalse) && f.Kind == KindBinary:
		if vk == jsonTrue {
			r.Features[i] = 1
		} else {
			r.Features[i] = 0
		}
		return nil
	}
	want := "a number"
	if f.Kind == KindSymbolic {
		want = "a string"
	}
	return &FieldError{Field: f.Name, Value: clip(v), Err: ErrType, Detail: "want " + want + ", got " + kindNames[vk]}
}

// jsonParser is a small strict scanner for one flat JSON object.
type jsonParser struct {
	b []byte
	i int
}

func (p *jsonParser) syntax(detail string) error {
	return &FieldError{Err: ErrSyntax, Detail: detail + " at byte " + strconv.Itoa(p.i)}
}

func (p *jsonParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str scans a JSON string and returns its decoded content. The result
// aliases the input unless the string has escapes.
func (p *jsonParser) str() ([]byte, bool) {
	if !p.eat('"') {
		return nil, false
	}
	start := p.i
	escaped := false
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			if !escaped {
				return s, true
			}
			var out string
			if err := json.Unmarshal(p.b[start-1:p.i], &out); err != nil {
				return nil, false
			}
			return []byte(out), true
		case c == '\\':
			escaped = true
			p.i += 2
		case c < 0x20:
			return nil, false
		default:
			p.i++
		}
	}
	return nil, false
}

// value scans one JSON value. Composite values are checked with json.Valid
// and returned whole.
func (p *jsonParser) value() (jsonKind, []byte, bool) {
	if p.i >= len(p.b) {
		return 0, nil, false
	}
	switch c := p.b[p.i]; {
	case c == '"':
		s, ok := p.str()
		return jsonString, s, ok
	case c == '-' || c >= '0' && c <= '9':
		start := p.i
		if !p.number() {
			return 0, nil, false
		}
		return jsonNumber, p.b[start:p.i], true
	case c == 't':
		return jsonTrue, p.b[p.i : p.i+min(4, len(p.b)-p.i)], p.lit("true")
	case c == 'f':
		return jsonFalse, p.b[p.i : p.i+min(5, len(p.b)-p.i)], p.lit("false")
	case c == 'n':
		return jsonNull, p.b[p.i : p.i+min(4, len(p.b)-p.i)], p.lit("null")
	case c == '{' || c == '[':
		start := p.i
		if !p.skipComposite() {
			return 0, nil, false
		}
		v := p.b[start:p.i]
		return jsonComposite, v, json.Valid(v)
	}
	return 0, nil, false
}

func (p *jsonParser) lit(s string) bool {
	if len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

// number scans a number following JSON's grammar exactly.
func (p *jsonParser) number() bool {
	p.eat('-')
	switch {
	case p.eat('0'):
	case p.i < len(p.b) && p.b[p.i] >= '1' && p.b[p.i] <= '9':
		p.digits()
	default:
		return false
	}
	if p.eat('.') {
		if p.digits() == 0 {
			return false
		}
	}
	if p.eat('e') || p.eat('E') {
		if !p.eat('+') {
			p.eat('-')
		}
		if p.digits() == 0 {
			return false
		}
	}
	return true
}

func (p *jsonParser) digits() int {
	n := 0
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
		n++
	}
	return n
}

// skipComposite moves past a nested object or array by bracket counting,
// skipping strings; json.Valid checks it afterwards.
func (p *jsonParser) skipComposite() bool {
	depth := 0
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case '"':
			if _, ok := p.str(); !ok {
				return false
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				p.i++
				return true
			}
		}
		p.i++
	}
	return false
}
