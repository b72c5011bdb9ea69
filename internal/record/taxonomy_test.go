package record

import (
	"bufio"
	"compress/gzip"
	"os"
	"slices"
	"strings"
	"testing"
)

// dataDir holds the data files shipped in the repository.
const dataDir = "../../data/"

// readGzipLines calls fn with each line of a gzip file in dataDir.
func readGzipLines(t *testing.T, name string, fn func(line string)) {
	t.Helper()
	f, err := os.Open(dataDir + name)
	if err != nil {
		t.Fatalf("open shipped data: %v", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fn(sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
}

func TestTaxonomyMatchesDataFile(t *testing.T) {
	want := map[string]Category{}
	readGzipLines(t, "kddcup99_attack_categories.txt.gz", func(line string) {
		f := strings.Fields(line)
		if len(f) == 0 {
			return
		}
		if len(f) != 2 {
			t.Fatalf("bad taxonomy line %q", line)
		}
		c, ok := ParseCategory(f[1])
		if !ok || c == CategoryUnknown || c == CategoryNormal {
			t.Fatalf("taxonomy line %q: bad category", line)
		}
		want[f[0]] = c
	})
	if len(want) != 39 {
		t.Errorf("data file has %d attacks, want 39", len(want))
	}
	for name, c := range want {
		if got := CategoryOf(name); got != c {
			t.Errorf("CategoryOf(%q) = %v, want %v", name, got, c)
		}
		if got := CategoryOf(name + "."); got != c {
			t.Errorf("CategoryOf(%q) = %v, want %v", name+".", got, c)
		}
	}
	if len(attackCategory) != len(want) {
		t.Errorf("the taxonomy has %d names, data file %d", len(attackCategory), len(want))
	}
	for a := range attackCategory {
		if _, ok := want[a]; !ok {
			t.Errorf("the taxonomy has %q, which the data file lacks", a)
		}
	}
}

func TestCategoryOf(t *testing.T) {
	tests := map[string]Category{
		"normal": CategoryNormal, "normal.": CategoryNormal, "smurf.": CategoryDoS,
		"satan": CategoryProbe, "warezclient": CategoryR2L, "rootkit": CategoryU2R,
		"": CategoryUnknown, "Normal": CategoryUnknown, "zeroday": CategoryUnknown, "smurf..": CategoryUnknown,
	}
	for label, want := range tests {
		if got := CategoryOf(label); got != want {
			t.Errorf("CategoryOf(%q) = %v, want %v", label, got, want)
		}
	}
}

func TestCategoryStrings(t *testing.T) {
	if len(Categories) != NumCategories {
		t.Errorf("Categories has %d entries, want %d", len(Categories), NumCategories)
	}
	seen := map[string]bool{}
	for c := range Category(NumCategories) {
		s := c.String()
		if seen[s] || strings.HasPrefix(s, "Category(") {
			t.Errorf("Category(%d).String() = %q: duplicate or unnamed", c, s)
		}
		seen[s] = true
		if back, ok := ParseCategory(s); !ok || back != c {
			t.Errorf("ParseCategory(%q) = %v, %v; want %v", s, back, ok, c)
		}
		if b, _ := c.MarshalText(); string(b) != s {
			t.Errorf("MarshalText(%v) = %q", c, b)
		}
		if !slices.Contains(Categories, c) {
			t.Errorf("Categories lacks %v", c)
		}
	}
	if got := Category(NumCategories).String(); got != "Category(6)" {
		t.Errorf("Category(6).String() = %q", got)
	}
	if _, ok := ParseCategory("ddos"); ok {
		t.Error(`ParseCategory("ddos") ok, want false`)
	}
}

// TestVocabularyCoversData checks that every service and flag in the
// shipped training files is in the vocabulary, so none of them silently
// becomes "other" or "OTH", and that every line decodes.
func TestVocabularyCoversData(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 620,000 lines; skipped with -short")
	}
	for _, file := range []string{"KDDTrain+.txt.gz", "KDDTrain+_20Percent.txt.gz", "kddcup.data_10_percent.gz"} {
		services, flags := map[string]int{}, map[string]int{}
		n := 0
		readGzipLines(t, file, func(line string) {
			n++
			f := strings.SplitN(line, ",", 5)
			if len(f) < 5 {
				t.Fatalf("%s:%d: short line", file, n)
			}
			services[f[Service]]++
			flags[f[Flag]]++
		})
		for s := range services {
			if !slices.Contains(Services, s) {
				t.Errorf("%s: service %q (%d rows) is not in Services", file, s, services[s])
			}
		}
		for s := range flags {
			if !slices.Contains(Flags, s) {
				t.Errorf("%s: flag %q (%d rows) is not in Flags", file, s, flags[s])
			}
		}
		t.Logf("%s: %d lines, %d services, %d flags", file, n, len(services), len(flags))
	}
	// Every vocabulary holds distinct values.
	for _, vocab := range [][]string{Protocols, Services, Flags} {
		s := slices.Clone(vocab)
		slices.Sort(s)
		if len(slices.Compact(s)) != len(vocab) {
			t.Errorf("vocabulary %v has duplicates", vocab)
		}
	}
}
