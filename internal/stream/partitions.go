package stream

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Partitions returns the number of partitions of topic.
func Partitions(ctx context.Context, cfg ClientConfig, topic string) (int, error) {
	cl, err := NewClient(cfg)
	if err != nil {
		return 0, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	defer cl.Close()
	td, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err == nil {
		err = td.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	t, ok := td[topic]
	if !ok {
		return 0, fmt.Errorf("partitions of %s: no such topic", topic)
	}
	return len(t.Partitions), nil
}
