package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/netsentinel/netsentinel/internal/broker"
)

var cmdBroker = &Command{
	Name:      "broker",
	UsageLine: "broker [--listen 127.0.0.1:9092] [--data-dir DIR] [--partitions N] [--retention 168h] [--retention-bytes 1GiB]",
	Short:     "run an embedded Kafka-protocol broker for one machine",
	Long: `
Broker runs an embedded Kafka-protocol broker (franz-go's kfake) until it gets
SIGINT or SIGTERM. Any Kafka client can produce into it and consume from it:
netsentinel publish and detect, kcat, rsyslog's omkafka, Zeek's Kafka writer.

Topics are created on first use with --partitions partitions. Transactions and
consumer groups work, so detect's exactly-once processing works too. With
--data-dir, records, committed offsets and transaction state survive a
restart; without it everything is kept in memory and is lost on exit.

Records are deleted when they are older than --retention or when their
partition holds more than --retention-bytes (oldest first, a whole segment
file of --segment-bytes at a time), whether or not a detector has read them
yet. Give retention room for the longest time a detector may be down, and
for the days the report's baseline looks back on.

Crash safety (with --data-dir): the broker marks the directory while it
runs. After a stop that was not clean (kill -9, a crash, power loss) the
next start checks every segment and log before serving: it cuts writes
the stop interrupted, rebuilds segment indexes from the segments, finishes
a transaction commit the stop interrupted (from its own journal of the
commit's offsets) and aborts every other transaction left open with a real
abort marker, fencing its producer as a transaction timeout does. So
detect's transactions stay exactly-once across kill -9 of the broker: every
input record is counted once in the statistics and gets at most one alert
(the test TestKillBrokerUnderLoad kills it under load, with detect --alerts
records, and checks the books). Damage a
stop cannot cause (a corrupt batch in the middle of a segment) makes the
start fail with the file, the byte and how to recover; nothing is served
from such a directory. Without --sync-writes a power loss can lose the last
records acknowledged before it, as with Kafka's defaults; a kill -9 loses
nothing acknowledged.

The broker has no authentication. It listens on loopback only, unless
--allow-remote is given; to listen on 0.0.0.0 also give --advertise, the host
name or address clients connect to.

It is a single-machine broker: one node, no replication. Use a Kafka
cluster when one machine is not enough or a disk failure must not lose data.
`,
	Flags: func(fs *flag.FlagSet) RunFunc {
		listen := fs.String("listen", broker.DefaultListen, "`host:port` to listen on (port 0: any free port)")
		dataDir := fs.String("data-dir", "", "`dir`ectory that keeps topics, records and offsets across restarts (default: memory only)")
		partitions := fs.Int("partitions", broker.DefaultPartitions, "partitions of auto-created topics")
		advertise := fs.String("advertise", "", "`host` that clients are told to connect to (default: the listen address)")
		allowRemote := fs.Bool("allow-remote", false, "allow listening on a non-loopback address (there is no authentication)")
		syncWrites := fs.Bool("sync-writes", false, "fsync every produced batch (with --data-dir; slower; survives power loss)")
		retention := fs.Duration("retention", broker.DefaultRetention, "delete records older than this `duration` (0: keep forever)")
		retentionBytes := fs.String("retention-bytes", formatSize(broker.DefaultRetentionBytes), "keep at most this `size` of records per partition, e.g. 512MiB or 2GiB (0: no limit)")
		segmentBytes := fs.String("segment-bytes", formatSize(broker.DefaultSegmentBytes), "`size` of a partition's segment files, the unit retention deletes")
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
			retBytes, err := parseSize(*retentionBytes)
			if err != nil {
				return Usagef("--retention-bytes %q: %v", *retentionBytes, err)
			}
			segBytes, err := parseSize(*segmentBytes)
			if err != nil || segBytes == 0 {
				return Usagef("--segment-bytes %q: want a size of at least 1KiB", *segmentBytes)
			}
			if *retention < 0 {
				return Usagef("--retention %v: must not be negative (0 keeps records forever)", *retention)
			}
			ret := *retention
			if ret == 0 {
				ret = -1
			}
			if retBytes == 0 {
				retBytes = -1
			}
			log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: level}))
			ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			b, err := broker.Start(ctx, broker.Config{
				Listen:         *listen,
				Advertise:      *advertise,
				AllowRemote:    *allowRemote,
				DataDir:        *dataDir,
				SyncWrites:     *syncWrites,
				Partitions:     *partitions,
				Retention:      ret,
				RetentionBytes: retBytes,
				SegmentBytes:   segBytes,
				Logger:         log,
			})
			if errors.Is(err, broker.ErrConfig) {
				return Usagef("%v", err)
			}
			if err != nil {
				return err
			}
			if r := b.Recovery(); r.Unclean {
				fmt.Fprintf(env.Stdout, "data directory recovered after an unclean stop: %d torn bytes cut, %d index entries rebuilt, %d topics restored, %d open transactions aborted, %d partitions of an interrupted commit committed\n",
					r.TornBytes, r.IndexEntries, r.Topics, r.Aborted, r.Completed)
			}
			fmt.Fprintf(env.Stdout, "kafka broker listening on %s\n", strings.Join(b.Addrs(), ","))
			<-ctx.Done()
			log.Info("shutting down")
			return b.Close()
		}
	},
}

// parseSize reads a byte count: a number with an optional unit B, KiB, MiB,
// GiB or TiB (or KB, MB, GB, TB, read as the binary units).
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
		{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("want a non-negative whole number of bytes with an optional unit (KiB, MiB, GiB, TiB)")
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("too large")
	}
	return n * mult, nil
}

// formatSize writes n in the largest binary unit that divides it.
func formatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.mult && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
