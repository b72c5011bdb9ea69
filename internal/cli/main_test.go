package cli

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no command leaves a goroutine behind: the demo's
// detectors, output reader and broker, predict's reader and scorers, the
// report scheduler.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
