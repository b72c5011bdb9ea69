package dataset

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that the loader's goroutines have all ended after the
// tests, including those that stop early on an error.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
