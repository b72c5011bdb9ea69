package dataset

import (
	"bufio"
	"bytes"
	"io"

	"github.com/netsentinel/netsentinel/internal/record"
)

// Chunker cuts a stream into chunks of whole lines, for parsing them in
// parallel. It is not safe for concurrent use.
type Chunker struct {
	br    *bufio.Reader
	size  int
	carry []byte
	line  int
	eof   bool
}

// NewChunker returns a Chunker that reads r in chunks of about size bytes.
func NewChunker(r io.Reader, size int) *Chunker {
	return &Chunker{br: bufio.NewReaderSize(r, size), size: size, line: 1}
}

// Next returns the next chunk: whole lines with their line ends (the last
// line of the input may lack one) and the 1-based number of its first line.
// A line longer than the chunk size makes a longer chunk. buf is reused for
// the chunk when its capacity suffices; the caller owns the returned slice.
// Next returns io.EOF after the last chunk.
func (c *Chunker) Next(buf []byte) (data []byte, firstLine int, err error) {
	for {
		if c.eof {
			return nil, 0, io.EOF
		}
		if cap(buf) < c.size+len(c.carry) {
			buf = make([]byte, 0, c.size+len(c.carry))
		}
		buf = append(buf[:0], c.carry...)
		// Fill the buffer. Only io.EOF ends the input: any other error
		// (io.ErrUnexpectedEOF from a decompressor among them) is one.
		var err error
		for len(buf) < cap(buf) && err == nil {
			var n int
			n, err = c.br.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
		}
		c.eof = err == io.EOF
		if err != nil && !c.eof {
			return nil, 0, err
		}
		cut := len(buf)
		if !c.eof {
			cut = bytes.LastIndexByte(buf, '\n') + 1
			if cut == 0 { // one line longer than a chunk: read on
				c.carry = buf
				buf = nil
				continue
			}
		}
		c.carry = append([]byte(nil), buf[cut:]...)
		data, firstLine = buf[:cut], c.line
		c.line += bytes.Count(data, []byte{'\n'})
		if len(data) == 0 {
			continue
		}
		return data, firstLine, nil
	}
}

// DecodeLines decodes each non-blank line of a chunk (see Chunker) and calls
// f with the line's 1-based number (firstLine is the chunk's first) and the
// record, or the decoding error. The record is reused between calls. An
// error from f stops the loop and is returned.
func DecodeLines(data []byte, firstLine int, f func(line int, rec *record.Record, err error) error) error {
	return DecodeLinesWith(data, firstLine, record.Decode, f)
}

// DecodeLinesWith is DecodeLines with another record decoder, such as
// record.DecodePartial.
func DecodeLinesWith(data []byte, firstLine int, decode func([]byte, *record.Record) error, f func(line int, rec *record.Record, err error) error) error {
	var rec record.Record
	for line := firstLine; len(data) > 0; line++ {
		var l []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i], data[i+1:]
		} else {
			l, data = data, nil
		}
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		if err := f(line, &rec, decode(l, &rec)); err != nil {
			return err
		}
	}
	return nil
}
