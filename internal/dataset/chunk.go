package dataset

import (
	"bufio"
	"bytes"
	"errors"
	"io"
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
		n, err := io.ReadFull(c.br, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		c.eof = errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
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
