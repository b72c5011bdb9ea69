package stream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netsentinel/netsentinel/internal/event"
	"github.com/netsentinel/netsentinel/internal/incident"
	"github.com/netsentinel/netsentinel/internal/model"
	"github.com/netsentinel/netsentinel/internal/record"
)

// IncidentOptions configures grouping verdicts into incidents (package
// incident). The state of each input partition's incidents lives in memory
// and in a compacted changelog topic with one partition per input
// partition, written in the same transaction as the incident messages and
// the input offsets, and read back when the detector first sees records of
// a partition (after a start, a rebalance or an aborted transaction), as
// Kafka Streams restores its state stores.
type IncidentOptions struct {
	// Topic receives the incident messages (event.Incident JSON, keyed by
	// incident ID); empty turns incidents off.
	Topic string
	// ChangelogTopic keeps the incident state; default
	// "netsentinel-<group>-incidents-changelog". It is created (compacted,
	// as many partitions as the input topic) when missing.
	ChangelogTopic string
	// Rules returns the rules in force, read once per transaction; nil, or
	// a nil result, means none. A rule that withholds a verdict from its
	// incident counts it in the statistics' by_rule.
	Rules func() *incident.Rules
	// Table configures the grouping; the detector sets Topic, Partition and
	// Instance.
	Table incident.Config
	// RestoreTimeout bounds reading the changelog of the partitions of one
	// batch; default 60s.
	RestoreTimeout time.Duration
	// IdleFlush is how often, while no records arrive, the detector runs a
	// transaction of its own to publish due incident updates and closes;
	// default 1s.
	IdleFlush time.Duration
}

// incidents is the detector's incident state: one incident.Table per
// input partition. Only Run's goroutine uses the tables; revoke runs on
// client goroutines and only marks partitions, which the next batch drops.
type incidents struct {
	opts      IncidentOptions
	d         *Detector
	tables    map[int32]*incident.Table
	rules     *incident.Rules // for the current transaction
	topicOK   bool            // the changelog topic exists with enough partitions
	lastFlush time.Time

	mu       sync.Mutex
	revoked  map[int32]struct{}
	assigned map[int32]struct{} // to restore before the next batch

	open     prometheus.Gauge
	messages *prometheus.CounterVec
	withheld *prometheus.CounterVec
	restores prometheus.Counter
	corrupt  prometheus.Counter
}

// incVerdict is what a scoring worker keeps of an attack verdict for the
// incident tables: flaggedBy and the record's feature vector (xi indexes
// the worker's xs) let observe explain the verdict when it opens an
// incident.
type incVerdict struct {
	prob      float64
	service   string
	flag      string
	id        record.Identity
	features  []string
	flaggedBy string
	xi        int
}

// incidentReasons is how many features an incident's explanation names.
const incidentReasons = 5

func newIncidents(d *Detector, reg prometheus.Registerer) (*incidents, error) {
	o := d.opts.Incidents
	if o.Topic == "" {
		return nil, nil
	}
	if o.Topic == d.opts.Topic {
		return nil, fmt.Errorf("incidents topic %q is the input topic", o.Topic)
	}
	if o.ChangelogTopic == "" {
		o.ChangelogTopic = "netsentinel-" + d.opts.Group + "-incidents-changelog"
	}
	if o.ChangelogTopic == d.opts.Topic || o.ChangelogTopic == o.Topic {
		return nil, fmt.Errorf("incidents changelog topic %q is another input or output topic", o.ChangelogTopic)
	}
	if o.RestoreTimeout <= 0 {
		o.RestoreTimeout = 60 * time.Second
	}
	if o.IdleFlush <= 0 {
		o.IdleFlush = time.Second
	}
	const ns, sub = "netsentinel", "detect"
	x := &incidents{opts: o, d: d, tables: map[int32]*incident.Table{}, revoked: map[int32]struct{}{}, assigned: map[int32]struct{}{},
		open: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "incidents_open",
			Help: "Open incidents held in memory, over this detector's partitions."}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "incident_messages_total",
			Help: "Incident messages in committed transactions, by status (opened, updated, closed)."}, []string{"status"}),
		withheld: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "withheld_verdicts_total",
			Help: "Verdicts a rule kept out of incidents in committed transactions, by rule."}, []string{"rule"}),
		restores: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "incident_restores_total",
			Help: "Partitions whose incident state was read back from the changelog."}),
		corrupt: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "incident_changelog_corrupt_total",
			Help: "Changelog entries that did not decode during a restore (logged and skipped)."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{x.open, x.messages, x.withheld, x.restores, x.corrupt} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register incident metrics: %w", err)
			}
		}
	}
	return x, nil
}

// partitioner sends changelog records to the partition they name and
// everything else where kgo's default partitioner would.
type changelogPartitioner struct {
	changelog string
	def, man  kgo.Partitioner
}

func (p changelogPartitioner) ForTopic(t string) kgo.TopicPartitioner {
	if t == p.changelog {
		return p.man.ForTopic(t)
	}
	return p.def.ForTopic(t)
}

// clientOpts returns the session options incidents need.
func (x *incidents) clientOpts() []kgo.Opt {
	if x == nil {
		return nil
	}
	return []kgo.Opt{kgo.RecordPartitioner(changelogPartitioner{changelog: x.opts.ChangelogTopic,
		def: kgo.UniformBytesPartitioner(64<<10, true, true, nil), man: kgo.ManualPartitioner()})}
}

// revoke marks partitions whose state must be dropped: another detector
// may own them next. It may run on any goroutine.
func (x *incidents) revoke(ps []int32) {
	if x == nil || len(ps) == 0 {
		return
	}
	x.mu.Lock()
	for _, p := range ps {
		x.revoked[p] = struct{}{}
	}
	x.mu.Unlock()
}

// assign marks partitions to restore at once (at the next empty poll or
// batch), as Kafka Streams restores on assignment. It may run on any
// goroutine.
func (x *incidents) assign(ps []int32) {
	if x == nil || len(ps) == 0 {
		return
	}
	x.mu.Lock()
	for _, p := range ps {
		x.assigned[p] = struct{}{}
	}
	x.mu.Unlock()
}

// reset drops every table: the transaction that changed them did not
// commit, so they are read back from the changelog when next needed.
func (x *incidents) reset() {
	if x == nil {
		return
	}
	clear(x.tables)
	x.open.Set(0)
}

// capture keeps what the incident tables need of an attack verdict.
func (d *Detector) captureIncident(res *result, rec *record.Record, v *model.Verdict) {
	if d.inc == nil {
		return
	}
	wk := d.workers[res.w]
	res.inc = incVerdict{prob: v.Probability, service: rec.Symbol(2), flag: rec.Symbol(3), id: identityOf(rec),
		flaggedBy: v.FlaggedBy, xi: len(wk.xs)}
	wk.xs = append(wk.xs, [record.NumFeatures]float32{})
	x := &wk.xs[res.inc.xi]
	for i, f := range rec.Features {
		x[i] = float32(f)
	}
	if ex, ok := d.cur.scorer.(explainer); ok && v.FlaggedBy == "novelty" {
		res.inc.features = ex.NoveltyFeatures(x[:], 3)
	}
}

// identityOf returns the connection identity a decoded record carries
// (JSON records with "src_ip", "dst_ip"...; KDD'99 CSV lines carry none, and
// their incident key falls back to attack, service and flag).
func identityOf(r *record.Record) record.Identity { return r.ID }

// prepare readies the tables for a batch: drops revoked partitions, reads
// the rules, and restores from the changelog every partition of the batch
// without a table, or assigned and not restored yet. It must run before
// the batch produces anything. cl is the session's transactional client.
func (x *incidents) prepare(ctx context.Context, cl *kgo.Client, in []*kgo.Record) error {
	if x == nil {
		return nil
	}
	var missing []int32
	seen := map[int32]bool{}
	x.mu.Lock()
	for p := range x.revoked {
		delete(x.tables, p)
		delete(x.assigned, p)
	}
	clear(x.revoked)
	for p := range x.assigned {
		if x.tables[p] == nil {
			seen[p] = true
			missing = append(missing, p)
		}
	}
	clear(x.assigned)
	x.mu.Unlock()
	x.rules = nil
	if x.opts.Rules != nil {
		x.rules = x.opts.Rules()
	}
	for _, r := range in {
		if x.tables[r.Partition] == nil && !seen[r.Partition] {
			seen[r.Partition] = true
			missing = append(missing, r.Partition)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, x.opts.RestoreTimeout)
	defer cancel()
	// Initialising the producer ID fences a crashed predecessor with the
	// same transactional ID and aborts its open transaction, which would
	// otherwise hold the changelog's read-committed end until it times out.
	if _, _, err := cl.ProducerID(rctx); err != nil {
		x.reset()
		return fmt.Errorf("init producer id: %w", err)
	}
	if err := x.restore(rctx, missing); err != nil {
		x.reset()
		return fmt.Errorf("restore incidents of partitions %v: %w", missing, err)
	}
	return nil
}

func (x *incidents) newTable(p int32) *incident.Table {
	cfg := x.opts.Table
	cfg.Topic, cfg.Partition, cfg.Instance = x.d.opts.Topic, p, x.d.opts.Instance
	return incident.NewTable(cfg)
}

// restore reads the changelog partitions ps to their end (read committed;
// transaction markers are kept so that the end is reached even when it is
// a marker) into fresh tables.
func (x *incidents) restore(ctx context.Context, ps []int32) error {
	start := time.Now()
	adm, err := NewClient(x.d.opts.Client)
	if err != nil {
		return err
	}
	defer adm.Close()
	if err := x.ensureTopic(ctx, kadm.NewClient(adm)); err != nil {
		return err
	}
	tables := map[int32]*incident.Table{}
	want := map[int32]int64{} // partition -> last offset to read
	offs := map[int32]kgo.Offset{}
	// A topic just created may not have its leaders yet: retry.
	for {
		ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, x.opts.ChangelogTopic)
		if err == nil {
			for _, p := range ps {
				lo, ok := ends.Lookup(x.opts.ChangelogTopic, p)
				if !ok || lo.Err != nil {
					err = fmt.Errorf("partition %d: %v", p, lo.Err)
					break
				}
				if lo.Offset > 0 {
					want[p] = lo.Offset - 1
					offs[p] = kgo.NewOffset().AtStart()
				}
			}
		}
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("end offsets of %s: %w", x.opts.ChangelogTopic, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	for _, p := range ps {
		tables[p] = x.newTable(p)
	}
	entries := 0
	if len(want) > 0 {
		cl, err := NewClient(x.d.opts.Client,
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{x.opts.ChangelogTopic: offs}),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
		if err != nil {
			return err
		}
		defer cl.Close()
		for len(want) > 0 {
			fs := cl.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("read %s: %d partitions not at their end: %w", x.opts.ChangelogTopic, len(want), err)
			}
			var ferr error
			fs.EachError(func(_ string, p int32, err error) { ferr = errors.Join(ferr, fmt.Errorf("partition %d: %w", p, err)) })
			if ferr != nil {
				return fmt.Errorf("read %s: %w", x.opts.ChangelogTopic, ferr)
			}
			fs.EachRecord(func(r *kgo.Record) {
				last, ok := want[r.Partition]
				if !ok || r.Offset > last {
					return
				}
				if !r.Attrs.IsControl() {
					entries++
					var v []byte
					if len(r.Value) > 0 {
						v = r.Value
					}
					if err := tables[r.Partition].Apply(r.Key, v); err != nil {
						x.corrupt.Inc()
						x.d.log.Error("incident changelog entry skipped", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
					}
				}
				if r.Offset >= last {
					delete(want, r.Partition)
				}
			})
		}
	}
	for p, t := range tables {
		x.tables[p] = t
		x.restores.Inc()
	}
	x.updateOpen()
	x.d.log.Info("incident state restored", "partitions", ps, "entries", entries, "took", time.Since(start))
	return nil
}

// ensureTopic creates the changelog topic when missing and checks that it
// has a partition for every input partition.
func (x *incidents) ensureTopic(ctx context.Context, adm *kadm.Client) error {
	if x.topicOK {
		return nil
	}
	td, err := adm.ListTopics(ctx, x.d.opts.Topic, x.opts.ChangelogTopic)
	if err != nil {
		return fmt.Errorf("describe topics: %w", err)
	}
	in, ok := td[x.d.opts.Topic]
	if !ok || in.Err != nil {
		return fmt.Errorf("input topic %s: %v", x.d.opts.Topic, in.Err)
	}
	need := len(in.Partitions)
	if cl, ok := td[x.opts.ChangelogTopic]; ok && cl.Err == nil {
		if len(cl.Partitions) < need {
			return fmt.Errorf("changelog topic %s has %d partitions, the input topic %d: add partitions to it", x.opts.ChangelogTopic, len(cl.Partitions), need)
		}
		x.topicOK = true
		return nil
	}
	compact := "compact"
	resp, err := adm.CreateTopic(ctx, int32(need), -1, map[string]*string{"cleanup.policy": &compact}, x.opts.ChangelogTopic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create changelog topic %s: %w", x.opts.ChangelogTopic, err)
	}
	x.d.log.Info("incident changelog topic created", "topic", x.opts.ChangelogTopic, "partitions", need)
	x.topicOK = true
	return nil
}

func (x *incidents) updateOpen() {
	n := 0
	for _, t := range x.tables {
		n += t.Open()
	}
	x.open.Set(float64(n))
}

// observe adds one attack verdict to its partition's table and returns the
// name of the rule that withheld it, or "". A verdict that opens an
// incident is explained (model.Detector.Explain), once per incident.
func (x *incidents) observe(r *kgo.Record, res *result, now time.Time) string {
	if x == nil {
		return ""
	}
	t := x.tables[r.Partition]
	v := incident.Verdict{Time: r.Timestamp, Offset: r.Offset, Attack: res.attack, Category: res.category.String(),
		Probability: res.inc.prob, Identity: res.inc.id, Service: res.inc.service, Flag: res.inc.flag, Features: res.inc.features}
	dec := t.Observe(&v, x.rules, now)
	if dec.Outcome == incident.OutcomeOpened {
		if ex, ok := x.d.cur.scorer.(alertExplainer); ok {
			st := t.Get(incident.KeyOf(&v))
			mv := model.Verdict{Attack: res.attack, Category: res.category, IsAttack: true, Probability: res.inc.prob, FlaggedBy: res.inc.flaggedBy}
			for _, rs := range ex.Explain(x.d.workers[res.w].xs[res.inc.xi][:], mv, incidentReasons) {
				st.Explanation = append(st.Explanation, event.Reason(rs))
			}
		}
	}
	return dec.Rule
}

// flush emits the due incident messages and the changelog entries of
// every table; it returns the messages' count by status.
func (x *incidents) flush(now time.Time) map[string]int {
	if x == nil {
		return nil
	}
	x.lastFlush = now
	counts := map[string]int{}
	for p, t := range x.tables {
		for _, m := range t.Due(now) {
			counts[m.Status]++
			x.d.emitTo(x.opts.Topic, -1, []byte(m.ID), m.AppendJSON(nil))
		}
		for _, c := range t.Changes() {
			x.d.emitTo(x.opts.ChangelogTopic, p, c.Key, c.Value)
		}
	}
	return counts
}

// committed updates the metrics after a transaction committed.
func (x *incidents) committed(counts map[string]int, byRule map[string]int64) {
	if x == nil {
		return
	}
	for s, n := range counts {
		x.messages.WithLabelValues(s).Add(float64(n))
	}
	for r, n := range byRule {
		x.withheld.WithLabelValues(r).Add(float64(n))
	}
	x.updateOpen()
}

// emitTo queues an output record for the current transaction; partition
// -1 leaves the choice to the partitioner.
func (d *Detector) emitTo(topic string, partition int32, key, value []byte) {
	d.outBuf = append(d.outBuf, kgo.Record{Topic: topic, Partition: partition, Key: key, Value: value})
	d.out = append(d.out, &d.outBuf[len(d.outBuf)-1])
}

// pollContext bounds a poll by IdleFlush while incidents are held, so that
// they are updated and closed while no records arrive.
func (x *incidents) pollContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if x == nil {
		return ctx, func() {}
	}
	x.mu.Lock()
	pending := len(x.assigned)
	x.mu.Unlock()
	if len(x.tables) == 0 && pending == 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, x.opts.IdleFlush)
}

// idleIncidents runs, while no records arrive, a transaction that publishes
// due incident updates and closes (at most every IdleFlush).
func (d *Detector) idleIncidents(ctx context.Context, sess *kgo.GroupTransactSession) error {
	x := d.inc
	if x == nil {
		return nil
	}
	x.mu.Lock()
	pending := len(x.assigned) + len(x.revoked)
	x.mu.Unlock()
	if pending == 0 && (len(x.tables) == 0 || time.Since(x.lastFlush) < x.opts.IdleFlush) {
		return nil
	}
	if err := x.prepare(ctx, sess.Client(), nil); err != nil {
		return err
	}
	d.out = d.out[:0]
	d.outBuf = d.outBuf[:0]
	counts := x.flush(time.Now())
	if len(d.out) == 0 {
		return nil
	}
	if err := sess.Begin(); err != nil {
		x.reset()
		return fmt.Errorf("begin transaction: %w", err)
	}
	var perr error
	var mu sync.Mutex
	for _, o := range d.out {
		sess.Produce(ctx, o, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				perr = errors.Join(perr, err)
				mu.Unlock()
			}
		})
	}
	commit := kgo.TryCommit
	if err := sess.Client().Flush(ctx); err != nil || perr != nil {
		commit = kgo.TryAbort
	}
	ok, err := sess.End(ctx, commit)
	if !ok {
		// Not committed: the state is read back from the changelog.
		x.reset()
		if perr != nil {
			d.log.Warn("incident flush aborted", "err", perr)
		}
	} else {
		x.committed(counts, nil)
	}
	if err != nil {
		d.outBuf = nil // the failed client may still hold the records
		return fmt.Errorf("end incident flush: %w", err)
	}
	return nil
}
