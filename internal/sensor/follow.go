package sensor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/netsentinel/netsentinel/internal/features"
	"github.com/netsentinel/netsentinel/internal/zeek"
)

// FollowZeek follows the Zeek conn.log at path until ctx is done: it
// resumes from the last checkpoint, publishes each connection as its line
// is written, and goes on in the new file when the log is rotated (renamed
// and created anew, or truncated). On return the last transaction has been
// committed or aborted; a cancelled ctx returns nil.
func (s *Sensor) FollowZeek(ctx context.Context, path string) error {
	if err := s.ensureCheckpointTopic(ctx); err != nil {
		return err
	}
	cp, err := s.LastCheckpoint(ctx)
	if err != nil {
		return err
	}
	var start *Checkpoint
	if cp != nil {
		// The checkpointed file: the log itself, or its rotated copy.
		if old := findInode(path, cp.Inode); old != "" {
			start = cp
			start.File = old
			s.log.Info("resuming", "file", old, "offset", cp.Offset)
		} else {
			s.log.Warn("the checkpointed file is gone; starting at the log's beginning", "inode", cp.Inode, "offset", cp.Offset)
		}
	}
	for {
		var err error
		if start != nil && start.File != path {
			// Finish the rotated file, then the log from its start.
			err = s.followFile(ctx, start.File, start, false)
			start = nil
		} else {
			err = s.followFile(ctx, path, start, true)
			start = nil
		}
		if errors.Is(err, errRotated) || err == nil {
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
}

var errRotated = errors.New("log rotated")

// followFile reads one file from cp's offset (or its start) and publishes
// its connections. With follow it waits at the end for more and returns
// errRotated when path names another file or the file shrank; without, it
// returns nil at the end.
func (s *Sensor) followFile(ctx context.Context, name string, cp *Checkpoint, follow bool) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("sensor: %w", err)
	}
	defer f.Close()
	ino := inode(f)
	var base int64
	var head []byte
	if cp != nil && cp.Inode == ino {
		if _, err := f.Seek(cp.Offset, io.SeekStart); err != nil {
			return fmt.Errorf("sensor: %s: %w", name, err)
		}
		head = []byte(cp.Header)
		base = cp.Offset - int64(len(head))
	}
	t := &tail{s: s, ctx: ctx, f: f, path: name, ino: ino, follow: follow, pos: max(base+int64(len(head)), 0)}
	zr := zeek.NewReader(io.MultiReader(bytes.NewReader(head), t))
	t.cp = func() *Checkpoint {
		return &Checkpoint{File: name, Inode: ino, Offset: base + zr.Offset(), Header: string(zr.Header())}
	}
	var c features.Conn
	for {
		err := zr.Next(&c)
		var le *zeek.LineError
		switch {
		case err == nil:
			s.add(&c)
			s.pending = true
			if ctx.Err() == nil && s.due() {
				if err := s.commit(ctx, t.cp()); err != nil {
					return err
				}
			}
		case errors.As(err, &le):
			s.stats.LineErrors++
			s.pending = true
			s.log.Warn("bad line skipped", "file", name, "err", err)
		case errors.Is(err, io.EOF), errors.Is(err, errRotated), ctx.Err() != nil:
			// Everything read so far is published with the position after
			// it, even when ctx is done.
			if cerr := s.commitDetached(ctx, t.cp()); cerr != nil {
				return cerr
			}
			if errors.Is(err, io.EOF) && t.rotated {
				return errRotated
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		default:
			return fmt.Errorf("sensor: %s: %w", name, err)
		}
	}
}

// tail reads a growing file. At its end it commits what is pending and
// waits; it ends (io.EOF) when the file was rotated away or, without
// follow, at once.
type tail struct {
	s       *Sensor
	ctx     context.Context
	f       *os.File
	path    string
	ino     uint64
	follow  bool
	pos     int64
	rotated bool
	cp      func() *Checkpoint
}

func (t *tail) Read(p []byte) (int, error) {
	for {
		n, err := t.f.Read(p)
		t.pos += int64(n)
		if n > 0 || (err != nil && err != io.EOF) {
			return n, err
		}
		if !t.follow {
			return 0, io.EOF
		}
		// At the end: was the log rotated or truncated?
		if st, err := os.Stat(t.path); err == nil {
			if ino := statInode(st); ino != t.ino {
				t.rotated = true
				return 0, io.EOF // the old file is complete: Zeek closed it before renaming
			}
			if st.Size() < t.pos {
				t.rotated = true
				return 0, io.EOF
			}
		}
		if t.ctx.Err() == nil && t.s.due() {
			if err := t.s.commit(t.ctx, t.cp()); err != nil {
				return 0, err
			}
		}
		select {
		case <-t.ctx.Done():
			return 0, t.ctx.Err()
		case <-time.After(t.s.opt.Poll):
		}
	}
}

func inode(f *os.File) uint64 {
	st, err := f.Stat()
	if err != nil {
		return 0
	}
	return statInode(st)
}

func statInode(st os.FileInfo) uint64 {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return sys.Ino
	}
	return 0
}

// findInode returns the file of path's directory with the given inode (the
// log itself, or its rotated copy), or "".
func findInode(path string, ino uint64) string {
	if st, err := os.Stat(path); err == nil && statInode(st) == ino {
		return path
	}
	dir := filepath.Dir(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && statInode(st) == ino {
			return p
		}
	}
	return ""
}
