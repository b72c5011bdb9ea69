package dashboard

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/netsentinel/netsentinel/internal/event"
	"github.com/netsentinel/netsentinel/internal/record"
	"github.com/netsentinel/netsentinel/internal/report"
)

// Span is one of the time spans the dashboard summarises.
type Span struct {
	// Name is how the API and the page name it: "5m", "1h" or "24h".
	Name string
	// Length is the span's length.
	Length time.Duration
}

// Spans lists the spans the page offers.
var Spans = []Span{{"5m", 5 * time.Minute}, {"1h", time.Hour}, {"24h", 24 * time.Hour}}

// spanByName returns the span named name.
func spanByName(name string) (Span, bool) {
	for _, s := range Spans {
		if s.Name == name {
			return s, true
		}
	}
	return Span{}, false
}

// state is what the dashboard knows: the per-minute statistics, the ring of
// recent alerts and dead letters, per-minute address counts and the health
// of the detectors. Its methods are safe for concurrent use.
type state struct {
	opts Options

	mu  sync.RWMutex
	agg report.Aggregator
	// lastPrune is when agg and addrs were last pruned.
	lastPrune time.Time

	// alerts is a ring of the newest opts.MaxAlerts alerts; alert IDs count
	// from 1 in arrival order, so the alert with ID i sits at
	// alerts[(i-1) % len] while i > nextID-1-len.
	alerts []*storedAlert
	nextID uint64
	// addrs counts alerts by source and destination address per minute.
	addrs map[int64]*addrMinute
	// drivers counts, per minute, the alerts whose explanation named each
	// feature (at most the schema's features a minute).
	drivers report.FeatureMinutes

	// incidents holds the latest state of each incident by ID;
	// incidentSeq counts their changes. incAddrs counts the verdicts
	// incident messages add, by address, per minute of their last
	// verdict.
	incidents   map[string]*storedIncident
	incidentSeq uint64
	incAddrs    map[int64]*addrMinute

	dead       []*storedDeadLetter
	nextDeadID uint64

	// rates count records and attacks of statistics messages by the second
	// they were written, for the current rates.
	rates [rateSlots]rateSlot
	// instances is what each detector instance reported.
	instances map[string]*instanceState
	// lastReport is the write time of the newest statistics message.
	lastReport time.Time

	group  GroupStatus
	broker BrokerStatus
	reader ReaderStatus

	strs map[string]string

	// version counts changes; changed is closed and replaced on each.
	version uint64
	changed chan struct{}

	cacheMu sync.Mutex
	cache   map[string]*cachedSummary
}

const rateSlots = 60

type rateSlot struct {
	sec              int64
	records, attacks int64
}

type instanceState struct {
	name       string
	lastReport time.Time
	records    int64
	rates      [rateSlots]rateSlot
}

// addrMinute counts one minute's alerts by address. Each side keeps at
// most Options.MaxAddresses addresses; alerts from further addresses are
// counted in other.
type addrMinute struct {
	src, dst           map[string]int64
	srcOther, dstOther int64
}

type storedDeadLetter struct {
	id uint64
	event.DeadLetter
	// size is the length of the original value; DeadLetter.Value may hold
	// only its first Options.MaxDeadLetterBytes.
	size int
}

type cachedSummary struct {
	version uint64
	at      time.Time
	json    []byte
}

func newState(opts Options) *state {
	return &state{
		opts:       opts,
		alerts:     make([]*storedAlert, 0, min(opts.MaxAlerts, 1<<16)),
		nextID:     1,
		nextDeadID: 1,
		addrs:      map[int64]*addrMinute{},
		drivers:    report.FeatureMinutes{},
		incidents:  map[string]*storedIncident{},
		incAddrs:   map[int64]*addrMinute{},
		instances:  map[string]*instanceState{},
		strs:       map[string]string{},
		changed:    make(chan struct{}),
		cache:      map[string]*cachedSummary{},
		group:      GroupStatus{Name: opts.Group, Members: []Member{}, Partitions: []PartitionLag{}},
	}
}

// intern returns one shared copy of s (attack and category names, topics,
// instances repeat in every alert). The table is cleared when it grows
// past a bound, so hostile input cannot grow it without end. The caller
// holds mu.
func (s *state) intern(v string) string {
	if x, ok := s.strs[v]; ok {
		return x
	}
	if len(v) > 64 {
		return v
	}
	if len(s.strs) >= 4096 {
		clear(s.strs)
	}
	s.strs[v] = v
	return v
}

// notify tells waiting event streams that something changed.
func (s *state) notify() {
	s.mu.Lock()
	s.version++
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// watch returns the current version and a channel closed at the next
// change.
func (s *state) watch() (uint64, <-chan struct{}) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.version, s.changed
}

// addStats adds a statistics message written at written (its Kafka
// timestamp).
func (s *state) addStats(st event.Stats, written time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inRange(st.Minute) {
		s.agg.Add(st, written)
	} else {
		s.reader.OutOfRange++
	}
	var attacks int64
	for k, v := range st.ByCategory {
		if k != "normal" {
			attacks += v
		}
	}
	sec := written.Unix()
	addRate(&s.rates, sec, st.Records, attacks)
	in := s.instances[st.Instance]
	if in == nil {
		in = &instanceState{name: st.Instance}
		s.instances[st.Instance] = in
	}
	in.records += st.Records
	addRate(&in.rates, sec, st.Records, 0)
	if written.After(in.lastReport) {
		in.lastReport = written
	}
	if written.After(s.lastReport) {
		s.lastReport = written
	}
	s.reader.Stats++
	s.pruneLocked()
}

func addRate(r *[rateSlots]rateSlot, sec, records, attacks int64) {
	sl := &r[((sec%rateSlots)+rateSlots)%rateSlots]
	if sl.sec != sec {
		*sl = rateSlot{sec: sec}
	}
	sl.records += records
	sl.attacks += attacks
}

// rateOver returns the records and attacks per second over the rateSlots
// seconds before now.
func rateOver(r *[rateSlots]rateSlot, now time.Time) (records, attacks float64) {
	end := now.Unix()
	for i := range r {
		if sl := &r[i]; sl.sec > end-rateSlots && sl.sec <= end {
			records += float64(sl.records)
			attacks += float64(sl.attacks)
		}
	}
	return records / rateSlots, attacks / rateSlots
}

// inRange reports whether t falls in the kept history (or at most an hour
// ahead, for clocks that run fast). Counts for other times would never be
// shown or pruned.
func (s *state) inRange(t time.Time) bool {
	now := s.opts.Now()
	return !t.Before(now.Add(-s.opts.History)) && !t.After(now.Add(time.Hour))
}

// pruneLocked drops minutes older than the history, at most once a minute.
func (s *state) pruneLocked() {
	now := s.opts.Now()
	if now.Sub(s.lastPrune) < time.Minute {
		return
	}
	s.lastPrune = now
	cut := now.Add(-s.opts.History)
	s.agg.Prune(cut)
	for _, m := range []map[int64]*addrMinute{s.addrs, s.incAddrs} {
		for k := range m {
			if k*60 < cut.Unix() {
				delete(m, k)
			}
		}
	}
	for k := range s.drivers {
		if k*60 < cut.Unix() {
			delete(s.drivers, k)
		}
	}
	for k, in := range s.instances {
		if in.lastReport.Before(cut) {
			delete(s.instances, k)
		}
	}
}

// addAlert decodes and keeps an alert message. It returns the decoding
// error for a message that is not an alert.
func (s *state) addAlert(raw []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := decodeAlert(raw, s.intern)
	if err != nil {
		return err
	}
	a.id = s.nextID
	s.nextID++
	if len(a.drivers) > 0 && s.inRange(a.time) {
		k := a.time.Unix() / 60
		m := s.drivers[k]
		if m == nil {
			m = map[string]int64{}
			s.drivers[k] = m
		}
		for _, f := range a.drivers {
			// Names are bounded in length and number a minute: hostile
			// input cannot grow the counts without end.
			if _, ok := m[f]; ok || (len(m) < 2*record.NumFeatures && len(f) <= 64) {
				m[s.intern(f)]++
			}
		}
	}
	a.drivers = nil
	if len(s.alerts) < s.opts.MaxAlerts {
		s.alerts = append(s.alerts, a)
	} else {
		s.alerts[(a.id-1)%uint64(s.opts.MaxAlerts)] = a
	}
	if (a.src != "" || a.dst != "") && !s.inRange(a.time) {
		s.reader.OutOfRange++
	} else if a.src != "" || a.dst != "" {
		k := a.time.Unix() / 60
		m := s.addrs[k]
		if m == nil {
			m = &addrMinute{src: map[string]int64{}, dst: map[string]int64{}}
			s.addrs[k] = m
		}
		countAddr(m.src, &m.srcOther, a.src, s.opts.MaxAddresses)
		countAddr(m.dst, &m.dstOther, a.dst, s.opts.MaxAddresses)
	}
	s.reader.Alerts++
	return nil
}

func countAddr(m map[string]int64, other *int64, addr string, limit int) {
	if addr == "" {
		return
	}
	if _, ok := m[addr]; ok || len(m) < limit {
		m[addr]++
		return
	}
	*other++
}

// addDeadLetter decodes and keeps a dead-letter message.
func (s *state) addDeadLetter(raw []byte) error {
	var dl event.DeadLetter
	if err := json.Unmarshal(raw, &dl); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := &storedDeadLetter{id: s.nextDeadID, DeadLetter: dl, size: len(dl.Value)}
	if len(d.Value) > s.opts.MaxDeadLetterBytes {
		d.Value = d.Value[:s.opts.MaxDeadLetterBytes:s.opts.MaxDeadLetterBytes]
	}
	s.nextDeadID++
	if len(s.dead) < s.opts.MaxDeadLetters {
		s.dead = append(s.dead, d)
	} else {
		s.dead[(d.id-1)%uint64(s.opts.MaxDeadLetters)] = d
	}
	s.reader.DeadLetters++
	return nil
}

// badMessage counts a message that could not be decoded.
func (s *state) badMessage(topic string, partition int32, offset int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reader.Bad++
	s.reader.LastBad = fmt.Sprintf("%s/%d@%d: %v", topic, partition, offset, err)
}

// fetchError records the reader's last fetch error. Whether the brokers
// are reachable is the group watcher's to say.
func (s *state) fetchError(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reader.FetchError = err.Error()
	s.reader.FetchErrorAt = s.opts.Now()
}

// AddressCount is an address and its number of alerts.
type AddressCount struct {
	Address string `json:"address"`
	Alerts  int64  `json:"alerts"`
}

// Summary is what the page shows for a span: totals, rates, categories,
// the attack rate over time with spikes, and the top addresses.
type Summary struct {
	Span   string    `json:"span"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Bucket string    `json:"bucket"`

	Records     int64   `json:"records"`
	Attacks     int64   `json:"attacks"`
	Unknown     int64   `json:"unknown"`
	DeadLetters int64   `json:"dead_letters"`
	AttackShare float64 `json:"attack_share"`
	// RecordsPerSecond and AttacksPerSecond are the current rates: what
	// the detectors reported over the last minute.
	RecordsPerSecond float64 `json:"records_per_second"`
	AttacksPerSecond float64 `json:"attacks_per_second"`

	Categories []report.CategoryCount `json:"categories"`
	Buckets    []report.Bucket        `json:"buckets"`
	Spikes     []report.Spike         `json:"spikes"`

	// IncidentsOpen is the number of incidents open now; Incidents the
	// number with verdicts in the span, IncidentsByCategory the same by
	// category.
	IncidentsOpen       int            `json:"incidents_open"`
	Incidents           int            `json:"incidents"`
	IncidentsByCategory map[string]int `json:"incidents_by_category"`
	// TopIncidents are the incidents with the most verdicts in the span
	// (at most Options.TopAddresses); each spike also names those active
	// in its bucket.
	TopIncidents []report.IncidentSummary `json:"top_incidents"`
	// Withheld counts, by rule, the verdicts rules kept out of incidents
	// in the span (from the statistics; counted in Attacks all the same).
	Withheld []report.AttackCount `json:"withheld"`

	// TopSources and TopTargets are the addresses with the most alerts in
	// the span, from alerts whose records carried addresses; in a minute
	// without such alerts, from the verdicts incident messages added.
	TopSources []AddressCount `json:"top_sources"`
	TopTargets []AddressCount `json:"top_targets"`
	// UntrackedSources and UntrackedTargets count alerts whose address was
	// not counted by name because its minute already had
	// Options.MaxAddresses addresses.
	UntrackedSources int64 `json:"untracked_sources"`
	UntrackedTargets int64 `json:"untracked_targets"`

	Version     uint64    `json:"version"`
	GeneratedAt time.Time `json:"generated_at"`
}

// window returns the window of span ending with the bucket that holds now.
func window(span Span, now time.Time) (report.Window, time.Duration) {
	b := report.BucketFor(span.Length)
	end := now.UTC().Truncate(b).Add(b)
	return report.Window{Start: end.Add(-span.Length), End: end, Location: time.UTC}, b
}

// summaryJSON returns the summary of span as JSON, computed at most once
// per Options.SummaryEvery (and again when the data changed).
func (s *state) summaryJSON(span Span) ([]byte, error) {
	now := s.opts.Now()
	version, _ := s.watch()
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	c := s.cache[span.Name]
	if c != nil && now.Sub(c.at) < s.opts.SummaryEvery && now.Sub(c.at) >= 0 {
		return c.json, nil
	}
	if c != nil && c.version == version && now.Sub(c.at) < 5*s.opts.SummaryEvery && now.Sub(c.at) >= 0 {
		return c.json, nil
	}
	sum, err := s.summary(span, now)
	if err != nil {
		return nil, err
	}
	sum.Version = version
	b, err := json.Marshal(sum)
	if err != nil {
		return nil, fmt.Errorf("encode summary: %w", err)
	}
	s.cache[span.Name] = &cachedSummary{version: version, at: now, json: b}
	return b, nil
}

// summary computes the summary of span at now.
func (s *state) summary(span Span, now time.Time) (*Summary, error) {
	w, bucket := window(span, now)
	cfg := s.opts.Report
	cfg.Bucket = bucket
	s.mu.RLock()
	series := s.agg.Range(w.Start.Add(-s.opts.History), w.End)
	rec, att := rateOver(&s.rates, now)
	src, dst := map[string]int64{}, map[string]int64{}
	var srcOther, dstOther int64
	for k := w.Start.Unix() / 60; k < w.End.Unix()/60; k++ {
		// Alerts and incidents tell of the same verdicts (a detector
		// writing both): a minute counts one of them.
		m := s.addrs[k]
		if m == nil {
			m = s.incAddrs[k]
		}
		if m == nil {
			continue
		}
		for a, n := range m.src {
			src[a] += n
		}
		for a, n := range m.dst {
			dst[a] += n
		}
		srcOther += m.srcOther
		dstOther += m.dstOther
	}
	incs := s.incidentSummaries(w.Start, w.End)
	drivers := report.FeatureMinutes{}
	for k := w.Start.Unix() / 60; k < w.End.Unix()/60; k++ {
		if m := s.drivers[k]; m != nil {
			drivers[k] = maps.Clone(m)
		}
	}
	open := s.openIncidents()
	s.mu.RUnlock()
	rep, err := report.Build(series, w, cfg)
	if err != nil {
		return nil, err
	}
	report.AddIncidents(rep, incs, s.opts.TopAddresses)
	report.AddSpikeFeatures(rep, incs, drivers, 3)
	byCat := map[string]int{}
	for _, in := range incs {
		byCat[in.Category]++
	}
	return &Summary{
		Span: span.Name, Start: w.Start, End: w.End, Bucket: bucket.String(),
		Records: rep.Records, Attacks: rep.Attacks, Unknown: rep.Unknown, DeadLetters: rep.DeadLetters,
		AttackShare: rep.AttackShare, RecordsPerSecond: rec, AttacksPerSecond: att,
		Categories: rep.Categories, Buckets: rep.Buckets, Spikes: rep.Spikes,
		IncidentsOpen: open, Incidents: len(incs), IncidentsByCategory: byCat, TopIncidents: nonNil(rep.TopIncidents), Withheld: nonNil(rep.Withheld),
		TopSources: top(src, s.opts.TopAddresses), TopTargets: top(dst, s.opts.TopAddresses),
		UntrackedSources: srcOther, UntrackedTargets: dstOther,
		GeneratedAt: now,
	}, nil
}

func top(m map[string]int64, n int) []AddressCount {
	out := make([]AddressCount, 0, len(m))
	for a, c := range m {
		out = append(out, AddressCount{a, c})
	}
	slices.SortFunc(out, func(x, y AddressCount) int {
		if c := cmp.Compare(y.Alerts, x.Alerts); c != 0 {
			return c
		}
		return strings.Compare(x.Address, y.Address)
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// AlertQuery selects alerts for the table. Empty fields match everything.
type AlertQuery struct {
	// Category and Attack match exactly.
	Category, Attack string
	// Addr matches alerts whose source or destination address contains
	// it (so "10.1.2." matches a subnet).
	Addr string
	// Text matches alerts whose attack, category, label, part that flagged
	// it, instance, addresses or standout features contain it, ignoring
	// case.
	Text string
	// Before, when not zero, selects alerts with a smaller ID (the next
	// page).
	Before uint64
	// Limit is the most rows returned.
	Limit int
}

// AlertPage is one page of the alerts table, newest first.
type AlertPage struct {
	Alerts []AlertRow `json:"alerts"`
	// Matching is the number of kept alerts the query matches.
	Matching int `json:"matching"`
	// Kept is the number of alerts kept (the newest Options.MaxAlerts).
	Kept int `json:"kept"`
	// Total is the number of alerts read since the dashboard started.
	Total uint64 `json:"total"`
	// Next is the Before of the next page; zero on the last page.
	Next uint64 `json:"next"`
}

func (q AlertQuery) match(a *storedAlert) bool {
	return (q.Category == "" || a.category == q.Category) &&
		(q.Attack == "" || a.attack == q.Attack) &&
		(q.Addr == "" || strings.Contains(a.src, q.Addr) || strings.Contains(a.dst, q.Addr)) &&
		(q.Text == "" || strings.Contains(a.search, q.Text))
}

// queryAlerts returns a page of the alerts that match q.
func (s *state) queryAlerts(q AlertQuery) AlertPage {
	q.Text = strings.ToLower(q.Text)
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := uint64(len(s.alerts))
	page := AlertPage{Alerts: []AlertRow{}, Kept: len(s.alerts), Total: s.nextID - 1}
	// IDs from newest (nextID-1) down to oldest kept (nextID-n).
	for id := s.nextID - 1; id >= s.nextID-n && id > 0; id-- {
		a := s.alerts[(id-1)%uint64(s.opts.MaxAlerts)]
		if !q.match(a) {
			continue
		}
		page.Matching++
		if q.Before != 0 && id >= q.Before {
			continue
		}
		if len(page.Alerts) < q.Limit {
			page.Alerts = append(page.Alerts, a.row())
		} else if page.Next == 0 {
			page.Next = page.Alerts[len(page.Alerts)-1].ID
		}
	}
	return page
}

// alert returns the alert with the given ID, or false when it is not (or
// no longer) kept.
func (s *state) alert(id uint64) (*storedAlert, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := uint64(len(s.alerts))
	if id == 0 || id >= s.nextID || id < s.nextID-n {
		return nil, false
	}
	return s.alerts[(id-1)%uint64(s.opts.MaxAlerts)], true
}

// DeadLetterRow is one dead letter, its bytes shown escaped.
type DeadLetterRow struct {
	ID        uint64    `json:"id"`
	Time      time.Time `json:"time"`
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Reason    string    `json:"reason"`
	Instance  string    `json:"instance"`
	// Value is the record's bytes, escaped (see escapeBytes); at most
	// Options.MaxDeadLetterBytes of them.
	Value string `json:"value"`
	// Size is the length of the original value; when it exceeds Shown the
	// page says so.
	Size  int `json:"size"`
	Shown int `json:"shown"`
}

// DeadLetterPage is one page of dead letters, newest first.
type DeadLetterPage struct {
	DeadLetters []DeadLetterRow `json:"dead_letters"`
	Kept        int             `json:"kept"`
	Total       uint64          `json:"total"`
	Next        uint64          `json:"next"`
}

// queryDeadLetters returns up to limit dead letters with IDs below before
// (all when before is zero), newest first.
func (s *state) queryDeadLetters(before uint64, limit int) DeadLetterPage {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := uint64(len(s.dead))
	page := DeadLetterPage{DeadLetters: []DeadLetterRow{}, Kept: len(s.dead), Total: s.nextDeadID - 1}
	for id := s.nextDeadID - 1; id >= s.nextDeadID-n && id > 0; id-- {
		if before != 0 && id >= before {
			continue
		}
		if len(page.DeadLetters) == limit {
			page.Next = page.DeadLetters[limit-1].ID
			break
		}
		d := s.dead[(id-1)%uint64(s.opts.MaxDeadLetters)]
		page.DeadLetters = append(page.DeadLetters, DeadLetterRow{ID: d.id, Time: d.Time, Topic: d.Topic, Partition: d.Partition,
			Offset: d.Offset, Reason: d.Reason, Instance: d.Instance, Value: escapeBytes(d.Value), Size: d.size, Shown: len(d.Value)})
	}
	return page
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
