// Command genpcap writes a synthetic pcap file (see internal/capture/capturetest)
// for the extract benchmark: genpcap -n PACKETS -o FILE.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/netsentinel/netsentinel/internal/capture/capturetest"
)

func main() {
	n := flag.Int("n", 2_000_000, "number of packets")
	out := flag.String("o", "bench.pcap", "output `file`")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	c, err := capturetest.WritePcap(f, *n, capturetest.Options{Seed: *seed})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%s: %d packets, %d connections\n", *out, c.Packets, c.Conns)
}
