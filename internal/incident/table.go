package incident

import (
	"bytes"
	"slices"
	"sort"
	"time"

	"github.com/netsentinel/netsentinel/internal/event"
)

// Config configures a Table. Zero fields take the defaults.
type Config struct {
	// Topic and Partition are the input partition the table groups; they
	// name its incidents.
	Topic     string
	Partition int32
	// Instance names the detector in the messages.
	Instance string
	// UpdateInterval is the least time between two messages about one
	// incident (a new incident is published at once); default 5s.
	UpdateInterval time.Duration
	// QuietPeriod closes an incident no verdict has joined for this long;
	// default 60s.
	QuietPeriod time.Duration
	// MaxOpen caps the open incidents; opening one more closes the one
	// quiet the longest first. Default 10000.
	MaxOpen int
	// Samples is the number of first offsets an incident keeps; default 5.
	Samples int
	// Top is the length of the top lists in a message; default 5.
	Top int
}

func (c *Config) defaults() {
	if c.UpdateInterval <= 0 {
		c.UpdateInterval = 5 * time.Second
	}
	if c.QuietPeriod <= 0 {
		c.QuietPeriod = 60 * time.Second
	}
	if c.MaxOpen <= 0 {
		c.MaxOpen = 10000
	}
	if c.Samples <= 0 {
		c.Samples = 5
	}
	if c.Top <= 0 {
		c.Top = 5
	}
}

// Outcome is what Observe did with a verdict.
type Outcome uint8

const (
	// OutcomeUnknown is the zero Outcome.
	OutcomeUnknown Outcome = iota
	// OutcomeOpened: the verdict opened a new incident.
	OutcomeOpened
	// OutcomeJoined: the verdict joined an open incident.
	OutcomeJoined
	// OutcomeAllowed: an allow-list entry withheld the verdict.
	OutcomeAllowed
	// OutcomeSuppressed: a suppression withheld the verdict.
	OutcomeSuppressed
	// OutcomeThresholded: a threshold withheld the verdict.
	OutcomeThresholded
)

// String returns the outcome's name.
func (o Outcome) String() string {
	switch o {
	case OutcomeOpened:
		return "opened"
	case OutcomeJoined:
		return "joined"
	case OutcomeAllowed:
		return "allowed"
	case OutcomeSuppressed:
		return "suppressed"
	case OutcomeThresholded:
		return "thresholded"
	}
	return "unknown"
}

// Withheld reports whether a rule withheld the verdict.
func (o Outcome) Withheld() bool { return o >= OutcomeAllowed }

// Decision is Observe's result: the outcome and, for a withheld verdict,
// the rule's name.
type Decision struct {
	Outcome Outcome
	Rule    string
}

type trackKey struct{ rule, value string }

// tracker is one threshold window.
type tracker struct {
	start  time.Time
	count  int64
	window time.Duration
}

// Table is one input partition's incidents and threshold windows.
type Table struct {
	cfg       Config
	open      map[Key]*State
	trackers  map[trackKey]*tracker
	pending   map[Key]struct{} // changed since their last message
	dirty     map[Key]struct{} // changed since the last Changes
	dirtyTr   map[trackKey]struct{}
	closing   []*State
	lastSweep time.Time
	maxTime   time.Time // the latest record time seen
	evicted   int64
}

// NewTable returns an empty table.
func NewTable(cfg Config) *Table {
	cfg.defaults()
	return &Table{cfg: cfg, open: map[Key]*State{}, trackers: map[trackKey]*tracker{},
		pending: map[Key]struct{}{}, dirty: map[Key]struct{}{}, dirtyTr: map[trackKey]struct{}{}}
}

// Open returns the number of open incidents.
func (t *Table) Open() int { return len(t.open) }

// Evicted returns the number of incidents closed early because MaxOpen was
// reached.
func (t *Table) Evicted() int64 { return t.evicted }

// Get returns the open incident of k, or nil.
func (t *Table) Get(k Key) *State { return t.open[k] }

// Observe applies rules (nil: none) to v and, unless one withholds it,
// adds v to its incident. now is the caller's clock.
func (t *Table) Observe(v *Verdict, rules *Rules, now time.Time) Decision {
	if v.Time.After(t.maxTime) {
		t.maxTime = v.Time
	}
	k := KeyOf(v)
	if rules != nil {
		if d, ok := t.apply(rules, v, k, now); ok {
			if st := t.open[k]; st != nil {
				// Counted in the incident and published with its next
				// update, as a verdict that joins it would be.
				st.Withheld.Add(d.Rule)
				t.pending[k] = struct{}{}
				t.dirty[k] = struct{}{}
			}
			return d
		}
	}
	st := t.open[k]
	out := OutcomeJoined
	if st == nil {
		if len(t.open) >= t.cfg.MaxOpen {
			t.evictOne()
		}
		st = &State{Key: k, Category: v.Category, FirstOffset: v.Offset, FirstSeen: v.Time, LastSeen: v.Time}
		t.open[k] = st
		out = OutcomeOpened
	}
	st.add(v, now, t.cfg.Samples)
	t.pending[k] = struct{}{}
	t.dirty[k] = struct{}{}
	return Decision{Outcome: out}
}

func (t *Table) apply(r *Rules, v *Verdict, k Key, now time.Time) (Decision, bool) {
	for i := range r.Allow {
		if a := &r.Allow[i]; live(a.Expires, now) && a.matches(v) {
			return Decision{OutcomeAllowed, a.Name}, true
		}
	}
	for i := range r.Suppressions {
		if s := &r.Suppressions[i]; live(s.Expires, now) && s.Match.matches(v) {
			return Decision{OutcomeSuppressed, s.Name}, true
		}
	}
	for i := range r.Thresholds {
		th := &r.Thresholds[i]
		if !live(th.Expires, now) || !th.Match.matches(v) {
			continue
		}
		// Only the first matching threshold applies, as in Suricata.
		tk := trackKey{th.Name, th.trackValue(v, k)}
		tr := t.trackers[tk]
		if tr == nil {
			tr = &tracker{}
			t.trackers[tk] = tr
		}
		t.dirtyTr[tk] = struct{}{}
		if th.admit(tr, v.Time) {
			return Decision{}, false
		}
		return Decision{OutcomeThresholded, th.Name}, true
	}
	return Decision{}, false
}

// admit counts a verdict at time ts in tr's window and reports whether it
// passes.
func (th *Threshold) admit(tr *tracker, ts time.Time) bool {
	tr.window = time.Duration(th.Seconds) * time.Second
	if tr.start.IsZero() || !ts.Before(tr.start.Add(tr.window)) {
		tr.start, tr.count = ts, 0
	}
	tr.count++
	switch th.Type {
	case TypeLimit:
		return tr.count <= th.Count
	case TypeThreshold:
		return tr.count%th.Count == 0
	case TypeBoth:
		return tr.count == th.Count
	}
	return true
}

// evictOne closes the incident quiet the longest.
func (t *Table) evictOne() {
	var oldest *State
	for _, st := range t.open {
		if oldest == nil || st.Touched.Before(oldest.Touched) ||
			(st.Touched.Equal(oldest.Touched) && st.FirstOffset < oldest.FirstOffset) {
			oldest = st
		}
	}
	if oldest == nil {
		return
	}
	t.evicted++
	t.close(oldest)
}

func (t *Table) close(st *State) {
	delete(t.open, st.Key)
	delete(t.pending, st.Key)
	t.dirty[st.Key] = struct{}{}
	t.closing = append(t.closing, st)
}

// Due returns the messages to publish at now: closing messages of
// incidents evicted or quiet for QuietPeriod, the first message of every
// new incident, and updates of incidents whose last message is at least
// UpdateInterval old. Messages are ordered by incident.
func (t *Table) Due(now time.Time) []event.Incident {
	if sweep := min(t.cfg.QuietPeriod/4, time.Second); now.Sub(t.lastSweep) >= sweep || now.Before(t.lastSweep) {
		t.lastSweep = now
		for _, st := range t.open {
			if now.Sub(st.Touched) >= t.cfg.QuietPeriod {
				t.close(st)
			}
		}
		for tk, tr := range t.trackers {
			if !t.maxTime.Before(tr.start.Add(tr.window)) {
				delete(t.trackers, tk)
				t.dirtyTr[tk] = struct{}{}
			}
		}
	}
	var out []event.Incident
	for _, st := range t.closing {
		out = append(out, t.message(st, event.IncidentClosed, now))
	}
	t.closing = t.closing[:0]
	for k := range t.pending {
		st := t.open[k]
		switch {
		case st.Seq == 0:
			out = append(out, t.message(st, event.IncidentOpened, now))
		case now.Sub(st.Published) >= t.cfg.UpdateInterval:
			out = append(out, t.message(st, event.IncidentUpdated, now))
		default:
			continue
		}
		delete(t.pending, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].Seq < out[j].Seq
	})
	return out
}

// message records that st is published now and returns the message.
func (t *Table) message(st *State, status string, now time.Time) event.Incident {
	st.Seq++
	st.Published = now
	st.PublishedCount = st.Count
	t.dirty[st.Key] = struct{}{}
	n := t.cfg.Top
	return event.Incident{
		ID: st.ID(t.cfg.Topic, t.cfg.Partition), Seq: st.Seq, Status: status,
		Topic: t.cfg.Topic, Partition: t.cfg.Partition,
		Attack: st.Key.Attack, Category: st.Category,
		Src: st.Key.Src, Dst: st.Key.Dst, Service: st.Key.Service, Flag: st.Key.Flag,
		FirstSeen: st.FirstSeen.UTC(), LastSeen: st.LastSeen.UTC(), Count: st.Count, Rate: st.Rate(),
		MaxProbability: st.MaxProbability,
		TopSources:     st.Srcs.Most(n), TopDestinations: st.Dsts.Most(n), TopPorts: st.Ports.Most(n),
		TopServices: st.Svcs.Most(n), Features: st.Features.Most(n), Explanation: slices.Clone(st.Explanation),
		Withheld: st.Withheld.Most(n),
		Samples:  append([]int64(nil), st.Samples...), Updated: now.UTC(), Instance: t.cfg.Instance,
	}
}

// Change is one changelog entry: a state key and its binary value, or a
// nil value (a tombstone) for a deleted entry.
type Change struct {
	Key, Value []byte
}

// Changes returns the entries changed since the last call, ordered by key.
func (t *Table) Changes() []Change {
	out := make([]Change, 0, len(t.dirty)+len(t.dirtyTr))
	for k := range t.dirty {
		c := Change{Key: appendIncidentKey(nil, k)}
		if st := t.open[k]; st != nil {
			c.Value = st.AppendBinary(nil)
		}
		out = append(out, c)
	}
	for tk := range t.dirtyTr {
		c := Change{Key: appendTrackerKey(nil, tk)}
		if tr := t.trackers[tk]; tr != nil {
			c.Value = tr.appendBinary(nil)
		}
		out = append(out, c)
	}
	clear(t.dirty)
	clear(t.dirtyTr)
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].Key, out[j].Key) < 0 })
	return out
}

// Apply applies one changelog entry (a nil value deletes), as when
// restoring a table from its changelog. An incident with verdicts not yet
// published is published at the next Due.
func (t *Table) Apply(key, value []byte) error {
	if len(key) == 0 {
		return corrupt("key", "empty")
	}
	switch key[0] {
	case keyIncident:
		k, err := decodeIncidentKey(key)
		if err != nil {
			return err
		}
		if value == nil {
			delete(t.open, k)
			delete(t.pending, k)
			return nil
		}
		st, err := DecodeState(value)
		if err != nil {
			return err
		}
		st.Key = k
		t.open[k] = st
		if st.Count != st.PublishedCount || st.Seq == 0 {
			t.pending[k] = struct{}{}
		} else {
			delete(t.pending, k)
		}
		if st.LastSeen.After(t.maxTime) {
			t.maxTime = st.LastSeen
		}
	case keyTracker:
		tk, err := decodeTrackerKey(key)
		if err != nil {
			return err
		}
		if value == nil {
			delete(t.trackers, tk)
			return nil
		}
		tr, err := decodeTracker(value)
		if err != nil {
			return err
		}
		t.trackers[tk] = tr
	default:
		return corrupt("key", "unknown kind "+quoteByte(key[0]))
	}
	return nil
}
