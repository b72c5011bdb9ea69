package model

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/netsentinel/netsentinel/internal/record"
)

// The model file format must stay readable: testdata/format-v1.model is a
// tiny detector (a 3-tree forest and a novelty part) written by format
// version 1 and never regenerated. Every later version must load it and
// give the verdicts recorded in testdata/format-v1.verdicts on 300 fixed
// rows of KDDTrain+. NETSENTINEL_UPDATE_TESTDATA=1 writes both files only
// when they are missing.
const (
	goldenModel    = "testdata/format-v1.model"
	goldenVerdicts = "testdata/format-v1.verdicts"
)

func TestModelFormatGolden(t *testing.T) {
	_, rows := kddSlices(t, 1000, 300)
	if os.Getenv("NETSENTINEL_UPDATE_TESTDATA") == "1" {
		if _, err := os.Stat(goldenModel); err == nil {
			t.Fatalf("%s exists: it records an old format and is never regenerated", goldenModel)
		}
		train, _ := kddSlices(t, 1000, 0)
		opts := DefaultTrainOptions()
		opts.Forest.Trees, opts.Forest.MaxDepth = 3, 4
		d, err := Train(context.Background(), train, opts)
		if err != nil {
			t.Fatal(err)
		}
		b, err := d.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenModel, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenVerdicts, []byte(verdictLines(d, rows)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, err := LoadFile(goldenModel)
	if err != nil {
		t.Fatalf("a format-1 model file no longer loads: %v", err)
	}
	if nov, _ := d.Novelty(); nov == nil {
		t.Errorf("%s lost its novelty part on loading", goldenModel)
	}
	want, err := os.ReadFile(goldenVerdicts)
	if err != nil {
		t.Fatal(err)
	}
	got := verdictLines(d, rows)
	if got != string(want) {
		g, w := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := range min(len(g), len(w)) {
			if g[i] != w[i] {
				t.Fatalf("row %d: verdict %s, want %s (format-1 file read differently)", i, g[i], w[i])
			}
		}
		t.Fatalf("%d verdict lines, want %d", len(g), len(w))
	}
}

// verdictLines formats d's verdicts on rows, one per line, probabilities
// to 6 digits.
func verdictLines(d *Detector, rows interface {
	Len() int
	Row(int, *[record.NumFeatures]float32)
}) string {
	var b strings.Builder
	var x [record.NumFeatures]float32
	for i := range rows.Len() {
		rows.Row(i, &x)
		v := d.Predict(x[:])
		fmt.Fprintf(&b, "%s %s %v %.6g %.6g %.6g %.6g %s\n", v.Attack, v.Category, v.IsAttack,
			v.Probability, v.CategoryProbability, v.AttackProbability, v.Novelty, v.FlaggedBy)
	}
	return b.String()
}
