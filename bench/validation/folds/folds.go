// Package folds holds the leave-attack-types-out folds that the validation
// programs (bench/validation/loto, bench/validation/shift) share, so that
// their figures are over the same held-out types.
package folds

import (
	"slices"

	"github.com/netsentinel/netsentinel/internal/record"
)

// Fold is one set of attack types held out of training.
type Fold struct {
	Name string
	Held []string
}

// ByType returns the folds for a data set with these labels: one per
// category (every attack type of the category held out), then four fixed
// mixes of types across categories.
func ByType(labels []string) []Fold {
	byCat := map[record.Category][]string{}
	seen := map[string]bool{}
	for _, l := range labels {
		if l != "normal" && !seen[l] {
			seen[l] = true
			c := record.CategoryOf(l)
			byCat[c] = append(byCat[c], l)
		}
	}
	var fs []Fold
	for _, c := range []record.Category{record.CategoryR2L, record.CategoryU2R, record.CategoryProbe, record.CategoryDoS} {
		slices.Sort(byCat[c])
		fs = append(fs, Fold{c.String(), byCat[c]})
	}
	return append(fs,
		Fold{"mixA", []string{"satan", "back", "warezclient", "buffer_overflow"}},
		Fold{"mixB", []string{"portsweep", "smurf", "guess_passwd", "rootkit"}},
		Fold{"mixC", []string{"ipsweep", "teardrop", "warezmaster", "imap", "loadmodule"}},
		Fold{"mixD", []string{"nmap", "pod", "land", "ftp_write", "multihop", "phf", "spy", "perl"}},
	)
}
