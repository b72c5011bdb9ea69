//go:build unix

package testkit

import (
	"syscall"
	"time"
)

// CPUTime returns the CPU time (user + system) the process has used, so a
// benchmark can report throughput per CPU-second, which stays meaningful
// when other processes share the cores. It returns 0 when the system does
// not say.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
