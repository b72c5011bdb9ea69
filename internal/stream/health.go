package stream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrStalled is wrapped by Health's error when the detector has made no
// progress for Options.StallTimeout.
var ErrStalled = errors.New("detector stalled")

// health tracks whether a detector makes progress. Progress is a committed
// transaction, or a lag check that finds no record waiting in the
// partitions the detector owns. Errors come from the Kafka client's hooks
// (dial failures, group management errors), from fetches and from lag
// checks; each is remembered until the next progress.
type health struct {
	mu       sync.Mutex
	progress time.Time // last progress
	err      error     // last error since progress
	warned   time.Time // last "no progress" warning
	joined   bool      // the session has an assignment (possibly empty)
	owned    map[int32]*owned
	waiting  int64     // records waiting in owned partitions, as of the last lag check
	checked  time.Time // when the last lag check succeeded
}

// owned is what the lag checks know of one owned partition.
type owned struct {
	at      int64     // committed offset at the last check
	moved   time.Time // when the partition was assigned or its offset last moved
	fetched bool      // records were fetched from it since it was assigned
	// idleAt and idleEnd are a committed offset and end offset between
	// which a probe found no record to deliver, at idleSeen.
	idleAt, idleEnd int64
	idleSeen        time.Time
}

// idleProbeTTL is how long a probe's finding that a partition has nothing
// to deliver is trusted while its offsets stay the same.
const idleProbeTTL = 20 * time.Second

// probeTimeout bounds the wait for the first record of a probe.
const probeTimeout = 2 * time.Second

// committedDataAfter reports whether partition p of the input topic holds
// a record that a read-committed consumer would receive at or after
// offset at and before end. A probe that receives nothing within
// probeTimeout reports false.
func (d *Detector) committedDataAfter(ctx context.Context, p int32, at, end int64) (bool, error) {
	cl, err := NewClient(d.opts.Client,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{d.opts.Topic: {p: kgo.NewOffset().At(at)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return false, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	for {
		fs := cl.PollRecords(ctx, 1)
		found := false
		fs.EachRecord(func(r *kgo.Record) { found = found || r.Offset < end })
		if found {
			return true, nil
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				ferr = err
			}
		})
		if ferr != nil {
			return false, ferr
		}
		if ctx.Err() != nil || fs.NumRecords() > 0 {
			return false, nil
		}
	}
}

// fetched notes that records of partitions ps were fetched.
func (h *health) fetched(ps []int32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range ps {
		if o := h.owned[p]; o != nil {
			o.fetched = true
		}
	}
}

func (h *health) reset(now time.Time) {
	h.mu.Lock()
	h.progress = now
	h.mu.Unlock()
	h.leave()
}

// leave forgets the session's assignment (the session ended).
func (h *health) leave() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.joined = false
	clear(h.owned)
}

func (h *health) noteErr(err error) {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.err = err
}

func (h *health) noteCommit(now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.progress, h.err = now, nil
}

func (h *health) assign(ps []int32, add bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.owned == nil {
		h.owned = map[int32]*owned{}
	}
	if add {
		h.joined = true
	}
	for _, p := range ps {
		if add {
			h.owned[p] = &owned{at: -1, moved: time.Now()}
		} else {
			delete(h.owned, p)
		}
	}
}

// status returns the error to report: nil while the detector makes
// progress, ErrStalled (wrapping the last error) after stall without it.
func (h *health) status(now time.Time, stall time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.progress.IsZero() {
		return nil // Run has not started
	}
	since := now.Sub(h.progress)
	if since <= stall {
		return nil
	}
	if h.err != nil {
		return fmt.Errorf("%w: no progress for %s (%d records waiting): %w", ErrStalled, since.Round(time.Second), h.waiting, h.err)
	}
	return fmt.Errorf("%w: no progress for %s (%d records waiting)", ErrStalled, since.Round(time.Second), h.waiting)
}

// Health returns nil while the detector makes progress, and an error
// wrapping ErrStalled once it has gone Options.StallTimeout without a
// committed transaction while records waited for it (or while it could not
// tell, because Kafka was unreachable). It is safe to call from any
// goroutine, e.g. a health endpoint.
func (d *Detector) Health() error {
	return d.health.status(time.Now(), d.opts.StallTimeout)
}

// hooks feeds client events into the detector's health.
type hooks struct{ d *Detector }

var (
	_ kgo.HookBrokerConnect           = hooks{}
	_ kgo.HookGroupManageError        = hooks{}
	_ kgo.HookBrokerE2E               = hooks{}
	_ kgo.HookProduceRecordUnbuffered = hooks{}
)

// OnBrokerConnect notes failed dials ("connection refused").
func (h hooks) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		h.d.noteErr(fmt.Errorf("broker %s: %w", net.JoinHostPort(meta.Host, fmt.Sprint(meta.Port)), err))
	}
}

// OnGroupManageError notes errors of the consumer group session (such as a
// coordinator that keeps answering NOT_COORDINATOR).
func (h hooks) OnGroupManageError(err error) { h.d.noteErr(fmt.Errorf("consumer group: %w", err)) }

// OnBrokerE2E notes failed requests (connection lost mid-request).
func (h hooks) OnBrokerE2E(meta kgo.BrokerMetadata, _ int16, e kgo.BrokerE2E) {
	if err := e.Err(); err != nil {
		h.d.noteErr(fmt.Errorf("broker %s: %w", net.JoinHostPort(meta.Host, fmt.Sprint(meta.Port)), err))
	}
}

// OnProduceRecordUnbuffered notes output records that failed.
func (h hooks) OnProduceRecordUnbuffered(r *kgo.Record, err error) {
	if err != nil {
		h.d.noteErr(fmt.Errorf("produce to %s: %w", r.Topic, err))
	}
}

// noteErr remembers err for Health and warns at once if no warning was
// given since the last progress.
func (d *Detector) noteErr(err error) {
	d.health.noteErr(err)
	d.warnIfStuck(time.Now(), false)
}

// warnIfStuck logs a warning naming the last error when the detector has an
// error since its last progress: the first time after each progress, and
// then, from the periodic check, once per CheckInterval. It also updates the
// stalled gauge.
func (d *Detector) warnIfStuck(now time.Time, periodic bool) {
	h := &d.health
	h.mu.Lock()
	err, since, waiting := h.err, now.Sub(h.progress), h.waiting
	due := err != nil && (h.warned.Before(h.progress) || (periodic && now.Sub(h.warned) >= d.opts.CheckInterval))
	if due {
		h.warned = now
	}
	h.mu.Unlock()
	stalled := since > d.opts.StallTimeout
	if stalled {
		d.m.stalled.Set(1)
	} else {
		d.m.stalled.Set(0)
	}
	if !due {
		return
	}
	d.log.Warn("detector making no progress", "err", err, "since_progress", since.Round(100*time.Millisecond),
		"records_waiting", waiting, "stalled", stalled)
}

// watch checks the detector's progress and lag every second until ctx
// ends.
func (d *Detector) watch(ctx context.Context, cl func() *kgo.Client) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if c := cl(); c != nil {
				d.checkLag(ctx, c)
			}
			d.warnIfStuck(time.Now(), true)
			d.recreateIfStalled(time.Now())
		}
	}
}

// errSessionStalled ends a session that made no progress for StallTimeout
// while records waited for it.
var errSessionStalled = errors.New("session stalled")

// errOwnPending ends a session whose partitions wait for a pending offset
// commit of the detector's own transactional ID (see endOwnPending).
var errOwnPending = errors.New("partition blocked by a pending offset commit of this detector's own earlier transaction")

// recreateIfStalled ends the current session when it has run for at least
// StallTimeout without progress while the last lag check, which reached
// the broker, saw records waiting in its partitions; Run then recreates
// it. Kafka being unreachable is left to the client's own retries.
func (d *Detector) recreateIfStalled(now time.Time) {
	s := d.session.Load()
	if s == nil || now.Sub(s.started) <= d.opts.StallTimeout {
		return
	}
	h := &d.health
	h.mu.Lock()
	since, waiting, checked := now.Sub(h.progress), h.waiting, h.checked
	h.mu.Unlock()
	if since <= d.opts.StallTimeout || waiting == 0 || now.Sub(checked) > 2*d.opts.CheckInterval {
		return
	}
	s.end(fmt.Errorf("%w: no progress for %s with %d records waiting", errSessionStalled, since.Round(time.Second), waiting))
}

// checkLag measures the records waiting in the partitions this detector
// owns, from the topic's end offsets and the group's committed offsets. A
// detector that has joined its group and has none waiting is making
// progress. An owned partition whose records wait while nothing was fetched
// from it and its committed offset has not moved for OrphanTimeout is
// blocked by its previous owner's open transaction (a crashed detector's
// commit in flight, which stable offset fetches wait for): checkLag fences
// that owner's transactional ID, named in the commit metadata, so that the
// broker aborts the transaction now instead of after its timeout. Before
// either, a probe checks that such a partition has records to deliver at
// all: a transactional producer's markers and aborted records are never
// delivered, so they neither wait nor block.
func (d *Detector) checkLag(ctx context.Context, cl *kgo.Client) {
	ctx, cancel := context.WithTimeout(ctx, d.opts.CheckInterval)
	defer cancel()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, d.opts.Topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		d.noteErr(fmt.Errorf("lag check: end offsets: %w", err))
		return
	}
	offs, err := adm.FetchOffsets(ctx, d.opts.Group)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		d.noteErr(fmt.Errorf("lag check: committed offsets: %w", err))
		return
	}
	now := time.Now()
	h := &d.health
	type suspect struct {
		p        int32
		at, end  int64
		meta     string
		orphaned bool // nothing fetched from it since it was assigned
	}
	var suspects []suspect
	lags := map[int32]int64{}
	h.mu.Lock()
	for p, o := range h.owned {
		end, ok := ends.Lookup(d.opts.Topic, p)
		if !ok {
			continue
		}
		at, meta := int64(0), ""
		if c, ok := offs.Lookup(d.opts.Topic, p); ok && c.At >= 0 {
			at, meta = c.At, c.Metadata
		}
		if at != o.at {
			if o.at >= 0 {
				o.moved = now
			}
			o.at = at
		}
		lag := max(0, end.Offset-at)
		switch {
		case lag == 0:
			o.moved = now
		case o.idleAt == at && o.idleEnd == end.Offset && now.Sub(o.idleSeen) < idleProbeTTL:
			lag = 0 // only transaction markers or aborted records follow at
			o.moved = now
		case now.Sub(o.moved) > d.opts.OrphanTimeout:
			suspects = append(suspects, suspect{p, at, end.Offset, meta, !o.fetched})
		}
		lags[p] = lag
	}
	h.mu.Unlock()

	// A partition whose offset has not moved for OrphanTimeout may have
	// nothing to read after all: a transactional producer's last commit
	// marker, or records it aborted, count in the end offset but are never
	// delivered, so no commit can move past them. A read-committed probe
	// tells them from records that wait.
	orphans := map[string]bool{}
	ownPending := false
	for _, s := range suspects {
		found, err := d.committedDataAfter(ctx, s.p, s.at, s.end)
		if err != nil {
			d.noteErr(fmt.Errorf("lag check: probe partition %d: %w", s.p, err))
			continue
		}
		h.mu.Lock()
		if o := h.owned[s.p]; o != nil {
			o.moved = now // once per OrphanTimeout
			if !found {
				o.idleAt, o.idleEnd, o.idleSeen = s.at, s.end, now
			}
		}
		h.mu.Unlock()
		if !found {
			lags[s.p] = 0
		} else if s.orphaned && s.meta == d.txID {
			ownPending = ownPending || d.unstable(ctx, adm, s.p)
		} else if s.orphaned && s.meta != "" {
			orphans[s.meta] = true
		}
	}
	var waiting int64
	for p, lag := range lags {
		waiting += lag
		d.m.setLag(p, lag)
	}
	h.mu.Lock()
	h.waiting, h.checked = waiting, now
	if h.joined && waiting == 0 {
		h.progress, h.err = now, nil
	}
	h.mu.Unlock()
	d.m.waiting.Set(float64(waiting))
	if ownPending {
		// Only between sessions is it certain that no transaction of
		// this ID is in flight: end the session, and Run settles the
		// pending commit before it starts the next.
		if s := d.session.Load(); s != nil {
			s.end(errOwnPending)
		}
	}
	for txID := range orphans {
		d.log.Warn("partition blocked by another detector's open transaction; fencing it", "transactional_id", txID)
		if _, err := fence(ctx, cl, txID, d.opts.TransactionTimeout); err != nil {
			d.noteErr(fmt.Errorf("fence transactional id %s: %w", txID, err))
		}
	}
}

// fence bumps the epoch of transactional ID txID (InitProducerID), which
// makes the broker abort its open transaction at once and refuse its
// producer from then on.
func fence(ctx context.Context, cl *kgo.Client, txID string, timeout time.Duration) (*kmsg.InitProducerIDResponse, error) {
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID = &txID
	req.TransactionTimeoutMillis = int32(timeout.Milliseconds())
	req.ProducerID, req.ProducerEpoch = -1, -1
	resp, err := txnRequest(ctx, cl, req, func(r kmsg.Response) int16 { return r.(*kmsg.InitProducerIDResponse).ErrorCode })
	if err != nil {
		return nil, err
	}
	return resp.(*kmsg.InitProducerIDResponse), nil
}

// txnRequest issues a transaction coordinator request, retrying while the
// coordinator is busy (finishing an earlier transaction) or moving.
func txnRequest(ctx context.Context, cl *kgo.Client, req kmsg.Request, code func(kmsg.Response) int16) (kmsg.Response, error) {
	for {
		resp, err := cl.Request(ctx, req)
		if err == nil {
			err = kerr.ErrorForCode(code(resp))
		}
		if !errors.Is(err, kerr.ConcurrentTransactions) && !errors.Is(err, kerr.CoordinatorLoadInProgress) &&
			!errors.Is(err, kerr.NotCoordinator) && !errors.Is(err, kerr.CoordinatorNotAvailable) {
			return resp, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// unstable reports whether the group's committed offset of partition p is
// held back by a pending transactional offset commit (KIP-447: a stable
// offset fetch answers UNSTABLE_OFFSET_COMMIT), as opposed to a session
// that is merely slow to fetch.
func (d *Detector) unstable(ctx context.Context, adm *kadm.Client, p int32) bool {
	offs, err := adm.FetchOffsets(kadm.RequireStable(ctx), d.opts.Group)
	if err != nil {
		d.noteErr(fmt.Errorf("lag check: stable committed offsets: %w", err))
		return false
	}
	o, ok := offs.Lookup(d.opts.Topic, p)
	return ok && errors.Is(o.Err, kerr.UnstableOffsetCommit)
}

// Outcomes of the detector's last transaction that committed input
// offsets, as far as this process knows.
const (
	offsetsTxnUnknown int32 = iota
	offsetsTxnCommitted
	offsetsTxnAborted
)

// endOwnPending settles an offset commit of the detector's own
// transactional ID that the group coordinator holds as pending: that of a
// session that died with its transaction open (which the broker would
// otherwise abort only after the transaction timeout), or of a finished
// transaction whose marker never reached the group's offsets partition (a
// broker stopped while it wrote the markers), for which stable offset
// fetches wait for ever. InitProducerID aborts an open transaction; then a
// new transaction of the same producer that adds the group's offsets
// partition and ends writes a marker there, which settles every pending
// commit of that producer: a commit when this process saw its last
// offset-carrying transaction commit, else an abort (its records are then
// scored again: a duplicate verdict rather than a lost one).
//
// It must run while the detector has no session: a transaction of the
// current session would be fenced, and its offset commit could still land
// after the new producer's marker.
func (d *Detector) endOwnPending(ctx context.Context) error {
	cl, err := NewClient(d.opts.Client)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, d.opts.ShutdownTimeout)
	defer cancel()
	commit := d.offsetsTxn.Load() == offsetsTxnCommitted
	d.log.Warn("partition blocked by a pending offset commit of this detector's own earlier transaction (a crashed session's, or one whose marker a broker lost); ending it with a new transaction between sessions",
		"transactional_id", d.txID, "commit", commit)
	init, err := fence(ctx, cl, d.txID, d.opts.TransactionTimeout)
	if err != nil {
		return fmt.Errorf("init producer id: %w", err)
	}
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = d.txID, init.ProducerID, init.ProducerEpoch, d.opts.Group
	if _, err := txnRequest(ctx, cl, add, func(r kmsg.Response) int16 { return r.(*kmsg.AddOffsetsToTxnResponse).ErrorCode }); err != nil {
		return fmt.Errorf("add offsets to transaction: %w", err)
	}
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = d.txID, init.ProducerID, init.ProducerEpoch, commit
	if _, err := txnRequest(ctx, cl, end, func(r kmsg.Response) int16 { return r.(*kmsg.EndTxnResponse).ErrorCode }); err != nil {
		return fmt.Errorf("end transaction: %w", err)
	}
	d.offsetsTxn.Store(offsetsTxnUnknown)
	return nil
}

// stampCommit writes the detector's transactional ID into the metadata of
// every offset its transactions commit, so that a later owner of the
// partition knows whose open transaction may block it.
func (d *Detector) stampCommit(req *kmsg.TxnOffsetCommitRequest) error {
	d.offsetsSent = true
	for i := range req.Topics {
		for j := range req.Topics[i].Partitions {
			req.Topics[i].Partitions[j].Metadata = &d.txID
		}
	}
	return nil
}
