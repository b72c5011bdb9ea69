package stream

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestAwaitGroup checks that AwaitGroup returns once two detectors share
// all four partitions (each then owns some), and times out while only one
// of them runs when two owners are wanted.
func TestAwaitGroup(t *testing.T) {
	brokers := newFake(t, 4)
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ds []*Detector
	for _, name := range []string{"a", "b"} {
		d, err := New(testOptions(brokers, name))
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	runDetector(t, ds[0])
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	defer cancelShort()
	if err := AwaitGroup(short, opts, "detectors", inTopic, 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("AwaitGroup with one of two detectors = %v, want a timeout", err)
	}
	runDetector(t, ds[1])
	if err := AwaitGroup(ctx, opts, "detectors", inTopic, 2); err != nil {
		t.Fatal(err)
	}
}
