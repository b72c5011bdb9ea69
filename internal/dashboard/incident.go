package dashboard

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/netsentinel/netsentinel/internal/event"
	"github.com/netsentinel/netsentinel/internal/report"
)

// storedIncident is the latest state of one incident: the message with the
// highest Seq seen, and the order of its last change.
type storedIncident struct {
	event.Incident
	// changed orders incidents by their last change (a global counter):
	// the table lists the most recently changed first.
	changed uint64
	// search is the lower-cased text the text filter looks in.
	search string
}

// Incident states as the page shows them: an incident is open until its
// closing message arrives.
const (
	IncidentOpen   = "open"
	IncidentClosed = "closed"
)

// state returns "open" or "closed".
func (in *storedIncident) state() string {
	if in.Status == event.IncidentClosed {
		return IncidentClosed
	}
	return IncidentOpen
}

// decodeIncident decodes an incident message and checks what the page
// relies on: an ID, a Seq from 1, a known status and a count not below 0.
func decodeIncident(raw []byte) (*event.Incident, error) {
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, errNotObject
	}
	var m event.Incident
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	switch {
	case m.ID == "":
		return nil, errors.New("incident without an id")
	case m.Seq < 1:
		return nil, fmt.Errorf("incident %q: seq %d, want 1 or more", m.ID, m.Seq)
	case m.Count < 0:
		return nil, fmt.Errorf("incident %q: count %d below 0", m.ID, m.Count)
	}
	switch m.Status {
	case event.IncidentOpened, event.IncidentUpdated, event.IncidentClosed:
	default:
		return nil, fmt.Errorf("incident %q: status %q, want opened, updated or closed", m.ID, m.Status)
	}
	m.Rate, m.MaxProbability = finite(m.Rate), finite(m.MaxProbability)
	for i := range m.Explanation {
		r := &m.Explanation[i]
		r.Value, r.Typical, r.Contribution = finite(r.Value), finite(r.Typical), finite(r.Contribution)
	}
	return &m, nil
}

// addIncident decodes an incident message and keeps it when it is newer
// (higher Seq) than what is kept of its incident. The verdicts it adds
// (its count less the count kept) are counted by address in the minute of
// its last verdict, so that an update's cumulative count is not counted
// twice. It returns the decoding error for a message that is not an
// incident.
func (s *state) addIncident(raw []byte) error {
	m, err := decodeIncident(raw)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reader.Incidents++
	old := s.incidents[m.ID]
	if old != nil && m.Seq <= old.Seq {
		return nil // a message older than the state kept
	}
	var prev *event.Incident
	if old != nil {
		prev = &old.Incident
	}
	s.countIncidentAddrs(m, prev)
	s.incidentSeq++
	in := &storedIncident{Incident: *m, changed: s.incidentSeq}
	in.Attack, in.Category, in.Instance, in.Topic = s.intern(in.Attack), s.intern(in.Category), s.intern(in.Instance), s.intern(in.Topic)
	var sb strings.Builder
	for _, v := range []string{in.ID, in.Attack, in.Category, in.Src, in.Dst, in.Service, in.Flag, in.Instance} {
		sb.WriteString(strings.ToLower(v))
		sb.WriteByte('\n')
	}
	for _, l := range [][]event.Count{in.TopSources, in.TopDestinations, in.TopServices, in.Features, in.Withheld} {
		for _, c := range l {
			sb.WriteString(strings.ToLower(c.Value))
			sb.WriteByte('\n')
		}
	}
	for _, r := range in.Explanation {
		sb.WriteString(strings.ToLower(r.Feature))
		sb.WriteByte('\n')
	}
	in.search = sb.String()
	if old == nil && len(s.incidents) >= s.opts.MaxIncidents {
		s.evictIncidents()
	}
	s.incidents[m.ID] = in
	return nil
}

// evictIncidents drops the tenth of the kept incidents changed longest
// ago, closed ones first. The caller holds mu.
func (s *state) evictIncidents() {
	all := make([]*storedIncident, 0, len(s.incidents))
	for _, in := range s.incidents {
		all = append(all, in)
	}
	slices.SortFunc(all, func(a, b *storedIncident) int {
		if ac, bc := a.state() == IncidentClosed, b.state() == IncidentClosed; ac != bc {
			if ac {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.changed, b.changed)
	})
	for _, in := range all[:max(1, len(all)/10)] {
		delete(s.incidents, in.ID)
		s.reader.IncidentsEvicted++
	}
}

// countIncidentAddrs counts the verdicts m adds to prev (nil for a new
// incident) by source and destination in the minute of m's last verdict:
// under the incident's own address when it is keyed by one, else under
// its top addresses as far as their counts grew; the rest as untracked.
// The caller holds mu.
func (s *state) countIncidentAddrs(m, prev *event.Incident) {
	added := m.Count
	var prevSrc, prevDst []event.Count
	if prev != nil {
		added -= prev.Count
		prevSrc, prevDst = prev.TopSources, prev.TopDestinations
	}
	if added <= 0 {
		return
	}
	if !s.inRange(m.LastSeen) {
		s.reader.OutOfRange++
		return
	}
	var am *addrMinute
	minute := func() *addrMinute {
		if am == nil {
			k := m.LastSeen.Unix() / 60
			if am = s.incAddrs[k]; am == nil {
				am = &addrMinute{src: map[string]int64{}, dst: map[string]int64{}}
				s.incAddrs[k] = am
			}
		}
		return am
	}
	side := func(key string, top, prevTop []event.Count, counts func(*addrMinute) (map[string]int64, *int64)) {
		if key == "" && len(top) == 0 {
			return // the records carry no address on this side
		}
		mm := minute()
		c, other := counts(mm)
		if key != "" {
			addAddr(c, other, key, added, s.opts.MaxAddresses)
			return
		}
		rest := added
		for _, t := range top {
			d := t.Count
			for _, p := range prevTop {
				if p.Value == t.Value {
					d -= p.Count
				}
			}
			if d > 0 && d <= rest {
				addAddr(c, other, t.Value, d, s.opts.MaxAddresses)
				rest -= d
			}
		}
		*other += rest
	}
	side(m.Src, m.TopSources, prevSrc, func(a *addrMinute) (map[string]int64, *int64) { return a.src, &a.srcOther })
	side(m.Dst, m.TopDestinations, prevDst, func(a *addrMinute) (map[string]int64, *int64) { return a.dst, &a.dstOther })
}

// addAddr counts n alerts of addr, or in other when the minute already has
// limit addresses.
func addAddr(m map[string]int64, other *int64, addr string, n int64, limit int) {
	if _, ok := m[addr]; ok || len(m) < limit {
		m[addr] += n
		return
	}
	*other += n
}

// IncidentQuery selects incidents for the table. Empty fields match
// everything.
type IncidentQuery struct {
	// Category and Attack match exactly; State is "open" or "closed".
	Category, Attack, State string
	// Addr matches incidents whose source, destination or top addresses
	// contain it.
	Addr string
	// Text matches incidents whose ID, attack, category, addresses,
	// service, flag, instance, top values, features or rules contain it,
	// ignoring case.
	Text string
	// Before, when not zero, selects incidents changed before this order
	// (the next page: IncidentPage.Next).
	Before uint64
	// Limit is the most rows returned.
	Limit int
}

func (q IncidentQuery) match(in *storedIncident) bool {
	return (q.Category == "" || in.Category == q.Category) &&
		(q.Attack == "" || in.Attack == q.Attack) &&
		(q.State == "" || in.state() == q.State) &&
		(q.Addr == "" || incidentHasAddr(in, q.Addr)) &&
		(q.Text == "" || strings.Contains(in.search, q.Text))
}

func incidentHasAddr(in *storedIncident, addr string) bool {
	if strings.Contains(in.Src, addr) || strings.Contains(in.Dst, addr) {
		return true
	}
	for _, l := range [][]event.Count{in.TopSources, in.TopDestinations} {
		for _, c := range l {
			if strings.Contains(c.Value, addr) {
				return true
			}
		}
	}
	return false
}

// IncidentRow is one line of the incidents table.
type IncidentRow struct {
	ID string `json:"id"`
	// Order is the incident's place in the table (its last change); the
	// table lists the highest first.
	Order          uint64        `json:"order"`
	State          string        `json:"state"`
	Seq            int64         `json:"seq"`
	Attack         string        `json:"attack"`
	Category       string        `json:"category"`
	Src            string        `json:"src,omitempty"`
	Dst            string        `json:"dst,omitempty"`
	Service        string        `json:"service,omitempty"`
	Flag           string        `json:"flag,omitempty"`
	FirstSeen      time.Time     `json:"first_seen"`
	LastSeen       time.Time     `json:"last_seen"`
	Count          int64         `json:"count"`
	Rate           float64       `json:"rate"`
	MaxProbability float64       `json:"max_probability"`
	Destinations   []event.Count `json:"top_destinations"`
	Ports          []event.Count `json:"top_ports"`
	Services       []event.Count `json:"top_services"`
	// Features names the features that drove the incident: its first
	// verdict's explanation, then the novelty features of its verdicts.
	Features []string `json:"features"`
	// Withheld names the rules that kept verdicts of the incident's key
	// out of it, with their counts.
	Withheld []event.Count `json:"withheld"`
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (in *storedIncident) row() IncidentRow {
	feats := []string{}
	for _, r := range in.Explanation {
		if !slices.Contains(feats, r.Feature) {
			feats = append(feats, r.Feature)
		}
	}
	for _, c := range in.Features {
		if !slices.Contains(feats, c.Value) {
			feats = append(feats, c.Value)
		}
	}
	return IncidentRow{ID: in.ID, Order: in.changed, State: in.state(), Seq: in.Seq, Attack: in.Attack, Category: in.Category,
		Src: in.Src, Dst: in.Dst, Service: in.Service, Flag: in.Flag, FirstSeen: in.FirstSeen, LastSeen: in.LastSeen,
		Count: in.Count, Rate: in.Rate, MaxProbability: in.MaxProbability,
		Destinations: nonNil(in.TopDestinations), Ports: nonNil(in.TopPorts), Services: nonNil(in.TopServices),
		Features: feats, Withheld: nonNil(in.Withheld)}
}

// IncidentPage is one page of the incidents table, most recently changed
// first.
type IncidentPage struct {
	Incidents []IncidentRow `json:"incidents"`
	// Matching is the number of kept incidents the query matches; Open
	// the number of those open.
	Matching int `json:"matching"`
	Open     int `json:"open"`
	// Kept is the number of incidents kept (at most Options.MaxIncidents).
	Kept int `json:"kept"`
	// Messages is the number of incident messages read.
	Messages int64 `json:"messages"`
	// Next is the Before of the next page; zero on the last page.
	Next uint64 `json:"next"`
}

// queryIncidents returns a page of the incidents that match q.
func (s *state) queryIncidents(q IncidentQuery) IncidentPage {
	q.Text = strings.ToLower(q.Text)
	s.mu.RLock()
	defer s.mu.RUnlock()
	page := IncidentPage{Incidents: []IncidentRow{}, Kept: len(s.incidents), Messages: s.reader.Incidents}
	var match []*storedIncident
	for _, in := range s.incidents {
		if q.match(in) {
			match = append(match, in)
			if in.state() == IncidentOpen {
				page.Open++
			}
		}
	}
	page.Matching = len(match)
	slices.SortFunc(match, func(a, b *storedIncident) int { return cmp.Compare(b.changed, a.changed) })
	for _, in := range match {
		if q.Before != 0 && in.changed >= q.Before {
			continue
		}
		if len(page.Incidents) == q.Limit {
			page.Next = page.Incidents[len(page.Incidents)-1].Order
			break
		}
		page.Incidents = append(page.Incidents, in.row())
	}
	return page
}

// IncidentDetail is everything about one incident, for the detail view.
type IncidentDetail struct {
	IncidentRow
	Status    string        `json:"status"`
	Topic     string        `json:"topic"`
	Partition int32         `json:"partition"`
	Sources   []event.Count `json:"top_sources"`
	// Explanation is the first verdict's explanation.
	Explanation []Reason `json:"explanation"`
	// NoveltyFeatures counts the features that made its novelty-flagged
	// verdicts stand out.
	NoveltyFeatures []event.Count `json:"novelty_features"`
	// Samples are the input offsets of its first verdicts.
	Samples  []int64   `json:"samples"`
	Updated  time.Time `json:"updated"`
	Instance string    `json:"instance"`
}

// incident returns the detail of the incident with the given ID.
func (s *state) incident(id string) (IncidentDetail, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	in, ok := s.incidents[id]
	if !ok {
		return IncidentDetail{}, false
	}
	d := IncidentDetail{IncidentRow: in.row(), Status: in.Status, Topic: in.Topic, Partition: in.Partition,
		Sources: nonNil(in.TopSources), Explanation: []Reason{}, NoveltyFeatures: nonNil(in.Features),
		Samples: nonNil(in.Samples), Updated: in.Updated, Instance: in.Instance}
	for _, r := range in.Explanation {
		d.Explanation = append(d.Explanation, Reason(r))
	}
	return d, true
}

// openIncidents returns the number of open incidents. The caller holds mu
// (read).
func (s *state) openIncidents() (open int) {
	for _, in := range s.incidents {
		if in.state() == IncidentOpen {
			open++
		}
	}
	return open
}

// incidentSummaries returns the incidents with verdicts in [from, to), most
// verdicts first, as the report lists them. The caller holds mu (read).
func (s *state) incidentSummaries(from, to time.Time) []report.IncidentSummary {
	var out []report.IncidentSummary
	for _, m := range s.incidents {
		if in, ok := report.SummarizeIncident(&m.Incident, from, to); ok {
			out = append(out, in)
		}
	}
	report.SortIncidents(out)
	return out
}
