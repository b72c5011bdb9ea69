package event

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestIncidentRoundTrip(t *testing.T) {
	ts := time.Date(2026, 12, 2, 6, 0, 0, 123456789, time.UTC)
	in := Incident{ID: "in/0/42", Seq: 3, Status: IncidentUpdated, Topic: "in", Partition: 0,
		Attack: "smurf", Category: "dos", Src: "10.0.0.1", Dst: "10.0.0.2", Service: "ecr_i", Flag: "SF",
		FirstSeen: ts, LastSeen: ts.Add(time.Minute), Count: 1000, Rate: 16.5, MaxProbability: 1,
		TopSources: []Count{{"10.0.0.1", 1000}}, TopDestinations: []Count{{"10.0.0.2", 900}, {"10.0.0.3", 100}},
		TopPorts: []Count{{"80", 1000}}, TopServices: []Count{{"ecr_i", 1000}}, Features: []Count{{"src_bytes", 2}},
		Withheld:    []Count{{"neptune-limit", 40}},
		Explanation: []Reason{{Feature: "count", Value: 511, Typical: 2, Contribution: 0.61}, {Feature: "service", Value: 12, Typical: 20, Contribution: 0.2}},
		Samples:     []int64{42, 43}, Updated: ts.Add(2 * time.Minute), Instance: "h-1 \"quoted\" <x>"}
	var got Incident
	if err := json.Unmarshal(in.AppendJSON(nil), &got); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(in, got); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
	in.Rate, in.MaxProbability = math.NaN(), math.Inf(1)
	var raw map[string]any
	if err := json.Unmarshal(in.AppendJSON(nil), &raw); err != nil || raw["rate"] != nil || raw["max_probability"] != nil {
		t.Errorf("non-finite floats: %v, rate %v, max %v; want null", err, raw["rate"], raw["max_probability"])
	}
}
