// Package parallel runs a loop over [0, n) on several goroutines, each
// with a contiguous range, and waits for all of them. It is pure: no I/O.
// Its goroutines all end before Ranges returns.
package parallel

import "sync"

// Ranges calls f over [0, n) split into up to workers contiguous ranges,
// each with its worker index (0 <= w < workers), on that many goroutines,
// and waits for all of them. With one worker (or n <= workers <= 1) it
// calls f on the caller's goroutine. It does nothing when n is 0.
func Ranges(n, workers int, f func(w, lo, hi int)) {
	workers = min(workers, n)
	if workers <= 1 {
		if n > 0 {
			f(0, 0, n)
		}
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := n*w/workers, n*(w+1)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(w, lo, hi)
		}()
	}
	wg.Wait()
}
