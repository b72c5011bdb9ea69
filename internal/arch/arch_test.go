package arch

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// row is one line of DESIGN.md's package table.
type row struct {
	pkg     string   // path relative to the module root; "x/..." covers x and below
	kind    string   // core, edge, main, tool or test
	planned bool     // the package may not exist yet
	imports []string // backticked names of the "may import" cell
	line    int      // in DESIGN.md
}

func (r row) covers(rel string) bool {
	if base, ok := strings.CutSuffix(r.pkg, "/..."); ok {
		return rel == base || strings.HasPrefix(rel, base+"/")
	}
	return rel == r.pkg
}

// design is what DESIGN.md says.
type design struct {
	rows    []row
	modules map[string][]string // outside module name -> module paths
}

// rowFor returns the row of the package rel: an exact row first, then
// the longest "/..." row covering it.
func (d *design) rowFor(rel string) (row, bool) {
	var best row
	found := false
	for _, r := range d.rows {
		if r.pkg == rel {
			return r, true
		}
		if r.covers(rel) && (!found || len(r.pkg) > len(best.pkg)) {
			best, found = r, true
		}
	}
	return best, found
}

var backticked = regexp.MustCompile("`([^`]+)`")

// readDesign parses the two tables of the "## Packages" section.
func readDesign(t *testing.T, path string) *design {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := &design{modules: map[string][]string{}}
	sc := bufio.NewScanner(f)
	section, table := false, ""
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "## ") {
			section = line == "## Packages"
			continue
		}
		if !section || !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		switch {
		case cells[0] == "package":
			table = "packages"
			continue
		case cells[0] == "name":
			table = "modules"
			continue
		case strings.HasPrefix(cells[0], "---"):
			continue
		}
		switch table {
		case "packages":
			if len(cells) != 4 {
				t.Fatalf("%s:%d: a package row has 4 cells (package | owns | may import | kind), this one %d: %s", path, n, len(cells), line)
			}
			r := row{pkg: strings.Trim(cells[0], "`"), kind: cells[3], line: n,
				planned: strings.Contains(cells[1], "*planned*")}
			for _, m := range backticked.FindAllStringSubmatch(cells[2], -1) {
				r.imports = append(r.imports, m[1])
			}
			if !slices.Contains([]string{"core", "edge", "main", "tool", "test"}, r.kind) {
				t.Fatalf("%s:%d: kind %q of %s: want core, edge, main, tool or test", path, n, r.kind, r.pkg)
			}
			d.rows = append(d.rows, r)
		case "modules":
			name := strings.Trim(cells[0], "`")
			for _, m := range backticked.FindAllStringSubmatch(cells[1], -1) {
				d.modules[name] = append(d.modules[name], m[1])
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(d.rows) == 0 || len(d.modules) == 0 {
		t.Fatalf("%s: no package or module table under \"## Packages\"", path)
	}
	return d
}

// pkg is what go list says about a package.
type pkg struct {
	ImportPath string
	Standard   bool
	Imports    []string
	Deps       []string
	Module     *struct{ Path string }
}

// listPackages runs go list -deps -json over the module and returns its
// packages, and every package by import path.
func listPackages(t *testing.T, root string) (mod string, own []*pkg, all map[string]*pkg) {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Standard,Imports,Deps,Module", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	mod = strings.TrimSpace(strings.TrimPrefix(strings.SplitN(string(b), "\n", 2)[0], "module"))
	all = map[string]*pkg{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		p := new(pkg)
		if err := dec.Decode(p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		all[p.ImportPath] = p
		if p.Module != nil && p.Module.Path == mod {
			own = append(own, p)
		}
	}
	return mod, own, all
}

// networkStd are the standard packages a core package may not reach at
// any depth; net itself it may not import directly (some pure libraries
// use its address types).
var networkStd = []string{"net/http", "net/smtp", "net/rpc", "crypto/tls"}

// networkModules are the outside modules a core package may not reach.
var networkModules = []string{"franz-go", "go-mail", "go-smtp", "prometheus"}

func TestImportsFollowDesign(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	d := readDesign(t, filepath.Join(root, "docs", "DESIGN.md"))
	mod, own, all := listPackages(t, root)
	for _, v := range violations(d, mod, own, all, func(rel string) bool { return dirHasGo(filepath.Join(root, rel)) }) {
		t.Error(v)
	}
}

// violations lists where the packages own (of module mod; all holds every
// package by import path) depart from d. hasGo says whether a directory of
// the module holds Go files (test-only packages are not listed without
// -test).
func violations(d *design, mod string, own []*pkg, all map[string]*pkg, hasGo func(rel string) bool) []string {
	var out []string
	errorf := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	rel := func(path string) string { return strings.TrimPrefix(path, mod+"/") }
	// moduleOf names the outside module of an import path from the second
	// table, the longest match first.
	moduleOf := func(path string) string {
		best, bestLen := "", 0
		for name, prefixes := range d.modules {
			for _, pre := range prefixes {
				if (path == pre || strings.HasPrefix(path, pre+"/")) && len(pre) > bestLen {
					best, bestLen = name, len(pre)
				}
			}
		}
		return best
	}
	// allowed says whether row r lets its package import the module package q.
	allowed := func(r row, q string) bool {
		qr, ok := d.rowFor(q)
		if !ok {
			return false
		}
		for _, name := range r.imports {
			switch {
			case name == "any":
				if qr.kind != "test" {
					return true
				}
			case strings.HasSuffix(name, "/..."):
				base := strings.TrimSuffix(name, "/...")
				if q == "internal/"+base || strings.HasPrefix(q, "internal/"+base+"/") {
					return true
				}
			case q == "internal/"+name || q == name:
				return true
			}
		}
		return false
	}
	exists := map[string]bool{}
	for _, p := range own {
		r := rel(p.ImportPath)
		exists[r] = true
		row, ok := d.rowFor(r)
		if !ok {
			errorf("package %s has no row in docs/DESIGN.md's package table: add one (package, what it owns, what it may import, kind: core if it does no network I/O, else edge)", r)
			continue
		}
		for _, imp := range p.Imports {
			dep := all[imp]
			switch {
			case dep == nil || dep.Standard:
				if row.kind == "core" && (imp == "net" || slices.Contains(networkStd, imp)) {
					errorf("%s is core (pure) but imports %s: network code belongs in an edge package (docs/DESIGN.md line %d)", r, imp, row.line)
				}
			case dep.Module != nil && dep.Module.Path == mod:
				q := rel(imp)
				qr, known := d.rowFor(q)
				if !allowed(row, q) {
					errorf("%s imports %s, which its row in docs/DESIGN.md (line %d) does not allow: add it to \"may import\" if that is the design, or move the code", r, q, row.line)
				}
				if known && qr.kind == "test" && row.kind != "tool" {
					errorf("%s (production code) imports the test package %s", r, q)
				}
				if known && row.kind == "core" && qr.kind != "core" {
					errorf("%s is core but imports %s (kind %s): dependencies point inward", r, q, qr.kind)
				}
				if known && qr.kind == "main" {
					errorf("%s imports %s, a main package", r, q)
				}
			default:
				name := moduleOf(imp)
				if name == "" {
					errorf("%s imports %s, a module not in docs/DESIGN.md's table of outside modules: add it there (and to the row) if it is wanted", r, imp)
				} else if !slices.Contains(row.imports, name) && !(name == "kfake" && slices.Contains(row.imports, "franz-go")) {
					errorf("%s imports %s (%s), which its row in docs/DESIGN.md (line %d) does not allow", r, imp, name, row.line)
				}
			}
		}
		if row.kind != "core" {
			continue
		}
		for _, dep := range p.Deps {
			if slices.Contains(networkStd, dep) {
				errorf("%s is core (pure) but reaches %s through its imports", r, dep)
			}
			if name := moduleOf(dep); slices.Contains(networkModules, name) {
				errorf("%s is core (pure) but reaches %s (%s) through its imports", r, dep, name)
			}
		}
	}
	for _, r := range d.rows {
		if r.planned && exists[r.pkg] {
			errorf("docs/DESIGN.md line %d marks %s *planned*, but it exists: drop the mark", r.line, r.pkg)
		}
		if r.planned || strings.HasSuffix(r.pkg, "/...") || exists[r.pkg] {
			continue
		}
		// Test-only packages do not show up without -test.
		if r.kind == "test" && hasGo(r.pkg) {
			continue
		}
		errorf("docs/DESIGN.md line %d has a row for %s, which does not exist: remove the row, or mark it *planned*", r.line, r.pkg)
	}
	return out
}

func dirHasGo(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	return len(m) > 0
}

// TestDesignParse checks the checker on a small table: a core package
// that imports an edge one, an unknown package and a module outside the
// table are each caught.
func TestDesignParse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "DESIGN.md")
	doc := "# x\n\n## Packages\n\n| package | owns | may import | kind |\n|---|---|---|---|\n" +
		"| `internal/a` | a | `b`, `franz-go` | core |\n| `internal/b/...` | *planned*: b | nothing | edge |\n\n" +
		"| name | module |\n|---|---|\n| `franz-go` | `github.com/twmb/franz-go` |\n\n## Next\n\n| package | x | y | z |\n"
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	d := readDesign(t, path)
	if len(d.rows) != 2 || d.rows[0].kind != "core" || !slices.Equal(d.rows[0].imports, []string{"b", "franz-go"}) || !d.rows[1].planned {
		t.Fatalf("rows %+v", d.rows)
	}
	if r, ok := d.rowFor("internal/b/c"); !ok || r.pkg != "internal/b/..." {
		t.Errorf("rowFor(internal/b/c) = %+v, %v", r, ok)
	}
	if _, ok := d.rowFor("internal/c"); ok {
		t.Error("rowFor(internal/c) found a row")
	}
	if got := fmt.Sprint(d.modules["franz-go"]); got != "[github.com/twmb/franz-go]" {
		t.Errorf("modules %v", d.modules)
	}
}

// TestViolations checks that the checker catches each kind of departure
// from the design.
func TestViolations(t *testing.T) {
	d := &design{
		rows: []row{
			{pkg: "internal/core", kind: "core", imports: []string{"other"}},
			{pkg: "internal/other", kind: "edge"},
			{pkg: "internal/kit", kind: "test"},
			{pkg: "internal/gone", kind: "core"},
			{pkg: "internal/soon", kind: "edge", planned: true},
			{pkg: "internal/built", kind: "edge", planned: true},
			{pkg: "internal/user", kind: "edge", imports: []string{"core", "kit", "franz-go"}},
		},
		modules: map[string][]string{"franz-go": {"github.com/twmb/franz-go"}},
	}
	const mod = "example.org/m"
	self := &struct{ Path string }{mod}
	franz := &struct{ Path string }{"github.com/twmb/franz-go"}
	all := map[string]*pkg{
		"net":                              {ImportPath: "net", Standard: true},
		"net/http":                         {ImportPath: "net/http", Standard: true},
		"github.com/twmb/franz-go/pkg/kgo": {ImportPath: "github.com/twmb/franz-go/pkg/kgo", Module: franz},
		"github.com/other/thing":           {ImportPath: "github.com/other/thing", Module: &struct{ Path string }{"github.com/other/thing"}},
		mod + "/internal/core":             {ImportPath: mod + "/internal/core", Module: self, Imports: []string{mod + "/internal/other", "net"}, Deps: []string{"net/http"}},
		mod + "/internal/other":            {ImportPath: mod + "/internal/other", Module: self},
		mod + "/internal/kit":              {ImportPath: mod + "/internal/kit", Module: self},
		mod + "/internal/user":             {ImportPath: mod + "/internal/user", Module: self, Imports: []string{mod + "/internal/kit", mod + "/internal/other", "github.com/other/thing", "github.com/twmb/franz-go/pkg/kgo"}},
		mod + "/internal/new":              {ImportPath: mod + "/internal/new", Module: self},
		mod + "/internal/built":            {ImportPath: mod + "/internal/built", Module: self},
	}
	var own []*pkg
	for _, p := range all {
		if p.Module == self {
			own = append(own, p)
		}
	}
	got := strings.Join(violations(d, mod, own, all, func(string) bool { return false }), "\n")
	for _, want := range []string{
		"internal/core is core but imports internal/other (kind edge)",
		"internal/core is core (pure) but imports net:",
		"internal/core is core (pure) but reaches net/http",
		"internal/user (production code) imports the test package internal/kit",
		"internal/user imports internal/other, which its row",
		"internal/user imports github.com/other/thing, a module not in",
		"package internal/new has no row",
		"row for internal/gone, which does not exist",
		"marks internal/built *planned*, but it exists",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("violations lack %q; got:\n%s", want, got)
		}
	}
	if strings.Contains(got, "soon") || strings.Contains(got, "kgo") {
		t.Errorf("a planned row or an allowed module was reported:\n%s", got)
	}
}
