package novelty

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Binary format (little-endian), version 2:
//
//	magic "NSNV", version uint16, dims uint16, buckets uint16,
//	scale float32, penalty float32,
//	mean [dims]float32, inv [dims]float32,
//	invProto [3]float32, invFlag [11]float32,
//	groups uint16, then per bucket with prototypes, in increasing order:
//	  bucket uint16, prototypes uint32,
//	calibN uint64, nCalib uint32, calib [nCalib]float32,
//	protos [prototypes*dims]float32.
//
// There is no checksum: the model file holds a SHA-256 of all its sections.
// Version 1 had, instead of the groups, start [buckets+1]uint32 (the index
// of each bucket's first prototype, and the total), and a CRC-32 after the
// prototypes; UnmarshalBinary reads it and ignores the CRC, which the model
// file's SHA-256 covers.
const (
	magic         = "NSNV"
	formatVersion = 2
	v1SumSize     = 4
)

// ErrFormat is returned (wrapped) by UnmarshalBinary for data that is not a
// valid novelty model.
var ErrFormat = errors.New("novelty: invalid model data")

// MarshalBinary encodes the model.
func (m *Model) MarshalBinary() ([]byte, error) {
	le := binary.LittleEndian
	var groups []byte
	ng := 0
	for b := range numBuckets {
		if n := m.start[b+1] - m.start[b]; n > 0 {
			groups = le.AppendUint16(groups, uint16(b))
			groups = le.AppendUint32(groups, uint32(n))
			ng++
		}
	}
	b := make([]byte, 0, 16+8*Dims+4*(numProtocols+numFlags)+2+len(groups)+12+4*len(m.calib)+4*len(m.protos))
	b = append(b, magic...)
	b = le.AppendUint16(b, formatVersion)
	b = le.AppendUint16(b, Dims)
	b = le.AppendUint16(b, numBuckets)
	b = appendF32(b, m.scale)
	b = appendF32(b, m.penalty)
	for _, v := range m.mean {
		b = appendF32(b, v)
	}
	for _, v := range m.inv {
		b = appendF32(b, v)
	}
	for _, v := range m.invProto {
		b = appendF32(b, v)
	}
	for _, v := range m.invFlag {
		b = appendF32(b, v)
	}
	b = le.AppendUint16(b, uint16(ng))
	b = append(b, groups...)
	b = le.AppendUint64(b, uint64(m.calibN))
	b = le.AppendUint32(b, uint32(len(m.calib)))
	for _, v := range m.calib {
		b = appendF32(b, v)
	}
	for _, v := range m.protos {
		b = appendF32(b, v)
	}
	return b, nil
}

func appendF32(b []byte, v float32) []byte {
	return binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
}

// reader reads little-endian values and remembers the first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) next(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = fmt.Errorf("%w: truncated", ErrFormat)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u16() uint16 {
	if b := r.next(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if b := r.next(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if b := r.next(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

// f32 reads a float32 that must be finite.
func (r *reader) f32(what string) float32 {
	v := math.Float32frombits(r.u32())
	if r.err == nil && (math.IsNaN(float64(v)) || math.IsInf(float64(v), 0)) {
		r.err = fmt.Errorf("%w: %s is %v", ErrFormat, what, v)
	}
	return v
}

// UnmarshalBinary decodes a model written by MarshalBinary (or a version 1
// model). Invalid data gives an error wrapping ErrFormat; it never panics.
// Every count is checked against the bytes that remain before anything is
// allocated for it: time and memory are linear in len(data).
func (m *Model) UnmarshalBinary(data []byte) error {
	if len(data) < len(magic)+2 || string(data[:len(magic)]) != magic {
		return fmt.Errorf("%w: bad magic", ErrFormat)
	}
	r := &reader{b: data[len(magic):]}
	v := r.u16()
	switch {
	case v == 1:
		if len(r.b) < v1SumSize {
			return fmt.Errorf("%w: truncated", ErrFormat)
		}
		r.b = r.b[:len(r.b)-v1SumSize]
	case v != formatVersion:
		return fmt.Errorf("%w: format version %d, want %d", ErrFormat, v, formatVersion)
	}
	if d, s := r.u16(), r.u16(); r.err == nil && (d != Dims || s != numBuckets) {
		return fmt.Errorf("%w: %d dims and %d buckets, want %d and %d", ErrFormat, d, s, Dims, numBuckets)
	}
	var out Model
	out.scale = r.f32("scale")
	out.penalty = r.f32("penalty")
	for k := range out.mean {
		out.mean[k] = r.f32("mean")
	}
	for k := range out.inv {
		out.inv[k] = r.f32("inverse deviation")
	}
	for k := range out.invProto {
		out.invProto[k] = r.f32("protocol weight")
	}
	for k := range out.invFlag {
		out.invFlag[k] = r.f32("flag weight")
	}
	if v == 1 {
		for s := range out.start {
			out.start[s] = int32(r.u32())
			if r.err == nil && (out.start[s] < 0 || s > 0 && out.start[s] < out.start[s-1] || s == 0 && out.start[s] != 0) {
				return fmt.Errorf("%w: bad prototype index of service %d", ErrFormat, s)
			}
		}
	} else if err := out.readGroups(r); err != nil {
		return err
	}
	calibN := r.u64()
	nCalib := r.u32()
	if r.err != nil {
		return r.err
	}
	if uint64(nCalib) > calibN || calibN > math.MaxInt64 || int(nCalib) > len(r.b)/4 {
		return fmt.Errorf("%w: %d calibration scores of %d", ErrFormat, nCalib, calibN)
	}
	out.calibN = int64(calibN)
	out.calib = make([]float32, nCalib)
	for i := range out.calib {
		out.calib[i] = r.f32("calibration score")
		if r.err == nil && (out.calib[i] < 0 || out.calib[i] > 1 || i > 0 && out.calib[i] > out.calib[i-1]) {
			return fmt.Errorf("%w: calibration scores not decreasing in [0,1]", ErrFormat)
		}
	}
	if r.err != nil {
		return r.err
	}
	nProto := int(out.start[numBuckets])
	if nProto < 1 || nProto > len(r.b)/(4*Dims) {
		return fmt.Errorf("%w: %d prototypes in %d bytes", ErrFormat, nProto, len(r.b))
	}
	out.protos = make([]float32, nProto*Dims)
	for i := range out.protos {
		out.protos[i] = r.f32("prototype")
	}
	if r.err != nil {
		return r.err
	}
	for b := range numBuckets {
		lo, hi := int(out.start[b]), int(out.start[b+1])
		if lo == hi {
			continue
		}
		P := out.protos[lo*Dims : hi*Dims]
		r := sortByPivot(P) // a no-op on a model written by MarshalBinary
		out.radius = append(out.radius, r...)
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrFormat, len(r.b))
	}
	for _, v := range out.invProto {
		if !(v >= 0 && v <= 1/sdFloor) {
			return fmt.Errorf("%w: protocol weight %v", ErrFormat, v)
		}
	}
	for _, v := range out.invFlag {
		if !(v >= 0 && v <= 1/sdFloor) {
			return fmt.Errorf("%w: flag weight %v", ErrFormat, v)
		}
	}
	if !(out.scale > 0) || out.penalty < 0 || len(out.calib) == 0 {
		return fmt.Errorf("%w: scale %v, penalty %v, %d calibration scores", ErrFormat, out.scale, out.penalty, len(out.calib))
	}
	*m = out
	return nil
}

// readGroups reads the prototype counts of the buckets that have any into
// m.start.
func (m *Model) readGroups(r *reader) error {
	ng := int(r.u16())
	if r.err != nil {
		return r.err
	}
	if ng > numBuckets || 6*ng > len(r.b) {
		return fmt.Errorf("%w: %d buckets with prototypes in %d bytes", ErrFormat, ng, len(r.b))
	}
	next, total := 0, int64(0) // the first bucket not yet filled, prototypes so far
	for range ng {
		b, n := int(r.u16()), int64(r.u32())
		if b < next || b >= numBuckets || n == 0 || total+n > math.MaxInt32 {
			return fmt.Errorf("%w: bucket %d with %d prototypes (after bucket %d, %d prototypes)", ErrFormat, b, n, next-1, total)
		}
		for ; next <= b; next++ {
			m.start[next] = int32(total)
		}
		total += n
	}
	for ; next <= numBuckets; next++ {
		m.start[next] = int32(total)
	}
	return nil
}
