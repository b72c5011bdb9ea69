package model

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/netsentinel/netsentinel/internal/model/forest"
	"github.com/netsentinel/netsentinel/internal/model/logistic"
	"github.com/netsentinel/netsentinel/internal/model/novelty"
	"github.com/netsentinel/netsentinel/internal/record"
)

// splitFile returns the header and sections of a model file.
func splitFile(t *testing.T, b []byte) (h header, clf, nov []byte) {
	t.Helper()
	hsize := int(binary.LittleEndian.Uint32(b[24:]))
	if err := json.Unmarshal(b[prefixSize:prefixSize+hsize], &h); err != nil {
		t.Fatal(err)
	}
	rest := b[prefixSize+hsize : len(b)-sumSize]
	for _, s := range h.Sections {
		switch s.Name {
		case "classifier":
			clf = rest[:s.Size]
		case "novelty":
			nov = rest[:s.Size]
		}
		rest = rest[s.Size:]
	}
	return h, clf, nov
}

// assemble builds a sealed model file (size field and SHA-256 right) from a
// header, whose section sizes it sets unless keepSizes, and sections.
func assemble(t *testing.T, h header, keepSizes bool, clf, nov []byte) []byte {
	t.Helper()
	if !keepSizes {
		h.Sections = []section{{Name: "classifier", Kind: h.Algorithm, Size: int64(len(clf))}}
		if nov != nil {
			h.Sections = append(h.Sections, section{Name: "novelty", Kind: novelty.Kind, Size: int64(len(nov))})
		}
	}
	hj, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	b := append([]byte(magic), 0, 0, 0, 0, 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(b[8:], FormatVersion)
	b = binary.LittleEndian.AppendUint64(b, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(hj)))
	b = append(b, hj...)
	b = append(b, clf...)
	b = append(b, nov...)
	return resealed(b)
}

// put returns a copy of b with v written at off, little-endian, in as many
// bytes as v has.
func put[T uint16 | uint32 | uint64](b []byte, off int, v T) []byte {
	b = bytes.Clone(b)
	switch v := any(v).(type) {
	case uint16:
		binary.LittleEndian.PutUint16(b[off:], v)
	case uint32:
		binary.LittleEndian.PutUint32(b[off:], v)
	case uint64:
		binary.LittleEndian.PutUint64(b[off:], v)
	}
	return b
}

// TestHostileCounts loads files whose headers and sections declare huge
// counts and sizes: each must fail with a typed error, having allocated
// memory in proportion to the file, not to what it declares, and at once.
func TestHostileCounts(t *testing.T) {
	good, err := os.ReadFile("testdata/small.model")
	if err != nil {
		t.Fatal(err)
	}
	h, clf, nov := splitFile(t, good)
	if clf == nil || nov == nil {
		t.Fatal("testdata/small.model has no classifier or no novelty section")
	}
	const huge32 = 1<<32 - 1
	// Offsets in the forest section: its counts of features, classes,
	// trees, nodes and leaf entries.
	const fFeatures, fClasses, fTrees, fNodes, fLeaves = 8, 12, 16, 20, 24
	forestCounts := func(nf, nc, nt, nn, nl uint32) []byte {
		b := clf[:fFeatures]
		for _, v := range []uint32{nf, nc, nt, nn, nl} {
			b = binary.LittleEndian.AppendUint32(bytes.Clone(b), v)
		}
		return b
	}
	// Offsets in the novelty section: the number of buckets with
	// prototypes, the first bucket's prototype count, the calibration
	// counts.
	nvGroups := 18 + 8*novelty.Dims + 4*(3+11)
	ng := int(binary.LittleEndian.Uint16(nov[nvGroups:]))
	nvFirstCount := nvGroups + 2 + 2
	nvCalibN := nvGroups + 2 + 6*ng
	nvNCalib := nvCalibN + 8
	// A logistic regression section: magic, version, inputs, classes,
	// then (kind, levels) per input.
	lr := func(nIn, nClasses uint32, cols int, kind, levels uint32) []byte {
		b := []byte("NSLR")
		for _, v := range []uint32{1, nIn, nClasses} {
			b = binary.LittleEndian.AppendUint32(b, v)
		}
		for range cols {
			b = binary.LittleEndian.AppendUint32(b, kind)
			b = binary.LittleEndian.AppendUint32(b, levels)
		}
		return b
	}
	logisticHeader := h
	logisticHeader.Algorithm = AlgoLogistic
	hugeSection := h
	hugeSection.Sections = []section{{Name: "classifier", Kind: h.Algorithm, Size: 1 << 62}}

	tests := []struct {
		name string
		data []byte
		want []error // every one must match
	}{
		{"file size field at the limit, 28 bytes", put(good[:prefixSize], 16, uint64(maxFileSize)), []error{ErrTruncated}},
		{"file size field 2^63", put(good, 16, uint64(1<<63)), []error{ErrCorrupt}},
		{"header size 2^32-1", resealed(put(good[:len(good)-sumSize], 24, uint32(huge32))), []error{ErrCorrupt}},
		{"section size 2^62", assemble(t, hugeSection, true, clf, nov), []error{ErrCorrupt}},
		{"forest: 2^32-1 trees, nodes, leaf entries", assemble(t, h, false, forestCounts(41, 8, huge32, huge32, huge32), nov), []error{ErrCorrupt, forest.ErrFormat}},
		{"forest: 2^31-1 nodes and leaf entries", assemble(t, h, false, forestCounts(41, 8, 1, 1<<31-1, 1<<31-1), nov), []error{ErrCorrupt, forest.ErrFormat}},
		{"forest: 2^16 features and classes", assemble(t, h, false, forestCounts(1<<16, 1<<16, 1, 1, 1), nov), []error{ErrCorrupt, forest.ErrFormat}},
		{"forest: leaf count past the end", assemble(t, h, false, put(clf, fLeaves, uint32(huge32)), nov), []error{ErrCorrupt, forest.ErrFormat}},
		{"forest: node count past the end", assemble(t, h, false, put(clf, fNodes, uint32(1<<30)), nov), []error{ErrCorrupt, forest.ErrFormat}},
		{"forest: tree count past the end", assemble(t, h, false, put(clf, fTrees, uint32(1<<20)), nov), []error{ErrCorrupt, forest.ErrFormat}},
		{"forest: class count 2^32-1", assemble(t, h, false, put(clf, fClasses, uint32(huge32)), nov), []error{ErrCorrupt, forest.ErrFormat}},
		{"logistic: 2^32-1 inputs", assemble(t, logisticHeader, false, lr(huge32, huge32, 0, 0, 0), nil), []error{ErrCorrupt, logistic.ErrFormat}},
		{"logistic: 2^16 one-hot inputs of 2^20 levels, 2^16 classes", assemble(t, logisticHeader, false, lr(1<<16, 1<<16, 1<<16, 2, 1<<20), nil), []error{ErrCorrupt, logistic.ErrFormat}},
		{"logistic: 2^16 inputs declared, 1 given", assemble(t, logisticHeader, false, lr(1<<16, 2, 1, 0, 0), nil), []error{ErrCorrupt, logistic.ErrFormat}},
		{"novelty: 2^16-1 bucket groups", assemble(t, h, false, clf, put(nov, nvGroups, uint16(1<<16-1))), []error{ErrCorrupt, novelty.ErrFormat}},
		{"novelty: 2^32-1 prototypes in a bucket", assemble(t, h, false, clf, put(nov, nvFirstCount, uint32(huge32))), []error{ErrCorrupt, novelty.ErrFormat}},
		{"novelty: 2^31-2 prototypes in a bucket", assemble(t, h, false, clf, put(nov, nvFirstCount, uint32(1<<31-2))), []error{ErrCorrupt, novelty.ErrFormat}},
		{"novelty: a NaN calibration score, then 2^30 prototypes declared", assemble(t, h, false, clf, put(put(nov, nvNCalib+4, uint32(0x7fc00000)), nvFirstCount, uint32(1<<30))), []error{ErrCorrupt, novelty.ErrFormat}},
		{"novelty: 2^32-1 calibration scores", assemble(t, h, false, clf, put(put(nov, nvCalibN, uint64(1<<63-1)), nvNCalib, uint32(huge32))), []error{ErrCorrupt, novelty.ErrFormat}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			alloc, took := measure(func() { _, err = Unmarshal(tt.data) })
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("Unmarshal = %v, want %v", err, w)
				}
			}
			// Memory linear in the input: the decoders copy a section at
			// most a few times over, whatever its counts say.
			if limit := 1<<20 + 16*uint64(len(tt.data)); alloc > limit {
				t.Errorf("Unmarshal of %d bytes allocated %d bytes, more than %d", len(tt.data), alloc, limit)
			}
			// Not a speed measurement: a decoder that loops over a
			// declared count instead of the bytes takes minutes here.
			if took > time.Second {
				t.Errorf("Unmarshal of %d bytes took %v", len(tt.data), took)
			}
			t.Logf("%d bytes: %v in %v, %d bytes allocated", len(tt.data), err, took, alloc)
		})
	}
}

// measure returns the bytes f allocates and the time it takes.
func measure(f func()) (alloc uint64, took time.Duration) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	f()
	took = time.Since(start)
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, took
}

// TestLoadVersion1 loads the format version 1 golden file (sections with
// their own CRCs, the novelty section's dense bucket index), writes it as the
// current version and checks that both predict alike.
func TestLoadVersion1(t *testing.T) {
	path, _ := goldenFiles(1)
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if v := binary.LittleEndian.Uint32(old[8:]); v != 1 {
		t.Fatalf("%s is version %d", path, v)
	}
	d1, err := Unmarshal(old)
	if err != nil {
		t.Fatalf("load version 1: %v", err)
	}
	if n, _ := d1.Novelty(); n == nil {
		t.Fatal("version 1 model lost its novelty part")
	}
	b, err := d1.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != FormatVersion {
		t.Fatalf("re-encoded as version %d, want %d", v, FormatVersion)
	}
	if len(b) >= len(old) {
		t.Errorf("version %d file is %d bytes, version 1 %d: the sparse novelty index should be smaller", FormatVersion, len(b), len(old))
	}
	d2, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	_, test := kddSlices(t, 0, 2000)
	var x [record.NumFeatures]float32
	for i := range test.Len() {
		test.Row(i, &x)
		if v1, v2 := d1.Predict(x[:]), d2.Predict(x[:]); v1 != v2 {
			t.Fatalf("row %d: version 1 model says %+v, version %d %+v", i, v1, FormatVersion, v2)
		}
	}
	// A damaged version 1 file is caught by the SHA-256, not by the
	// sections' CRCs, which are no longer checked.
	bad := bytes.Clone(old)
	bad[len(bad)-sumSize-10] ^= 1
	if _, err := Unmarshal(bad); !errors.Is(err, ErrCorrupt) {
		t.Errorf("flipped bit in a version 1 file: %v, want ErrCorrupt", err)
	}
	sum := sha256.Sum256(old[:len(old)-sumSize])
	if !bytes.Equal(sum[:], old[len(old)-sumSize:]) {
		t.Errorf("%s: SHA-256 mismatch", path)
	}
}
