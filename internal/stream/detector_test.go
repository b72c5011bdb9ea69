package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netsentinel/netsentinel/internal/event"
	"github.com/netsentinel/netsentinel/internal/model"
	"github.com/netsentinel/netsentinel/internal/record"
)

const (
	inTopic    = "netlog"
	alertTopic = "alerts"
	statsTopic = "stats"
	deadTopic  = "dead"
)

func newFake(t testing.TB, partitions int32, opts ...kfake.Opt) []string {
	t.Helper()
	all := append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(partitions, inTopic),
		kfake.SeedTopics(1, alertTopic, statsTopic, deadTopic)}, opts...)
	c, err := kfake.NewCluster(all...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func testOptions(brokers []string, instance string) Options {
	return Options{
		Client:      ClientConfig{Brokers: brokers},
		Topic:       inTopic,
		Group:       "detectors",
		AlertsTopic: alertTopic, StatsTopic: statsTopic, DeadLetterTopic: deadTopic,
		Instance:       instance,
		Scorer:         labelScorer{},
		MaxPollRecords: 300,
		FetchMaxWait:   50 * time.Millisecond,
		SessionTimeout: 6 * time.Second,
		RestartBackoff: 100 * time.Millisecond,
	}
}

// runDetector starts d.Run in the background; the returned stop cancels it
// and returns Run's error.
func runDetector(t testing.TB, d *Detector) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-errc:
			case <-time.After(60 * time.Second):
				err = errors.New("Run did not return within 60s of cancel")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func producer(t testing.TB, brokers []string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// TestDetectorBooks runs good and bad records through one detector and
// checks every output, the metrics and the balance of the books.
func TestDetectorBooks(t *testing.T) {
	brokers := newFake(t, 3)
	lines := kddLines(t, 2000)
	bad := badInputs(900_000) // kfake's message limit is just under 1 MB
	var values [][]byte
	values = append(values, lines...)
	for _, v := range bad {
		values = append(values, v)
	}
	// A JSON record and an unlabelled CSV record, both good.
	var rec record.Record
	if err := record.DecodeCSV(lines[0], &rec); err != nil {
		t.Fatal(err)
	}
	values = append(values, rec.AppendJSON(nil))
	rec.Label, rec.Difficulty = "", -1
	rec.Features[4] = 50000 // labelScorer calls unlabelled big transfers attacks
	values = append(values, rec.AppendCSV(nil))
	produceAll(t, producer(t, brokers), inTopic, values)

	reg := prometheus.NewRegistry()
	opts := testOptions(brokers, "a")
	opts.Registerer = reg
	var readyMu sync.Mutex
	var readyCalls []bool
	opts.OnReady = func(r bool) { readyMu.Lock(); readyCalls = append(readyCalls, r); readyMu.Unlock() }
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	stop := runDetector(t, d)
	waitFor(t, 30*time.Second, "all records processed", func() bool { return d.Totals().Records >= int64(len(values)) })
	if n, err := testutil.GatherAndCount(reg, "netsentinel_detect_consumer_lag"); err != nil || n < 1 || n > 3 {
		t.Errorf("consumer_lag: %d series (want one per partition with data, 1 to 3), %v", n, err)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n, err := testutil.GatherAndCount(reg, "netsentinel_detect_consumer_lag"); err != nil || n != 0 {
		t.Errorf("consumer_lag after leaving the group: %d series, want 0 (%v)", n, err)
	}

	b := readBooks(t, brokers, alertTopic, statsTopic, deadTopic, int64(len(values)), 300*time.Millisecond, 20*time.Second)
	checkBooks(t, b, int64(len(values)))
	if len(b.deadLetters) != len(bad) {
		t.Errorf("dead letters: got %d, want %d", len(b.deadLetters), len(bad))
	}
	reasons := map[string]bool{}
	for _, dl := range b.deadLetters {
		if dl.Reason == "" || dl.Topic != inTopic || dl.Instance != "a" || dl.Time.IsZero() {
			t.Errorf("dead letter lacks reason, source or instance: %+v", dl)
		}
		reasons[dl.Reason] = true
		if len(dl.Value) > 1000 && !strings.Contains(dl.Reason, "truncated") {
			t.Errorf("large dead letter not marked truncated: reason %q, %d bytes", dl.Reason, len(dl.Value))
		}
	}
	for _, want := range []string{"empty record", "wrong number of fields", "missing key", "rate outside [0,1]", "malformed JSON"} {
		found := false
		for r := range reasons {
			found = found || strings.Contains(r, want)
		}
		if !found {
			t.Errorf("no dead letter with reason %q; reasons: %v", want, reasons)
		}
	}

	// Verdicts against labels: labelScorer predicts the label, so every
	// labelled attack must have an alert carrying it.
	wantAlerts := 0
	for _, l := range lines {
		if !strings.Contains(string(l), ",normal,") {
			wantAlerts++
		}
	}
	wantAlerts++ // the unlabelled big transfer
	if len(b.alerts) != wantAlerts {
		t.Errorf("alerts: got %d, want %d", len(b.alerts), wantAlerts)
	}
	for p, a := range b.alerts {
		if a.Label != "" && a.Label != a.Attack {
			t.Errorf("alert at %v: attack %q, label %q", p, a.Attack, a.Label)
		}
		if a.Category == "" || a.Category == "normal" || a.Instance != "a" || a.Topic != inTopic || len(a.Features) != record.NumFeatures {
			t.Errorf("alert at %v malformed: %+v", p, a)
		}
		if _, ok := a.Features["protocol_type"].(string); !ok {
			t.Errorf("alert at %v: protocol_type %v is not a string", p, a.Features["protocol_type"])
		}
	}

	tot := d.Totals()
	if tot.Records != int64(len(values)) || tot.Alerts != int64(len(b.alerts)) || tot.DeadLetters != int64(len(bad)) {
		t.Errorf("totals %+v disagree with outputs (%v)", tot, b)
	}
	if got := testutil.ToFloat64(d.m.records); got != float64(len(values)) {
		t.Errorf("records_total = %v, want %d", got, len(values))
	}
	if got := testutil.ToFloat64(d.m.deadLetters); got != float64(len(bad)) {
		t.Errorf("dead_letters_total = %v, want %d", got, len(bad))
	}
	if got := testutil.ToFloat64(d.m.verdicts.WithLabelValues("normal")); got != float64(b.normal) {
		t.Errorf("verdicts_total{normal} = %v, want %d", got, b.normal)
	}
	if n, err := testutil.GatherAndCount(reg, "netsentinel_detect_batch_duration_seconds"); err != nil || n != 1 {
		t.Errorf("gather: %d series, %v", n, err)
	}
	readyMu.Lock()
	if len(readyCalls) == 0 || !readyCalls[0] || readyCalls[len(readyCalls)-1] {
		t.Errorf("OnReady calls %v, want true first and false last", readyCalls)
	}
	readyMu.Unlock()
}

// TestDetectorAbortRedelivers aborts every third transaction: the records
// come back, the books still balance and Tap sees each record once.
func TestDetectorAbortRedelivers(t *testing.T) {
	brokers := newFake(t, 2)
	values := kddLines(t, 1500)
	produceAll(t, producer(t, brokers), inTopic, values)
	opts := testOptions(brokers, "a")
	opts.MaxPollRecords = 100
	opts.hookBeforeEnd = func(batch int) bool { return batch%3 == 0 }
	var tapped atomic.Int64
	opts.Tap = func(int32, []byte) { tapped.Add(1) }
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	stop := runDetector(t, d)
	waitFor(t, 30*time.Second, "all records processed", func() bool { return d.Totals().Records >= int64(len(values)) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if d.Totals().Aborted == 0 {
		t.Fatal("no transaction was aborted")
	}
	if got := testutil.ToFloat64(d.m.txAborted); got == 0 {
		t.Error("transactions_total{aborted} is 0")
	}
	b := readBooks(t, brokers, alertTopic, statsTopic, deadTopic, int64(len(values)), 300*time.Millisecond, 20*time.Second)
	checkBooks(t, b, int64(len(values)))
	if tot := d.Totals(); tot.Records != int64(len(values)) {
		t.Errorf("committed records %d, want %d (aborted batches counted?)", tot.Records, len(values))
	}
	if n := tapped.Load(); n != int64(len(values)) {
		t.Errorf("Tap saw %d records, want %d (each once)", n, len(values))
	}
}

// TestDetectorHandover stops one of two detectors mid-stream; the other
// takes its partitions and the books balance.
func TestDetectorHandover(t *testing.T) {
	brokers := newFake(t, 4)
	values := kddLines(t, 4000)
	cl := producer(t, brokers)
	produceAll(t, cl, inTopic, values[:2000])
	mk := func(name string) *Detector {
		o := testOptions(brokers, name)
		o.MaxPollRecords = 50
		d, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	a, b := mk("a"), mk("b")
	stopA := runDetector(t, a)
	stopB := runDetector(t, b)
	waitFor(t, 30*time.Second, "some progress", func() bool { return a.Totals().Records+b.Totals().Records > 500 })
	if err := stopA(); err != nil {
		t.Fatal(err)
	}
	produceAll(t, cl, inTopic, values[2000:])
	waitFor(t, 60*time.Second, "all records processed", func() bool {
		return a.Totals().Records+b.Totals().Records >= int64(len(values))
	})
	if err := stopB(); err != nil {
		t.Fatal(err)
	}
	bk := readBooks(t, brokers, alertTopic, statsTopic, deadTopic, int64(len(values)), 300*time.Millisecond, 20*time.Second)
	checkBooks(t, bk, int64(len(values)))
	if got := a.Totals().Records + b.Totals().Records; got != int64(len(values)) {
		t.Errorf("committed %d+%d records, want %d", a.Totals().Records, b.Totals().Records, len(values))
	}
	if b.Totals().Records == 0 {
		t.Error("detector b did no work")
	}
}

// TestDetectorSASL connects through SCRAM-SHA-256 to a kfake broker that
// requires it, and fails fast-and-retrying with a wrong password.
func TestDetectorSASL(t *testing.T) {
	brokers := newFake(t, 1, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "admin", "s3cret"))
	sasl := ClientConfig{Brokers: brokers, SASLMechanism: SASLScramSHA256, SASLUser: "admin", SASLPassword: "s3cret"}
	kopts, err := ClientOptions(sasl)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	values := kddLines(t, 200)
	produceAll(t, cl, inTopic, values)

	opts := testOptions(brokers, "a")
	opts.Client = sasl
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	stop := runDetector(t, d)
	waitFor(t, 30*time.Second, "records over SASL", func() bool { return d.Totals().Records >= int64(len(values)) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	bad := sasl
	bad.SASLPassword = "wrong"
	kopts, _ = ClientOptions(bad)
	bcl, err := kgo.NewClient(kopts...)
	if err != nil {
		t.Fatal(err)
	}
	defer bcl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := bcl.Ping(ctx); err == nil {
		t.Error("ping with a wrong SASL password succeeded")
	}
}

func TestClientOptionsErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  ClientConfig
		want string
	}{
		{"no brokers", ClientConfig{}, "no brokers"},
		{"bad mechanism", ClientConfig{Brokers: []string{"127.0.0.1:1"}, SASLMechanism: "gssapi", SASLUser: "u", SASLPassword: "p"}, "unknown sasl mechanism"},
		{"no user", ClientConfig{Brokers: []string{"127.0.0.1:1"}, SASLMechanism: "plain"}, "needs a user"},
		{"no password", ClientConfig{Brokers: []string{"127.0.0.1:1"}, SASLMechanism: "plain", SASLUser: "u"}, "needs a password"},
		{"user only", ClientConfig{Brokers: []string{"127.0.0.1:1"}, SASLUser: "u"}, "without a sasl mechanism"},
		{"missing ca", ClientConfig{Brokers: []string{"127.0.0.1:1"}, TLSCA: "/nonexistent/ca.pem"}, "tls ca"},
		{"cert without key", ClientConfig{Brokers: []string{"127.0.0.1:1"}, TLSCert: "c.pem"}, "together"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ClientOptions(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ClientOptions: got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	for _, mech := range []string{"plain", "SCRAM-SHA-256", "scram-sha-512"} {
		if _, err := ClientOptions(ClientConfig{Brokers: []string{"a:1,b:2"}, TLS: true, SASLMechanism: mech, SASLUser: "u", SASLPassword: "p"}); err != nil {
			t.Errorf("%s: %v", mech, err)
		}
	}
}

func TestNewErrors(t *testing.T) {
	_, err := New(Options{Client: ClientConfig{Brokers: []string{"127.0.0.1:1"}}, Topic: "x", AlertsTopic: "x"})
	if err == nil {
		t.Fatal("New accepted options without group or scorer and with alerts = input topic")
	}
	for _, want := range []string{"consumer group", "scorer", "is the input topic"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestAppendAlertIsValidJSON(t *testing.T) {
	d, err := New(Options{Client: ClientConfig{Brokers: []string{"127.0.0.1:1"}}, Topic: "in", Group: "g", Scorer: labelScorer{}, Instance: "x\"<y>"})
	if err != nil {
		t.Fatal(err)
	}
	var rec record.Record
	if err := record.DecodeCSV(kddLines(t, 30)[29], &rec); err != nil {
		t.Fatal(err)
	}
	rec.Features[0] = 0.5
	v := labelScorer{}.PredictRecord(&rec)
	v.Attack = "neptune\n\"quoted\""
	r := &kgo.Record{Topic: "in", Partition: 3, Offset: 77, Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)}
	b := d.appendAlert(nil, r, &rec, &v, nil, false)
	var a event.Alert
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("alert JSON %s: %v", b, err)
	}
	if a.Attack != v.Attack || a.Offset != 77 || a.Partition != 3 || !a.Time.Equal(r.Timestamp) || a.Instance != "x\"<y>" ||
		a.Features["duration"] != 0.5 || a.Features["service"] != rec.Symbol(2) {
		t.Errorf("decoded alert %+v does not match", a)
	}
}

// TestDetectorChunkedBatches sends batches larger than scoreChunk, with dead
// letters spread through them, and checks that every output belongs to its
// own source record (the chunks are scored and produced one after another).
func TestDetectorChunkedBatches(t *testing.T) {
	brokers := newFake(t, 1) // one partition: the offset is the index in values
	lines := kddLines(t, 3*scoreChunk+100)
	var values [][]byte
	for i, l := range lines {
		values = append(values, l)
		if i%700 == 0 {
			values = append(values, []byte("not,a,record"))
		}
	}
	produceAll(t, producer(t, brokers), inTopic, values)
	opts := testOptions(brokers, "chunks")
	opts.MaxPollRecords = 5000
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	stop := runDetector(t, d)
	waitFor(t, 30*time.Second, "all records processed", func() bool { return d.Totals().Records >= int64(len(values)) })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	tot := d.Totals()
	if tot.Committed*scoreChunk >= tot.Records {
		t.Errorf("%d records in %d transactions: no batch was larger than %d records", tot.Records, tot.Committed, scoreChunk)
	}
	b := readBooks(t, brokers, alertTopic, statsTopic, deadTopic, int64(len(values)), 300*time.Millisecond, 20*time.Second)
	checkBooks(t, b, int64(len(values)))
	var rec record.Record
	for p, a := range b.alerts {
		if err := record.DecodeCSV(values[p.Offset], &rec); err != nil {
			t.Fatalf("alert for offset %d, a record that does not decode (%v)", p.Offset, err)
		}
		if a.Label != rec.Label || a.Attack != rec.Label {
			t.Errorf("alert for offset %d: label %q attack %q, source label %q", p.Offset, a.Label, a.Attack, rec.Label)
		}
	}
	for p, dl := range b.deadLetters {
		if !bytes.Equal(dl.Value, values[p.Offset]) {
			t.Errorf("dead letter for offset %d holds %q, source %q", p.Offset, dl.Value, values[p.Offset])
		}
	}
	if want := (len(lines)-1)/700 + 1; len(b.deadLetters) != want {
		t.Errorf("%d dead letters, want %d", len(b.deadLetters), want)
	}
}

// explainingScorer flags every record as novel and names two features.
type explainingScorer struct{}

func (explainingScorer) PredictRecord(r *record.Record) model.Verdict {
	return model.Verdict{Attack: "unknown", Category: record.CategoryUnknown, IsAttack: true, Novelty: 0.7, FlaggedBy: "novelty"}
}

func (explainingScorer) NoveltyFeatures(x []float32, n int) []string {
	return []string{"src_bytes", "dst_host_count"}[:min(n, 2)]
}

// TestAppendAlertNoveltyFeatures checks that alerts of novelty-flagged
// records name the features that made them stand out, when the scorer can.
func TestAppendAlertNoveltyFeatures(t *testing.T) {
	var rec record.Record
	if err := record.DecodeCSV(kddLines(t, 1)[0], &rec); err != nil {
		t.Fatal(err)
	}
	r := &kgo.Record{Topic: "in", Timestamp: time.Now()}
	for _, tc := range []struct {
		name   string
		scorer Scorer
		want   []string
	}{
		{"explainer", explainingScorer{}, []string{"src_bytes", "dst_host_count"}},
		{"no explainer", labelScorer{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := New(Options{Client: ClientConfig{Brokers: []string{"127.0.0.1:1"}}, Topic: "in", Group: "g", Scorer: tc.scorer})
			if err != nil {
				t.Fatal(err)
			}
			v := explainingScorer{}.PredictRecord(&rec)
			var a event.Alert
			if err := json.Unmarshal(d.appendAlert(nil, r, &rec, &v, nil, false), &a); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(a.NoveltyFeatures) != fmt.Sprint(tc.want) {
				t.Errorf("novelty_features = %q, want %q", a.NoveltyFeatures, tc.want)
			}
		})
	}
}

// flagAll calls every record an attack.
type flagAll struct{}

func (flagAll) PredictRecord(*record.Record) model.Verdict {
	return model.Verdict{Attack: "unknown", Category: record.CategoryUnknown, IsAttack: true, FlaggedBy: "novelty", Novelty: 1}
}

// TestDetectorSetScorer swaps the scorer between two batches: each record's
// verdict and its stats come from the model that was current for it.
func TestDetectorSetScorer(t *testing.T) {
	brokers := newFake(t, 1)
	lines := kddLines(t, 400)
	cl := producer(t, brokers)
	opts := testOptions(brokers, "swap")
	opts.Model = "model-a"
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	produceAll(t, cl, inTopic, lines[:200])
	stop := runDetector(t, d)
	waitFor(t, 20*time.Second, "first half", func() bool { return d.Totals().Records == 200 })
	d.SetScorer(flagAll{}, "model-b")
	produceAll(t, cl, inTopic, lines[200:])
	waitFor(t, 20*time.Second, "second half", func() bool { return d.Totals().Records == 400 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	b := readBooks(t, brokers, alertTopic, statsTopic, deadTopic, 400, 300*time.Millisecond, 20*time.Second)
	checkBooks(t, b, 400)
	for p, a := range b.alerts {
		want := "model-a"
		if p.Offset >= 200 {
			want = "model-b"
		}
		if a.Model != want || (want == "model-b") != (a.FlaggedBy == "novelty") {
			t.Errorf("alert at offset %d: model %q flagged by %q, want %q", p.Offset, a.Model, a.FlaggedBy, want)
		}
	}
	for o := int64(200); o < 400; o++ {
		if _, ok := b.alerts[pos{0, o}]; !ok {
			t.Errorf("no alert for offset %d after the swap to a model that flags everything", o)
		}
	}
	byModel := map[string]int64{}
	for _, s := range b.stats {
		byModel[s.Model] += s.Records
	}
	if byModel["model-a"] != 200 || byModel["model-b"] != 200 {
		t.Errorf("stats records by model %v, want 200 each", byModel)
	}
}

// TestDetectorUnseen checks that records with a service or flag the
// vocabulary lacks are scored, counted in the stats and metrics, and named
// in their alerts.
func TestDetectorUnseen(t *testing.T) {
	brokers := newFake(t, 1)
	lines := kddLines(t, 100)
	var values [][]byte
	unseen := 0
	for i, l := range lines {
		if i%10 == 0 {
			l = []byte(strings.Replace(string(l), ",tcp,"+strings.Split(string(l), ",")[2]+",", ",tcp,quic,", 1))
			if strings.Contains(string(l), ",quic,") {
				unseen++
			}
		}
		values = append(values, l)
	}
	if unseen == 0 {
		t.Fatal("no record rewritten")
	}
	produceAll(t, producer(t, brokers), inTopic, values)
	opts := testOptions(brokers, "unseen")
	opts.Scorer = flagAll{}
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	stop := runDetector(t, d)
	waitFor(t, 20*time.Second, "records", func() bool { return d.Totals().Records == int64(len(values)) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	b := readBooks(t, brokers, alertTopic, statsTopic, deadTopic, int64(len(values)), 300*time.Millisecond, 20*time.Second)
	checkBooks(t, b, int64(len(values)))
	var counted int64
	for _, s := range b.stats {
		counted += s.Unseen["service"]
	}
	alerts := 0
	for _, a := range b.alerts {
		if a.UnseenService != "" {
			alerts++
			if a.UnseenService != "quic" || a.Features["service"] != "other" {
				t.Errorf("alert: unseen_service %q, features.service %v", a.UnseenService, a.Features["service"])
			}
		}
	}
	if counted != int64(unseen) || alerts != unseen {
		t.Errorf("unseen services: stats count %d, alerts %d, want %d", counted, alerts, unseen)
	}
	if got := testutil.ToFloat64(d.m.unseen.WithLabelValues("service")); got != float64(unseen) {
		t.Errorf("unseen_values_total{feature=service} = %v, want %d", got, unseen)
	}
}

// TestDetectorConnectionIdentity checks that an alert carries the
// connection identity of a JSON record that has one, and none otherwise.
func TestDetectorConnectionIdentity(t *testing.T) {
	brokers := newFake(t, 1)
	var rec record.Record
	if err := record.DecodeCSV(kddLines(t, 1)[0], &rec); err != nil {
		t.Fatal(err)
	}
	rec.ID = record.Identity{SrcPort: -1, DstPort: -1} // none: AppendJSON writes no identity keys
	plain := rec.AppendJSON(nil)
	withID := append([]byte(`{"ts":1700000000.25,"src_ip":"10.0.0.1","src_port":40000,"dst_ip":"10.0.0.2","dst_port":80,"uid":"Cabc",`), plain[1:]...)
	produceAll(t, producer(t, brokers), inTopic, [][]byte{withID, plain})
	opts := testOptions(brokers, "id")
	opts.Scorer = flagAll{}
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	stop := runDetector(t, d)
	waitFor(t, 20*time.Second, "records", func() bool { return d.Totals().Records == 2 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	b := readBooks(t, brokers, alertTopic, statsTopic, deadTopic, 2, 300*time.Millisecond, 20*time.Second)
	checkBooks(t, b, 2)
	want := event.Connection{TS: 1700000000.25, SrcIP: "10.0.0.1", SrcPort: 40000, DstIP: "10.0.0.2", DstPort: 80, UID: "Cabc"}
	if a := b.alerts[pos{0, 0}]; a.Connection == nil || *a.Connection != want {
		t.Errorf("alert of the record with an identity: connection %+v, want %+v", a.Connection, want)
	}
	if a := b.alerts[pos{0, 1}]; a.Connection != nil {
		t.Errorf("alert of the record without an identity: connection %+v, want none", a.Connection)
	}
}

// TestDetectorAddresses checks that alerts carry the connection identity of
// records that had one, and that the stats count alerts by address: every
// alert with an address once (in the top list or in the rest), at most
// event.MaxTop addresses per message, a dominant source exactly.
func TestDetectorAddresses(t *testing.T) {
	brokers := newFake(t, 1)
	lines := kddLines(t, 1500)
	var values [][]byte
	ids := map[int64]record.Identity{} // by offset
	for i, l := range lines {
		if i%10 == 0 {
			values = append(values, l)
			continue
		}
		var rec record.Record
		if err := record.DecodeCSV(l, &rec); err != nil {
			t.Fatal(err)
		}
		src := "10.0.0.1"
		if i%2 == 1 {
			src = fmt.Sprintf("10.0.1.%d", (i/2)%30)
		}
		rec.ID = record.Identity{TS: 1.7e9 + float64(i), SrcIP: src, SrcPort: 40000, DstIP: fmt.Sprintf("10.9.0.%d", i%3), DstPort: 80, UID: fmt.Sprint("C", i)}
		ids[int64(len(values))] = rec.ID
		values = append(values, rec.AppendJSON(nil))
	}
	produceAll(t, producer(t, brokers), inTopic, values)
	d, err := New(testOptions(brokers, "addr"))
	if err != nil {
		t.Fatal(err)
	}
	stop := runDetector(t, d)
	waitFor(t, 30*time.Second, "all records processed", func() bool { return d.Totals().Records >= int64(len(values)) })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	b := readBooks(t, brokers, alertTopic, statsTopic, deadTopic, int64(len(values)), 300*time.Millisecond, 20*time.Second)
	checkBooks(t, b, int64(len(values)))

	alertSrc, alertDst := map[string]int64{}, map[string]int64{}
	var withID int64
	for p, a := range b.alerts {
		id, ok := ids[p.Offset]
		if !ok {
			if a.Connection != nil {
				t.Errorf("alert for CSV record at %d carries a connection %+v", p.Offset, *a.Connection)
			}
			continue
		}
		want := event.ConnectionOf(id)
		if a.Connection == nil || *a.Connection != *want {
			t.Errorf("alert at %d: connection %v, want %+v", p.Offset, a.Connection, *want)
			continue
		}
		withID++
		alertSrc[a.SrcIP]++
		alertDst[a.DstIP]++
	}
	if withID < 100 || len(alertSrc) <= event.MaxTop {
		t.Fatalf("%d alerts from %d sources: too few to check the bound of %d", withID, len(alertSrc), event.MaxTop)
	}
	statSrc, statDst := map[string]int64{}, map[string]int64{}
	var srcTotal, dstTotal int64
	for _, s := range b.stats {
		if len(s.TopSources) > event.MaxTop || len(s.TopDestinations) > event.MaxTop {
			t.Errorf("stats for %v list %d sources, %d destinations; at most %d", s.Minute, len(s.TopSources), len(s.TopDestinations), event.MaxTop)
		}
		for a, n := range s.TopSources {
			statSrc[a] += n
			srcTotal += n
		}
		for a, n := range s.TopDestinations {
			statDst[a] += n
			dstTotal += n
		}
		srcTotal += s.OtherSources
		dstTotal += s.OtherDestinations
	}
	if srcTotal != withID || dstTotal != withID {
		t.Errorf("stats count %d alerts by source, %d by destination; %d alerts have an address", srcTotal, dstTotal, withID)
	}
	if statSrc["10.0.0.1"] != alertSrc["10.0.0.1"] {
		t.Errorf("stats count %d alerts from 10.0.0.1, the alerts topic has %d", statSrc["10.0.0.1"], alertSrc["10.0.0.1"])
	}
	if !maps.Equal(statDst, alertDst) {
		t.Errorf("stats count alerts by destination %v, the alerts topic %v", statDst, alertDst)
	}
}
