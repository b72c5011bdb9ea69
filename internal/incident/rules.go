package incident

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Rules are the allow-list entries, suppressions and thresholds a Table
// applies to verdicts before grouping them, in that order; the first rule
// that withholds a verdict names it. Every rule has a unique name, a reason
// and an optional expiry, after which it no longer applies. A withheld
// verdict is not lost: the caller counts it under the rule's name.
//
// Rules are immutable once parsed and safe for concurrent use.
type Rules struct {
	// Allow lists hosts whose verdicts are expected (a backup host, a
	// monitoring probe): a verdict from or to one of them is withheld.
	Allow []Allow `yaml:"allow"`
	// Suppressions withhold every verdict they match (a known scanner).
	Suppressions []Suppression `yaml:"suppressions"`
	// Thresholds let only some of the verdicts they match through, as
	// Suricata's threshold.config does.
	Thresholds []Threshold `yaml:"thresholds"`
}

// Allow is an allow-list entry.
type Allow struct {
	Name string `yaml:"name"`
	// Hosts are addresses or CIDR prefixes.
	Hosts StringList `yaml:"hosts"`
	// Direction is "src", "dst" or "either" (default): which end of the
	// connection must be one of Hosts.
	Direction string `yaml:"direction"`
	// Attack, when set, limits the entry to these attacks or categories.
	Attack  StringList `yaml:"attack"`
	Reason  string     `yaml:"reason"`
	Expires Expiry     `yaml:"expires"`

	hosts []netip.Prefix
}

// Suppression withholds every verdict it matches.
type Suppression struct {
	Name    string `yaml:"name"`
	Match   Match  `yaml:"match"`
	Reason  string `yaml:"reason"`
	Expires Expiry `yaml:"expires"`
}

// Threshold types, as in Suricata: limit lets the first Count verdicts of
// each window through; threshold lets every Count-th through; both lets
// one through per window, once Count verdicts have been seen in it.
const (
	TypeLimit     = "limit"
	TypeThreshold = "threshold"
	TypeBoth      = "both"
)

// Tracks: what a threshold counts separately.
const (
	TrackBySrc  = "by_src"
	TrackByDst  = "by_dst"
	TrackByRule = "by_rule"
)

// Threshold rate-limits the verdicts it matches. Windows are Seconds long
// and start at the first verdict after the previous window ended (record
// time); each track value (source address, destination address, or the
// whole rule) has its own. Verdicts without the tracked address are
// tracked by their incident key.
type Threshold struct {
	Name    string `yaml:"name"`
	Match   Match  `yaml:"match"`
	Type    string `yaml:"type"`
	Track   string `yaml:"track"`
	Count   int64  `yaml:"count"`
	Seconds int64  `yaml:"seconds"`
	Reason  string `yaml:"reason"`
	Expires Expiry `yaml:"expires"`
}

// Match selects verdicts; every condition set must hold. Lists match any
// of their entries; Attack matches an attack name or a category.
type Match struct {
	Attack  StringList `yaml:"attack"`
	Service StringList `yaml:"service"`
	Flag    StringList `yaml:"flag"`
	// Src and Dst are addresses or CIDR prefixes; a verdict without the
	// address never matches them.
	Src StringList `yaml:"src"`
	Dst StringList `yaml:"dst"`

	src, dst []netip.Prefix
}

// StringList is a YAML scalar or a sequence of scalars.
type StringList []string

// UnmarshalYAML accepts "x" as well as [x, y].
func (l *StringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = StringList{n.Value}
		return nil
	}
	var s []string
	if err := n.Decode(&s); err != nil {
		return err
	}
	*l = s
	return nil
}

// Expiry is when a rule stops applying; the zero Expiry never comes. In
// YAML it is a date (2027-01-31, midnight UTC) or an RFC 3339 time.
type Expiry struct{ time.Time }

// UnmarshalYAML parses a date or an RFC 3339 time.
func (e *Expiry) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
			if t, err := time.Parse(layout, n.Value); err == nil {
				e.Time = t
				return nil
			}
		}
	}
	return fmt.Errorf("line %d: expires %q: want a date (2027-01-31) or an RFC 3339 time (2027-01-31T12:00:00Z)", n.Line, n.Value)
}

// LoadRules reads and parses a rules file.
func LoadRules(path string) (*Rules, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r, err := ParseRules(b)
	if err != nil {
		return nil, fmt.Errorf("rules %s: %w", path, err)
	}
	return r, nil
}

// ParseRules parses a YAML rules file and checks it: unknown keys, bad
// addresses, types, tracks, counts and duplicate names are errors, all of
// them reported at once.
func ParseRules(data []byte) (*Rules, error) {
	var r Rules
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&r); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if err := r.compile(); err != nil {
		return nil, err
	}
	return &r, nil
}

func (r *Rules) compile() error {
	var errs []error
	names := map[string]string{}
	check := func(kind string, i int, name, reason string) func(format string, a ...any) {
		where := fmt.Sprintf("%s[%d]", kind, i)
		if name != "" {
			where += fmt.Sprintf(" %q", name)
		}
		bad := func(format string, a ...any) {
			errs = append(errs, fmt.Errorf("%s: %s", where, fmt.Sprintf(format, a...)))
		}
		switch {
		case name == "":
			bad("no name")
		case names[name] != "":
			bad("name already used by %s", names[name])
		default:
			names[name] = where
		}
		if strings.TrimSpace(reason) == "" {
			bad("no reason (say why these verdicts are expected)")
		}
		return bad
	}
	for i := range r.Allow {
		a := &r.Allow[i]
		bad := check("allow", i, a.Name, a.Reason)
		if len(a.Hosts) == 0 {
			bad("no hosts")
		}
		var err error
		if a.hosts, err = parsePrefixes(a.Hosts); err != nil {
			bad("hosts: %v", err)
		}
		switch a.Direction {
		case "":
			a.Direction = "either"
		case "src", "dst", "either":
		default:
			bad("direction %q: want src, dst or either", a.Direction)
		}
		if err := checkAttacks(a.Attack); err != nil {
			bad("attack: %v", err)
		}
	}
	for i := range r.Suppressions {
		s := &r.Suppressions[i]
		bad := check("suppressions", i, s.Name, s.Reason)
		if err := s.Match.compile(); err != nil {
			bad("match: %v", err)
		}
		if s.Match.empty() {
			bad("match is empty: a suppression must say what it suppresses")
		}
	}
	for i := range r.Thresholds {
		t := &r.Thresholds[i]
		bad := check("thresholds", i, t.Name, t.Reason)
		if err := t.Match.compile(); err != nil {
			bad("match: %v", err)
		}
		switch t.Type {
		case TypeLimit, TypeThreshold, TypeBoth:
		default:
			bad("type %q: want limit, threshold or both", t.Type)
		}
		switch t.Track {
		case "":
			t.Track = TrackByRule
		case TrackBySrc, TrackByDst, TrackByRule:
		default:
			bad("track %q: want by_src, by_dst or by_rule", t.Track)
		}
		if t.Count <= 0 {
			bad("count %d: want at least 1", t.Count)
		}
		if t.Seconds <= 0 {
			bad("seconds %d: want at least 1", t.Seconds)
		}
	}
	return errors.Join(errs...)
}

func (m *Match) compile() error {
	var err1, err2 error
	m.src, err1 = parsePrefixes(m.Src)
	if err1 != nil {
		err1 = fmt.Errorf("src: %w", err1)
	}
	m.dst, err2 = parsePrefixes(m.Dst)
	if err2 != nil {
		err2 = fmt.Errorf("dst: %w", err2)
	}
	err3 := checkAttacks(m.Attack)
	if err3 != nil {
		err3 = fmt.Errorf("attack: %w", err3)
	}
	return errors.Join(err1, err2, err3)
}

func (m *Match) empty() bool {
	return len(m.Attack)+len(m.Service)+len(m.Flag)+len(m.Src)+len(m.Dst) == 0
}

// checkAttacks refuses empty names: attack names are open (a model may
// know attacks the taxonomy does not), so only emptiness is an error.
func checkAttacks(l StringList) error {
	for i, a := range l {
		if strings.TrimSpace(a) == "" {
			return fmt.Errorf("entry %d is empty", i)
		}
	}
	return nil
}

func parsePrefixes(l []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range l {
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, err
			}
			if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, err
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

func inList(l StringList, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func attackIn(l StringList, v *Verdict) bool {
	return len(l) == 0 || inList(l, v.Attack) || inList(l, v.Category)
}

// addrIn reports whether the text address s lies in one of ps.
func addrIn(ps []netip.Prefix, s string) bool {
	if s == "" {
		return false
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (m *Match) matches(v *Verdict) bool {
	if !attackIn(m.Attack, v) {
		return false
	}
	if len(m.Service) > 0 && !inList(m.Service, v.Service) {
		return false
	}
	if len(m.Flag) > 0 && !inList(m.Flag, v.Flag) {
		return false
	}
	if len(m.src) > 0 && !addrIn(m.src, v.Identity.SrcIP) {
		return false
	}
	if len(m.dst) > 0 && !addrIn(m.dst, v.Identity.DstIP) {
		return false
	}
	return true
}

func (a *Allow) matches(v *Verdict) bool {
	if !attackIn(a.Attack, v) {
		return false
	}
	switch a.Direction {
	case "src":
		return addrIn(a.hosts, v.Identity.SrcIP)
	case "dst":
		return addrIn(a.hosts, v.Identity.DstIP)
	}
	return addrIn(a.hosts, v.Identity.SrcIP) || addrIn(a.hosts, v.Identity.DstIP)
}

func live(expires Expiry, now time.Time) bool { return expires.IsZero() || now.Before(expires.Time) }

// Expired returns the names of the rules whose expiry has passed at now.
func (r *Rules) Expired(now time.Time) []string {
	var out []string
	for _, a := range r.Allow {
		if !live(a.Expires, now) {
			out = append(out, a.Name)
		}
	}
	for _, s := range r.Suppressions {
		if !live(s.Expires, now) {
			out = append(out, s.Name)
		}
	}
	for _, t := range r.Thresholds {
		if !live(t.Expires, now) {
			out = append(out, t.Name)
		}
	}
	return out
}

// Len returns the number of rules.
func (r *Rules) Len() int { return len(r.Allow) + len(r.Suppressions) + len(r.Thresholds) }

// trackValue returns what t counts v under.
func (t *Threshold) trackValue(v *Verdict, k Key) string {
	switch t.Track {
	case TrackBySrc:
		if v.Identity.SrcIP != "" {
			return v.Identity.SrcIP
		}
	case TrackByDst:
		if v.Identity.DstIP != "" {
			return v.Identity.DstIP
		}
	case TrackByRule:
		return ""
	}
	return k.String()
}
