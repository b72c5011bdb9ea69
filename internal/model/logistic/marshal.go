package logistic

import (
	"encoding/binary"
	"fmt"
	"math"
)

// The binary form: magic, version, then little-endian uint32 counts and
// float32 values.
const (
	magic   = "NSLR"
	version = 1
)

// MarshalBinary encodes the model.
func (m *Model) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 32+len(m.cols)*8+len(m.dense)*8+len(m.w)*4)
	b = append(b, magic...)
	b = binary.LittleEndian.AppendUint32(b, version)
	b = binary.LittleEndian.AppendUint32(b, uint32(m.nIn))
	b = binary.LittleEndian.AppendUint32(b, uint32(m.nClasses))
	for _, c := range m.cols {
		b = binary.LittleEndian.AppendUint32(b, uint32(c.Kind))
		b = binary.LittleEndian.AppendUint32(b, uint32(c.Levels))
	}
	for j := range m.dense {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(m.mean[j]))
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(m.scale[j]))
	}
	for _, v := range m.w {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b, nil
}

// UnmarshalBinary decodes a model encoded by MarshalBinary. Bad data gives
// an error wrapping ErrFormat. The counts are checked against the bytes
// that remain before the model is allocated: time and memory are linear in
// len(data).
func (m *Model) UnmarshalBinary(data []byte) error {
	r := reader{b: data}
	if string(r.bytes(len(magic))) != magic {
		return fmt.Errorf("%w: bad magic", ErrFormat)
	}
	if v := r.u32(); v != version {
		return fmt.Errorf("%w: version %d, want %d", ErrFormat, v, version)
	}
	nIn, nClasses := r.u32(), r.u32()
	if r.short || nIn > 1<<16 || nClasses == 0 || nClasses > 1<<16 {
		return fmt.Errorf("%w: %d inputs, %d classes", ErrFormat, nIn, nClasses)
	}
	if uint64(len(r.b)) < uint64(nIn)*8 {
		return fmt.Errorf("%w: truncated", ErrFormat)
	}
	cols := make([]Column, nIn)
	var dense, dim uint64 // the model's dense inputs and expanded width
	for i := range cols {
		k, l := r.u32(), r.u32()
		if k >= uint32(numColumnKinds) || l > 1<<20 {
			return fmt.Errorf("%w: column %d: kind %d, levels %d", ErrFormat, i, k, l)
		}
		cols[i] = Column{Kind: ColumnKind(k), Levels: int(l)}
		if ColumnKind(k) == OneHot {
			dim += uint64(l)
		} else {
			dense++
			dim++
		}
	}
	// The parameters must be there before the model is built for them.
	if want := dense*8 + uint64(nClasses)*(dim+1)*4; uint64(len(r.b)) != want {
		return fmt.Errorf("%w: %d bytes of parameters, want %d for %d inputs of width %d and %d classes", ErrFormat, len(r.b), want, nIn, dim, nClasses)
	}
	nm, err := newModel(cols, int(nClasses))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrFormat, err)
	}
	for j := range nm.dense {
		nm.mean[j], nm.scale[j] = r.f32(), r.f32()
	}
	nm.w = make([]float32, int(nClasses)*(nm.dim+1))
	for i := range nm.w {
		nm.w[i] = r.f32()
	}
	if r.short {
		return fmt.Errorf("%w: truncated", ErrFormat)
	}
	*m = *nm
	return nil
}

type reader struct {
	b     []byte
	short bool
}

func (r *reader) bytes(n int) []byte {
	if len(r.b) < n {
		r.short = true
		r.b = nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u32() uint32 {
	b := r.bytes(4)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

func (r *reader) f32() float32 { return math.Float32frombits(r.u32()) }
