package cli

import (
	"bytes"
	"os"
	"testing"
)

func TestProgressNotTerminal(t *testing.T) {
	for name, w := range map[string]any{"buffer": &bytes.Buffer{}, "devnull": devNull(t)} {
		var p *progress
		switch w := w.(type) {
		case *bytes.Buffer:
			p = newProgress(w, "x", false)
		case *os.File:
			p = newProgress(w, "x", true)
		}
		if p != nil {
			t.Errorf("%s: newProgress = %v, want nil off a terminal", name, p)
		}
		// A nil progress is silent and safe.
		p.update(1, 2)
		p.ints(1, 2)
		p.done()
	}
}

func devNull(t *testing.T) *os.File {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
