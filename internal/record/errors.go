package record

import (
	"errors"
	"strconv"
)

// Reasons a record fails to decode. A *FieldError wraps one of them, so
// callers can branch with errors.Is.
var (
	ErrEmpty      = errors.New("empty record")
	ErrFieldCount = errors.New("wrong number of fields")
	ErrNotNumber  = errors.New("not a number")
	ErrNegative   = errors.New("negative value")
	ErrNotInteger = errors.New("not an integer")
	ErrOverflow   = errors.New("integer overflow")
	ErrRate       = errors.New("rate outside [0,1]")
	ErrNotBinary  = errors.New("not 0 or 1")
	ErrProtocol   = errors.New("unknown protocol")
	ErrMissingKey = errors.New("missing key")
	ErrDuplicate  = errors.New("duplicate key")
	ErrSyntax     = errors.New("malformed JSON")
	ErrType       = errors.New("wrong JSON type")
	ErrLabel      = errors.New("bad label")
	ErrNotUTF8    = errors.New("not valid UTF-8")
)

// FieldError reports why a record failed to decode: which field, which
// value, and the reason in Err.
type FieldError struct {
	// Field is the feature name (or "label", "difficulty"); empty for an
	// error about the whole record.
	Field string
	// Column is the 1-based CSV column, or 0 for JSON and whole-record errors.
	Column int
	// Value is the offending value, cut to 64 bytes.
	Value string
	// Err is one of the Err* sentinels.
	Err error
	// Detail adds context such as "got 40 fields, want 41 to 43".
	Detail string
}

func (e *FieldError) Error() string {
	var b []byte
	if e.Field != "" {
		b = append(b, "field "...)
		if e.Column > 0 {
			b = strconv.AppendInt(b, int64(e.Column), 10)
			b = append(b, ' ')
		}
		b = append(b, e.Field...)
		if e.Value != "" || e.Err != ErrMissingKey {
			b = append(b, " value "...)
			b = strconv.AppendQuote(b, e.Value)
		}
		b = append(b, ": "...)
	}
	b = append(b, e.Err.Error()...)
	if e.Detail != "" {
		b = append(b, " ("...)
		b = append(b, e.Detail...)
		b = append(b, ')')
	}
	return string(b)
}

func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(i, column int, value []byte, err error) *FieldError {
	if len(value) > 64 {
		value = value[:64]
	}
	return &FieldError{Field: Features[i].Name, Column: column, Value: string(value), Err: err}
}
