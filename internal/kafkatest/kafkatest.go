// Package kafkatest connects integration tests to the real Apache Kafka
// broker that `make test` starts (scripts/kafka.sh), and skips them when no
// broker is configured.
//
// Usage in a _test.go file:
//
//	func TestPipeline(t *testing.T) {
//		brokers := kafkatest.Brokers(t)          // t.Skip unless NETSENTINEL_TEST_BROKERS is set
//		topic := kafkatest.NewTopic(t, 4)        // unique topic, 4 partitions, deleted at cleanup
//		cl := kafkatest.Client(t, kgo.DefaultProduceTopic(topic)) // closed at cleanup
//		...
//		b := kafkatest.PrivateBroker(t)          // a broker of this test's own (a few seconds)
//		b.Restart(t)                             // SIGTERM + start, same port and data; also Kill/Stop/Start
//		c := kafkatest.NewCluster(t, 3)          // a 3-node KRaft cluster of the test's own (RF 3, min ISR 2)
//		c.Node(2).Kill(t)                        // each node is a *Broker
//		kafkatest.RestartBroker(t)               // restart the SHARED broker (disturbs other packages)
//		out := kafkatest.Kcat(t, "-C", "-t", topic, "-e", "-q") // t.Skip if kcat is missing
//	}
//
// Environment (set by `make test`):
//
//	NETSENTINEL_TEST_BROKERS       comma-separated host:port list of the test broker
//	NETSENTINEL_TEST_KAFKA_SCRIPT  absolute path of scripts/kafka.sh (for RestartBroker)
//	NETSENTINEL_TEST_KAFKA_DIR     the broker's state directory (kafka.log, data/)
//
// Run them by hand with:
//
//	scripts/kafka.sh start --dir /tmp/k --port 19092
//	NETSENTINEL_TEST_BROKERS=127.0.0.1:19092 NETSENTINEL_TEST_KAFKA_SCRIPT=$PWD/scripts/kafka.sh \
//	NETSENTINEL_TEST_KAFKA_DIR=/tmp/k go test ./internal/stream/...
//
// The broker is shared by all test packages, which go test may run in
// parallel: give every test its own topic (NewTopic) and consumer group
// (Name). Restarting the shared broker (RestartBroker) disturbs the tests of
// other packages running at the same moment: tests that restart, stop or
// kill a broker should use PrivateBroker instead.
package kafkatest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Environment variables read by this package.
const (
	EnvBrokers = "NETSENTINEL_TEST_BROKERS"
	EnvScript  = "NETSENTINEL_TEST_KAFKA_SCRIPT"
	EnvDir     = "NETSENTINEL_TEST_KAFKA_DIR"
)

// Brokers returns the seed brokers of the test broker, or skips the test when
// NETSENTINEL_TEST_BROKERS is unset.
func Brokers(t testing.TB) []string {
	t.Helper()
	v := strings.TrimSpace(os.Getenv(EnvBrokers))
	if v == "" {
		t.Skip(EnvBrokers + " is not set: no real Kafka broker (run `make test`)")
	}
	var out []string
	for _, b := range strings.Split(v, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// Name returns a unique name with the given prefix and the test's name, for
// topics, consumer groups and transactional IDs.
func Name(t testing.TB, prefix string) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	base := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, t.Name())
	if len(base) > 100 {
		base = base[:100]
	}
	return prefix + "-" + base + "-" + hex.EncodeToString(b[:])
}

// Client returns a franz-go client seeded with Brokers(t) plus opts, closed
// when the test ends.
func Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	all := append([]kgo.Opt{kgo.SeedBrokers(Brokers(t)...)}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		t.Fatalf("kafkatest: new client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Admin returns a kadm client for the test broker, closed when the test ends.
func Admin(t testing.TB) *kadm.Client {
	t.Helper()
	return kadm.NewClient(Client(t))
}

// NewTopic creates a topic with a unique name, the given number of partitions
// (at least 1) and replication factor 1, waits until its metadata is visible,
// and deletes it when the test ends. It fails the test if creation fails.
func NewTopic(t testing.TB, partitions int) string {
	t.Helper()
	if partitions < 1 {
		partitions = 1
	}
	adm := Admin(t)
	topic := Name(t, "t")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var lastErr error
	for ctx.Err() == nil {
		resp, err := adm.CreateTopic(ctx, int32(partitions), 1, nil, topic)
		if err == nil {
			err = resp.Err
		}
		if err == nil || strings.Contains(err.Error(), "TOPIC_ALREADY_EXISTS") {
			lastErr = nil
			break
		}
		lastErr = err
		time.Sleep(250 * time.Millisecond)
	}
	if lastErr != nil || ctx.Err() != nil {
		t.Fatalf("kafkatest: create topic %s: %v (ctx: %v)", topic, lastErr, ctx.Err())
	}
	// Wait until every partition has a leader, so the first produce does not
	// race the controller.
	for {
		md, err := adm.ListTopics(ctx, topic)
		if err == nil {
			if d, ok := md[topic]; ok && d.Err == nil && len(d.Partitions) == partitions {
				ready := true
				for _, p := range d.Partitions {
					if p.Leader < 0 || p.Err != nil {
						ready = false
					}
				}
				if ready {
					break
				}
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("kafkatest: topic %s has no leaders after 60s: %v", topic, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		// A fresh client: the test's clients are closed by now (cleanups
		// run last-in first-out).
		cl, err := kgo.NewClient(kgo.SeedBrokers(Brokers(t)...))
		if err != nil {
			return
		}
		defer cl.Close()
		if _, err := kadm.NewClient(cl).DeleteTopics(ctx, topic); err != nil {
			t.Logf("kafkatest: delete topic %s: %v", topic, err)
		}
	})
	return topic
}

// RestartBroker stops and restarts the shared test broker with the same data
// directory and port, by running "$NETSENTINEL_TEST_KAFKA_SCRIPT restart". It
// returns once the broker answers the Kafka protocol again. It skips the test
// when the script is not configured, and fails it when the restart fails.
//
// Other test packages may be using the shared broker at the same moment and
// will see it go away for several seconds; prefer PrivateBroker in tests that
// restart or stop a broker.
func RestartBroker(t testing.TB) {
	t.Helper()
	Brokers(t)
	runScript(t, os.Getenv(EnvDir), "restart")
}

// Broker is a broker of the test's own, started by PrivateBroker.
type Broker struct {
	// Dir is the broker's state directory (kafka.log, data/).
	Dir  string
	addr string
}

// PrivateBroker starts a broker of the test's own with scripts/kafka.sh on a
// free port and a temporary directory, and stops it when the test ends. It
// takes some seconds (a JVM starts), so use it only for tests that restart,
// stop or kill the broker. It skips like RestartBroker.
func PrivateBroker(t testing.TB) *Broker {
	t.Helper()
	Brokers(t)
	dir := privateDir(t, "broker-")
	b := &Broker{Dir: dir}
	t.Cleanup(func() {
		runScript(t, dir, "stop", "--kill")
		if !t.Failed() {
			os.RemoveAll(dir)
		} else {
			t.Logf("kafkatest: private broker log kept in %s/kafka.log", dir)
		}
	})
	runScript(t, dir, "start", "--port", "auto")
	out := runScript(t, dir, "brokers")
	b.addr = strings.TrimSpace(out)
	if b.addr == "" {
		t.Fatalf("kafkatest: private broker in %s: no address", dir)
	}
	return b
}

// Cluster is a multi-node KRaft cluster of the test's own, started by
// NewCluster.
type Cluster struct {
	// Dir holds the nodes' directories node1, node2, ...
	Dir   string
	nodes []*Broker
}

// NewCluster starts a cluster of n combined broker+controller nodes with
// scripts/kafka.sh on free ports in a temporary directory, with replication
// factor min(n, 3) for every topic (internal ones included) and
// min.insync.replicas 2, and stops it when the test ends. It takes tens of
// seconds (n JVMs start). It skips like RestartBroker.
func NewCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	dir := privateDir(t, "cluster-")
	c := &Cluster{Dir: dir}
	t.Cleanup(func() {
		runScript(t, dir, "cluster-stop", "--kill")
		if !t.Failed() {
			os.RemoveAll(dir)
		} else {
			t.Logf("kafkatest: cluster logs kept in %s/node*/kafka.log", dir)
		}
	})
	runScript(t, dir, "cluster", "--nodes", strconv.Itoa(n))
	for i := 1; i <= n; i++ {
		nd := filepath.Join(dir, "node"+strconv.Itoa(i))
		addr := strings.TrimSpace(runScript(t, nd, "brokers"))
		if addr == "" {
			t.Fatalf("kafkatest: cluster node %d in %s: no address", i, nd)
		}
		c.nodes = append(c.nodes, &Broker{Dir: nd, addr: addr})
	}
	return c
}

// Node returns node i (1-based, the node.id) of the cluster.
func (c *Cluster) Node(i int) *Broker { return c.nodes[i-1] }

// Brokers returns every node's address as a seed list.
func (c *Cluster) Brokers() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.addr)
	}
	return out
}

// privateDir makes a temporary directory for a private broker or cluster,
// under the shared broker's directory when there is one, so that
// scripts/with-kafka.sh stops brokers orphaned by a crashed test binary.
func privateDir(t testing.TB, prefix string) string {
	t.Helper()
	parent := ""
	if d := os.Getenv(EnvDir); d != "" {
		parent = filepath.Join(d, "private")
		if err := os.MkdirAll(parent, 0o755); err != nil {
			t.Fatalf("kafkatest: %v", err)
		}
	}
	dir, err := os.MkdirTemp(parent, prefix)
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	return dir
}

// Brokers returns the private broker's address as a seed list.
func (b *Broker) Brokers() []string { return []string{b.addr} }

// Restart stops the broker gracefully (SIGTERM) and starts it again on the
// same port and data; it returns once the broker answers again.
func (b *Broker) Restart(t testing.TB) {
	t.Helper()
	runScript(t, b.Dir, "restart")
}

// Kill stops the broker with SIGKILL, as a crash would; Start brings it back.
func (b *Broker) Kill(t testing.TB) {
	t.Helper()
	runScript(t, b.Dir, "stop", "--kill")
}

// Stop stops the broker gracefully; Start brings it back.
func (b *Broker) Stop(t testing.TB) {
	t.Helper()
	runScript(t, b.Dir, "stop")
}

// Start starts a stopped broker on its old port and data; starting a running
// broker is a no-op.
func (b *Broker) Start(t testing.TB) {
	t.Helper()
	runScript(t, b.Dir, "start")
}

// runScript runs "$NETSENTINEL_TEST_KAFKA_SCRIPT verb --dir dir args..." and
// returns its standard output.
func runScript(t testing.TB, dir, verb string, args ...string) string {
	t.Helper()
	script := os.Getenv(EnvScript)
	if script == "" {
		t.Skip(EnvScript + " is not set: cannot control a broker")
	}
	all := []string{verb}
	if dir != "" {
		all = append(all, "--dir", dir)
	}
	all = append(all, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, script, all...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kafkatest: %s %s: %v\n%s", script, strings.Join(all, " "), err, stderr.String())
	}
	t.Logf("kafkatest: kafka.sh %s: %v", strings.Join(all, " "), time.Since(start).Round(time.Millisecond))
	return stdout.String()
}

// Kcat runs kcat against the test broker ("-b <brokers>" is prepended to
// args) and returns its standard output. It skips the test when kcat is not
// on PATH and fails it when kcat exits non-zero or runs over 2 minutes.
func Kcat(t testing.TB, args ...string) string {
	t.Helper()
	return KcatInput(t, nil, args...)
}

// KcatInput is Kcat with input fed to kcat's standard input (for -P).
func KcatInput(t testing.TB, input []byte, args ...string) string {
	t.Helper()
	brokers := Brokers(t)
	path, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat is not on PATH (apt-get install kcat)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, append([]string{"-b", strings.Join(brokers, ",")}, args...)...)
	if input != nil {
		cmd.Stdin = bytes.NewReader(input)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kafkatest: kcat %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}
