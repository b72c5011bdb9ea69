package cli

import (
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progressDelay is how long work must run before its bar appears, so that
// quick steps stay silent.
const progressDelay = time.Second

// progress draws a progress bar on a terminal for work that takes longer
// than progressDelay. On anything but a terminal it does nothing. Its
// methods are safe for concurrent use.
type progress struct {
	w     io.Writer
	desc  string
	bytes bool
	start time.Time

	mu  sync.Mutex
	bar *progressbar.ProgressBar
}

// newProgress returns a progress bar on w described by desc; bytes says
// whether the counts are bytes. It returns nil (a valid, silent progress)
// when w is not a terminal.
func newProgress(w io.Writer, desc string, bytes bool) *progress {
	if !isTerminal(w) {
		return nil
	}
	return &progress{w: w, desc: desc, bytes: bytes, start: time.Now()}
}

// update reports done of total units (total 0 when unknown).
func (p *progress) update(done, total int64) {
	if p == nil || time.Since(p.start) < progressDelay {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar == nil {
		max := total
		if max <= 0 {
			max = -1 // spinner
		}
		p.bar = progressbar.NewOptions64(max,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription(p.desc),
			progressbar.OptionShowBytes(p.bytes),
			progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	_ = p.bar.Set64(done) // a failed write to the terminal is not worth an error
}

// ints adapts update to progress callbacks that count in ints.
func (p *progress) ints(done, total int) { p.update(int64(done), int64(total)) }

// done removes the bar, if one was drawn.
func (p *progress) done() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Finish()
		_ = p.bar.Clear()
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
