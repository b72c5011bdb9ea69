// Package broker runs an embedded Kafka-protocol broker for single-machine
// use and development: franz-go's kfake, one broker node, with topics
// auto-created on first use, transactions and consumer groups, and (with a
// data directory) records and committed offsets kept across restarts.
//
// Any Kafka client can talk to it: netsentinel's own commands, kcat,
// rsyslog's omkafka, Zeek's Kafka writer. It is not a replacement for a
// Kafka cluster: there is one node, no replication, and kfake's own on-disk
// format (not Kafka's log format). Records are deleted by age and by size
// per partition (Config.Retention, Config.RetentionBytes).
//
// # Crash safety
//
// kfake alone does not recover its data directory correctly after an
// unclean stop (kill -9, crash, power loss): transactions open at the stop
// are aborted only in memory, so a later replay pairs their records with
// the producer's next commit; a segment index one entry short after a stop
// shifts every later entry so that aborted batches show; a transaction
// commit is written partition by partition with its group offsets last and
// kept nowhere else; topics created on first use are written to its topic
// list, and idempotent producers' sequence windows to theirs, only at a
// clean shutdown. This package therefore
//
//   - marks the directory (file RUNNING) while a broker runs on it, and
//     after an unclean stop checks it before handing it to kfake
//     (recoverDir): torn writes at the ends of segments and logs are cut,
//     segment indexes and sequence windows are rebuilt from the segments,
//     topics missing from the topic list are added back, a commit the
//     stop interrupted is
//     finished, and every other open transaction is aborted with a real
//     marker and its producer's epoch bumped, as a transaction timeout
//     does;
//   - journals each transaction commit while kfake carries it out
//     (journal.go), so that the interrupted one can be finished;
//   - creates topics that a Metadata request would auto-create through
//     kfake's CreateTopic, which writes the topic list at once;
//   - refuses (ErrDataDir) a directory with damage a stop cannot cause,
//     naming the file and how to recover, rather than serve wrong records.
//
// With this, consume-transform-produce transactions stay exactly-once
// across kill -9 of the broker (TestKillBrokerUnderLoad). Without
// Config.SyncWrites a power loss can still lose records acknowledged just
// before it, as with Kafka's default flush settings.
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
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// DefaultListen is the address the broker listens on by default: Kafka's
// usual port on the loopback interface.
const DefaultListen = "127.0.0.1:9092"

// DefaultPartitions is the number of partitions of auto-created topics when
// Config.Partitions is 0: enough for a few detector processes to share a
// topic.
const DefaultPartitions = 4

// DefaultRetention is how long records are kept when Config.Retention is 0:
// a week, Kafka's default.
const DefaultRetention = 7 * 24 * time.Hour

// DefaultRetentionBytes is the most bytes of records a partition keeps when
// Config.RetentionBytes is 0.
const DefaultRetentionBytes = 1 << 30

// DefaultSegmentBytes is the size at which a partition starts a new segment
// file when Config.SegmentBytes is 0. Retention deletes whole segments, so a
// partition holds up to this much more than its limit.
const DefaultSegmentBytes = 64 << 20

// DefaultRetentionCheck is how often retention is enforced when
// Config.RetentionCheck is 0.
const DefaultRetentionCheck = time.Minute

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
	// transaction state in this directory, so that they survive a restart,
	// clean or not (see Crash safety). It is created if needed and locked
	// against a second broker. Empty keeps everything in memory.
	DataDir string
	// SyncWrites fsyncs every produced batch (slower; survives power loss).
	// Without it, data reaches the disk on segment roll and on Close.
	SyncWrites bool
	// Retention is how long a record is kept (by its timestamp) before it
	// is deleted; DefaultRetention if 0, forever if negative.
	Retention time.Duration
	// RetentionBytes is the most bytes of records each partition keeps;
	// the oldest go first. DefaultRetentionBytes if 0, no limit if
	// negative.
	RetentionBytes int64
	// SegmentBytes is the size of a partition's segment files, the unit
	// retention deletes; DefaultSegmentBytes if 0.
	SegmentBytes int64
	// RetentionCheck is how often retention is enforced;
	// DefaultRetentionCheck if 0.
	RetentionCheck time.Duration
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
	dataDir   string
	journal   *journal
	recovery  Recovery
	failed    *atomic.Bool // kfake logged an error
	stopRet   chan struct{}
	retDone   chan struct{}
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

	retention, retBytes, segBytes, check, err := cfg.retention()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}

	host, portStr, _ := net.SplitHostPort(listen)
	port, _ := strconv.Atoi(portStr)
	failed := new(atomic.Bool)
	opts := []kfake.Opt{
		kfake.Ports(port),
		kfake.ClusterID("netsentinel"),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(parts),
		kfake.WithLogger(slogAdapter{log, failed}),
		kfake.BrokerConfigs(map[string]string{
			"log.retention.ms":    strconv.FormatInt(retention, 10),
			"log.retention.bytes": strconv.FormatInt(retBytes, 10),
			"log.segment.bytes":   strconv.FormatInt(segBytes, 10),
		}),
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
	b := &Broker{log: log, failed: failed, unlock: func() {}, dataDir: cfg.DataDir}
	if cfg.DataDir != "" {
		if err := b.openDataDir(cfg.DataDir, cfg.SyncWrites, parts); err != nil {
			return nil, err
		}
		opts = append(opts, kfake.DataDir(filepath.Join(cfg.DataDir, "kfake")))
		if cfg.SyncWrites {
			opts = append(opts, kfake.SyncWrites())
		}
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		// kfake has not served the directory: it is as the check left it.
		b.releaseDataDir(true)
		return nil, fmt.Errorf("broker: listen %s: %w", listen, err)
	}
	b.cluster, b.addrs = c, c.ListenAddrs()
	if b.journal != nil {
		b.journal.install(c)
	}
	b.stopRet, b.retDone = make(chan struct{}), make(chan struct{})
	go b.enforceRetention(check)
	log.Info("kafka broker listening", "addrs", b.addrs, "data_dir", cfg.DataDir, "partitions", parts,
		"retention", durationOrForever(retention), "retention_bytes", retBytes, "segment_bytes", segBytes)
	return b, nil
}

// retention returns the retention settings in kfake's terms (milliseconds,
// -1 for no limit) and the check interval.
func (cfg Config) retention() (ms, bytes, segment int64, check time.Duration, err error) {
	ms = cfg.Retention.Milliseconds()
	switch {
	case cfg.Retention == 0:
		ms = DefaultRetention.Milliseconds()
	case cfg.Retention < 0:
		ms = -1
	case ms < 1:
		return 0, 0, 0, 0, fmt.Errorf("broker: retention %v: must be at least 1ms (or negative: forever)", cfg.Retention)
	}
	bytes = cfg.RetentionBytes
	switch {
	case bytes == 0:
		bytes = DefaultRetentionBytes
	case bytes < 0:
		bytes = -1
	}
	segment = cfg.SegmentBytes
	switch {
	case segment == 0:
		segment = DefaultSegmentBytes
	case segment < 1024 || segment > 1<<30:
		return 0, 0, 0, 0, fmt.Errorf("broker: segment size %d: must be between 1 KiB and 1 GiB", cfg.SegmentBytes)
	}
	check = cfg.RetentionCheck
	switch {
	case check == 0:
		check = DefaultRetentionCheck
	case check < 0:
		return 0, 0, 0, 0, fmt.Errorf("broker: retention check interval %v: must be positive", cfg.RetentionCheck)
	}
	return ms, bytes, segment, check, nil
}

func durationOrForever(ms int64) string {
	if ms < 0 {
		return "forever"
	}
	return (time.Duration(ms) * time.Millisecond).String()
}

// enforceRetention deletes old records every interval until Close.
func (b *Broker) enforceRetention(every time.Duration) {
	defer close(b.retDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		b.cluster.ApplyRetention()
		select {
		case <-b.stopRet:
			return
		case <-t.C:
		}
	}
}

// openDataDir locks dir, repairs it if the last broker on it did not stop
// cleanly, marks it as in use and opens the transaction journal.
func (b *Broker) openDataDir(dir string, syncWrites bool, parts int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("broker: data dir: %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return fmt.Errorf("broker: data dir %s: %w", dir, err)
	}
	b.unlock = unlock
	fail := func(err error) error {
		b.releaseDataDir(false)
		return err
	}
	running := filepath.Join(dir, runningFile)
	jpath := filepath.Join(dir, journalFile)
	if _, err := os.Stat(running); err == nil {
		intent, err := readJournal(jpath)
		if err != nil {
			return fail(fmt.Errorf("broker: data dir %s: transaction journal: %w", dir, err))
		}
		b.log.Warn("the last broker on this data directory did not stop cleanly; checking it", "data_dir", dir)
		rec, err := recoverDir(filepath.Join(dir, "kfake"), intent, parts, b.log, time.Now())
		if err != nil {
			return fail(fmt.Errorf("broker: data dir %s: %w", dir, err))
		}
		b.recovery = rec
		b.log.Warn("data directory recovered", "torn_bytes", rec.TornBytes, "index_entries_fixed", rec.IndexEntries,
			"transactions_aborted", rec.Aborted, "topics_restored", rec.Topics, "commits_completed", rec.Completed, "offsets_completed", rec.CompletedOffsets)
	} else if !os.IsNotExist(err) {
		return fail(fmt.Errorf("broker: data dir %s: %w", dir, err))
	}
	if err := os.WriteFile(running, fmt.Appendf(nil, "pid %d since %s\n", os.Getpid(), time.Now().Format(time.RFC3339)), 0o644); err != nil {
		return fail(fmt.Errorf("broker: data dir %s: %w", dir, err))
	}
	j, err := openJournal(jpath, syncWrites, b.log)
	if err != nil {
		return fail(fmt.Errorf("broker: data dir %s: %w", dir, err))
	}
	if err := j.f.Truncate(0); err != nil {
		j.close()
		return fail(fmt.Errorf("broker: data dir %s: %w", dir, err))
	}
	b.journal = j
	if err := syncDir(dir); err != nil {
		return fail(err)
	}
	return nil
}

// releaseDataDir closes the journal, removes the in-use mark if the broker
// stopped cleanly, and unlocks the directory.
func (b *Broker) releaseDataDir(clean bool) {
	if b.journal != nil {
		b.journal.close()
	}
	if clean && b.dataDir != "" {
		if err := os.Remove(filepath.Join(b.dataDir, runningFile)); err != nil {
			b.log.Error("broker: data dir: cannot mark the stop as clean", "err", err)
		}
	}
	b.unlock()
}

// Recovery reports what Start repaired in the data directory.
func (b *Broker) Recovery() Recovery { return b.recovery }

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
		close(b.stopRet)
		<-b.retDone
		b.cluster.Close()
		// kfake logs, rather than returns, a failure to save its
		// state: the next start then treats the stop as unclean.
		b.releaseDataDir(!b.failed.Load())
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

// slogAdapter sends kfake's log to a slog.Logger and notes errors.
type slogAdapter struct {
	l      *slog.Logger
	failed *atomic.Bool
}

func (a slogAdapter) Logf(level kfake.LogLevel, format string, args ...any) {
	var lv slog.Level
	switch level {
	case kfake.LogLevelError:
		lv = slog.LevelError
		a.failed.Store(true)
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
