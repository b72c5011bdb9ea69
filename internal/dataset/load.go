package dataset

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/netsentinel/netsentinel/internal/record"
)

// Options control loading.
type Options struct {
	// SkipBad skips malformed lines and counts them in Dataset.Skipped
	// instead of failing on the first one.
	SkipBad bool
	// Progress, if set, is called from the reader goroutine with the bytes
	// of the file read so far and the file's size (0 when unknown).
	Progress func(done, total int64)
}

const chunkSize = 1 << 20

// Load reads a file of records, plain or gzip (see Open). A read error,
// or a gzip file that ends early, fails the load with a *ReadError.
func Load(path string, opts Options) (*Dataset, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if opts.Progress != nil {
		r = &progressReader{r: f, progress: opts.Progress}
	}
	d, err := Read(r, path, opts)
	if err != nil {
		return nil, err
	}
	d.Source = filepath.Base(path)
	return d, nil
}

// progressReader reports the bytes of the file read after each read.
type progressReader struct {
	r        *Reader
	progress func(done, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.progress(p.r.RawBytes())
	}
	return n, err
}

type chunk struct {
	seq       int
	firstLine int
	data      []byte
}

type result struct {
	d   *Dataset
	err error
}

// Read reads records, one per line, from r; name is used in errors. Blank
// lines are skipped. It parses chunks of lines in parallel.
func Read(r io.Reader, name string, opts Options) (*Dataset, error) {
	workers := runtime.GOMAXPROCS(0)
	chunks := make(chan chunk, workers)
	var (
		mu      sync.Mutex
		results []result
		readErr error
		wg      sync.WaitGroup
	)
	stop := make(chan struct{})
	var stopOnce sync.Once
	// free hands parsed chunk buffers back to split for reuse; records do
	// not alias them (labels are copied or interned).
	free := make(chan []byte, 2*workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range chunks {
				d, err := parseChunk(c, name, opts.SkipBad)
				select {
				case free <- c.data[:0]:
				default:
				}
				mu.Lock()
				for len(results) <= c.seq {
					results = append(results, result{})
				}
				results[c.seq] = result{d, err}
				mu.Unlock()
				if err != nil {
					stopOnce.Do(func() { close(stop) })
				}
			}
		}()
	}
	readErr = split(r, chunks, free, stop)
	close(chunks)
	wg.Wait()
	if readErr != nil {
		var re *ReadError
		if errors.As(readErr, &re) {
			return nil, readErr
		}
		return nil, fmt.Errorf("read %s: %w", name, readErr)
	}
	out := &Dataset{Source: name}
	n := 0
	for _, res := range results {
		if res.err != nil {
			return nil, res.err
		}
		if res.d != nil {
			n += res.d.Len()
		}
	}
	for j := range out.X {
		out.X[j] = make([]float32, 0, n)
	}
	out.Labels = make([]string, 0, n)
	for _, res := range results {
		if res.d != nil {
			out.Concat(res.d)
		}
	}
	out.Source = name
	return out, nil
}

// split cuts r into chunks that end at a line end and sends them on. It
// takes buffers from free when one is large enough.
func split(r io.Reader, chunks chan<- chunk, free <-chan []byte, stop <-chan struct{}) error {
	c := NewChunker(r, chunkSize)
	for seq := 0; ; seq++ {
		var buf []byte
		select {
		case buf = <-free:
		default:
		}
		data, line, err := c.Next(buf)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		select {
		case chunks <- chunk{seq: seq, firstLine: line, data: data}:
		case <-stop:
			return nil
		}
	}
}

func parseChunk(c chunk, name string, skipBad bool) (*Dataset, error) {
	n := bytes.Count(c.data, []byte{'\n'}) + 1
	d := &Dataset{Labels: make([]string, 0, n)}
	for j := range d.X {
		d.X[j] = make([]float32, 0, n)
	}
	err := DecodeLines(c.data, c.firstLine, func(line int, rec *record.Record, err error) error {
		switch {
		case err == nil:
			d.Append(rec)
		case skipBad:
			d.Skipped++
		default:
			return &ParseError{File: name, Line: line, Err: err}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}
