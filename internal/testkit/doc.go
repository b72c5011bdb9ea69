// Package testkit holds what several packages' tests need: CPU time for
// benchmarks that report throughput per CPU-second, a self-signed TLS
// certificate for 127.0.0.1, and a real SMTP server (emersion/go-smtp) on
// the loopback interface that keeps the messages it accepts.
//
// Only test files import it; the architecture test checks that no
// production package does.
package testkit
