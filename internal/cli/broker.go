package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os/signal"
	"strings"
	"syscall"

	"github.com/netsentinel/netsentinel/internal/broker"
)

var cmdBroker = &Command{
	Name:      "broker",
	UsageLine: "broker [--listen 127.0.0.1:9092] [--data-dir DIR] [--partitions N]",
	Short:     "run an embedded Kafka-protocol broker for one machine",
	Long: `
Broker runs an embedded Kafka-protocol broker (franz-go's kfake) until it gets
SIGINT or SIGTERM. Any Kafka client can produce into it and consume from it:
netsentinel publish and detect, kcat, rsyslog's omkafka, Zeek's Kafka writer.

Topics are created on first use with --partitions partitions. Transactions and
consumer groups work, so detect's exactly-once processing works too. With
--data-dir, records, committed offsets and transaction state survive a
restart; without it everything is kept in memory (which grows with every
record) and is lost on exit.

The broker has no authentication. It listens on loopback only, unless
--allow-remote is given; to listen on 0.0.0.0 also give --advertise, the host
name or address clients connect to.

It is a development and single-machine broker: one node, no replication, no
retention. Use a Kafka cluster for anything that must not lose data.
`,
	Flags: func(fs *flag.FlagSet) RunFunc {
		listen := fs.String("listen", broker.DefaultListen, "`host:port` to listen on (port 0: any free port)")
		dataDir := fs.String("data-dir", "", "`dir`ectory that keeps topics, records and offsets across restarts (default: memory only)")
		partitions := fs.Int("partitions", broker.DefaultPartitions, "partitions of auto-created topics")
		advertise := fs.String("advertise", "", "`host` that clients are told to connect to (default: the listen address)")
		allowRemote := fs.Bool("allow-remote", false, "allow listening on a non-loopback address (there is no authentication)")
		syncWrites := fs.Bool("sync-writes", false, "fsync every produced batch (with --data-dir; slower)")
		logLevel := fs.String("log-level", "info", "log `level`: debug, info, warn or error")
		return func(ctx context.Context, env *Env, args []string) error {
			if len(args) > 0 {
				return Usagef("unexpected arguments: %s", strings.Join(args, " "))
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
				return Usagef("--log-level %q: %v", *logLevel, err)
			}
			if *partitions < 1 {
				return Usagef("--partitions %d: must be at least 1", *partitions)
			}
			log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: level}))
			ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			b, err := broker.Start(ctx, broker.Config{
				Listen:      *listen,
				Advertise:   *advertise,
				AllowRemote: *allowRemote,
				DataDir:     *dataDir,
				SyncWrites:  *syncWrites,
				Partitions:  *partitions,
				Logger:      log,
			})
			if errors.Is(err, broker.ErrConfig) {
				return Usagef("%v", err)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "kafka broker listening on %s\n", strings.Join(b.Addrs(), ","))
			<-ctx.Done()
			log.Info("shutting down")
			return b.Close()
		}
	},
}
