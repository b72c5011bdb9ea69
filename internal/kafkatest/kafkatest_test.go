package kafkatest

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestName(t *testing.T) {
	a, b := Name(t, "t"), Name(t, "t")
	if a == b {
		t.Fatalf("Name returned %q twice", a)
	}
	if !strings.HasPrefix(a, "t-TestName-") {
		t.Errorf("Name = %q, want prefix t-TestName-", a)
	}
}

func TestNameSanitises(t *testing.T) {
	t.Run("sub test/with spaces", func(t *testing.T) {
		n := Name(t, "g")
		if strings.ContainsAny(n, "/ ") {
			t.Errorf("Name = %q contains / or space", n)
		}
	})
}

// TestRoundTrip checks the helpers against the real broker (skipped without one).
func TestRoundTrip(t *testing.T) {
	topic := NewTopic(t, 2)
	cl := Client(t, kgo.DefaultProduceTopic(topic))
	ctx := t.Context()
	if err := cl.ProduceSync(ctx, kgo.StringRecord("hello")).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	KcatInput(t, []byte("from-kcat\n"), "-P", "-t", topic)
	out := Kcat(t, "-C", "-t", topic, "-e", "-q", "-f", "%s\n")
	got := strings.Fields(out)
	if len(got) != 2 || !strings.Contains(out, "hello") || !strings.Contains(out, "from-kcat") {
		t.Fatalf("kcat consumed %q, want hello and from-kcat", out)
	}
}
