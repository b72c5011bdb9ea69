package report

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/netsentinel/netsentinel/internal/event"
	"github.com/netsentinel/netsentinel/internal/record"
)

// Report is the result of Build. It is also the content of summary.json.
type Report struct {
	// Title is a one-line headline ("3.2% attacks, 1 spike").
	Title       string    `json:"title"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	TimeZone    string    `json:"time_zone"`
	WindowLabel string    `json:"window_label"`
	// ID names the window (see Window.ID).
	ID          string    `json:"id"`
	GeneratedAt time.Time `json:"generated_at"`
	// Bucket is the bucket size of the time series and spike detection.
	Bucket Duration `json:"bucket"`

	Records     int64   `json:"records"`
	Attacks     int64   `json:"attacks"`
	AttackShare float64 `json:"attack_share"`
	Unknown     int64   `json:"unknown"`
	DeadLetters int64   `json:"dead_letters"`

	// Categories lists every category, normal first, unknown last.
	Categories []CategoryCount `json:"categories"`
	// Buckets is the time series over the window.
	Buckets []Bucket `json:"buckets"`
	// Spikes lists the buckets whose attack or unknown rate stood far
	// above its baseline, in time order.
	Spikes []Spike `json:"spikes"`
	// Instances lists the detector instances seen.
	Instances []Instance `json:"instances"`
	// Problems lists health problems in words; empty when all is well.
	Problems []string `json:"problems"`
	// HighAttackShare is true when AttackShare is above the method's
	// QuietMaxAttackShare.
	HighAttackShare bool `json:"high_attack_share"`
	// Quiet is true when there was no spike, no health problem and the
	// attack share was not high.
	Quiet bool `json:"quiet"`
	// Method describes the spike detection for the footer.
	Method Config `json:"method"`
	// TopAlerts lists the window's most novel alerts, when the alerts
	// topic was read.
	TopAlerts []AlertSummary `json:"top_alerts,omitempty"`
	// TopIncidents lists the incidents active in the window with the most
	// verdicts, when the incidents topic was read (see AddIncidents).
	TopIncidents []IncidentSummary `json:"top_incidents,omitempty"`
	// TopSources lists the connection addresses that originated the most
	// alerts in the window (at most Config.TopAddresses), most first, and
	// TopDestinations the addresses most attacked. Each count is summed
	// from the statistics' per-message top lists (event.Stats.TopSources),
	// so it is exact for an address that was in every list it belonged to
	// and a lower bound otherwise. Alerts whose record had no address are
	// in neither list.
	TopSources      []AddressCount `json:"top_sources,omitempty"`
	TopDestinations []AddressCount `json:"top_destinations,omitempty"`
	// OtherSources and OtherDestinations count the alerts with an address
	// that the statistics did not list.
	OtherSources      int64 `json:"other_sources,omitempty"`
	OtherDestinations int64 `json:"other_destinations,omitempty"`
	// Withheld counts, by rule, the verdicts that rules (allow-list
	// entries, suppressions, thresholds) kept out of incidents in the
	// window, most first; they are in the totals above all the same.
	Withheld []AttackCount `json:"withheld,omitempty"`
	// DeadLetterReasons lists the most frequent reasons records failed to
	// decode, when the dead-letter topic was read.
	DeadLetterReasons []AttackCount `json:"dead_letter_reasons,omitempty"`
	// Notes holds extra lines added by the caller (e.g. a demo's context).
	Notes []string `json:"notes,omitempty"`
}

// CategoryCount is one category's total.
type CategoryCount struct {
	Name  string  `json:"name"`
	Count int64   `json:"count"`
	Share float64 `json:"share"`
	// Attacks lists the category's attack types, most frequent first; empty
	// for normal.
	Attacks []AttackCount `json:"attacks,omitempty"`
}

// AttackCount is one attack type's count.
type AttackCount struct {
	Name  string  `json:"name"`
	Count int64   `json:"count"`
	Share float64 `json:"share,omitempty"`
	// Expected is, for a spike's drivers, the count the baseline predicts.
	Expected float64 `json:"expected,omitempty"`
}

// AddressCount is the number of alerts of one connection address.
type AddressCount struct {
	Address string `json:"address"`
	Count   int64  `json:"count"`
	// Share is Count over the window's (or the spike's) attacks.
	Share float64 `json:"share"`
}

// topAddresses returns the n addresses of counts with the most alerts,
// most first (ties by address), with their share of attacks; nil when
// counts is empty.
func topAddresses(counts map[string]int64, n int, attacks int64) []AddressCount {
	top, _ := event.Top(counts, n)
	if len(top) == 0 {
		return nil
	}
	out := make([]AddressCount, 0, len(top))
	for a, c := range top {
		out = append(out, AddressCount{Address: a, Count: c, Share: rate(c, attacks)})
	}
	slices.SortFunc(out, func(x, y AddressCount) int {
		if c := cmp.Compare(y.Count, x.Count); c != 0 {
			return c
		}
		return cmp.Compare(x.Address, y.Address)
	})
	return out
}

// Bucket is one point of the time series.
type Bucket struct {
	Start       time.Time `json:"start"`
	Records     int64     `json:"records"`
	Attacks     int64     `json:"attacks"`
	Unknown     int64     `json:"unknown"`
	AttackRate  float64   `json:"attack_rate"`
	UnknownRate float64   `json:"unknown_rate"`
	Spike       bool      `json:"spike,omitempty"`
}

// Spike is a bucket whose rate stood far above its baseline.
type Spike struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Metric is "attack rate" or "unknown rate": the latter when the
	// unknown rate crossed the thresholds, since novel traffic is the more
	// specific signal.
	Metric   string  `json:"metric"`
	Rate     float64 `json:"rate"`
	Baseline float64 `json:"baseline"`
	Z        float64 `json:"z"`
	Count    int64   `json:"count"`
	Records  int64   `json:"records"`
	// BaselineSource says where the baseline came from.
	BaselineSource string `json:"baseline_source"`
	// Drivers lists the attack types with the largest excess over what the
	// baseline predicts.
	Drivers []AttackCount `json:"drivers"`
	// Sources lists the addresses that originated the most alerts in the
	// spike's bucket (at most Config.TopAttacks), as Report.TopSources;
	// Share is over the bucket's attacks.
	Sources []AddressCount `json:"sources,omitempty"`
	// Incidents names the incidents active during the spike's bucket, most
	// verdicts first (see AddIncidents).
	Incidents []string `json:"incidents,omitempty"`
	// Features lists the features that drove the most verdicts in the
	// spike's bucket, with those verdicts' number (see AddSpikeFeatures).
	Features []AttackCount `json:"features,omitempty"`
}

// Instance is one detector instance's activity.
type Instance struct {
	Name     string    `json:"name"`
	Records  int64     `json:"records"`
	LastSeen time.Time `json:"last_seen"`
	MaxLag   Duration  `json:"max_lag"`
	// Status is "ok", "silent" (no statistics near the window's end) or
	// "lagging" (statistics written long after their minute).
	Status string `json:"status"`
}

// Duration is a time.Duration that reads and writes JSON as "1h0m0s".
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// ErrBadWindow is returned by Build when the window is empty or not a
// whole number of buckets.
var ErrBadWindow = errors.New("bad report window")

// index gives fast access to a series by minute.
type index map[int64]*Minute

func newIndex(series []Minute) index {
	ix := make(index, len(series))
	for i := range series {
		ix[series[i].Time.UTC().Truncate(time.Minute).Unix()] = &series[i]
	}
	return ix
}

// sum adds up the minutes in [start, start+d).
func (ix index) sum(start time.Time, d time.Duration) (records, attacks, unknown int64, byAttack map[string]int64) {
	from := start.UTC().Truncate(time.Minute).Unix()
	to := start.Add(d).Unix()
	for t := from; t < to; t += 60 {
		m := ix[t]
		if m == nil {
			continue
		}
		records += m.Records
		a, u := minuteAttacks(m)
		attacks += a
		unknown += u
		if len(m.ByAttack) > 0 {
			if byAttack == nil {
				byAttack = make(map[string]int64)
			}
			for k, v := range m.ByAttack {
				byAttack[k] += v
			}
		}
	}
	return records, attacks, unknown, byAttack
}

// sources sums the alerts by source address of the minutes in
// [start, start+d).
func (ix index) sources(start time.Time, d time.Duration) map[string]int64 {
	var out map[string]int64
	for t := start.UTC().Truncate(time.Minute).Unix(); t < start.Add(d).Unix(); t += 60 {
		if m := ix[t]; m != nil {
			out = addCounts(out, m.Sources)
		}
	}
	return out
}

// unlisted sums the counts of the addresses not in list.
func unlisted(counts map[string]int64, list []AddressCount) int64 {
	var n int64
	for _, v := range counts {
		n += v
	}
	for _, a := range list {
		n -= a.Count
	}
	return n
}

// minuteAttacks returns the minute's non-normal and unknown verdicts.
func minuteAttacks(m *Minute) (attacks, unknown int64) {
	for k, v := range m.ByCategory {
		if k != record.CategoryNormal.String() {
			attacks += v
		}
	}
	return attacks, m.ByCategory[record.CategoryUnknown.String()]
}

func rate(n, d int64) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / float64(d)
}

// Build computes the report for window w from series, which should cover
// the window and, for the baseline, the Config.History before it. The
// series may hold minutes outside that span and in any order.
func Build(series []Minute, w Window, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	if !w.End.After(w.Start) {
		return nil, fmt.Errorf("%w: end %v is not after start %v", ErrBadWindow, w.End, w.Start)
	}
	if cfg.Bucket <= 0 {
		cfg.Bucket = BucketFor(w.Duration())
	}
	if cfg.Bucket < time.Minute || cfg.Bucket%time.Minute != 0 {
		return nil, fmt.Errorf("%w: bucket %v is not a whole number of minutes", ErrBadWindow, cfg.Bucket)
	}
	loc := w.loc()
	ix := newIndex(series)
	rep := &Report{
		Start:       w.Start.In(loc),
		End:         w.End.In(loc),
		TimeZone:    loc.String(),
		WindowLabel: w.String(),
		ID:          w.ID(),
		GeneratedAt: time.Now().In(loc),
		Bucket:      Duration(cfg.Bucket),
		Method:      cfg,
		Spikes:      []Spike{},
		Problems:    []string{},
	}

	// Totals over the window.
	byCat := map[string]int64{}
	byAttack := map[string]int64{}
	var srcs, dsts, byRule map[string]int64
	for i := range series {
		m := &series[i]
		if m.Time.Before(w.Start) || !m.Time.Before(w.End) {
			continue
		}
		rep.Records += m.Records
		rep.DeadLetters += m.DeadLetters
		for k, v := range m.ByCategory {
			byCat[k] += v
		}
		for k, v := range m.ByAttack {
			byAttack[k] += v
		}
		a, u := minuteAttacks(m)
		rep.Attacks += a
		rep.Unknown += u
		srcs = addCounts(srcs, m.Sources)
		dsts = addCounts(dsts, m.Destinations)
		rep.OtherSources += m.OtherSources
		rep.OtherDestinations += m.OtherDestinations
		byRule = addCounts(byRule, m.ByRule)
	}
	for k, v := range byRule {
		rep.Withheld = append(rep.Withheld, AttackCount{Name: k, Count: v})
	}
	sortAttacks(rep.Withheld)
	rep.AttackShare = rate(rep.Attacks, rep.Records)
	rep.Categories = categories(byCat, byAttack, rep.Records)
	rep.TopSources = topAddresses(srcs, cfg.TopAddresses, rep.Attacks)
	rep.TopDestinations = topAddresses(dsts, cfg.TopAddresses, rep.Attacks)
	rep.OtherSources += unlisted(srcs, rep.TopSources)
	rep.OtherDestinations += unlisted(dsts, rep.TopDestinations)

	// Time series and spikes.
	for t := w.Start; t.Before(w.End); t = t.Add(cfg.Bucket) {
		d := min(cfg.Bucket, w.End.Sub(t))
		recs, att, unk, _ := ix.sum(t, d)
		b := Bucket{Start: t.In(loc), Records: recs, Attacks: att, Unknown: unk,
			AttackRate: rate(att, recs), UnknownRate: rate(unk, recs)}
		if s, ok := detectSpike(ix, t, d, b, cfg, loc); ok {
			s.Sources = topAddresses(ix.sources(t, d), cfg.TopAttacks, b.Attacks)
			b.Spike = true
			rep.Spikes = append(rep.Spikes, s)
		}
		rep.Buckets = append(rep.Buckets, b)
	}

	rep.Instances, rep.Problems = instances(series, w, cfg)
	if rep.Problems == nil {
		rep.Problems = []string{}
	}
	rep.HighAttackShare = rep.AttackShare > cfg.QuietMaxAttackShare
	rep.Quiet = len(rep.Spikes) == 0 && len(rep.Problems) == 0 && !rep.HighAttackShare
	rep.Title = title(rep)
	return rep, nil
}

func categories(byCat, byAttack map[string]int64, records int64) []CategoryCount {
	cats := make([]CategoryCount, 0, len(record.Categories))
	index := map[string]int{}
	for _, c := range record.Categories {
		index[c.String()] = len(cats)
		cats = append(cats, CategoryCount{Name: c.String(), Count: byCat[c.String()], Share: rate(byCat[c.String()], records)})
	}
	for name, n := range byAttack {
		c := record.CategoryOf(name).String()
		i := index[c]
		cats[i].Attacks = append(cats[i].Attacks, AttackCount{Name: name, Count: n})
	}
	for i := range cats {
		c := &cats[i]
		var total int64
		for _, a := range c.Attacks {
			total += a.Count
		}
		for j := range c.Attacks {
			c.Attacks[j].Share = rate(c.Attacks[j].Count, total)
		}
		sortAttacks(c.Attacks)
	}
	return cats
}

func sortAttacks(a []AttackCount) {
	slices.SortFunc(a, func(x, y AttackCount) int {
		if c := cmp.Compare(y.Count, x.Count); c != 0 {
			return c
		}
		return cmp.Compare(x.Name, y.Name)
	})
}

func title(rep *Report) string {
	s := fmt.Sprintf("%s attacks, %s", Percent(rep.AttackShare), plural(len(rep.Spikes), "spike"))
	if rep.HighAttackShare {
		s = fmt.Sprintf("%s attacks (high), %s", Percent(rep.AttackShare), plural(len(rep.Spikes), "spike"))
	}
	if rep.Quiet {
		s = "all quiet, " + s
	}
	if len(rep.Problems) > 0 {
		s += ", " + plural(len(rep.Problems), "problem")
	}
	return s
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// Percent formats a fraction as a percentage with one decimal ("3.2%"),
// or two below one percent ("0.25%").
func Percent(f float64) string {
	p := 100 * f
	switch {
	case p == 0:
		return "0%"
	case p < 1:
		return fmt.Sprintf("%.2f%%", p)
	default:
		return fmt.Sprintf("%.1f%%", p)
	}
}

// instances summarises the detector instances seen in the window or in
// the day before its end, so an instance that went down keeps being
// reported as silent for a day (then it is taken as decommissioned).
func instances(series []Minute, w Window, cfg Config) ([]Instance, []string) {
	from := w.End.Add(-24 * time.Hour)
	if w.Start.Before(from) {
		from = w.Start
	}
	byName := map[string]*Instance{}
	for i := range series {
		m := &series[i]
		if m.Time.Before(from) || !m.Time.Before(w.End) {
			continue
		}
		for name, im := range m.Instances {
			in := byName[name]
			if in == nil {
				in = &Instance{Name: name}
				byName[name] = in
			}
			if !m.Time.Before(w.Start) {
				in.Records += im.Records
				in.MaxLag = max(in.MaxLag, Duration(im.Lag))
			}
			if m.Time.After(in.LastSeen) {
				in.LastSeen = m.Time
			}
		}
	}
	var out []Instance
	var problems []string
	loc := w.loc()
	for _, name := range sortedKeys(byName) {
		in := byName[name]
		in.LastSeen = in.LastSeen.In(loc)
		switch {
		case in.LastSeen.Add(time.Minute).Before(w.End.Add(-cfg.SilentAfter)):
			in.Status = "silent"
			problems = append(problems, fmt.Sprintf("instance %s sent no statistics after %s (down, or no traffic)", name, in.LastSeen.Add(time.Minute).Format("2006-01-02 15:04 MST")))
		case time.Duration(in.MaxLag) > cfg.LagWarn:
			in.Status = "lagging"
			problems = append(problems, fmt.Sprintf("instance %s lagged up to %v behind its input", name, time.Duration(in.MaxLag).Round(time.Second)))
		default:
			in.Status = "ok"
		}
		out = append(out, *in)
	}
	if len(out) == 0 {
		problems = append(problems, "no detector instance reported statistics in the window")
	}
	return out, problems
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
