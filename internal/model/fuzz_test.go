package model

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"os"
	"testing"

	"github.com/netsentinel/netsentinel/internal/fuzzmin"
	"github.com/netsentinel/netsentinel/internal/model/novelty"
	"github.com/netsentinel/netsentinel/internal/record"
)

// The fuzz seed testdata/small.model is a tiny model (2 trees of depth 2, a
// novelty part of a few prototypes), so that the fuzzer runs thousands of
// inputs per second; TestWriteSmallModel regenerates it.

// The fuzzer's minimization is bounded (see package fuzzmin): a model file
// is a few kilobytes, the header's schema alone 2.4 kB.
func TestMain(m *testing.M) { os.Exit(fuzzmin.Main(m)) }

var updateTestdata = flag.Bool("update-testdata", false, "regenerate testdata/small.model, the fuzz seed")

// tinyModelBytes trains and encodes the model of testdata/small.model.
func tinyModelBytes(t testing.TB) []byte {
	t.Helper()
	opts := smallForest()
	opts.Forest.Trees = 2
	opts.Forest.MaxDepth = 2
	opts.Novelty = &NoveltyOptions{Config: novelty.Config{Prototypes: 3, Iterations: 2}}
	return trainBytes(t, 100, opts)
}

// trainBytes trains a model on the first rows of the training file and
// encodes it.
func trainBytes(t testing.TB, rows int, opts TrainOptions) []byte {
	t.Helper()
	train, _ := kddSlices(t, rows, 0)
	d, err := Train(context.Background(), train, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWriteSmallModel regenerates testdata/small.model with -update-testdata.
func TestWriteSmallModel(t *testing.T) {
	if !*updateTestdata {
		t.Skip("run with -update-testdata to regenerate testdata/small.model")
	}
	if err := os.WriteFile("testdata/small.model", tinyModelBytes(t), 0o644); err != nil {
		t.Fatal(err)
	}
}

func seedModel(f *testing.F) []byte {
	b, err := os.ReadFile("testdata/small.model")
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// typedLoadError reports whether err is one of the errors Unmarshal
// documents.
func typedLoadError(err error) bool {
	for _, e := range []error{ErrNotModel, ErrFormatVersion, ErrTruncated, ErrCorrupt, ErrSchema, ErrNoveltyKind} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// checkLoaded fails unless a decoded model predicts, and encodes to a file
// that decodes again.
func checkLoaded(t *testing.T, d *Detector) {
	var x [record.NumFeatures]float32
	d.Predict(x[:])
	x[record.SrcBytes] = 1e30
	d.Predict(x[:])
	b, err := d.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary of a loaded model: %v", err)
	}
	if _, err := Unmarshal(b); err != nil {
		t.Fatalf("a loaded model, encoded again, does not load: %v", err)
	}
}

func FuzzLoad(f *testing.F) {
	good := seedModel(f)
	f.Add(good)
	f.Add(good[:len(good)/3])
	f.Add(good[:prefixSize])
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Unmarshal(data)
		if err != nil {
			if !typedLoadError(err) {
				t.Fatalf("error %v is none of the documented errors", err)
			}
			return
		}
		checkLoaded(t, d)
	})
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

// FuzzLoadResealed fixes up the size field and checksum of the fuzzed file
// so that the fuzzer reaches the header and section decoders.
func FuzzLoadResealed(f *testing.F) {
	good := seedModel(f)
	f.Add(good[:len(good)-sumSize])
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) < prefixSize {
			return
		}
		d, err := Unmarshal(resealed(body))
		if err != nil {
			if !typedLoadError(err) {
				t.Fatalf("error %v is none of the documented errors", err)
			}
			return
		}
		checkLoaded(t, d)
	})
}
