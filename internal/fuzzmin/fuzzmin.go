// Package fuzzmin bounds how long the Go fuzzer minimizes an input that
// found new coverage, for test binaries whose fuzz targets take inputs of
// kilobytes.
//
// Go's minimizer first cuts the tail and drops single bytes, then tries
// removing every substring: n²/2 runs of the fuzz function for an input of n
// bytes that cannot shrink, for up to -fuzzminimizetime (60 s by default).
// A model file of a few kilobytes whose new path goes through a section
// decoder cannot shrink (removing any byte breaks the section's length), so
// every new input stalled the only worker for a minute: the model targets
// ran a handful of inputs per minute under go test -fuzz.
package fuzzmin

import (
	"flag"
	"testing"
)

// Limit is the default bound: this many runs of the fuzz function per
// minimized input, enough for the tail cut and single-byte removal of a
// small input.
const Limit = "200x"

// Main runs the tests of m with -test.fuzzminimizetime set to Limit unless
// the command line sets it, and returns the exit code. Use it as
//
//	func TestMain(m *testing.M) { os.Exit(fuzzmin.Main(m)) }
func Main(m *testing.M) int {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.fuzzminimizetime" })
	if !given {
		if err := flag.Set("test.fuzzminimizetime", Limit); err != nil {
			panic("fuzzmin: " + err.Error())
		}
	}
	return m.Run()
}
