package stream

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netsentinel/netsentinel/internal/event"
	"github.com/netsentinel/netsentinel/internal/model"
	"github.com/netsentinel/netsentinel/internal/record"
)

// labelScorer is a fake model: it predicts the record's own label, or, for
// unlabelled records, an attack when src_bytes > 10000.
type labelScorer struct{}

func (labelScorer) PredictRecord(r *record.Record) model.Verdict {
	label := r.Label
	if label == "" {
		label = "normal"
		if r.Features[4] > 10000 {
			label = "back"
		}
	}
	c := record.CategoryOf(label)
	return model.Verdict{Attack: label, Category: c, IsAttack: label != "normal", Probability: 0.9,
		CategoryProbability: 0.9, AttackProbability: 0.5, FlaggedBy: flagged(label)}
}

func flagged(label string) string {
	if label == "normal" {
		return ""
	}
	return "classifier"
}

// kddLines returns the first n lines of the shipped NSL-KDD 20% file.
func kddLines(t testing.TB, n int) [][]byte {
	t.Helper()
	f, err := os.Open("../../data/KDDTrain+_20Percent.txt.gz")
	if err != nil {
		t.Fatalf("open data: %v", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("gzip: %v", err)
	}
	sc := bufio.NewScanner(zr)
	var out [][]byte
	for len(out) < n && sc.Scan() {
		out = append(out, append([]byte(nil), sc.Bytes()...))
	}
	if len(out) < n {
		t.Fatalf("data: only %d lines", len(out))
	}
	return out
}

// badInputs are records that must land in the dead-letter topic; the big
// one is bigSize bytes.
func badInputs(bigSize int) map[string][]byte {
	good := "0,tcp,http,SF,181,5450,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,0,8,8,0.00,0.00,0.00,0.00,1.00,0.00,0.00,9,9,1.00,0.00,0.11,0.00,0.00,0.00,0.00,0.00,normal"
	fields := strings.Split(good, ",")
	rate := append([]string(nil), fields...)
	rate[24] = "7.5" // serror_rate
	big := strings.Repeat("1,", bigSize/2+1)[:bigSize+1]
	return map[string][]byte{
		"empty":       {},
		"garbage":     {0x00, 0xff, 0xfe, 0x13, 0x37, 0x80, 0x81, 0x82},
		"1MB line":    []byte(big[:len(big)-1]),
		"few fields":  []byte(strings.Join(fields[:20], ",")),
		"many fields": []byte(good + ",1,2,3"),
		"json keys":   []byte(`{"duration":0,"protocol_type":"tcp","service":"http"}`),
		"json broken": []byte(`{"duration":`),
		"rate 7.5":    []byte(strings.Join(rate, ",")),
	}
}

// produceAll produces values to topic and fails the test on any error.
func produceAll(t testing.TB, cl *kgo.Client, topic string, values [][]byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rs := make([]*kgo.Record, len(values))
	for i, v := range values {
		rs[i] = &kgo.Record{Topic: topic, Value: v}
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// pos is a source position.
type pos struct {
	Partition int32
	Offset    int64
}

// books are the detector's outputs read back with ReadCommitted.
type books struct {
	alerts      map[pos]event.Alert
	deadLetters map[pos]event.DeadLetter
	dupAlerts   int
	dupDead     int
	stats       []event.Stats
	normal      int64
	scored      int64
	statsDead   int64
	alertsStats int64
}

func (b *books) String() string {
	return fmt.Sprintf("normal=%d alerts=%d (stats %d) dead=%d (stats %d) scored=%d dupAlerts=%d dupDead=%d",
		b.normal, len(b.alerts), b.alertsStats, len(b.deadLetters), b.statsDead, b.scored, b.dupAlerts, b.dupDead)
}

// total is normal + alerts + dead letters.
func (b *books) total() int64 { return b.normal + int64(len(b.alerts)) + int64(len(b.deadLetters)) }

// readBooks reads the three output topics with a ReadCommitted consumer
// until want input records are accounted for and no more data arrives for
// idle, or until timeout.
func readBooks(t testing.TB, brokers []string, alertsTopic, statsTopic, deadTopic string, want int64, idle, timeout time.Duration) *books {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(alertsTopic, statsTopic, deadTopic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatalf("reader client: %v", err)
	}
	defer cl.Close()
	b := &books{alerts: map[pos]event.Alert{}, deadLetters: map[pos]event.DeadLetter{}}
	deadline := time.Now().Add(timeout)
	lastData := time.Now()
	for time.Now().Before(deadline) {
		if b.total() >= want && time.Since(lastData) > idle {
			break
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		if fs.NumRecords() > 0 {
			lastData = time.Now()
		}
		fs.EachRecord(func(r *kgo.Record) {
			switch r.Topic {
			case alertsTopic:
				var a event.Alert
				if err := json.Unmarshal(r.Value, &a); err != nil {
					t.Errorf("alert %q: %v", r.Value, err)
					return
				}
				p := pos{a.Partition, a.Offset}
				if _, dup := b.alerts[p]; dup {
					b.dupAlerts++
				}
				b.alerts[p] = a
			case deadTopic:
				var d event.DeadLetter
				if err := json.Unmarshal(r.Value, &d); err != nil {
					t.Errorf("dead letter %q: %v", r.Value, err)
					return
				}
				p := pos{d.Partition, d.Offset}
				if _, dup := b.deadLetters[p]; dup {
					b.dupDead++
				}
				b.deadLetters[p] = d
			case statsTopic:
				var s event.Stats
				if err := json.Unmarshal(r.Value, &s); err != nil {
					t.Errorf("stats %q: %v", r.Value, err)
					return
				}
				b.stats = append(b.stats, s)
				b.normal += s.ByCategory["normal"]
				b.scored += s.Records
				b.statsDead += s.DeadLetters
				for _, n := range s.ByAttack {
					b.alertsStats += n
				}
			}
		})
	}
	return b
}

// checkBooks asserts that published input records are accounted for
// exactly once.
func checkBooks(t testing.TB, b *books, published int64) {
	t.Helper()
	if b.dupAlerts != 0 || b.dupDead != 0 {
		t.Errorf("duplicates: %d alerts, %d dead letters share a source position", b.dupAlerts, b.dupDead)
	}
	if got := b.total(); got != published {
		t.Errorf("books do not balance: published %d, normal+alerts+dead = %d (%v)", published, got, b)
	}
	if b.alertsStats != int64(len(b.alerts)) {
		t.Errorf("stats count %d alerts, alerts topic has %d", b.alertsStats, len(b.alerts))
	}
	if b.statsDead != int64(len(b.deadLetters)) {
		t.Errorf("stats count %d dead letters, dead-letter topic has %d", b.statsDead, len(b.deadLetters))
	}
	if b.scored != b.normal+int64(len(b.alerts)) {
		t.Errorf("stats records %d != normal %d + alerts %d", b.scored, b.normal, len(b.alerts))
	}
}

// waitFor polls cond every 50ms until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
