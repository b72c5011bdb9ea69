package stream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

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
	// Scorer scores decoded records; SetScorer replaces it while the
	// detector runs.
	Scorer Scorer
	// Model names the scorer in every alert and statistics message, e.g. the
	// model file's fingerprint.
	Model string
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
	// smaller than MaxPollRecords before it polls the next one; zero means
	// none (DefaultOptions has 2ms). A transaction's first produce that reaches a
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
	// keeps its partitions; default 6s (the broker's default minimum,
	// group.min.session.timeout.ms).
	SessionTimeout time.Duration
	// HeartbeatInterval is how often the detector tells the group it is
	// alive, and so how soon it hears of a rebalance; default 1s.
	HeartbeatInterval time.Duration
	// RebalanceTimeout bounds a rebalance: how long the group waits for a
	// member to rejoin (a frozen member holds up the others that long);
	// default 10s, ample for finishing one batch.
	RebalanceTimeout time.Duration
	// TransactionTimeout is the broker-side transaction timeout: how long a
	// crashed detector's open transaction (and any input offsets committed
	// in it) can hold up its partitions' next owner if no detector with the
	// same Instance comes back to fence it; default 10s. It must exceed the
	// time one batch takes.
	TransactionTimeout time.Duration
	// StaticMembership joins the group as static member Instance (KIP-345):
	// a detector restarted within SessionTimeout takes its partitions back
	// at once, without a rebalance. The price: a detector that stops does
	// not leave the group, so its partitions wait SessionTimeout before
	// moving to another member. It needs a stable Instance: New turns it
	// off when Instance is left to its default (which changes every start).
	StaticMembership bool
	// StallTimeout is how long the detector may go without progress (a
	// committed transaction, or no records waiting) before Health reports
	// it stalled; default 30s. A session that has been stalled that long
	// while the lag checks see records waiting for it is closed and
	// recreated, as a restart of the process would.
	StallTimeout time.Duration
	// CheckInterval is the least time between two warnings about the same
	// lack of progress, and bounds each lag check (made every second from
	// the group's committed offsets); default 5s.
	CheckInterval time.Duration
	// OrphanTimeout is how long an owned partition's records may wait
	// without its committed offset moving before the detector fences the
	// transactional ID of the partition's last committer (see Health); a
	// crashed detector's open transaction then stops blocking the partition
	// at once instead of after its TransactionTimeout. Default 2s.
	OrphanTimeout time.Duration
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
	// Tap, if not nil, is called on Run's goroutine after each committed
	// transaction, once for each of its input records in order (dead
	// letters included), with the record's partition and value. A record
	// of an aborted transaction is passed only when the transaction that
	// redelivers it commits, so each record is passed once. Tap must be
	// quick (the next poll waits for it) and must not keep value.
	Tap func(partition int32, value []byte)

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
	scoring atomic.Pointer[scoring]
	health  health
	client  atomic.Pointer[kgo.Client] // the current session's client, for lag checks
	// session is the current session's start and the function that ends
	// it with a cause (see recreateIfStalled).
	session atomic.Pointer[session]
	// offsetsTxn is the outcome of the last transaction that sent input
	// offsets (offsetsTxn*), for endOwnPending; offsetsSent notes, during
	// one End, that the offsets were sent.
	offsetsTxn  atomic.Int32
	offsetsSent bool

	// cur is the scoring of the batch being processed (only Run's
	// goroutine and its scoring workers use it).
	cur *scoring

	// Per-batch state, reused across batches (only Run's goroutine uses it).
	in      []*kgo.Record
	results []result
	out     []*kgo.Record
	outBuf  []kgo.Record
	workers []*worker
	buckets map[int64]*bucket
	batchNo int
	inc     *incidents // nil when incidents are off
	// fetchedParts are the input partitions of the batch.
	fetchedParts []int32
}

// session is what the watchdog knows of a running Kafka session.
type session struct {
	started time.Time
	end     context.CancelCauseFunc
}

// scoring is a scorer and the model name written with its verdicts.
type scoring struct {
	scorer Scorer
	model  string
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
	// src and dst are an alert's connection addresses, when known.
	src, dst string
	// unseen has bit 0 set for an unseen service, bit 1 for an unseen flag.
	unseen uint8
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
	// memo remembers recently scored records (see scoreRange) for the
	// scoring memoFor; entries of another generation than memoGen are
	// empty.
	memo    []memoEntry
	memoFor *scoring
	memoGen uint64
	// xs holds the feature vectors of the batch's attack verdicts for the
	// incident tables (incVerdict.xi).
	xs [][record.NumFeatures]float32
}

// memoSize is how many scored records a worker remembers, each in the slot
// a hash of its bytes picks.
const memoSize = 256

// memoEntry is a scored record a worker remembers: its bytes, the decoded
// (and filled in) record, the verdict and the reasons.
type memoEntry struct {
	gen       uint64
	value     []byte
	rec       record.Record
	v         model.Verdict
	why       []model.Reason
	explained bool
}

// memoSeed seeds the hash that places records in a worker's memo.
var memoSeed = maphash.MakeSeed()

// bucket accumulates one minute's counts within a batch.
type bucket struct {
	records, dead int64
	byCat         map[string]int64
	byAttack      map[string]int64
	unseen        map[string]int64
	byRule        map[string]int64
	// srcs and dsts count alerts by connection address (nil until one).
	srcs, dsts map[string]int64
}

// DefaultOptions returns the default of every optional field.
func DefaultOptions() Options {
	return Options{
		MaxPollRecords:     20000,
		Workers:            runtime.GOMAXPROCS(0),
		CommitPause:        2 * time.Millisecond,
		FetchMaxWait:       100 * time.Millisecond,
		SessionTimeout:     6 * time.Second,
		HeartbeatInterval:  time.Second,
		RebalanceTimeout:   10 * time.Second,
		TransactionTimeout: 10 * time.Second,
		StaticMembership:   true,
		StallTimeout:       30 * time.Second,
		CheckInterval:      5 * time.Second,
		OrphanTimeout:      2 * time.Second,
		MaxDeadLetterValue: 256 << 10,
		RestartBackoff:     time.Second,
		ShutdownTimeout:    30 * time.Second,
	}
}

// New checks opts, fills in the defaults of fields left zero (see
// DefaultOptions; CommitPause and StaticMembership excepted) and registers
// the metrics.
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
		opts.StaticMembership = false // the name changes every start
	}
	def := DefaultOptions()
	setDefault := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if opts.MaxPollRecords <= 0 {
		opts.MaxPollRecords = def.MaxPollRecords
	}
	if opts.Workers <= 0 {
		opts.Workers = def.Workers
	}
	if opts.MaxDeadLetterValue <= 0 {
		opts.MaxDeadLetterValue = def.MaxDeadLetterValue
	}
	setDefault(&opts.FetchMaxWait, def.FetchMaxWait)
	setDefault(&opts.SessionTimeout, def.SessionTimeout)
	setDefault(&opts.HeartbeatInterval, def.HeartbeatInterval)
	setDefault(&opts.RebalanceTimeout, def.RebalanceTimeout)
	setDefault(&opts.TransactionTimeout, def.TransactionTimeout)
	setDefault(&opts.StallTimeout, def.StallTimeout)
	setDefault(&opts.CheckInterval, def.CheckInterval)
	setDefault(&opts.OrphanTimeout, def.OrphanTimeout)
	setDefault(&opts.RestartBackoff, def.RestartBackoff)
	setDefault(&opts.ShutdownTimeout, def.ShutdownTimeout)
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
	d.cur = &scoring{scorer: opts.Scorer, model: opts.Model}
	d.scoring.Store(d.cur)
	d.workers = make([]*worker, opts.Workers)
	for i := range d.workers {
		d.workers[i] = &worker{}
	}
	if d.inc, err = newIncidents(d, opts.Registerer); err != nil {
		return nil, err
	}
	return d, nil
}

// SetScorer makes s score every batch from the next one on, with its
// verdicts named model. It is safe to call while Run runs.
func (d *Detector) SetScorer(s Scorer, model string) {
	d.scoring.Store(&scoring{scorer: s, model: model})
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
	wctx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { d.watch(wctx, d.client.Load) })
	defer func() {
		stopWatch()
		wg.Wait()
	}()
	d.health.reset(time.Now())
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
		d.health.noteErr(err)
		d.log.Warn("kafka session failed; recreating it", "err", err, "backoff", backoff)
		if errors.Is(err, errOwnPending) {
			if err := d.endOwnPending(ctx); err != nil {
				d.noteErr(fmt.Errorf("end own pending offset commit: %w", err))
			}
		}
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
		kgo.HeartbeatInterval(d.opts.HeartbeatInterval),
		kgo.WithHooks(hooks{d}),
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
			d.health.assign(as[d.opts.Topic], true)
			onReady(true)
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, rev map[string][]int32) {
			d.health.assign(rev[d.opts.Topic], false)
			d.m.dropLag(rev[d.opts.Topic])
			d.inc.revoke(rev[d.opts.Topic])
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
			d.health.assign(lost[d.opts.Topic], false)
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
	d.log.Info("detector session started", "topic", d.opts.Topic, "group", d.opts.Group, "transactional_id", d.txID,
		"static", d.opts.StaticMembership)
	d.client.Store(sess.Client())
	// sctx ends the session early when the watchdog finds it stalled;
	// ctx's end still means shutdown.
	sctx, end := context.WithCancelCause(ctx)
	d.session.Store(&session{started: time.Now(), end: end})
	defer func() {
		d.session.Store(nil)
		end(nil)
		d.client.Store(nil)
		d.health.leave()
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
		if sctx.Err() != nil && ctx.Err() == nil {
			return context.Cause(sctx)
		}
		pctx, pcancel := d.inc.pollContext(sctx)
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
			d.health.noteErr(fmt.Errorf("fetch %s partition %d: %w", topic, p, err))
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
	d.cur = d.scoring.Load()
	if err := sess.Begin(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	d.in = d.in[:0]
	d.fetchedParts = d.fetchedParts[:0]
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if n := len(p.Records); n > 0 {
			d.in = append(d.in, p.Records...)
			d.m.setLag(p.Partition, p.HighWatermark-p.Records[n-1].Offset-1)
			d.fetchedParts = append(d.fetchedParts, p.Partition)
		}
	})
	d.health.fetched(d.fetchedParts)
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
				b.countAddrs(res.src, res.dst)
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
			if res.unseen != 0 {
				d.countUnseen(b, res.unseen)
			}
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
		var buf []byte
		for _, k := range minutes {
			b := d.buckets[k]
			st := event.Stats{Minute: time.Unix(k*60, 0).UTC(), Instance: d.opts.Instance, Model: d.cur.model, Records: b.records,
				ByCategory: b.byCat, ByAttack: b.byAttack, Unseen: b.unseen, DeadLetters: b.dead, ByRule: b.byRule}
			st.TopSources, st.OtherSources = event.Top(b.srcs, event.MaxTop)
			st.TopDestinations, st.OtherDestinations = event.Top(b.dsts, event.MaxTop)
			start := len(buf)
			buf = st.AppendJSON(buf)
			d.emit(d.opts.StatsTopic, nil, buf[start:len(buf):len(buf)])
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
	d.offsetsSent = false
	committed, err := sess.End(kgo.PreTxnCommitFnContext(ctx, d.stampCommit), commit)
	if d.offsetsSent {
		if committed {
			d.offsetsTxn.Store(offsetsTxnCommitted)
		} else {
			d.offsetsTxn.Store(offsetsTxnAborted)
		}
	}
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
	d.health.noteCommit(time.Now())
	d.m.lastCommit.SetToCurrentTime()
	if d.opts.Tap != nil {
		for _, r := range d.in {
			d.opts.Tap(r.Partition, r.Value)
		}
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

// countAddrs counts an alert under its connection's source and
// destination addresses ("" when unknown: not counted).
func (b *bucket) countAddrs(src, dst string) {
	if src != "" {
		if b.srcs == nil {
			b.srcs = map[string]int64{}
		}
		b.srcs[src]++
	}
	if dst != "" {
		if b.dsts == nil {
			b.dsts = map[string]int64{}
		}
		b.dsts[dst]++
	}
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
		w.xs = w.xs[:0]
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
	// A record equal to one scored recently (floods repeat themselves) is
	// not decoded and scored again: it takes that one's record, verdict
	// and reasons, which a scorer that does not learn would give anyway.
	ms, ok := d.cur.scorer.(memoizable)
	memo := ok && !ms.Learns()
	if memo && wk.memoFor != d.cur {
		wk.memoFor = d.cur
		wk.memoGen++
		if wk.memo == nil {
			wk.memo = make([]memoEntry, memoSize)
		}
	}
	for i := lo; i < hi; i++ {
		r := d.in[i]
		res := &d.results[i]
		res.w = w
		res.attack, res.src, res.dst = "", "", ""
		res.unseen = 0
		var (
			v         model.Verdict
			why       []model.Reason
			explained bool
			err       error
			e         *memoEntry
		)
		if memo {
			e = &wk.memo[maphash.Bytes(memoSeed, r.Value)%memoSize]
		}
		if e != nil && e.gen == wk.memoGen && bytes.Equal(e.value, r.Value) {
			wk.rec = e.rec
			v, why, explained = e.v, e.why, e.explained
		} else {
			v, why, explained, err = d.scoreRecord(r.Value, &wk.rec)
			if e != nil && err == nil {
				e.gen, e.value = wk.memoGen, append(e.value[:0], r.Value...)
				e.rec, e.v, e.why, e.explained = wk.rec, v, why, explained
			}
		}
		if err != nil {
			res.kind = resultDead
			res.start = len(wk.buf)
			wk.buf = d.appendDeadLetter(wk.buf, r, err)
			res.end = len(wk.buf)
			continue
		}
		res.category = v.Category
		if wk.rec.UnseenService != "" {
			res.unseen |= unseenService
		}
		if wk.rec.UnseenFlag != "" {
			res.unseen |= unseenFlag
		}
		if !v.IsAttack {
			res.kind = resultNormal
			continue
		}
		res.kind = resultAlert
		res.attack = v.Attack
		res.src, res.dst = wk.rec.ID.SrcIP, wk.rec.ID.DstIP
		d.captureIncident(res, &wk.rec, &v)
		res.start = len(wk.buf)
		if d.opts.AlertsTopic != "" {
			wk.buf = d.appendAlert(wk.buf, r, &wk.rec, &v, why, explained)
		}
		res.end = len(wk.buf)
	}
}

// memoizable is a Scorer that tells whether equal records get equal
// verdicts: a model.Detector does unless it learns from what it scores.
type memoizable interface {
	Learns() bool
}

// completer is a Scorer that can fill in the features a record left out
// (model.Detector.Complete): connections extracted from packets or Zeek
// logs lack most content features.
type completer interface {
	Complete(r *record.Record) error
}

// analyzer is a Scorer that fills in, scores and explains a record in one
// pass (model.Detector.Analyze), for less than Complete, PredictRecord and
// Explain apart.
type analyzer interface {
	Analyze(r *record.Record, n int) (model.Verdict, []model.Reason, error)
}

// alertReasons is how many features explain an alert's verdict.
const alertReasons = 3

// scoreRecord decodes and scores a record. With an analyzer scorer it also
// explains an attack verdict when alerts are written (explained is then
// true, even if there are no reasons).
func (d *Detector) scoreRecord(value []byte, rec *record.Record) (v model.Verdict, why []model.Reason, explained bool, err error) {
	a, ok := d.cur.scorer.(analyzer)
	if !ok {
		if err := d.decode(value, rec); err != nil {
			return v, nil, false, err
		}
		return d.cur.scorer.PredictRecord(rec), nil, false, nil
	}
	if err := record.DecodePartial(value, rec); err != nil {
		return v, nil, false, err
	}
	n := 0
	if d.opts.AlertsTopic != "" {
		n = alertReasons
	}
	v, why, err = a.Analyze(rec, n)
	return v, why, n > 0, err
}

// decode decodes a record; features it leaves out are filled in by the
// scorer when it can, and are an error otherwise.
func (d *Detector) decode(value []byte, rec *record.Record) error {
	if err := record.DecodePartial(value, rec); err != nil {
		return err
	}
	if rec.Absent == 0 {
		return nil
	}
	if c, ok := d.cur.scorer.(completer); ok {
		return c.Complete(rec)
	}
	return record.AbsentError(rec.Absent)
}

// Bits of result.unseen.
const (
	unseenService = 1 << iota
	unseenFlag
)

// countUnseen counts a scored record's unseen service or flag in its
// minute's bucket and in the metrics.
func (d *Detector) countUnseen(b *bucket, bits uint8) {
	if b.unseen == nil {
		b.unseen = map[string]int64{}
	}
	if bits&unseenService != 0 {
		b.unseen["service"]++
		d.m.unseenService.Inc()
	}
	if bits&unseenFlag != 0 {
		b.unseen["flag"]++
		d.m.unseenFlag.Inc()
	}
}

func (d *Detector) appendDeadLetter(dst []byte, r *kgo.Record, err error) []byte {
	reason := err.Error()
	val := r.Value
	if len(val) > d.opts.MaxDeadLetterValue {
		reason += "; value truncated to " + strconv.Itoa(d.opts.MaxDeadLetterValue) + " of " + strconv.Itoa(len(val)) + " bytes"
		val = val[:d.opts.MaxDeadLetterValue]
	}
	dl := event.DeadLetter{Time: r.Timestamp.UTC(), Topic: r.Topic, Partition: r.Partition,
		Offset: r.Offset, Reason: reason, Value: val, Instance: d.opts.Instance}
	return dl.AppendJSON(dst)
}

// explainer is implemented by scorers that can name the features that made
// a record novel (*model.Detector does).
type explainer interface {
	NoveltyFeatures(x []float32, n int) []string
}

// alertExplainer is implemented by scorers that can name the features that
// drove a verdict, with their typical normal values (*model.Detector does).
type alertExplainer interface {
	Explain(x []float32, v model.Verdict, n int) []model.Reason
}

// appendAlert appends the event.Alert JSON for one record; when explained,
// why are the reasons for its verdict (else the scorer is asked for them).
func (d *Detector) appendAlert(dst []byte, r *kgo.Record, rec *record.Record, v *model.Verdict, why []model.Reason, explained bool) []byte {
	a := event.Alert{Time: r.Timestamp.UTC(), Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
		Attack: v.Attack, Category: v.Category.String(), Probability: v.Probability, AttackProbability: v.AttackProbability,
		Novelty: v.Novelty, FlaggedBy: v.FlaggedBy, Label: rec.Label, UnseenService: rec.UnseenService, UnseenFlag: rec.UnseenFlag,
		Connection: event.ConnectionOf(rec.ID), Record: rec, Model: d.cur.model, Instance: d.opts.Instance}
	if !explained {
		var x [record.NumFeatures]float32
		for i, f := range rec.Features {
			x[i] = float32(f)
		}
		if ex, ok := d.cur.scorer.(explainer); ok && v.FlaggedBy == "novelty" {
			a.NoveltyFeatures = ex.NoveltyFeatures(x[:], alertReasons)
		}
		if ex, ok := d.cur.scorer.(alertExplainer); ok {
			why = ex.Explain(x[:], *v, alertReasons)
		}
	} else if v.FlaggedBy == "novelty" && len(why) > 0 {
		// A novelty verdict's reasons are the features that made it novel.
		a.NoveltyFeatures = make([]string, len(why))
		for i, r := range why {
			a.NoveltyFeatures[i] = r.Feature
		}
	}
	if len(why) > 0 {
		a.Explanation = make([]event.Reason, len(why))
		for i, r := range why {
			a.Explanation[i] = event.Reason(r)
		}
	}
	return a.AppendJSON(dst)
}
