package model

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/netsentinel/netsentinel/internal/model/forest"
	"github.com/netsentinel/netsentinel/internal/model/logistic"
	"github.com/netsentinel/netsentinel/internal/record"
)

// The model file format, version 2. All integers are little-endian.
//
//	offset  size  field
//	0       8     magic "NSMODEL\x00"
//	8       4     format version (uint32); readers refuse newer versions
//	12      4     reserved flags (uint32, 0)
//	16      8     total file size in bytes, checksum included (uint64)
//	24      4     header size H (uint32)
//	28      H     header: a JSON object, the Info fields plus "schema"
//	              (feature names, kinds, vocabularies) and "sections"
//	28+H    ...   sections, back to back, in the order and sizes the
//	              header's "sections" list gives: "classifier" (the
//	              forest's or logistic regression's binary form) and,
//	              optionally, "novelty" (with a "kind")
//	end-32  32    SHA-256 of everything before it
//
// The SHA-256 is the file's only integrity check: the sections carry none of
// their own. Version 1 files differ only inside the sections (the forest and
// novelty sections each ended with a CRC, and the novelty section stored an
// index for every bucket); Unmarshal and LoadFile read them too.
//
// Every size and count in the file is checked against the bytes that remain
// before anything is allocated or looped over for it, so loading a file of
// N bytes takes time and memory linear in N, whatever the file declares.
//
// The first 12 bytes keep this layout in every future version, so that any
// reader can tell a newer file from a damaged one.
const (
	// FormatVersion is the model file format version this package writes
	// and the newest it reads; it reads every older version too.
	FormatVersion = 2
	magic         = "NSMODEL\x00"
	prefixSize    = 28
	sumSize       = sha256.Size
	// maxFileSize bounds what LoadFile and Unmarshal accept, far above any real model.
	maxFileSize = 1 << 32
)

// Errors returned (wrapped) by LoadFile and Unmarshal.
var (
	// ErrNotModel means the data does not start like a model file.
	ErrNotModel = errors.New("not a netsentinel model file")
	// ErrFormatVersion means the file was written by a newer netsentinel
	// in a format this one cannot read. The error is a *VersionError.
	ErrFormatVersion = errors.New("unsupported model format version")
	// ErrTruncated means the file ends early.
	ErrTruncated = errors.New("model file truncated")
	// ErrCorrupt means the file is damaged: a checksum mismatch or
	// content that does not decode.
	ErrCorrupt = errors.New("model file corrupt")
	// ErrSchema means the model was trained on a different feature schema
	// (names, kinds or vocabularies) than this build's record package.
	ErrSchema = errors.New("model feature schema differs")
	// ErrNoveltyKind means the file holds a novelty part of a kind this
	// build cannot read.
	ErrNoveltyKind = errors.New("unknown novelty model kind")
)

// VersionError reports a model file of an unsupported format version. It
// matches ErrFormatVersion with errors.Is.
type VersionError struct {
	Version, Supported uint32
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("model format version %d is newer than this netsentinel reads (%d): upgrade netsentinel", e.Version, e.Supported)
}

// Is reports whether target is ErrFormatVersion.
func (e *VersionError) Is(target error) bool { return target == ErrFormatVersion }

type header struct {
	Info
	Schema   []schemaFeature `json:"schema"`
	Sections []section       `json:"sections"`
}

type schemaFeature struct {
	Name       string   `json:"name"`
	Kind       string   `json:"kind"`
	Vocabulary []string `json:"vocabulary,omitempty"`
}

type section struct {
	Name string `json:"name"`
	Kind string `json:"kind,omitempty"`
	Size int64  `json:"size"`
}

func currentSchema() []schemaFeature {
	s := make([]schemaFeature, record.NumFeatures)
	for j, f := range record.Features {
		s[j] = schemaFeature{Name: f.Name, Kind: f.Kind.String(), Vocabulary: record.Vocabulary(j)}
	}
	return s
}

// MarshalBinary encodes the Detector as a model file.
func (d *Detector) MarshalBinary() ([]byte, error) {
	clf, err := d.clf.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode classifier: %w", err)
	}
	h := header{Info: d.info, Schema: currentSchema()}
	h.FormatVersion = FormatVersion
	h.Sections = []section{{Name: "classifier", Kind: d.info.Algorithm, Size: int64(len(clf))}}
	var nov []byte
	if d.novelty != nil {
		if nov, err = d.novelty.MarshalBinary(); err != nil {
			return nil, fmt.Errorf("encode novelty model: %w", err)
		}
		h.Sections = append(h.Sections, section{Name: "novelty", Kind: d.novelty.Kind(), Size: int64(len(nov))})
	}
	hj, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encode model header: %w", err)
	}
	total := prefixSize + len(hj) + len(clf) + len(nov) + sumSize
	b := make([]byte, 0, total)
	b = append(b, magic...)
	b = binary.LittleEndian.AppendUint32(b, FormatVersion)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint64(b, uint64(total))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(hj)))
	b = append(b, hj...)
	b = append(b, clf...)
	b = append(b, nov...)
	sum := sha256.Sum256(b)
	return append(b, sum[:]...), nil
}

// Save writes the Detector to w as a model file.
func (d *Detector) Save(w io.Writer) error {
	b, err := d.MarshalBinary()
	if err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	return nil
}

// SaveFile writes the Detector to path atomically: to a temporary file in
// the same directory, then renamed.
func (d *Detector) SaveFile(path string) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	err = d.Save(f)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("save model: %w", cerr)
	}
	if err == nil {
		if err = os.Rename(f.Name(), path); err != nil {
			err = fmt.Errorf("save model: %w", err)
		}
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// checkPrefix checks the magic and version of the first bytes of a file.
func checkPrefix(p []byte) error {
	m := min(len(p), len(magic))
	if string(p[:m]) != magic[:m] {
		return ErrNotModel
	}
	if len(p) < 12 {
		return fmt.Errorf("%w: %d bytes", ErrTruncated, len(p))
	}
	if v := binary.LittleEndian.Uint32(p[8:]); v > FormatVersion || v == 0 {
		if v == 0 {
			return fmt.Errorf("%w: format version 0", ErrCorrupt)
		}
		return &VersionError{Version: v, Supported: FormatVersion}
	}
	if len(p) < prefixSize {
		return fmt.Errorf("%w: %d bytes", ErrTruncated, len(p))
	}
	return nil
}

// LoadFile reads a model file. A file longer than its size field says is
// corrupt.
func LoadFile(path string) (*Detector, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	d, err := Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	return d, nil
}

// Unmarshal decodes a whole model file held in memory.
func Unmarshal(b []byte) (*Detector, error) {
	if err := checkPrefix(b[:min(len(b), prefixSize)]); err != nil {
		return nil, err
	}
	total := binary.LittleEndian.Uint64(b[16:])
	switch {
	case total < prefixSize+sumSize || total > maxFileSize:
		return nil, fmt.Errorf("%w: file size field %d out of range", ErrCorrupt, total)
	case uint64(len(b)) < total:
		return nil, fmt.Errorf("%w: %d of %d bytes", ErrTruncated, len(b), total)
	case uint64(len(b)) > total:
		return nil, fmt.Errorf("%w: %d bytes after the end", ErrCorrupt, uint64(len(b))-total)
	}
	return decode(b)
}

// decode decodes a complete file whose prefix has been checked.
func decode(b []byte) (*Detector, error) {
	body := b[:len(b)-sumSize]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], b[len(body):]) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	hsize := uint64(binary.LittleEndian.Uint32(b[24:]))
	if hsize > uint64(len(body)-prefixSize) {
		return nil, fmt.Errorf("%w: header size %d past the end", ErrCorrupt, hsize)
	}
	var h header
	if err := json.Unmarshal(body[prefixSize:prefixSize+hsize], &h); err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrCorrupt, err)
	}
	if err := checkSchema(h.Schema); err != nil {
		return nil, err
	}
	rest := body[prefixSize+hsize:]
	parts := map[string][]byte{}
	kinds := map[string]string{}
	for _, s := range h.Sections {
		if s.Size < 0 || s.Size > int64(len(rest)) {
			return nil, fmt.Errorf("%w: section %q size %d past the end", ErrCorrupt, s.Name, s.Size)
		}
		if _, dup := parts[s.Name]; dup {
			return nil, fmt.Errorf("%w: section %q twice", ErrCorrupt, s.Name)
		}
		parts[s.Name], kinds[s.Name], rest = rest[:s.Size], s.Kind, rest[s.Size:]
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("%w: %d bytes outside any section", ErrCorrupt, len(rest))
	}
	if len(h.Labels) == 0 {
		return nil, fmt.Errorf("%w: no labels", ErrCorrupt)
	}
	if !(h.Threshold > 0 && h.Threshold <= 1) {
		return nil, fmt.Errorf("%w: threshold %v", ErrCorrupt, h.Threshold)
	}
	cb, ok := parts["classifier"]
	if !ok {
		return nil, fmt.Errorf("%w: no classifier section", ErrCorrupt)
	}
	var (
		clf      classifier
		features int
	)
	switch h.Algorithm {
	case AlgoForest:
		m := new(forest.Model)
		if err := m.UnmarshalBinary(cb); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		clf, features = m, m.NumFeatures()
	case AlgoLogistic:
		m := new(logistic.Model)
		if err := m.UnmarshalBinary(cb); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		clf, features = m, m.NumInputs()
	default:
		return nil, fmt.Errorf("%w: unknown algorithm %q", ErrCorrupt, h.Algorithm)
	}
	if features != record.NumFeatures || clf.NumClasses() != len(h.Labels) {
		return nil, fmt.Errorf("%w: classifier has %d features and %d classes, header says %d and %d",
			ErrCorrupt, features, clf.NumClasses(), record.NumFeatures, len(h.Labels))
	}
	d := newDetector(h.Info, clf)
	if nb, ok := parts["novelty"]; ok {
		nov, err := decodeNovelty(kinds["novelty"], nb)
		if err != nil {
			return nil, err
		}
		d.novelty = nov
	}
	return d, nil
}

func checkSchema(s []schemaFeature) error {
	want := currentSchema()
	if len(s) != len(want) {
		return fmt.Errorf("%w: %d features, want %d", ErrSchema, len(s), len(want))
	}
	for j, f := range s {
		w := want[j]
		if f.Name != w.Name || f.Kind != w.Kind {
			return fmt.Errorf("%w: feature %d is %s (%s), want %s (%s)", ErrSchema, j+1, f.Name, f.Kind, w.Name, w.Kind)
		}
		if len(f.Vocabulary) != len(w.Vocabulary) {
			return fmt.Errorf("%w: feature %s has %d values, want %d", ErrSchema, f.Name, len(f.Vocabulary), len(w.Vocabulary))
		}
		for i, v := range f.Vocabulary {
			if v != w.Vocabulary[i] {
				return fmt.Errorf("%w: feature %s value %d is %q, want %q", ErrSchema, f.Name, i, v, w.Vocabulary[i])
			}
		}
	}
	return nil
}
