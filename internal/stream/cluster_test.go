package stream

import (
	"context"
	"log/slog"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/netsentinel/netsentinel/internal/kafkatest"
)

// TestIntegrationCluster runs two detectors against a three-node KRaft
// cluster (replication factor 3, min.insync.replicas 2), kills -9 the node
// that leads every input and output partition mid-stream, and checks the
// books and how long the partitions went without a commit.
func TestIntegrationCluster(t *testing.T) {
	kafkatest.Brokers(t)
	if testing.Short() {
		t.Skip("starts a three-node cluster (-short)")
	}
	start := time.Now()
	c := kafkatest.NewCluster(t, 3)
	t.Logf("cluster up in %v", time.Since(start).Round(time.Millisecond))
	brokers := c.Brokers()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// The partitions' leader is a node other than the active controller:
	// this test is about the data path, and a controller election on a
	// loaded two-core machine took over a minute.
	leader := int32(1)
	if ctl := quorumLeader(t, cl); ctl == leader {
		leader = 2
	}
	tp := topics{"in", "alerts", "stats", "dead"}
	createLedBy(t, cl, leader, tp.in, 4)
	for _, out := range []string{tp.alerts, tp.stats, tp.dead} {
		createLedBy(t, cl, leader, out, 1)
	}

	// About 1,000 records/s for 25 s: records keep coming after the kill.
	values := kddLines(t, 25000)
	wait := producePaced(t, brokers, tp.in, values, 50, 50*time.Millisecond)
	var dets []*Detector
	for _, inst := range []string{"a", "b"} {
		o := tp.options(brokers, "g", inst)
		o.StaticMembership = true
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("instance", inst)
		d, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		dets = append(dets, d)
		stop := runDetector(t, d)
		defer func() {
			if err := stop(); err != nil {
				t.Error(err)
			}
		}()
	}
	w := &offsetWatch{brokers: brokers, group: "g", topic: tp.in, partitions: 4, onFail: func() {
		for _, d := range dets {
			t.Logf("detector %s: %+v, health %v", d.Instance(), d.Totals(), d.Health())
		}
	}}
	w.waitAdvance(t, time.Now(), nil, 60*time.Second)

	base := w.offsets(t)
	t0 := time.Now()
	c.Node(int(leader)).Kill(t)
	t.Logf("killed node %d (leader of every test partition) after %v", leader, time.Since(t0).Round(time.Millisecond))
	stalls := w.waitAdvance(t, t0, base, 150*time.Second)
	worst := stalls[len(stalls)-1]
	t.Logf("stall after kill -9 of the leader: %.1fs (per partition, sorted: %v)", worst.Seconds(), stalls)
	if worst > 60*time.Second {
		t.Errorf("partitions went %v without a commit after the leader died, want well under 60s", worst)
	}

	wait()
	waitCaughtUp(t, brokers, "g", tp.in, int64(len(values)), 120*time.Second)
	for _, d := range dets {
		t.Logf("detector %s: %+v", d.Instance(), d.Totals())
	}
	b := readBooks(t, brokers, tp.alerts, tp.stats, tp.dead, int64(len(values)), time.Second, 60*time.Second)
	checkBooks(t, b, int64(len(values)))
}

// quorumLeader returns the node id of the active KRaft controller.
func quorumLeader(t *testing.T, cl *kgo.Client) int32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = "__cluster_metadata"
	rp := kmsg.NewDescribeQuorumRequestTopicPartition()
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil || len(resp.Topics) == 0 || len(resp.Topics[0].Partitions) == 0 {
		t.Fatalf("describe quorum: %v", err)
	}
	id := resp.Topics[0].Partitions[0].LeaderID
	t.Logf("active controller: node %d", id)
	return id
}

// createLedBy creates topic with the given partitions, replicated on every
// node of a three-node cluster with node leader first (its preferred
// leader), and waits until leader leads them all.
func createLedBy(t *testing.T, cl *kgo.Client, leader int32, topic string, partitions int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	replicas := []int32{leader}
	for n := int32(1); n <= 3; n++ {
		if n != leader {
			replicas = append(replicas, n)
		}
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	for p := range int32(partitions) {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = p, replicas
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	adm := kadm.NewClient(cl)
	for {
		md, err := adm.ListTopics(ctx, topic)
		if err == nil {
			d := md[topic]
			ok := d.Err == nil && len(d.Partitions) == partitions
			for _, p := range d.Partitions {
				ok = ok && p.Leader == leader && len(p.ISR) == 3
			}
			if ok {
				return
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("topic %s not led by node %d with 3 in sync replicas after 60s: %v", topic, leader, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// offsetWatch polls a group's committed offsets every 100 ms, each time
// with a new client: one that has cached a dead node as the group's
// coordinator keeps dialling it.
type offsetWatch struct {
	brokers      []string
	group, topic string
	partitions   int
	onFail       func() // run before failing the test
}

// offsets returns the group's committed offsets of the topic.
func (w *offsetWatch) offsets(t *testing.T) map[int32]int64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		offs, err := w.fetch()
		if err == nil {
			err = offs.Error()
		}
		if err == nil {
			out := map[int32]int64{}
			offs.Each(func(o kadm.OffsetResponse) {
				if o.Topic == w.topic {
					out[o.Partition] = o.At
				}
			})
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("offsets of group %s: %v", w.group, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitAdvance waits until every partition's committed offset has moved past
// its value in base (or, for partitions base lacks, at the first successful
// read), and returns the times from since to each partition's first move,
// sorted.
func (w *offsetWatch) waitAdvance(t *testing.T, since time.Time, base map[int32]int64, timeout time.Duration) []time.Duration {
	t.Helper()
	if base == nil {
		base = map[int32]int64{}
	}
	moved := map[int32]time.Duration{}
	deadline := time.Now().Add(timeout)
	var lastErr error
	for len(moved) < w.partitions {
		if time.Now().After(deadline) {
			w.onFail()
			t.Fatalf("only %d of %d partitions committed within %v (base %v, last offset fetch error %v)", len(moved), w.partitions, timeout, base, lastErr)
		}
		offs, err := w.fetch()
		now := time.Now()
		if err == nil {
			err = offs.Error()
		}
		lastErr = err
		if err == nil {
			offs.Each(func(o kadm.OffsetResponse) {
				if o.Topic != w.topic || o.Err != nil {
					return
				}
				if b, ok := base[o.Partition]; !ok {
					base[o.Partition] = o.At
				} else if _, done := moved[o.Partition]; !done && o.At > b {
					moved[o.Partition] = now.Sub(since)
				}
			})
		}
		time.Sleep(100 * time.Millisecond)
	}
	var out []time.Duration
	for _, d := range moved {
		out = append(out, d.Round(100*time.Millisecond))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func (w *offsetWatch) fetch() (kadm.OffsetResponses, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(w.brokers...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return kadm.NewClient(cl).FetchOffsets(ctx, w.group)
}
