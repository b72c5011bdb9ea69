package capture

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/netsentinel/netsentinel/internal/capture/capturetest"
)

// FuzzOpenFile reads arbitrary bytes as a capture file: no panic, and every
// read either yields a frame, ends cleanly, or says the file is truncated.
func FuzzOpenFile(f *testing.F) {
	var buf bytes.Buffer
	if _, err := capturetest.WritePcap(&buf, 20, capturetest.Options{Seed: 3}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:100])
	f.Add([]byte{0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 28, 0, 0, 0})
	f.Add([]byte("#fields\tts\n"))
	// One reader for every input: OpenFile would allocate its 512 kB buffer
	// for each, which took more time than reading the input.
	br := bufio.NewReaderSize(nil, 2*maxFrame)
	f.Fuzz(func(t *testing.T, data []byte) {
		br.Reset(bytes.NewReader(data))
		src, err := OpenFile(br)
		if err != nil {
			return
		}
		for range 100000 {
			fr, err := src.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				if !errors.Is(err, ErrTruncated) {
					t.Fatalf("error %v does not say the file is truncated", err)
				}
				return
			}
			if len(fr.Data) > len(data) {
				t.Fatalf("frame of %d bytes from %d bytes of input", len(fr.Data), len(data))
			}
		}
	})
}
