package cli

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// checkGolden compares got with the golden file; -update rewrites it.
func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update once to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s changed: a field was added, removed, renamed or retyped.\ngot:\n%s\nwant:\n%s\nIf the change is meant, run go test -update and say so in the docs.", path, got, want)
	}
}

// jsonShape lists every field of a JSON object with its JSON type, one
// "path type" per line, sorted. The objects named in maps hold data keys:
// they are listed as "map" without their keys.
func jsonShape(t *testing.T, b []byte, maps ...string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	var lines []string
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if slices.Contains(maps, path) {
				lines = append(lines, path+" map")
				return
			}
			if path != "" {
				lines = append(lines, path+" object")
				path += "."
			}
			for k, e := range x {
				walk(path+k, e)
			}
		case []any:
			lines = append(lines, path+" array")
		case nil:
			lines = append(lines, path+" null")
		default:
			lines = append(lines, fmt.Sprintf("%s %T", path, x))
		}
	}
	walk("", v)
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}
