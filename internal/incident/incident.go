package incident

import (
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/netsentinel/netsentinel/internal/event"
	"github.com/netsentinel/netsentinel/internal/record"
)

// Verdict is one non-normal verdict and what the record says about its
// connection.
type Verdict struct {
	// Time is the record's timestamp.
	Time time.Time
	// Offset is the record's offset in the table's partition.
	Offset int64
	// Attack and Category are the model's verdict.
	Attack   string
	Category string
	// Probability is the verdict's probability.
	Probability float64
	// Identity is the connection's addresses and ports, when known.
	Identity record.Identity
	// Service and Flag are the record's symbolic features.
	Service, Flag string
	// Features names the features that drove the verdict, if the model
	// can tell (novelty-flagged records).
	Features []string
}

// Key is what an incident groups by. Records with addresses group by
// attack, source and destination (probes, which sweep destinations, by
// attack and source); records without by attack, service and flag.
type Key struct {
	Attack   string
	Src, Dst string
	Service  string
	Flag     string
}

// KeyOf returns the key v groups under.
func KeyOf(v *Verdict) Key {
	id := &v.Identity
	if id.SrcIP != "" || id.DstIP != "" {
		k := Key{Attack: v.Attack, Src: id.SrcIP, Dst: id.DstIP}
		if v.Category == record.CategoryProbe.String() && id.SrcIP != "" {
			k.Dst = ""
		}
		return k
	}
	return Key{Attack: v.Attack, Service: v.Service, Flag: v.Flag}
}

// String returns the key's fields joined by "|", for logs and tracking.
func (k Key) String() string {
	return k.Attack + "|" + k.Src + "|" + k.Dst + "|" + k.Service + "|" + k.Flag
}

// topCap is the number of distinct values a top list tracks; later new
// values are counted in Other.
const topCap = 32

// Top counts values, keeping the first topCap distinct ones.
type Top struct {
	Values []string
	Counts []int64
	// Other counts occurrences of values beyond the first topCap.
	Other int64
}

// Add counts one occurrence of v; empty values are ignored.
func (t *Top) Add(v string) {
	if v == "" {
		return
	}
	for i, x := range t.Values {
		if x == v {
			t.Counts[i]++
			return
		}
	}
	if len(t.Values) >= topCap {
		t.Other++
		return
	}
	t.Values = append(t.Values, v)
	t.Counts = append(t.Counts, 1)
}

// Most returns up to n values, most frequent first (ties by value).
func (t *Top) Most(n int) []event.Count {
	if len(t.Values) == 0 || n <= 0 {
		return nil
	}
	out := make([]event.Count, len(t.Values))
	for i, v := range t.Values {
		out[i] = event.Count{Value: v, Count: t.Counts[i]}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Value < out[j].Value
	})
	return out[:min(n, len(out))]
}

// State is one open incident.
type State struct {
	Key      Key
	Category string
	// FirstOffset is the offset of the first verdict; with the table's
	// topic and partition it names the incident.
	FirstOffset int64
	// FirstSeen and LastSeen are record timestamps.
	FirstSeen, LastSeen time.Time
	// Touched is when (caller's clock) the last verdict joined; Published
	// when the last message went out.
	Touched, Published time.Time
	// Count is the number of verdicts; PublishedCount the Count the last
	// message carried; Seq the number of messages published.
	Count, PublishedCount, Seq int64
	MaxProbability             float64
	Srcs, Dsts, Ports, Svcs    Top
	Features                   Top
	Samples                    []int64
	// Withheld counts, by rule name, the verdicts of the incident's key a
	// rule kept out of it while it was open.
	Withheld Top
	// Explanation is what drove the incident's first verdict; the caller
	// sets it after Observe opens the incident (see Verdict).
	Explanation []event.Reason
}

func (s *State) add(v *Verdict, now time.Time, samples int) {
	s.Count++
	if v.Time.Before(s.FirstSeen) {
		s.FirstSeen = v.Time
	}
	if v.Time.After(s.LastSeen) {
		s.LastSeen = v.Time
	}
	s.Touched = now
	if v.Probability > s.MaxProbability {
		s.MaxProbability = v.Probability
	}
	s.Srcs.Add(v.Identity.SrcIP)
	s.Dsts.Add(v.Identity.DstIP)
	if v.Identity.Known() && v.Identity.DstPort >= 0 {
		s.Ports.Add(strconv.Itoa(int(v.Identity.DstPort)))
	}
	s.Svcs.Add(v.Service)
	for _, f := range v.Features {
		s.Features.Add(f)
	}
	if len(s.Samples) < samples {
		s.Samples = append(s.Samples, v.Offset)
	}
}

// ID returns the incident's name within topic and partition.
func (s *State) ID(topic string, partition int32) string {
	return topic + "/" + strconv.Itoa(int(partition)) + "/" + strconv.FormatInt(s.FirstOffset, 10)
}

// Rate returns verdicts per second between FirstSeen and LastSeen, taking
// at least one second.
func (s *State) Rate() float64 {
	d := max(s.LastSeen.Sub(s.FirstSeen).Seconds(), 1)
	r := float64(s.Count) / d
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return 0
	}
	return r
}
