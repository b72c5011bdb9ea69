package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/netsentinel/netsentinel/internal/capture"
	"github.com/netsentinel/netsentinel/internal/conntrack"
	"github.com/netsentinel/netsentinel/internal/features"
	"github.com/netsentinel/netsentinel/internal/sensor"
	"github.com/netsentinel/netsentinel/internal/stream"
	"github.com/netsentinel/netsentinel/internal/web"
)

var cmdSensor = &Command{
	Name:      "sensor",
	UsageLine: "sensor --brokers HOST:PORT,... --id NAME (--interface IF | --follow CONN_LOG) [--topic T] [--listen ADDR]",
	Short:     "capture live traffic or follow a Zeek log and publish connection records to Kafka",
	Long: `
Sensor assembles connections, with the KDD'99 features extract computes,
from live traffic or from a Zeek conn.log being written, and publishes each
as a JSON record (the same object extract prints) to --topic, keyed by the
destination address, so that detect can score them.

--interface IF captures every packet of a network interface through a Linux
AF_PACKET socket (needs CAP_NET_RAW). The packets the kernel drops because
the sensor falls behind are counted (netsentinel_sensor_kernel_drops_total,
a warning when they grow, and the summary at exit, with their share of the
packets the kernel counted for the socket; on a loopback interface the
kernel counts every packet twice, outgoing and incoming, and the sensor
reads one of them). On SIGINT or SIGTERM the open connections are
finished and published before the sensor exits (Kafka gets 30 s to take
them, else the sensor exits with the error); packets that pass while
it is down are not seen.

Records are published in order of connection end, as the traffic
features need: a connection that ended waits for open ones that could
still end before it, at most --max-delay (an idle long-lived connection,
an SSH session or a Kafka client's, would otherwise hold every record until
it times out after 5 minutes); a connection released late is counted in
the summary's reordered figure. A TCP connection is finished 5 s after
it closes, so records reach Kafka about 5-10 s after their connection's
end.

--follow FILE follows a Zeek conn.log (TSV or JSON lines) as Zeek writes it,
also after Zeek rotates it (rename and a new file, or truncation). Records
are published in Kafka transactions every --commit-interval together with a
checkpoint (file, offset) on --checkpoint-topic under --id: a restart
resumes right after the last connection published, in the rotated file if
the log was rotated meanwhile, so no connection is lost or repeated.

Traffic features need every connection of a capture point: run one sensor
(one --id) per interface or log. The traffic windows start empty after a
restart. A Kafka error that a transaction cannot survive ends the sensor
with exit code 1; restarted, a log follower resumes from its last
checkpoint. Metrics are served on --listen (/metrics, /-/healthy, /-/ready).
`,
	Flags: sensorFlags,
}

func sensorFlags(fs *flag.FlagSet) RunFunc {
	kf := addKafkaFlags(fs)
	topic := fs.String("topic", stream.DefaultTopic, "Kafka `topic` to publish records to")
	cpTopic := fs.String("checkpoint-topic", sensor.DefaultCheckpointTopic, "Kafka `topic` of the sensors' checkpoints")
	id := fs.String("id", "", "this sensor's `name`: its transactional ID and checkpoint key, one per capture point (required)")
	iface := fs.String("interface", "", "network `interface` to capture from (Linux AF_PACKET)")
	follow := fs.String("follow", "", "Zeek conn.log `file` to follow")
	snaplen := fs.Int("snaplen", 65535, "capture at most this many `bytes` of each packet")
	interval := fs.Duration("commit-interval", time.Second, "publish a transaction this often (`duration`)")
	poll := fs.Duration("poll", 200*time.Millisecond, "check a followed log for growth and rotation this often (`duration`)")
	hostWindow := fs.Int("host-window", features.DefaultOptions().HostWindow, "connections the dst_host_* features look back over (`N`)")
	maxConns := fs.Int("max-conns", conntrack.DefaultConfig().MaxConns, "open connections tracked at most (`N`)")
	maxDelay := fs.Duration("max-delay", 5*time.Second, "--interface: a finished connection waits at most this `long` for open ones that could still end before it (records are published in order of connection end; 0: wait for them, up to the 5-minute TCP idle timeout)")
	listen := fs.String("listen", web.DefaultListen, "`address` for /metrics, /-/healthy and /-/ready (none: off)")
	return func(ctx context.Context, env *Env, args []string) error {
		if len(args) > 0 {
			return Usagef("unexpected arguments %q", args)
		}
		if *id == "" {
			return Usagef("--id is required")
		}
		if (*iface == "") == (*follow == "") {
			return Usagef("give exactly one of --interface and --follow")
		}
		if *hostWindow <= 0 || *maxConns <= 0 || *snaplen <= 0 {
			return Usagef("--host-window, --max-conns and --snaplen must be positive")
		}
		if *maxDelay < 0 {
			return Usagef("--max-delay %v: must not be negative", *maxDelay)
		}
		ccfg, err := kf.config()
		if err != nil {
			return err
		}
		log := slog.New(slog.NewTextHandler(env.Stderr, nil))
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		s, err := sensor.New(sensor.Options{
			Client: ccfg, Topic: *topic, CheckpointTopic: *cpTopic, ID: *id,
			Features: features.Options{HostWindow: *hostWindow}, Tracker: conntrack.Config{MaxConns: *maxConns, MaxDelay: *maxDelay},
			Interval: *interval, Poll: *poll, Logger: log, Registerer: reg,
		})
		if err != nil {
			return err
		}
		defer s.Close()
		var srv *web.Server
		if *listen != "none" && *listen != "" {
			srv = web.New(web.Options{Listen: *listen, Gatherer: reg, Logger: log})
			if err := srv.Start(); err != nil {
				return err
			}
			srv.SetStatus(web.Ready)
			log.Info("serving metrics", "addr", "http://"+srv.Addr()+"/metrics")
			defer func() {
				srv.SetStatus(web.Stopping)
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
					log.Warn("http shutdown", "err", err)
				}
			}()
		}
		var runErr error
		if *follow != "" {
			log.Info("sensor following", "file", *follow, "topic", *topic, "id", *id)
			runErr = s.FollowZeek(ctx, *follow)
		} else {
			live, err := capture.OpenLive(*iface, *snaplen, 100*time.Millisecond)
			if err != nil {
				return err
			}
			defer live.Close()
			log.Info("sensor capturing", "interface", *iface, "topic", *topic, "id", *id)
			runErr = s.Capture(ctx, live)
		}
		st := s.Stats()
		fmt.Fprintf(env.Stderr, "sensor: %d records in %d transactions; %d packets, %d corrupt, %d connections evicted, %d reordered; kernel: %d packets, %d dropped (%.2f%%); %d bad log lines\n",
			st.Records, st.Transactions, st.Tracker.Packets, st.Tracker.Corrupt, st.Tracker.Evicted, st.Tracker.Reordered, st.Kernel.Packets, st.Kernel.Drops,
			100*float64(st.Kernel.Drops)/float64(max(st.Kernel.Packets, 1)), st.LineErrors)
		return runErr
	}
}
