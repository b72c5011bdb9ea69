package dataset

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestChunker(t *testing.T) {
	long := strings.Repeat("x", 50)
	tests := []struct {
		name  string
		in    string
		size  int
		want  []string
		lines []int
	}{
		{"empty", "", 16, nil, nil},
		{"no final newline", "a\nb", 16, []string{"a\nb"}, []int{1}},
		// The carried partial line adds to the next chunk's size.
		{"cut at line ends", "aaaa\nbbbb\ncccc\n", 8, []string{"aaaa\n", "bbbb\ncccc\n"}, []int{1, 2}},
		{"two lines per chunk", "aa\nbb\ncc\ndd\n", 6, []string{"aa\nbb\n", "cc\ndd\n"}, []int{1, 3}},
		{"line longer than a chunk", "a\n" + long + "\nb\n", 8, []string{"a\n", long + "\nb\n"}, []int{1, 2}},
		{"blank lines count", "\n\na\n", 4, []string{"\n\na\n"}, []int{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewChunker(strings.NewReader(tt.in), tt.size)
			var got []string
			var lines []int
			var buf []byte
			for {
				data, line, err := c.Next(buf)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, string(data))
				lines = append(lines, line)
				buf = nil // the caller owns data
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
				t.Errorf("chunks = %q, want %q", got, tt.want)
			}
			for i := range lines {
				if i < len(tt.lines) && lines[i] != tt.lines[i] {
					t.Errorf("first lines = %v, want %v", lines, tt.lines)
					break
				}
			}
			if strings.Join(got, "") != tt.in {
				t.Errorf("chunks do not add up to the input")
			}
		})
	}
}
