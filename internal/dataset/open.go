package dataset

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
)

// ErrTruncated is wrapped by the error of a gzip stream that ends before
// its end: a file cut short by a full disk, an interrupted copy or a
// download that stopped.
var ErrTruncated = errors.New("gzip stream ends early (truncated file?)")

// ReadError is a failure to read or decompress a file of records, with the
// position it happened at.
type ReadError struct {
	// File names the input.
	File string
	// Line is the line the failure cut (1-based): Line-1 lines were read
	// whole.
	Line int64
	// Offset is the number of (decompressed) bytes read before the failure.
	Offset int64
	// Compressed is the number of bytes of the file read, for a gzip file.
	Compressed int64
	// Err is the cause; ErrTruncated for a gzip stream that ends early.
	Err error
}

func (e *ReadError) Error() string {
	if e.Compressed > 0 {
		return fmt.Sprintf("%s:%d: %v (after %d bytes decompressed from %d bytes of the file)", e.File, e.Line, e.Err, e.Offset, e.Compressed)
	}
	return fmt.Sprintf("%s:%d: %v (after %d bytes)", e.File, e.Line, e.Err, e.Offset)
}

func (e *ReadError) Unwrap() error { return e.Err }

// gzipMagic starts every gzip stream (RFC 1952).
var gzipMagic = []byte{0x1f, 0x8b}

// Reader reads a file of records, decompressing it when it is gzip. It
// recognises gzip by its magic bytes, whatever the file is called, and
// reports a gzip stream that ends early, or fails its checksum, as a
// *ReadError naming the file and the position. It is not safe for
// concurrent use, except RawBytes.
type Reader struct {
	name   string
	raw    *rawCounter
	in     io.Reader // the decompressed (or plain) stream
	zr     *gzip.Reader
	closer io.Closer
	offset int64
	lines  int64
}

// Open opens the file at path for reading records.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := NewReader(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.closer = f
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		r.raw.size = st.Size()
	}
	return r, nil
}

// NewReader returns a Reader of r's content; name is used in errors. It
// reads the first bytes of r to see whether it is gzip (and the gzip
// header if so); a gzip header that cannot be read is an error.
func NewReader(r io.Reader, name string) (*Reader, error) {
	raw := &rawCounter{r: r}
	br := bufio.NewReaderSize(raw, 64<<10)
	rd := &Reader{name: name, raw: raw, in: br}
	if magic, _ := br.Peek(len(gzipMagic)); bytes.Equal(magic, gzipMagic) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				err = ErrTruncated
			}
			return nil, &ReadError{File: name, Line: 1, Compressed: raw.n.Load(), Err: fmt.Errorf("gzip header: %w", err)}
		}
		rd.zr, rd.in = zr, zr
	}
	return rd, nil
}

// Read reads decompressed bytes. A read failure, a gzip stream that ends
// early or fails its checksum is a *ReadError.
func (r *Reader) Read(p []byte) (int, error) {
	n, err := r.in.Read(p)
	r.offset += int64(n)
	r.lines += int64(bytes.Count(p[:n], []byte{'\n'}))
	if err == nil || err == io.EOF {
		return n, err
	}
	if r.zr != nil && errors.Is(err, io.ErrUnexpectedEOF) {
		err = ErrTruncated
	}
	e := &ReadError{File: r.name, Line: r.lines + 1, Offset: r.offset, Err: err}
	if r.zr != nil {
		e.Compressed = r.raw.n.Load()
	}
	return n, e
}

// Compressed reports whether the input is gzip.
func (r *Reader) Compressed() bool { return r.zr != nil }

// RawBytes returns the number of bytes of the input read so far (before
// decompression) and the input's size (0 when unknown), for progress. It
// may be called from any goroutine.
func (r *Reader) RawBytes() (done, size int64) { return r.raw.n.Load(), r.raw.size }

// Close closes the file Open opened; for a NewReader it closes nothing.
func (r *Reader) Close() error {
	if r.zr != nil {
		r.zr.Close()
	}
	if r.closer != nil {
		return r.closer.Close()
	}
	return nil
}

// rawCounter counts the bytes read from the input.
type rawCounter struct {
	r    io.Reader
	n    atomic.Int64
	size int64
}

func (c *rawCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
