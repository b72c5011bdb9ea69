package model

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/netsentinel/netsentinel/internal/record"
)

func TestComplete(t *testing.T) {
	train, test := kddSlices(t, 12000, 4000)
	opts := DefaultTrainOptions()
	opts.Forest.Trees = 10
	d, err := Train(context.Background(), train, opts)
	if err != nil {
		t.Fatal(err)
	}
	// What packets show: the content features are absent but for the FTP
	// login ones.
	absent := ContentMask &^ (1<<11 | 1<<10 | 1<<record.IsGuestLogin)
	agree, attacks, caught := 0, 0, 0
	for i := range test.Len() {
		full := test.Record(i)
		want := d.PredictRecord(&full)
		r := full
		r.Absent = absent
		for j := range record.NumFeatures {
			if absent&(1<<j) != 0 {
				r.Features[j] = 0
			}
		}
		if err := d.Complete(&r); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if r.Absent != 0 {
			t.Fatalf("row %d: Absent = %x after Complete", i, r.Absent)
		}
		for j := range record.NumFeatures {
			if absent&(1<<j) == 0 && r.Features[j] != full.Features[j] {
				t.Fatalf("row %d: Complete changed present feature %s", i, record.Features[j].Name)
			}
		}
		got := d.PredictRecord(&r)
		if got.IsAttack == want.IsAttack {
			agree++
		}
		if full.Label != "normal" {
			attacks++
			if got.IsAttack {
				caught++
			}
		}
	}
	n := test.Len()
	t.Logf("completed records: binary verdict as with all features on %d of %d rows; %d of %d attacks flagged", agree, n, caught, attacks)
	if float64(agree) < 0.95*float64(n) {
		t.Errorf("binary verdict agrees on %d of %d rows, want at least 95%%", agree, n)
	}
	if float64(caught) < 0.95*float64(attacks) {
		t.Errorf("%d of %d attacks flagged with content features filled in, want at least 95%%", caught, attacks)
	}

	// A traffic feature cannot be filled in, and nothing is without a
	// novelty part.
	r := test.Record(0)
	r.Absent = 1 << 22 // count
	if err := d.Complete(&r); !errors.Is(err, record.ErrMissingKey) || !strings.Contains(err.Error(), "count") {
		t.Errorf("Complete without count = %v, want a missing-key error naming count", err)
	}
	nov := d.novelty
	d.novelty = nil
	defer func() { d.novelty = nov }()
	r.Absent = 1 << record.Hot
	if err := d.Complete(&r); !errors.Is(err, record.ErrMissingKey) || !strings.Contains(err.Error(), "no novelty part") {
		t.Errorf("Complete without a novelty part = %v", err)
	}
}
