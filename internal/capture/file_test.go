package capture

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/netsentinel/netsentinel/internal/capture/capturetest"
)

func TestSniff(t *testing.T) {
	f := func(in string, want Kind) {
		t.Helper()
		if got := Sniff([]byte(in)); got != want {
			t.Errorf("Sniff(%q) = %v, want %v", in, got, want)
		}
	}
	f("\xd4\xc3\xb2\xa1", KindPcap)
	f("\xa1\xb2\xc3\xd4", KindPcap)
	f("\x4d\x3c\xb2\xa1", KindPcap)
	f("\x0a\x0d\x0d\x0a", KindPcapNG)
	f("\x1f\x8b\x08\x00", KindGzip)
	f("#sep", KindText)
	f("{\"ts", KindText)
	f("  {\"", KindText)
	f("#", KindText)
	f("hello", KindUnknown)
	f("", KindUnknown)
}

func TestReadPcap(t *testing.T) {
	var buf bytes.Buffer
	c, err := capturetest.WritePcap(&buf, 100, capturetest.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	read := func(data []byte) (int, error) {
		src, err := OpenFile(bytes.NewReader(data))
		if err != nil {
			return 0, err
		}
		n := 0
		var last int64
		for {
			f, err := src.Next()
			if err == io.EOF {
				return n, nil
			}
			if err != nil {
				return n, err
			}
			if f.Link != 1 || f.TS < last || len(f.Data) < 34 {
				t.Fatalf("frame %d: link %d ts %d len %d", n, f.Link, f.TS, len(f.Data))
			}
			last = f.TS
			n++
		}
	}
	if n, err := read(buf.Bytes()); n != c.Packets || err != nil {
		t.Errorf("read %d packets, %v; want %d", n, err, c.Packets)
	}
	n, err := read(buf.Bytes()[:buf.Len()-5])
	var te *TruncatedError
	if !errors.As(err, &te) || te.Packets != uint64(c.Packets-1) || n != c.Packets-1 || !errors.Is(err, ErrTruncated) {
		t.Errorf("truncated: read %d, %v", n, err)
	}
	if _, err := OpenFile(strings.NewReader("not a capture")); err == nil || !strings.Contains(err.Error(), "not a pcap or pcapng file") {
		t.Errorf("OpenFile(text) = %v", err)
	}
}
