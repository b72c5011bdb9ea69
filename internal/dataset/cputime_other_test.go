//go:build !unix

package dataset

import "time"

// cpuTime is not measured on this system; per-CPU-second metrics are left out.
func cpuTime() time.Duration { return 0 }
