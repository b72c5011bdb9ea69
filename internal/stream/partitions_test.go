package stream

import (
	"strings"
	"testing"
)

func TestPartitions(t *testing.T) {
	cfg := ClientConfig{Brokers: newFake(t, 3)}
	if n, err := Partitions(t.Context(), cfg, inTopic); n != 3 || err != nil {
		t.Errorf("Partitions(%s) = %d, %v; want 3", inTopic, n, err)
	}
	if n, err := Partitions(t.Context(), cfg, "no-such-topic"); err == nil || !strings.Contains(err.Error(), "no-such-topic") {
		t.Errorf("Partitions(no-such-topic) = %d, %v; want an error naming it", n, err)
	}
}
