// Package broker runs an embedded Kafka-protocol broker for single-machine
// use and development: franz-go's kfake, one broker node, with topics
// auto-created on first use, transactions and consumer groups, and (with a
// data directory) records and committed offsets kept across restarts.
//
// Any Kafka client can talk to it: netsentinel's own commands, kcat,
// rsyslog's omkafka, Zeek's Kafka writer. It is not a replacement for a
// Kafka cluster: there is one node, no replication, no retention unless a
// topic sets it, and kfake's own on-disk format (not Kafka's log format).
//
// kfake binds 127.0.0.1 by default. Config.Listen may name another local IP
// address only with Config.AllowRemote set, since the broker has no
// authentication; an unspecified address (0.0.0.0, ::) also needs
// Config.Advertise, the host clients should connect to.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
)

// DefaultListen is the address the broker listens on by default: Kafka's
// usual port on the loopback interface.
const DefaultListen = "127.0.0.1:9092"

// DefaultPartitions is the number of partitions of auto-created topics when
// Config.Partitions is 0: enough for a few detector processes to share a
// topic.
const DefaultPartitions = 4

// ErrConfig is wrapped by every error that Start returns for an invalid
// Config (as opposed to, say, a port in use).
var ErrConfig = errors.New("invalid broker configuration")

// ErrRemoteListen is returned (wrapped, with ErrConfig) by Start when
// Config.Listen is not a loopback address and Config.AllowRemote is false.
var ErrRemoteListen = errors.New("listening beyond loopback needs AllowRemote (the broker has no authentication)")

// Config configures Start. The zero value is a memory-only broker on
// DefaultListen.
type Config struct {
	// Listen is the host:port to listen on, DefaultListen if empty. The
	// host must be an IP address or "localhost"; port 0 picks a free port.
	Listen string
	// Advertise is the host clients are told to connect to. Empty means
	// the listen address; it is required when Listen's host is 0.0.0.0 or ::.
	Advertise string
	// AllowRemote allows a Listen address that is not loopback.
	AllowRemote bool
	// DataDir, if set, keeps topics, records, consumer group offsets and
	// transaction state in this directory, so that they survive a restart.
	// It is created if needed and locked against a second broker. Empty
	// keeps everything in memory (and memory grows with every record).
	DataDir string
	// SyncWrites fsyncs every produced batch (slower; survives power loss).
	// Without it, data reaches the disk on segment roll and on Close.
	SyncWrites bool
	// Partitions is the partition count of auto-created topics and of
	// topics created with -1 partitions; DefaultPartitions if 0.
	Partitions int
	// Logger receives the broker's log; nil discards it. kfake's warnings
	// and errors are logged at Warn and Error, the rest at Debug.
	Logger *slog.Logger
}

// Broker is a running embedded broker. Its methods are safe for concurrent
// use.
type Broker struct {
	cluster   *kfake.Cluster
	addrs     []string
	unlock    func()
	closeOnce sync.Once
	log       *slog.Logger
}

// Start validates cfg and starts a broker. It returns once the broker
// accepts connections. ctx bounds only the start; Close stops the broker.
func Start(ctx context.Context, cfg Config) (*Broker, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	listen, advertise, err := cfg.resolve()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	parts := cfg.Partitions
	if parts == 0 {
		parts = DefaultPartitions
	}
	if parts < 0 {
		return nil, fmt.Errorf("%w: broker: partitions %d: must be at least 1", ErrConfig, cfg.Partitions)
	}

	host, portStr, _ := net.SplitHostPort(listen)
	port, _ := strconv.Atoi(portStr)
	opts := []kfake.Opt{
		kfake.Ports(port),
		kfake.ClusterID("netsentinel"),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(parts),
		kfake.WithLogger(slogAdapter{log}),
		kfake.ListenFn(func(network, address string) (net.Listener, error) {
			// kfake asks for 127.0.0.1:<port>; listen where configured.
			_, p, err := net.SplitHostPort(address)
			if err != nil {
				return nil, err
			}
			ln, err := net.Listen(network, net.JoinHostPort(host, p))
			if err != nil {
				return nil, err
			}
			if advertise == "" {
				return ln, nil
			}
			return advertisedListener{ln, advertise}, nil
		}),
	}
	unlock := func() {}
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("broker: data dir: %w", err)
		}
		unlock, err = lockDir(cfg.DataDir)
		if err != nil {
			return nil, fmt.Errorf("broker: data dir %s: %w", cfg.DataDir, err)
		}
		opts = append(opts, kfake.DataDir(filepath.Join(cfg.DataDir, "kfake")))
		if cfg.SyncWrites {
			opts = append(opts, kfake.SyncWrites())
		}
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("broker: listen %s: %w", listen, err)
	}
	b := &Broker{cluster: c, addrs: c.ListenAddrs(), unlock: unlock, log: log}
	log.Info("kafka broker listening", "addrs", b.addrs, "data_dir", cfg.DataDir, "partitions", parts)
	return b, nil
}

// resolve validates the listen and advertise settings and returns the
// listen address and the advertised host:port ("" for the listen address).
func (cfg Config) resolve() (listen, advertise string, err error) {
	listen = cfg.Listen
	if listen == "" {
		listen = DefaultListen
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", "", fmt.Errorf("broker: listen address %q: want host:port: %w", cfg.Listen, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "", "", fmt.Errorf("broker: listen address %q: bad port %q", cfg.Listen, port)
	}
	if host == "" || host == "localhost" {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return "", "", fmt.Errorf("broker: listen address %q: host must be an IP address or localhost", cfg.Listen)
	}
	if !ip.IsLoopback() && !cfg.AllowRemote {
		return "", "", fmt.Errorf("broker: listen address %q: %w", cfg.Listen, ErrRemoteListen)
	}
	if ip.IsUnspecified() && cfg.Advertise == "" {
		return "", "", fmt.Errorf("broker: listen address %q: an unspecified address needs Advertise (the host clients connect to)", cfg.Listen)
	}
	if cfg.Advertise != "" {
		if _, _, err := net.SplitHostPort(cfg.Advertise); err == nil {
			return "", "", fmt.Errorf("broker: advertise %q: want a host without port", cfg.Advertise)
		}
		advertise = cfg.Advertise
	}
	return net.JoinHostPort(host, strconv.Itoa(p)), advertise, nil
}

// Addrs returns the host:port addresses clients connect to (the seed
// brokers).
func (b *Broker) Addrs() []string {
	return append([]string(nil), b.addrs...)
}

// Close stops the broker, flushing its data directory if it has one. It is
// safe to call more than once. It always returns nil; it returns an error
// so that it is an io.Closer.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		b.cluster.Close()
		b.unlock()
		b.log.Info("kafka broker stopped", "addrs", b.addrs)
	})
	return nil
}

// advertisedListener reports a chosen host as its address, which kfake
// hands to clients in metadata responses.
type advertisedListener struct {
	net.Listener
	host string
}

func (l advertisedListener) Addr() net.Addr {
	_, port, _ := net.SplitHostPort(l.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	return advertisedAddr(net.JoinHostPort(l.host, strconv.Itoa(p)))
}

type advertisedAddr string

func (a advertisedAddr) Network() string { return "tcp" }
func (a advertisedAddr) String() string  { return string(a) }

// slogAdapter sends kfake's log to a slog.Logger.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Logf(level kfake.LogLevel, format string, args ...any) {
	var lv slog.Level
	switch level {
	case kfake.LogLevelError:
		lv = slog.LevelError
	case kfake.LogLevelWarn:
		lv = slog.LevelWarn
	default:
		lv = slog.LevelDebug
	}
	if !a.l.Enabled(context.Background(), lv) {
		return
	}
	a.l.Log(context.Background(), lv, "kfake: "+fmt.Sprintf(format, args...))
}
