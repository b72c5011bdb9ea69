//go:build !unix

package testkit

import "time"

// CPUTime returns 0: the process's CPU time is not available here.
func CPUTime() time.Duration { return 0 }
