// Command netsentinel trains intrusion-detection models on network
// connection records and scores record streams from Apache Kafka in real
// time. Run 'netsentinel -h' for its commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/netsentinel/netsentinel/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], &cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	os.Exit(code)
}
