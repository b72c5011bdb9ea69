package stream

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// AwaitGroup waits until the consumer group is stable with all partitions
// of topic assigned, spread over at least members members, as the group's
// coordinator describes it (polled every 20 ms). A group of detectors
// rebalances in steps (kgo's cooperative protocol moves partitions in two
// rounds), so this is when records published next are scored at once
// rather than after the group has settled. It returns ctx's error if ctx
// ends first.
func AwaitGroup(ctx context.Context, opts []kgo.Opt, group, topic string, members int) error {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("await group %s: %w", group, err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	want := -1 // partitions of topic
	for {
		if want < 0 {
			if td, err := adm.ListTopics(ctx, topic); err == nil && td[topic].Err == nil {
				want = len(td[topic].Partitions)
			}
		}
		if want >= 0 {
			if gs, err := adm.DescribeGroups(ctx, group); err == nil {
				if g, ok := gs[group]; ok && g.Err == nil && g.State == "Stable" {
					owners, owned := 0, 0
					for _, m := range g.Members {
						c, ok := m.Assigned.AsConsumer()
						if !ok {
							continue
						}
						n := 0
						for _, t := range c.Topics {
							if t.Topic == topic {
								n += len(t.Partitions)
							}
						}
						if n > 0 {
							owners++
							owned += n
						}
					}
					if owned == want && owners >= members {
						return nil
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("await group %s: %w", group, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
