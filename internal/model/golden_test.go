package model

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/netsentinel/netsentinel/internal/dataset"
	"github.com/netsentinel/netsentinel/internal/record"
)

// The model file format must stay readable: testdata/format-vN.model is a
// tiny detector (a 3-tree forest and a novelty part) written by format
// version N and never regenerated, one per version. Every later version must
// load each of them and give the verdicts recorded in
// testdata/format-vN.verdicts on 300 fixed rows of KDDTrain+.
// NETSENTINEL_UPDATE_TESTDATA=1 writes the current version's files only
// when they are missing.

// goldenFiles returns the golden model and verdicts of format version v.
func goldenFiles(v int) (model, verdicts string) {
	return fmt.Sprintf("testdata/format-v%d.model", v), fmt.Sprintf("testdata/format-v%d.verdicts", v)
}

func TestModelFormatGolden(t *testing.T) {
	_, rows := kddSlices(t, 1000, 300)
	for v := 1; v <= FormatVersion; v++ {
		goldenModel, goldenVerdicts := goldenFiles(v)
		if _, err := os.Stat(goldenModel); err != nil && v == FormatVersion && os.Getenv("NETSENTINEL_UPDATE_TESTDATA") == "1" {
			writeGolden(t, goldenModel, goldenVerdicts, rows)
		}
		d, err := LoadFile(goldenModel)
		if err != nil {
			t.Fatalf("a format-%d model file no longer loads: %v", v, err)
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
					t.Fatalf("row %d: verdict %s, want %s (format-%d file read differently)", i, g[i], w[i], v)
				}
			}
			t.Fatalf("%d verdict lines, want %d", len(g), len(w))
		}
	}
}

// writeGolden trains the golden detector and writes it and its verdicts on
// rows.
func writeGolden(t *testing.T, model, verdicts string, rows *dataset.Dataset) {
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
	if err := os.WriteFile(model, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(verdicts, []byte(verdictLines(d, rows)), 0o644); err != nil {
		t.Fatal(err)
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
