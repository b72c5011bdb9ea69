package report

import (
	"bufio"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netsentinel/netsentinel/internal/event"
	"github.com/netsentinel/netsentinel/internal/record"
)

// scenario is a synthetic series described by a testdata/*.txt file:
//
//	window START END ZONE        the report window (RFC 3339) and time zone
//	history DURATION             the series starts this long before END
//	records N                    records per minute
//	base RATE ATTACK             an attack type's rate at all times (repeatable)
//	noise F                      each rate is multiplied by 1±F (seeded)
//	daily HH:MM HH:MM RATE ATTACK  extra rate between these local times every day
//	plant START END RATE ATTACK  extra rate in [START, END)
//	unknown START END RATE       share of unknown verdicts in [START, END)
//	expect-spike START METRIC DRIVER  a spike in the bucket at START
//	expect-none                  no spike
type scenario struct {
	window  Window
	history time.Duration
	records int64
	base    []rateSpec
	noise   float64
	daily   []dailySpec
	plants  []plantSpec
	unknown []plantSpec
	expect  []expectSpec
}

type rateSpec struct {
	rate   float64
	attack string
}

type dailySpec struct {
	from, to time.Duration // since local midnight
	rateSpec
}

type plantSpec struct {
	from, to time.Time
	rateSpec
}

type expectSpec struct {
	start          time.Time
	metric, driver string
}

func parseScenario(t *testing.T, path string) *scenario {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := &scenario{}
	s := bufio.NewScanner(f)
	line := 0
	fail := func(format string, args ...any) {
		t.Fatalf("%s:%d: %s", path, line, fmt.Sprintf(format, args...))
	}
	ts := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			fail("%v", err)
		}
		return v
	}
	num := func(s string) float64 {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			fail("%v", err)
		}
		return v
	}
	clock := func(s string) time.Duration {
		v, err := time.Parse("15:04", s)
		if err != nil {
			fail("%v", err)
		}
		return time.Duration(v.Hour())*time.Hour + time.Duration(v.Minute())*time.Minute
	}
	for s.Scan() {
		line++
		f := strings.Fields(s.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch {
		case f[0] == "window" && len(f) == 4:
			loc, err := time.LoadLocation(f[3])
			if err != nil {
				fail("%v", err)
			}
			sc.window = Window{Start: ts(f[1]), End: ts(f[2]), Location: loc}
		case f[0] == "history" && len(f) == 2:
			d, err := time.ParseDuration(f[1])
			if err != nil {
				fail("%v", err)
			}
			sc.history = d
		case f[0] == "records" && len(f) == 2:
			sc.records = int64(num(f[1]))
		case f[0] == "base" && len(f) == 3:
			sc.base = append(sc.base, rateSpec{num(f[1]), f[2]})
		case f[0] == "noise" && len(f) == 2:
			sc.noise = num(f[1])
		case f[0] == "daily" && len(f) == 5:
			sc.daily = append(sc.daily, dailySpec{clock(f[1]), clock(f[2]), rateSpec{num(f[3]), f[4]}})
		case f[0] == "plant" && len(f) == 5:
			sc.plants = append(sc.plants, plantSpec{ts(f[1]), ts(f[2]), rateSpec{num(f[3]), f[4]}})
		case f[0] == "unknown" && len(f) == 4:
			sc.unknown = append(sc.unknown, plantSpec{ts(f[1]), ts(f[2]), rateSpec{num(f[3]), "unknown"}})
		case f[0] == "expect-spike" && len(f) == 4:
			sc.expect = append(sc.expect, expectSpec{ts(f[1]), f[2], f[3]})
		case f[0] == "expect-none" && len(f) == 1:
		default:
			fail("bad line %q", s.Text())
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return sc
}

// stats generates the scenario's statistics messages: every minute split
// between two instances, the way several detectors would report it.
func (sc *scenario) stats() []event.Stats {
	rng := rand.New(rand.NewPCG(1, 2))
	loc := sc.window.loc()
	var out []event.Stats
	for t := sc.window.End.Add(-sc.history); t.Before(sc.window.End); t = t.Add(time.Minute) {
		rates := slices.Clone(sc.base)
		lt := t.In(loc)
		sinceMidnight := time.Duration(lt.Hour())*time.Hour + time.Duration(lt.Minute())*time.Minute
		for _, d := range sc.daily {
			if sinceMidnight >= d.from && sinceMidnight < d.to {
				rates = append(rates, d.rateSpec)
			}
		}
		for _, p := range sc.plants {
			if !t.Before(p.from) && t.Before(p.to) {
				rates = append(rates, p.rateSpec)
			}
		}
		for _, p := range sc.unknown {
			if !t.Before(p.from) && t.Before(p.to) {
				rates = append(rates, p.rateSpec)
			}
		}
		left := sc.records
		counts := map[string]int64{}
		for _, r := range rates {
			n := int64(math.Round(float64(sc.records) * r.rate * (1 + sc.noise*(2*rng.Float64()-1))))
			n = min(max(n, 0), left)
			counts[r.attack] += n
			left -= n
		}
		// Split between two instances: det-a gets the smaller half.
		for _, inst := range []string{"det-a", "det-b"} {
			s := event.Stats{Minute: t, Instance: inst, ByCategory: map[string]int64{}, ByAttack: map[string]int64{}}
			half := func(n int64) int64 {
				if inst == "det-a" {
					return n / 2
				}
				return n - n/2
			}
			s.ByCategory["normal"] = half(left)
			s.Records = s.ByCategory["normal"]
			for _, name := range slices.Sorted(maps.Keys(counts)) {
				if n := half(counts[name]); n > 0 {
					s.ByAttack[name] += n
					s.ByCategory[record.CategoryOf(name).String()] += n
					s.Records += n
				}
			}
			out = append(out, s)
		}
	}
	return out
}
func (sc *scenario) series() []Minute {
	var a Aggregator
	for _, s := range sc.stats() {
		a.Add(s, s.Minute.Add(time.Minute+time.Second))
	}
	return a.Series()
}

func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			sc := parseScenario(t, file)
			rep, err := Build(sc.series(), sc.window, Config{})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Spikes) != len(sc.expect) {
				for _, s := range rep.Spikes {
					t.Logf("spike %v %s rate %.3f baseline %.3f z %.1f (%s)", s.Start, s.Metric, s.Rate, s.Baseline, s.Z, s.BaselineSource)
				}
				t.Fatalf("got %d spikes, want %d", len(rep.Spikes), len(sc.expect))
			}
			for i, want := range sc.expect {
				got := rep.Spikes[i]
				if !got.Start.Equal(want.start) {
					t.Errorf("spike %d at %v, want %v", i, got.Start, want.start)
				}
				if !strings.HasPrefix(got.Metric, want.metric) {
					t.Errorf("spike %d metric %q, want %q", i, got.Metric, want.metric)
				}
				if len(got.Drivers) == 0 || got.Drivers[0].Name != want.driver {
					t.Errorf("spike %d drivers %+v, want %s first", i, got.Drivers, want.driver)
				}
				if got.Z < 3.5 || got.Rate <= got.Baseline {
					t.Errorf("spike %d: z %.2f rate %.3f baseline %.3f", i, got.Z, got.Rate, got.Baseline)
				}
			}
			// Every minute is split between two instances; the sums must
			// still equal the per-minute totals.
			if want := sc.records * int64(sc.window.Duration()/time.Minute); rep.Records != want {
				t.Errorf("records = %d, want %d", rep.Records, want)
			}
			if len(rep.Instances) != 2 {
				t.Errorf("instances = %+v, want det-a and det-b", rep.Instances)
			}
			if rep.Quiet != (len(sc.expect) == 0) {
				t.Errorf("quiet = %v with %d spikes, problems %v", rep.Quiet, len(rep.Spikes), rep.Problems)
			}
		})
	}
}

type eventStats = event.Stats
