package event

import (
	"encoding/json"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/messages.golden")

// goldenMessages are one message of each type with every field set.
func goldenMessages() []any {
	at := time.Date(2026, 11, 26, 14, 3, 7, 250_000_000, time.UTC)
	return []any{
		&Alert{Time: at, Topic: "connections", Partition: 3, Offset: 1234567, Attack: "unknown", Category: "unknown",
			Probability: 0.75, AttackProbability: 0.125, Novelty: 0.5, FlaggedBy: "novelty",
			NoveltyFeatures: []string{"src_bytes", "flag"}, Label: "neptune",
			Explanation: []Reason{{Feature: "src_bytes", Value: 181, Typical: 195.5, Contribution: 0.25}},
			Features:    map[string]any{"duration": 0.0, "protocol_type": "tcp", "src_bytes": 181.0}, Instance: "det-a"},
		&Stats{Minute: at.Truncate(time.Minute), Instance: "det-a", Records: 1000,
			ByCategory: map[string]int64{"normal": 900, "dos": 95, "unknown": 5}, ByAttack: map[string]int64{"neptune": 95, "unknown": 5},
			DeadLetters: 2},
		&DeadLetter{Time: at, Topic: "connections", Partition: 0, Offset: 42, Reason: `line 1: field "flag" value "XX": unknown flag`,
			Value: []byte("0,tcp,http,XX\n\x00\xff"), Instance: "det-b"},
	}
}

// TestMessagesGolden pins the JSON of the output topics: field names,
// types and encodings (times in RFC 3339, bytes in base64). Readers of
// the topics depend on it. Each golden line must be what encoding/json
// writes for the message, and must read back to the same message, so any
// faster encoder of these types has a fixed target.
func TestMessagesGolden(t *testing.T) {
	var lines []string
	for _, m := range goldenMessages() {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(b))
	}
	got := strings.Join(lines, "\n") + "\n"
	const path = "testdata/messages.golden"
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("the JSON of the output topics changed (-golden +now):\n%s", diff)
	}
	for i, line := range strings.Split(strings.TrimSpace(string(want)), "\n") {
		m := goldenMessages()[i]
		back := newLike(m)
		if err := json.Unmarshal([]byte(line), back); err != nil {
			t.Fatalf("golden line %d: %v", i+1, err)
		}
		if diff := cmp.Diff(m, back); diff != "" {
			t.Errorf("golden line %d reads back differently (-want +got):\n%s", i+1, diff)
		}
	}
}

func newLike(m any) any {
	switch m.(type) {
	case *Alert:
		return new(Alert)
	case *Stats:
		return new(Stats)
	default:
		return new(DeadLetter)
	}
}
