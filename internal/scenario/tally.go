package scenario

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/netsentinel/netsentinel/internal/features"
)

// The normal users' connections are also tallied apart by whether attack
// traffic was in their traffic windows: a connection that started between
// the first attack tool's start and the last one's end, or that ended
// within the host window (the last HostWindow connections, in order of
// their end) of an attack connection, counts as NormalDuring, as its
// count, srv_count, dst_host_* ... features include attack connections;
// any other as NormalOutside.
const (
	NormalDuring  = "normal, during attacks"
	NormalOutside = "normal, outside attacks"
)

// HostWindow is the host window of the records tallied: extract's and
// sensor's default (features.DefaultOptions).
var HostWindow = features.DefaultOptions().HostWindow

// RoleOther is the role of connections between addresses that are no
// actor's (the live path's own Kafka traffic).
const RoleOther = "other"

// Verdict is the part of a verdict that a tally reads: one line of
// `netsentinel predict` on extract's output, or one alert of `netsentinel
// detect`. A record that is no verdict (a line of the records topic)
// decodes with IsAttack false.
type Verdict struct {
	Error     string  `json:"error"`
	TS        float64 `json:"ts"`
	UID       string  `json:"uid"`
	SrcIP     string  `json:"src_ip"`
	DstIP     string  `json:"dst_ip"`
	IsAttack  bool    `json:"is_attack"`
	Category  string  `json:"category"`
	FlaggedBy string  `json:"flagged_by"`
}

// Tally is what the detector made of one role's connections.
type Tally struct {
	Conns, Flagged int
	// ByCategory counts the flagged connections by category, ByPart by
	// the part of the model that flagged them (classifier or novelty).
	ByCategory, ByPart map[string]int
}

func (t *Tally) add(flagged bool, category, part string) {
	t.Conns++
	if !flagged {
		return
	}
	t.Flagged++
	if t.ByCategory == nil {
		t.ByCategory, t.ByPart = map[string]int{}, map[string]int{}
	}
	t.ByCategory[category]++
	t.ByPart[part]++
}

// Share is the share of the connections flagged.
func (t *Tally) Share() float64 {
	if t == nil || t.Conns == 0 {
		return 0
	}
	return float64(t.Flagged) / float64(t.Conns)
}

// Categories lists the flagged connections' categories, most first, as
// "dos 120, probe 3".
func (t *Tally) Categories() string { return counts(t.ByCategory) }

func (t *Tally) String() string {
	if t == nil {
		return "no connections"
	}
	return fmt.Sprintf("%5d connections, %5d flagged (%5.1f%%): %s; by %s", t.Conns, t.Flagged, 100*t.Share(), t.Categories(), counts(t.ByPart))
}

func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// Tallies are tallies by role: each attack tool's name, RoleNormal (and
// NormalDuring, NormalOutside for the same connections split by time),
// RoleOther.
type Tallies map[string]*Tally

func (ts Tallies) add(roles []string, v *Verdict, flagged bool) {
	for _, role := range roles {
		t := ts[role]
		if t == nil {
			t = &Tally{}
			ts[role] = t
		}
		t.add(flagged, v.Category, v.FlaggedBy)
	}
}

// roler names the roles of connections given in order of their end.
type roler struct {
	r *Result
	// sinceAttack counts the connections since the last attack
	// connection (HostWindow or more: none in the host window).
	sinceAttack int
}

func newRoler(r *Result) *roler { return &roler{r: r, sinceAttack: HostWindow} }

// roles returns the connection's role and, for a normal user's, the
// NormalDuring or NormalOutside tally it also counts in.
func (x *roler) roles(v *Verdict) []string {
	role := x.r.Role(v.SrcIP, v.DstIP)
	switch role {
	case RoleNormal:
		// The host window holds this connection and the HostWindow-1
		// before it.
		x.sinceAttack++
		if x.r.DuringAttacks(v.TS) || x.sinceAttack < HostWindow {
			return []string{role, NormalDuring}
		}
		return []string{role, NormalOutside}
	case "":
		x.sinceAttack++
		return []string{RoleOther}
	default:
		x.sinceAttack = 0
		return []string{role}
	}
}

// ScoreVerdicts tallies the verdicts `netsentinel predict` printed for
// extract's output of r's capture, by the role of each connection.
func ScoreVerdicts(verdicts io.Reader, r *Result) (Tallies, error) {
	ts := Tallies{}
	x := newRoler(r)
	err := eachLine(verdicts, func(line int, v *Verdict) error {
		if v.Error != "" {
			return fmt.Errorf("verdict line %d: %s", line, v.Error)
		}
		ts.add(x.roles(v), v, v.IsAttack)
		return nil
	})
	return ts, err
}

// ScoreLive tallies the live path's verdicts by role: every record the
// sensor published (the records topic, in order) counts as a connection,
// every alert detect wrote (one per flagged record, --alerts records or
// both) as a flagged one; alerts are matched to records by uid. After a
// learning period (r.Learned) only the connections that started once the
// learned model scored are tallied.
func ScoreLive(records, alerts io.Reader, r *Result) (Tallies, error) {
	ts := Tallies{}
	x := newRoler(r)
	byUID := map[string][]string{}
	before := map[string]bool{} // records of the learning period
	if err := eachLine(records, func(line int, v *Verdict) error {
		if v.UID == "" {
			return fmt.Errorf("line %d: no uid", line)
		}
		roles := x.roles(v)
		if v.TS < r.Learned {
			before[v.UID] = true
			return nil
		}
		byUID[v.UID] = roles
		ts.add(roles, v, false)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("records: %w", err)
	}
	if err := eachLine(alerts, func(line int, v *Verdict) error {
		roles, ok := byUID[v.UID]
		if !ok && before[v.UID] {
			return nil
		}
		if !ok {
			return fmt.Errorf("line %d: uid %q is no record's", line, v.UID)
		}
		for _, role := range roles {
			t := ts[role]
			t.Flagged++
			if t.ByCategory == nil {
				t.ByCategory, t.ByPart = map[string]int{}, map[string]int{}
			}
			t.ByCategory[v.Category]++
			t.ByPart[v.FlaggedBy]++
		}
		delete(byUID, v.UID) // an alert repeated (it cannot be: exactly once) fails
		return nil
	}); err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	return ts, nil
}

// IncidentCount is the incidents of one role: how many, and by category.
type IncidentCount struct {
	Incidents  int
	ByCategory map[string]int
}

func (c *IncidentCount) String() string {
	if c == nil {
		return "no incident"
	}
	return fmt.Sprintf("%d incidents (%s)", c.Incidents, counts(c.ByCategory))
}

// ScoreIncidents counts the distinct incidents of detect's incidents topic
// by the role of their source (or of their destination when the source is
// no actor).
func ScoreIncidents(incidents io.Reader, r *Result) (map[string]*IncidentCount, error) {
	type msg struct {
		ID       string `json:"id"`
		Category string `json:"category"`
		Src      string `json:"src"`
		Dst      string `json:"dst"`
	}
	seen := map[string]bool{}
	out := map[string]*IncidentCount{}
	sc := bufio.NewScanner(incidents)
	sc.Buffer(nil, 16<<20)
	for line := 1; sc.Scan(); line++ {
		var m msg
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, fmt.Errorf("incident line %d: %w", line, err)
		}
		if seen[m.ID] {
			continue
		}
		seen[m.ID] = true
		role := r.Role(m.Src, m.Dst)
		if role == "" {
			role = RoleOther
		}
		c := out[role]
		if c == nil {
			c = &IncidentCount{ByCategory: map[string]int{}}
			out[role] = c
		}
		c.Incidents++
		c.ByCategory[m.Category]++
	}
	return out, sc.Err()
}

func eachLine(rd io.Reader, f func(line int, v *Verdict) error) error {
	return eachRaw(rd, func(line int, b []byte) error {
		var v Verdict
		if err := json.Unmarshal(b, &v); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		return f(line, &v)
	})
}

// AlertDelays returns, for each alert, how long after its connection ended
// it reached Kafka, in seconds, sorted: alerts are detect's alerts (JSON
// lines with ts and features.duration), times their Kafka timestamps in
// milliseconds, one a line in the same order.
func AlertDelays(alerts, times io.Reader) ([]float64, error) {
	type alert struct {
		TS       float64 `json:"ts"`
		Features struct {
			Duration float64 `json:"duration"`
		} `json:"features"`
	}
	ts := bufio.NewScanner(times)
	var delays []float64
	err := eachRaw(alerts, func(line int, b []byte) error {
		var a alert
		if err := json.Unmarshal(b, &a); err != nil {
			return fmt.Errorf("alert line %d: %w", line, err)
		}
		if !ts.Scan() {
			return fmt.Errorf("alert line %d: no Kafka timestamp for it", line)
		}
		ms, err := strconv.ParseInt(strings.TrimSpace(ts.Text()), 10, 64)
		if err != nil {
			return fmt.Errorf("timestamp line %d: %w", line, err)
		}
		delays = append(delays, float64(ms)/1e3-(a.TS+a.Features.Duration))
		return nil
	})
	if err == nil && ts.Scan() {
		err = fmt.Errorf("more timestamps than the %d alerts", len(delays))
	}
	sort.Float64s(delays)
	return delays, err
}

func eachRaw(rd io.Reader, f func(line int, b []byte) error) error {
	sc := bufio.NewScanner(rd)
	sc.Buffer(nil, 16<<20)
	for line := 1; sc.Scan(); line++ {
		if err := f(line, sc.Bytes()); err != nil {
			return err
		}
	}
	return sc.Err()
}
