package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netsentinel/netsentinel/internal/event"
	"github.com/netsentinel/netsentinel/internal/model"
	"github.com/netsentinel/netsentinel/internal/record"
)

// Scorer scores one decoded record. It must be safe for concurrent use;
// *model.Detector implements it.
type Scorer interface {
	PredictRecord(r *record.Record) model.Verdict
}

// Options configures a Detector. Client, Topic, Group and Scorer are
// required; every other field has a default.
type Options struct {
	// Client holds the brokers, TLS and SASL settings.
	Client ClientConfig
	// Topic is the input topic of connection records (CSV or JSON).
	Topic string
	// Group is the consumer group; detectors in one group share the
	// topic's partitions.
	Group string
	// AlertsTopic, StatsTopic and DeadLetterTopic receive the outputs; an
	// empty name means that output is not written.
	AlertsTopic, StatsTopic, DeadLetterTopic string
	// Instance names this detector in its outputs and in its transactional
	// ID. It must be unique among the running members of the group. Keep it
	// stable across restarts: a restarted detector then fences its crashed
	// predecessor's open transaction at once, where a new name waits for
	// that transaction to time out (TransactionTimeout). Default: host name
	// and process ID, unique but not stable.
	Instance string
	// TransactionalID overrides the default "netsentinel-<group>-<instance>".
	TransactionalID string
	// Scorer scores decoded records.
	Scorer Scorer
	// Registerer receives the Prometheus metrics; nil keeps them private.
	Registerer prometheus.Registerer
	// Logger receives progress and error logs; nil discards them.
	Logger *slog.Logger
	// OnReady is called with true when the detector has joined its group
	// and with false when its Kafka session is being recreated. It runs on
	// a client goroutine and must not block.
	OnReady func(ready bool)

	// MaxPollRecords caps the records in one transaction; default 20000
	// (5000 gave a third less throughput on a backlog: more transactions,
	// and each costs the broker CPU).
	MaxPollRecords int
	// Workers is the number of goroutines decoding and scoring a batch;
	// default GOMAXPROCS.
	Workers int
	// CommitPause is how long the detector waits after committing a batch
	// smaller than MaxPollRecords before it polls the next one; default
	// 2ms, negative for none. A transaction's first produce that reaches a
	// Kafka 4 broker while the previous transaction's markers are still
	// being written is retried by the broker only after
	// add.partitions.to.txn.retry.backoff.ms (default 20ms); at 20,000
	// records/s that stalled about one transaction in six. The pause lets
	// the broker finish first, and gathers the records into fewer, larger
	// transactions. A backlog (full batches) is not slowed.
	CommitPause time.Duration
	// FetchMaxWait is how long a broker may hold a fetch waiting for data;
	// default 100ms (lower means lower latency at low rates).
	FetchMaxWait time.Duration
	// SessionTimeout is the group session timeout: how long a dead member
	// keeps its partitions; default 10s (the broker's minimum is usually 6s).
	SessionTimeout time.Duration
	// RebalanceTimeout bounds a rebalance; default 30s.
	RebalanceTimeout time.Duration
	// TransactionTimeout is the broker-side transaction timeout; default 30s.
	TransactionTimeout time.Duration
	// StaticMembership joins the group as static member Instance (KIP-345):
	// a detector restarted within SessionTimeout takes its partitions back
	// at once, without a rebalance. The price: a detector that stops for
	// good does not leave the group, so its partitions wait SessionTimeout
	// before moving to another member.
	StaticMembership bool
	// FromLatest makes a group without committed offsets start at the end of
	// the topic instead of the beginning.
	FromLatest bool
	// MaxDeadLetterValue caps the original bytes copied into a dead letter,
	// so that the dead letter fits in a Kafka message; default 256 KiB.
	MaxDeadLetterValue int
	// RestartBackoff is the pause before a failed Kafka session is
	// recreated; default 1s, doubling up to 15s while failures repeat.
	RestartBackoff time.Duration
	// ShutdownTimeout bounds finishing the open transaction after ctx is
	// cancelled; default 30s.
	ShutdownTimeout time.Duration
	// Incidents groups verdicts into incidents (off unless its Topic is
	// set); see IncidentOptions.
	Incidents IncidentOptions

	// hookBeforeEnd, for tests, runs before each End; returning true aborts
	// the transaction instead of committing it.
	hookBeforeEnd func(batch int) (abort bool)
}

// Totals are a detector's running counts over committed transactions. The
// outputs in Kafka are exact; these counts can fall short if a transaction's
// end failed on the client's side after the broker had committed it.
type Totals struct {
	Records     int64 // input records processed (scored + dead letters)
	Scored      int64 // records decoded and scored
	Normal      int64 // verdicts of normal
	Alerts      int64 // non-normal verdicts (one alert each)
	DeadLetters int64 // records that failed to decode
	Committed   int64 // transactions committed
	Aborted     int64 // transactions aborted (their records are redelivered)
	Restarts    int64 // Kafka sessions recreated after errors
}

// Detector consumes connection records from a topic as a member of a
// consumer group, scores them and writes alerts, statistics and dead
// letters in Kafka transactions that also commit the input offsets.
type Detector struct {
	opts Options
	log  *slog.Logger
	m    *metrics
	txID string

	totals struct {
		records, scored, normal, alerts, deadLetters, committed, aborted, restarts atomic.Int64
	}

	// Per-batch state, reused across batches (only Run's goroutine uses it).
	in      []*kgo.Record
	results []result
	out     []*kgo.Record
	outBuf  []kgo.Record
	workers []*worker
	buckets map[int64]*bucket
	batchNo int
	inc     *incidents // nil when incidents are off
}

type resultKind uint8

const (
	resultNormal resultKind = iota
	resultAlert
	resultDead
)

// result is one input record's outcome, filled in by a worker.
type result struct {
	kind     resultKind
	category record.Category
	attack   string
	// w and start/end locate the output message (alert or dead letter) in
	// the worker's buffer.
	w          int
	start, end int
	inc        incVerdict
}

// worker holds one scoring goroutine's scratch space.
type worker struct {
	rec record.Record
	buf []byte
}

// bucket accumulates one minute's counts within a batch.
type bucket struct {
	records, dead int64
	byCat         map[string]int64
	byAttack      map[string]int64
	byRule        map[string]int64
}

// New checks opts, fills in defaults and registers the metrics.
func New(opts Options) (*Detector, error) {
	var errs []error
	if opts.Topic == "" {
		errs = append(errs, errors.New("no input topic"))
	}
	if opts.Group == "" {
		errs = append(errs, errors.New("no consumer group"))
	}
	if opts.Scorer == nil {
		errs = append(errs, errors.New("no scorer (model)"))
	}
	for _, t := range []string{opts.AlertsTopic, opts.StatsTopic, opts.DeadLetterTopic} {
		if t != "" && t == opts.Topic {
			errs = append(errs, fmt.Errorf("output topic %q is the input topic", t))
		}
	}
	if _, err := ClientOptions(opts.Client); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if opts.Instance == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "detector"
		}
		opts.Instance = h + "-" + strconv.Itoa(os.Getpid())
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if opts.MaxPollRecords <= 0 {
		opts.MaxPollRecords = 20000
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.MaxDeadLetterValue <= 0 {
		opts.MaxDeadLetterValue = 256 << 10
	}
	def(&opts.FetchMaxWait, 100*time.Millisecond)
	if opts.CommitPause == 0 {
		opts.CommitPause = 2 * time.Millisecond
	}
	def(&opts.SessionTimeout, 10*time.Second)
	def(&opts.RebalanceTimeout, 30*time.Second)
	def(&opts.TransactionTimeout, 30*time.Second)
	def(&opts.RestartBackoff, time.Second)
	def(&opts.ShutdownTimeout, 30*time.Second)
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	txID := opts.TransactionalID
	if txID == "" {
		txID = "netsentinel-" + opts.Group + "-" + opts.Instance
	}
	d := &Detector{opts: opts, log: log, m: m, txID: txID, buckets: map[int64]*bucket{}}
	d.workers = make([]*worker, opts.Workers)
	for i := range d.workers {
		d.workers[i] = &worker{}
	}
	if d.inc, err = newIncidents(d, opts.Registerer); err != nil {
		return nil, err
	}
	return d, nil
}

// Instance returns the detector's instance name.
func (d *Detector) Instance() string { return d.opts.Instance }

// Totals returns the counts over the transactions committed so far.
func (d *Detector) Totals() Totals {
	t := &d.totals
	return Totals{Records: t.records.Load(), Scored: t.scored.Load(), Normal: t.normal.Load(), Alerts: t.alerts.Load(),
		DeadLetters: t.deadLetters.Load(), Committed: t.committed.Load(), Aborted: t.aborted.Load(), Restarts: t.restarts.Load()}
}

// Run consumes and scores until ctx is cancelled, then finishes the open
// transaction, leaves the group and returns nil. A Kafka session that fails
// (broker gone, transaction fenced or timed out) is closed and recreated
// after a backoff: its uncommitted batch is aborted and redelivered, so
// nothing is lost or counted twice. Run returns an error only for a
// configuration the client rejects.
func (d *Detector) Run(ctx context.Context) error {
	backoff := d.opts.RestartBackoff
	for {
		started := time.Now()
		err := d.runSession(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var cfgErr configError
		if errors.As(err, &cfgErr) {
			return cfgErr.err
		}
		if time.Since(started) > time.Minute {
			backoff = d.opts.RestartBackoff
		}
		d.totals.restarts.Add(1)
		d.m.restarts.Inc()
		d.log.Warn("kafka session failed; recreating it", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 15*time.Second)
	}
}

type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }

func (d *Detector) sessionOptions() ([]kgo.Opt, error) {
	opts, err := ClientOptions(d.opts.Client)
	if err != nil {
		return nil, err
	}
	reset := kgo.NewOffset().AtStart()
	if d.opts.FromLatest {
		reset = kgo.NewOffset().AtEnd()
	}
	onReady := func(ready bool) {
		if d.opts.OnReady != nil {
			d.opts.OnReady(ready)
		}
	}
	opts = append(opts,
		kgo.TransactionalID(d.txID),
		kgo.TransactionTimeout(d.opts.TransactionTimeout),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Stable fetch offsets (KIP-447) are always required by kgo now.
		kgo.ConsumerGroup(d.opts.Group),
		kgo.ConsumeTopics(d.opts.Topic),
		kgo.ConsumeResetOffset(reset),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.SessionTimeout(d.opts.SessionTimeout),
		kgo.RebalanceTimeout(d.opts.RebalanceTimeout),
		kgo.FetchMaxWait(d.opts.FetchMaxWait),
		kgo.ProducerLinger(0),
		// A transaction begun right after the previous one ended may be
		// refused with CONCURRENT_TRANSACTIONS until the broker has written
		// the markers; kgo's default 20ms retry backoff would add that to
		// the latency of nearly every batch.
		kgo.ConcurrentTransactionsBackoff(2*time.Millisecond),
		kgo.AllowAutoTopicCreation(), // output topics, where the broker allows it
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, as map[string][]int32) {
			d.inc.assign(as[d.opts.Topic])
			onReady(true)
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, rev map[string][]int32) {
			d.m.dropLag(rev[d.opts.Topic])
			d.inc.revoke(rev[d.opts.Topic])
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
			d.m.dropLag(lost[d.opts.Topic])
			d.inc.revoke(lost[d.opts.Topic])
		}),
	)
	opts = append(opts, d.inc.clientOpts()...)
	if d.opts.StaticMembership {
		opts = append(opts, kgo.InstanceID(d.opts.Instance))
	}
	return opts, nil
}

// runSession runs one Kafka session until ctx is cancelled (nil) or the
// session fails (the error).
func (d *Detector) runSession(ctx context.Context) error {
	opts, err := d.sessionOptions()
	if err != nil {
		return configError{err}
	}
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return configError{fmt.Errorf("kafka client: %w", err)}
	}
	d.log.Info("detector session started", "topic", d.opts.Topic, "group", d.opts.Group, "transactional_id", d.txID)
	defer func() {
		if d.opts.OnReady != nil {
			d.opts.OnReady(false)
		}
		// Close leaves the group; bound it so a dead broker cannot hang
		// shutdown.
		done := make(chan struct{})
		go func() { sess.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(d.opts.ShutdownTimeout):
			d.log.Warn("kafka client close timed out")
		}
	}()
	lastErrLog := time.Time{}
	for {
		pctx, pcancel := d.inc.pollContext(ctx)
		fetches := sess.PollRecords(pctx, d.opts.MaxPollRecords)
		pcancel()
		if fetches.IsClientClosed() {
			return errors.New("kafka client closed")
		}
		hadErr := false
		fetches.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return
			}
			hadErr = true
			if time.Since(lastErrLog) > 5*time.Second {
				lastErrLog = time.Now()
				d.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
			}
		})
		if fetches.NumRecords() == 0 {
			if ctx.Err() != nil {
				return nil
			}
			if err := d.idleIncidents(ctx, sess); err != nil {
				return err
			}
			if hadErr {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(100 * time.Millisecond):
				}
			}
			continue
		}
		// Finish the batch even if ctx is cancelled meanwhile: shutdown
		// commits it rather than throwing the work away.
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.opts.ShutdownTimeout+d.opts.TransactionTimeout)
		err := d.processBatch(bctx, sess, fetches)
		cancel()
		if err == nil && d.opts.CommitPause > 0 && fetches.NumRecords() < d.opts.MaxPollRecords {
			select {
			case <-ctx.Done():
			case <-time.After(d.opts.CommitPause):
			}
		}
		if err != nil {
			// The failed client may still hold output records: give the
			// next session fresh buffers.
			d.outBuf = nil
			for _, w := range d.workers {
				w.buf = nil
			}
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// processBatch runs one transaction: score every fetched record, produce
// the outputs and commit them with the input offsets.
func (d *Detector) processBatch(ctx context.Context, sess *kgo.GroupTransactSession, fetches kgo.Fetches) error {
	start := time.Now()
	d.batchNo++
	if err := sess.Begin(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	d.in = d.in[:0]
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if n := len(p.Records); n > 0 {
			d.in = append(d.in, p.Records...)
			d.m.setLag(p.Partition, p.HighWatermark-p.Records[n-1].Offset-1)
		}
	})
	if err := d.inc.prepare(ctx, sess.Client(), d.in); err != nil {
		return err
	}
	now := time.Now()

	var produceErr atomic.Pointer[error]
	var produceFailed atomic.Int64
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			produceFailed.Add(1)
			produceErr.CompareAndSwap(nil, &err)
		}
	}

	// Outputs, in input order. A large batch is scored in chunks, and each
	// chunk's outputs are produced as soon as it is scored, so the broker
	// takes them in while the next chunk is scored. d.outBuf never grows
	// within a batch: the produced records point into it.
	d.out = d.out[:0]
	if cap(d.outBuf) < len(d.in)+8 {
		d.outBuf = make([]kgo.Record, 0, 2*len(d.in)+8)
	}
	d.outBuf = d.outBuf[:0]
	clear(d.buckets)
	var scored, normal, alerts, dead int64
	byCat := make(map[record.Category]int64, 6)
	d.startScoring()
	for lo := 0; lo < len(d.in); lo += scoreChunk {
		hi := min(len(d.in), lo+scoreChunk)
		d.score(lo, hi)
		produced := len(d.out)
		for i, r := range d.in[lo:hi] {
			res := &d.results[lo+i]
			b := d.bucket(r.Timestamp)
			switch res.kind {
			case resultDead:
				dead++
				b.dead++
				d.emit(d.opts.DeadLetterTopic, r.Key, d.workers[res.w].buf[res.start:res.end])
				continue
			case resultAlert:
				alerts++
				b.byAttack[res.attack]++
				if rule := d.inc.observe(r, res, now); rule != "" {
					b.byRule[rule]++
				}
				d.emit(d.opts.AlertsTopic, r.Key, d.workers[res.w].buf[res.start:res.end])
			default:
				normal++
			}
			scored++
			b.records++
			b.byCat[res.category.String()]++
			byCat[res.category]++
		}
		for _, o := range d.out[produced:] {
			sess.Produce(ctx, o, promise)
		}
	}
	produced := len(d.out)
	incMsgs := d.inc.flush(now)
	if d.opts.StatsTopic != "" {
		minutes := make([]int64, 0, len(d.buckets))
		for k := range d.buckets {
			minutes = append(minutes, k)
		}
		sort.Slice(minutes, func(i, j int) bool { return minutes[i] < minutes[j] })
		for _, k := range minutes {
			b := d.buckets[k]
			v, err := json.Marshal(event.Stats{Minute: time.Unix(k*60, 0).UTC(), Instance: d.opts.Instance, Records: b.records,
				ByCategory: b.byCat, ByAttack: b.byAttack, DeadLetters: b.dead, ByRule: b.byRule})
			if err != nil {
				return fmt.Errorf("encode stats: %w", err) // cannot happen: plain types
			}
			d.emit(d.opts.StatsTopic, nil, v)
		}
	}
	for _, o := range d.out[produced:] {
		sess.Produce(ctx, o, promise)
	}
	commit := kgo.TryCommit
	if d.opts.hookBeforeEnd != nil && d.opts.hookBeforeEnd(d.batchNo) {
		commit = kgo.TryAbort
	}
	queued := time.Now()
	// End flushes, so every promise has run once it returns.
	if err := sess.Client().Flush(ctx); err != nil {
		commit = kgo.TryAbort
	}
	flushed := time.Now()
	if n := produceFailed.Load(); n > 0 {
		commit = kgo.TryAbort
		d.m.produceErrs.Add(float64(n))
		d.log.Warn("produce failed; aborting the batch", "failed", n, "err", *produceErr.Load())
	}
	committed, err := sess.End(ctx, commit)
	d.m.batchDur.Observe(time.Since(start).Seconds())
	d.log.Debug("batch", "records", len(d.in), "outputs", len(d.out), "oldest_age", start.Sub(d.in[0].Timestamp), "score", queued.Sub(start),
		"produce", flushed.Sub(queued), "end", time.Since(flushed), "committed", committed)
	d.m.batchRecords.Observe(float64(len(d.in)))
	if !committed {
		d.inc.reset()
		d.totals.aborted.Add(1)
		d.m.txAborted.Inc()
		if err != nil {
			return fmt.Errorf("end transaction: %w", err)
		}
		d.log.Info("transaction aborted; its records will be redelivered", "records", len(d.in))
		return nil
	}
	t := &d.totals
	t.committed.Add(1)
	t.records.Add(int64(len(d.in)))
	t.scored.Add(scored)
	t.normal.Add(normal)
	t.alerts.Add(alerts)
	t.deadLetters.Add(dead)
	d.m.txCommitted.Inc()
	d.m.records.Add(float64(len(d.in)))
	d.m.deadLetters.Add(float64(dead))
	d.m.alerts.Add(float64(alerts))
	for c, n := range byCat {
		d.m.verdict(c, n)
	}
	if d.inc != nil {
		byRule := map[string]int64{}
		for _, b := range d.buckets {
			for r, n := range b.byRule {
				byRule[r] += n
			}
		}
		d.inc.committed(incMsgs, byRule)
	}
	return err
}

func (d *Detector) emit(topic string, key, value []byte) {
	if topic == "" {
		return
	}
	d.outBuf = append(d.outBuf, kgo.Record{Topic: topic, Key: key, Value: value})
	d.out = append(d.out, &d.outBuf[len(d.outBuf)-1])
}

func (d *Detector) bucket(ts time.Time) *bucket {
	k := ts.Unix()
	k = k / 60
	if ts.Unix() < 0 && ts.Unix()%60 != 0 {
		k--
	}
	b := d.buckets[k]
	if b == nil {
		b = &bucket{byCat: map[string]int64{}, byAttack: map[string]int64{}, byRule: map[string]int64{}}
		d.buckets[k] = b
	}
	return b
}

// scoreChunk is the most records scored before their outputs are produced.
const scoreChunk = 1024

// startScoring readies d.results and the workers' buffers for a batch.
func (d *Detector) startScoring() {
	n := len(d.in)
	if cap(d.results) < n {
		d.results = make([]result, n, n+n/4)
	}
	d.results = d.results[:n]
	for _, w := range d.workers {
		w.buf = w.buf[:0]
	}
}

// score decodes and scores d.in[lo:hi] into d.results using the worker
// pool: the range is cut into one contiguous part per worker, each with its
// own scratch record, appending its outputs to its own buffer. A buffer
// only grows within a batch, so outputs already produced from it stay put
// (a reallocation leaves them in the old array).
func (d *Detector) score(lo, hi int) {
	n := hi - lo
	nw := min(len(d.workers), (n+255)/256)
	if nw <= 1 {
		d.scoreRange(0, lo, hi)
		return
	}
	var wg sync.WaitGroup
	per := (n + nw - 1) / nw
	for w := range nw {
		a, b := lo+w*per, min(hi, lo+(w+1)*per)
		wg.Go(func() { d.scoreRange(w, a, b) })
	}
	wg.Wait()
}

func (d *Detector) scoreRange(w, lo, hi int) {
	wk := d.workers[w]
	for i := lo; i < hi; i++ {
		r := d.in[i]
		res := &d.results[i]
		res.w = w
		res.attack = ""
		if err := record.Decode(r.Value, &wk.rec); err != nil {
			res.kind = resultDead
			res.start = len(wk.buf)
			wk.buf = d.appendDeadLetter(wk.buf, r, err)
			res.end = len(wk.buf)
			continue
		}
		v := d.opts.Scorer.PredictRecord(&wk.rec)
		res.category = v.Category
		if !v.IsAttack {
			res.kind = resultNormal
			continue
		}
		res.kind = resultAlert
		res.attack = v.Attack
		d.captureIncident(res, &wk.rec, &v)
		res.start = len(wk.buf)
		if d.opts.AlertsTopic != "" {
			wk.buf = d.appendAlert(wk.buf, r, &wk.rec, &v)
		}
		res.end = len(wk.buf)
	}
}

func (d *Detector) appendDeadLetter(dst []byte, r *kgo.Record, err error) []byte {
	reason := err.Error()
	val := r.Value
	if len(val) > d.opts.MaxDeadLetterValue {
		reason += "; value truncated to " + strconv.Itoa(d.opts.MaxDeadLetterValue) + " of " + strconv.Itoa(len(val)) + " bytes"
		val = val[:d.opts.MaxDeadLetterValue]
	}
	b, mErr := json.Marshal(event.DeadLetter{Time: r.Timestamp.UTC(), Topic: r.Topic, Partition: r.Partition,
		Offset: r.Offset, Reason: reason, Value: val, Instance: d.opts.Instance})
	if mErr != nil { // cannot happen: plain types, []byte as base64
		b = []byte(`{"reason":"unencodable dead letter"}`)
	}
	return append(dst, b...)
}

// explainer is implemented by scorers that can name the features that made
// a record novel (*model.Detector does).
type explainer interface {
	NoveltyFeatures(x []float32, n int) []string
}

// appendAlert appends the event.Alert JSON for one record without going
// through reflection or a features map (this runs for every attack).
func (d *Detector) appendAlert(dst []byte, r *kgo.Record, rec *record.Record, v *model.Verdict) []byte {
	dst = append(dst, `{"time":"`...)
	dst = r.Timestamp.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","topic":`...)
	dst = appendJSONString(dst, r.Topic)
	dst = append(dst, `,"partition":`...)
	dst = strconv.AppendInt(dst, int64(r.Partition), 10)
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendInt(dst, r.Offset, 10)
	dst = append(dst, `,"attack":`...)
	dst = appendJSONString(dst, v.Attack)
	dst = append(dst, `,"category":`...)
	dst = appendJSONString(dst, v.Category.String())
	dst = append(dst, `,"probability":`...)
	dst = appendJSONFloat(dst, v.Probability)
	dst = append(dst, `,"attack_probability":`...)
	dst = appendJSONFloat(dst, v.AttackProbability)
	dst = append(dst, `,"novelty":`...)
	dst = appendJSONFloat(dst, v.Novelty)
	dst = append(dst, `,"flagged_by":`...)
	dst = appendJSONString(dst, v.FlaggedBy)
	if ex, ok := d.opts.Scorer.(explainer); ok && v.FlaggedBy == "novelty" {
		var x [record.NumFeatures]float32
		for i, f := range rec.Features {
			x[i] = float32(f)
		}
		if names := ex.NoveltyFeatures(x[:], 3); len(names) > 0 {
			dst = append(dst, `,"novelty_features":[`...)
			for i, n := range names {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = appendJSONString(dst, n)
			}
			dst = append(dst, ']')
		}
	}
	if rec.Label != "" {
		dst = append(dst, `,"label":`...)
		dst = appendJSONString(dst, rec.Label)
	}
	dst = append(dst, `,"features":{`...)
	for i, f := range record.Features {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, f.Name...)
		dst = append(dst, `":`...)
		if f.Kind == record.KindSymbolic {
			dst = appendJSONString(dst, rec.Symbol(i))
			continue
		}
		x := rec.Features[i]
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			dst = strconv.AppendInt(dst, int64(x), 10)
		} else {
			dst = appendJSONFloat(dst, x)
		}
	}
	dst = append(dst, `},"instance":`...)
	dst = appendJSONString(dst, d.opts.Instance)
	return append(dst, '}')
}

func appendJSONFloat(dst []byte, x float64) []byte {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		x = 0
	}
	return strconv.AppendFloat(dst, x, 'g', -1, 64)
}

// appendJSONString appends s as a JSON string.
func appendJSONString(dst []byte, s string) []byte {
	simple := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf || c == '<' || c == '>' || c == '&' {
			simple = false
			break
		}
	}
	if simple {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	b, _ := json.Marshal(s) // a string always encodes
	return append(dst, b...)
}
