package novelty

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/netsentinel/netsentinel/internal/record"
)

// AdaptConfig configures an Adaptive profile. The zero value of a field
// selects its default (DefaultAdaptConfig).
type AdaptConfig struct {
	// MaxPerService caps the site prototypes of one service (default 16).
	MaxPerService int `json:"max_per_service"`
	// Radius, in units of the model's scale (the distance that scores
	// 0.5), is how close a learned record must be to a site prototype to
	// update it rather than start a new one (default 0.5).
	Radius float64 `json:"radius"`
	// HalfLife is the number of records of a service after which what was
	// learned from it weighs half as much (forgetting; default 2000).
	HalfLife float64 `json:"half_life"`
	// MinShare is the share of a service's recent records (learned or not)
	// a site prototype must have gathered before it lowers any score
	// (default 0.02): a trickle of records cannot teach the profile.
	MinShare float64 `json:"min_share"`
	// MaxRate bounds the share of a service's records that are learned
	// (default 0.2, with bursts of up to 20 records).
	MaxRate float64 `json:"max_rate"`
	// MaxScore: a record whose score under the trained profile reaches it
	// is never learned (default 0.75).
	MaxScore float64 `json:"max_score"`
	// MaxRelief bounds how much the site profile may shorten a record's
	// distance to normal traffic, as a fraction of its distance under the
	// trained profile (default 0.5): a record twice as far from normal
	// traffic as the threshold stays flagged whatever was learned.
	MaxRelief float64 `json:"max_relief"`
}

// DefaultAdaptConfig returns the default settings of an Adaptive profile.
func DefaultAdaptConfig() AdaptConfig {
	return AdaptConfig{MaxPerService: 32, Radius: 1, HalfLife: 2000, MinShare: 0.01, MaxRate: 0.2, MaxScore: 0.75, MaxRelief: 0.8}
}

func (c AdaptConfig) withDefaults() (AdaptConfig, error) {
	d := DefaultAdaptConfig()
	c.MaxPerService = cmp.Or(c.MaxPerService, d.MaxPerService)
	c.Radius = cmp.Or(c.Radius, d.Radius)
	c.HalfLife = cmp.Or(c.HalfLife, d.HalfLife)
	c.MinShare = cmp.Or(c.MinShare, d.MinShare)
	c.MaxRate = cmp.Or(c.MaxRate, d.MaxRate)
	c.MaxScore = cmp.Or(c.MaxScore, d.MaxScore)
	c.MaxRelief = cmp.Or(c.MaxRelief, d.MaxRelief)
	var errs []error
	if c.MaxPerService < 1 || c.MaxPerService > 1024 {
		errs = append(errs, fmt.Errorf("prototypes per service %d: must be in [1, 1024]", c.MaxPerService))
	}
	if !(c.Radius > 0) || math.IsInf(c.Radius, 1) {
		errs = append(errs, fmt.Errorf("radius %v: must be positive", c.Radius))
	}
	if !(c.HalfLife >= 1) || math.IsInf(c.HalfLife, 1) {
		errs = append(errs, fmt.Errorf("half-life %v: must be at least 1 record", c.HalfLife))
	}
	if !(c.MinShare > 0 && c.MinShare <= 1) {
		errs = append(errs, fmt.Errorf("minimum share %v: must be in (0, 1]", c.MinShare))
	}
	if !(c.MaxRate > 0 && c.MaxRate <= 1) {
		errs = append(errs, fmt.Errorf("maximum rate %v: must be in (0, 1]", c.MaxRate))
	}
	if !(c.MaxScore > 0 && c.MaxScore <= 1) {
		errs = append(errs, fmt.Errorf("maximum score %v: must be in (0, 1]", c.MaxScore))
	}
	if !(c.MaxRelief > 0 && c.MaxRelief < 1) {
		errs = append(errs, fmt.Errorf("maximum relief %v: must be in (0, 1)", c.MaxRelief))
	}
	return c, errors.Join(errs...)
}

// Adaptive is a Model that also learns the normal traffic of the site it is
// deployed on: a small profile of "site prototypes" per service, built from
// the records a caller vouches for (ScoreLearn with learn = true; the
// detector vouches for records its classifier calls normal with high
// confidence). A record's score is then its distance to the nearer of the
// trained profile and the site profile, with these safeguards against being
// taught that an attack is normal:
//
//   - records the trained profile finds very strange (score >= MaxScore)
//     are never learned;
//   - at most MaxRate of a service's records are learned;
//   - a site prototype counts only once it holds MinShare of its service's
//     recent records, so a slow trickle of attack records never does;
//   - what was learned fades (HalfLife), each service holds at most
//     MaxPerService prototypes, and the site profile shortens a distance by
//     at most MaxRelief of it.
//
// Its state lives in memory only: a restarted detector rebuilds it from the
// traffic (starting from the trained profile alone). It is safe for
// concurrent use; ScoreLearn serialises callers.
type Adaptive struct {
	*Model
	cfg         AdaptConfig
	decay       float64 // weight factor per record of a service
	radius2     float32 // squared radius in standardised units
	maxDistance float64 // distances from here on are never learned
	mu          sync.RWMutex
	svc         [numServices]site
}

// site is the learned profile of one service.
type site struct {
	total  float64 // decayed count of the service's records
	tokens float64 // records that may be learned now (MaxRate)
	protos []siteProto
}

type siteProto struct {
	p, f int // protocol and flag
	w    float64
	z    [Dims]float32
}

// maxBurst is how many records of a service can be learned in a row.
const maxBurst = 20

// NewAdaptive returns an adaptive profile on top of the trained model m
// (which it does not modify) with an empty site profile.
func NewAdaptive(m *Model, cfg AdaptConfig) (*Adaptive, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("novelty: adapt: %w", err)
	}
	r := cfg.Radius * float64(m.scale)
	a := &Adaptive{Model: m, cfg: cfg, decay: math.Exp2(-1 / cfg.HalfLife), radius2: float32(r * r)}
	// fromDistance(d) >= MaxScore  <=>  d >= MaxScore*scale/(1-MaxScore).
	a.maxDistance = math.Inf(1)
	if cfg.MaxScore < 1 {
		a.maxDistance = cfg.MaxScore * float64(m.scale) / (1 - cfg.MaxScore)
	}
	return a, nil
}

// Score returns the novelty of x under the trained and the site profile
// (see Adaptive). It learns nothing and does not count x in its service's
// forgetting clock.
func (a *Adaptive) Score(x []float32) float64 {
	var n Nearest
	return a.ScoreNearest(x, &n)
}

// ScoreNearest is Score, keeping the search of the trained profile in n
// (or taking it from n when n holds one for x; see Nearest).
func (a *Adaptive) ScoreNearest(x []float32, n *Nearest) float64 {
	if len(x) != record.NumFeatures {
		return 1
	}
	z, k, d := a.static(x, n)
	a.mu.RLock()
	defer a.mu.RUnlock()
	s := &a.svc[k.s]
	best := d
	for i := range s.protos {
		p := &s.protos[i]
		if p.p == k.p && p.f == k.f && p.w >= a.cfg.MinShare*s.total {
			best = min(best, math.Sqrt(dist2(z[:], p.z[:])))
		}
	}
	return a.fromDistance(a.relieve(d, best))
}

// static returns the standardised vector of x, its key and its distance
// to the trained profile, searched for in n (or taken from it).
func (a *Adaptive) static(x []float32, n *Nearest) (z *[Dims]float32, k key, d float64) {
	a.saturated(x, n)
	return &n.z, n.k, a.saturate(&n.z, n.k, n.d2)
}

// relieve returns the distance d to the trained profile shortened to best,
// the distance to the site profile, within the safeguards.
func (a *Adaptive) relieve(d, best float64) float64 {
	if best < d && d < a.maxDistance {
		return max(best, d*(1-a.cfg.MaxRelief))
	}
	return d
}

// ScoreLearn returns the novelty of x as Score does, then, if learn is true
// and the safeguards allow it, learns x as normal traffic of its service.
// Every call (learn or not) advances its service's clock of forgetting.
func (a *Adaptive) ScoreLearn(x []float32, learn bool) float64 {
	var n Nearest
	return a.ScoreLearnNearest(x, learn, &n)
}

// ScoreLearnNearest is ScoreLearn, keeping the search of the trained
// profile in n (or taking it from n when n holds one for x; see Nearest).
func (a *Adaptive) ScoreLearnNearest(x []float32, learn bool, n *Nearest) float64 {
	if len(x) != record.NumFeatures {
		return 1
	}
	z, k, d := a.static(x, n)
	a.mu.Lock()
	defer a.mu.Unlock()
	s := &a.svc[k.s]
	s.total = s.total*a.decay + 1
	s.tokens = min(s.tokens+a.cfg.MaxRate, maxBurst)
	near, nearD2 := -1, float32(math.MaxFloat32)
	best := d
	for i := range s.protos {
		p := &s.protos[i]
		p.w *= a.decay
		if p.p != k.p || p.f != k.f {
			continue
		}
		d2 := float32(dist2(z[:], p.z[:]))
		if d2 < nearD2 {
			near, nearD2 = i, d2
		}
		if p.w >= a.cfg.MinShare*s.total {
			best = min(best, math.Sqrt(float64(d2)))
		}
	}
	if learn && d < a.maxDistance && s.tokens >= 1 {
		s.tokens--
		a.learn(s, z, k, near, nearD2)
	}
	return a.fromDistance(a.relieve(d, best))
}

// learn adds the standardised record z with key k to the site profile s;
// near is its nearest site prototype of the same key (-1 if none) and
// nearD2 the squared distance to it.
func (a *Adaptive) learn(s *site, z *[Dims]float32, k key, near int, nearD2 float32) {
	if near >= 0 && nearD2 <= a.radius2 {
		p := &s.protos[near]
		p.w++
		step := float32(1 / p.w)
		for i := range p.z {
			p.z[i] += (z[i] - p.z[i]) * step
		}
		return
	}
	np := siteProto{p: k.p, f: k.f, w: 1, z: *z}
	if len(s.protos) < a.cfg.MaxPerService {
		s.protos = append(s.protos, np)
		return
	}
	// Replace the most faded prototype if it has faded below one record.
	low := 0
	for i := range s.protos {
		if s.protos[i].w < s.protos[low].w {
			low = i
		}
	}
	if s.protos[low].w < 1 {
		s.protos[low] = np
	}
}

// SitePrototypes returns the number of site prototypes learned for each
// service that has any, keyed by service name, and how many of them count
// (hold MinShare of their service's records).
func (a *Adaptive) SitePrototypes() (learned, counting map[string]int) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	learned, counting = map[string]int{}, map[string]int{}
	for s := range a.svc {
		st := &a.svc[s]
		for _, p := range st.protos {
			learned[record.Services[s]]++
			if p.w >= a.cfg.MinShare*st.total {
				counting[record.Services[s]]++
			}
		}
	}
	return learned, counting
}
