package stream

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netsentinel/netsentinel/internal/event"
)

// TestFollowOutputs creates the output topics, writes one message of each
// kind and checks that FollowOutputs hands each to its handler, stops
// cleanly when its context ends, and stops with an error naming the
// position on a message that does not decode.
func TestFollowOutputs(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	topics := OutputTopics{Alerts: "a", Stats: "s", DeadLetters: "d"}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := CreateTopics(ctx, opts, map[string]int32{"a": 2, "s": 1, "d": 1}); err != nil {
		t.Fatal(err)
	}
	if err := CreateTopics(ctx, opts, map[string]int32{"a": 2}); err == nil || !strings.Contains(err.Error(), "create topic a") {
		t.Errorf("creating an existing topic: %v, want an error naming it", err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce := func(topic string, v any) {
		b, ok := v.([]byte)
		if !ok {
			b, _ = json.Marshal(v)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: b}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce("s", event.Stats{Minute: time.Unix(600, 0).UTC(), Records: 7})
	produce("a", event.Alert{Attack: "neptune", Label: "neptune"})
	produce("d", event.DeadLetter{Reason: "bad"})

	var mu sync.Mutex
	var got []string
	seen := make(chan struct{}, 3)
	h := OutputHandlers{
		Stats: func(s event.Stats, _ time.Time) {
			mu.Lock()
			got = append(got, "stats")
			mu.Unlock()
			seen <- struct{}{}
		},
		Alert: func(a event.Alert, _ time.Time) {
			mu.Lock()
			got = append(got, "alert "+a.Attack)
			mu.Unlock()
			seen <- struct{}{}
		},
		DeadLetter: func(d event.DeadLetter, _ time.Time) {
			mu.Lock()
			got = append(got, "dead "+d.Reason)
			mu.Unlock()
			seen <- struct{}{}
		},
	}
	fctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- FollowOutputs(fctx, opts, topics, h) }()
	for range 3 {
		select {
		case <-seen:
		case err := <-done:
			t.Fatalf("FollowOutputs stopped early: %v", err)
		case <-ctx.Done():
			t.Fatalf("handlers saw %v, want stats, alert and dead letter", got)
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("FollowOutputs after cancel = %v, want nil", err)
	}

	produce("s", []byte("{not json"))
	err = FollowOutputs(ctx, opts, topics, OutputHandlers{})
	if err == nil || !strings.Contains(err.Error(), "s/0@1") {
		t.Errorf("FollowOutputs on a bad message = %v, want an error naming s/0@1", err)
	}
}

// TestDispatchAlertVerdictOnly checks that AlertVerdictOnly hands on every
// field of an alert but its features, explanation and novelty features,
// and still refuses a message that is not JSON.
func TestDispatchAlertVerdictOnly(t *testing.T) {
	full := event.Alert{Time: time.Unix(5, 0).UTC(), Topic: "in", Offset: 9, Attack: "neptune", Category: "dos",
		Probability: 0.9, AttackProbability: 1, Novelty: 0.3, FlaggedBy: "classifier", Label: "neptune", Instance: "i",
		Connection: &event.Connection{SrcIP: "10.0.0.1"}, NoveltyFeatures: []string{"hot"},
		Explanation: []event.Reason{{Feature: "src_bytes", Value: 1, Typical: 2, Contribution: 0.5}},
		Features:    map[string]any{"duration": 0.0, "service": "http"}}
	b, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	topics := OutputTopics{Alerts: "a"}
	var got []event.Alert
	h := OutputHandlers{AlertVerdictOnly: true, Alert: func(a event.Alert, _ time.Time) { got = append(got, a) }}
	if err := dispatch(&kgo.Record{Topic: "a", Value: b}, topics, h); err != nil {
		t.Fatal(err)
	}
	want := full
	want.Features, want.Explanation, want.NoveltyFeatures = nil, nil, nil
	if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("alert %+v, want %+v", got, want)
	}
	if err := dispatch(&kgo.Record{Topic: "a", Value: []byte(`{"attack":"x","features":{`)}, topics, h); err == nil {
		t.Error("dispatch of a cut alert = nil, want an error")
	}
}
