package logistic

import (
	"os"
	"testing"

	"github.com/netsentinel/netsentinel/internal/fuzzmin"
)

// TestMain bounds the fuzzer's minimization of new inputs (see package
// fuzzmin).
func TestMain(m *testing.M) { os.Exit(fuzzmin.Main(m)) }
