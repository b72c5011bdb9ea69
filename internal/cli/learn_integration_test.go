package cli

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netsentinel/netsentinel/internal/event"
	"github.com/netsentinel/netsentinel/internal/kafkatest"
)

// TestIntegrationDetectLearn runs detect with a 3-second learning period
// on a real Kafka broker over a synthetic site's connections (extract's
// records of a capture): after the period the model is retrained with them
// as a baseline and swapped in. The same records published again are
// scored by the learned model (its fingerprint in the statistics and in
// /metrics), which flags fewer of them, and the books balance.
func TestIntegrationDetectLearn(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	in, alerts, stats, dead := kafkatest.NewTopic(t, 2), kafkatest.NewTopic(t, 1), kafkatest.NewTopic(t, 1), kafkatest.NewTopic(t, 1)
	modelPath := trainSmall(t)
	_, fpA, err := loadModel(modelPath, false)
	if err != nil {
		t.Fatal(err)
	}
	lines, site := siteRecords(t, 6000)
	n := len(site)
	siteFile := writeFile(t, "site.jsonl", []byte(lines))
	publish := func() {
		t.Helper()
		if code, _, stderr := run(t, "", "publish", "--brokers", brokers, "--topic", in, "--file", siteFile); code != ExitOK {
			t.Fatalf("publish exit %d: %s", code, stderr)
		}
	}
	publish()
	out := filepath.Join(t.TempDir(), "learned.model")
	base, stderr, stop := startDetect(t, "--brokers", brokers, "--topic", in, "--group", kafkatest.Name(t, "learn"), "--model", modelPath,
		"--alerts-topic", alerts, "--stats-topic", stats, "--dead-letter-topic", dead, "--instance", "learn",
		"--learn", "3s", "--learn-data", writeLines(t, "train.csv", kddLines(t, 0, 3000)), "--learn-out", out, "--learn-min-records", "100")
	metric := func(name string) string {
		_, metrics := httpGet(base + "/metrics")
		for l := range strings.Lines(metrics) {
			if v, ok := strings.CutPrefix(l, name+" "); ok {
				return strings.TrimSpace(v)
			}
		}
		return ""
	}
	fpRE := regexp.MustCompile(`msg="model learned: now scoring with it" fingerprint=(\w+) previous=` + fpA)
	var fpB string
	waitUntil(t, 45*time.Second, "learned model", func() bool {
		if m := fpRE.FindStringSubmatch(stderr.String()); m != nil {
			fpB = m[1]
		}
		return fpB != "" || strings.Contains(stderr.String(), "level=ERROR")
	}, stderr)
	if fpB == "" || fpB == fpA {
		t.Fatalf("no new model (fingerprint %q, was %s); log:\n%s", fpB, fpA, stderr)
	}
	if v := metric(`netsentinel_detect_model_info{fingerprint="` + fpB + `"}`); v != "1" {
		t.Errorf("model_info for %s = %q", fpB, v)
	}
	if strings.Contains(stderr.String(), "only some of the topic's partitions") || strings.Contains(stderr.String(), "cannot tell whether") {
		t.Errorf("one detector alone warns about partitions; log:\n%s", stderr)
	}
	if v := metric(`netsentinel_detect_learning{state="learned"}`); v != "1" {
		t.Errorf(`learning{state="learned"} = %q`, v)
	}
	if v := metric("netsentinel_detect_learn_seen_records"); v != strconv.Itoa(n) {
		t.Errorf("learn_seen_records = %q, want %d", v, n)
	}
	sampleRE := regexp.MustCompile(`msg="baseline sample" records=(\d+)`)
	m := sampleRE.FindStringSubmatch(stderr.String())
	if b, err := os.ReadFile(out + ".baseline.jsonl"); err != nil || m == nil || strconv.Itoa(strings.Count(string(b), "\n")) != m[1] {
		t.Errorf("baseline file: %d lines, %v; the log: %v records of %d", strings.Count(string(b), "\n"), err, m, n)
	}
	publish()
	waitUntil(t, 30*time.Second, "both rounds scored", func() bool { return metric("netsentinel_detect_records_total") == strconv.Itoa(2*n) }, stderr)
	if code := stop(); code != ExitOK {
		t.Fatalf("detect exit %d", code)
	}
	if code, _ := httpGet(base + "/-/healthy"); code == http.StatusOK {
		t.Error("the server still answers after stop")
	}

	// Every statistics message is committed (records_total counts committed
	// transactions): read until they add up.
	records, flagged := map[string]int64{}, map[string]int64{}
	var normal, deadLetters int64
	tally := func(msgs int) (sum int64, got int) {
		clear(records)
		clear(flagged)
		normal, deadLetters = 0, 0
		rs := consumeAll(t, kafkatest.Brokers(t)[0], stats, msgs)
		for _, r := range rs {
			var s event.Stats
			if err := json.Unmarshal(r.Value, &s); err != nil {
				t.Fatal(err)
			}
			records[s.Model] += s.Records
			normal += s.ByCategory["normal"]
			deadLetters += s.DeadLetters
			for _, c := range s.ByAttack {
				flagged[s.Model] += c
			}
			sum += s.Records + s.DeadLetters
		}
		return sum, len(rs)
	}
	for sum, got := tally(1); sum < int64(2*n); {
		s, g := tally(got + 1)
		if g <= got {
			break // no more after consumeAll's wait: the books below fail
		}
		sum, got = s, g
	}
	nAlerts := int64(len(consumeAll(t, kafkatest.Brokers(t)[0], alerts, int(flagged[fpA]+flagged[fpB]))))
	t.Logf("%d site records twice: model %s flagged %d of %d, learned %s flagged %d of %d", n, fpA, flagged[fpA], records[fpA], fpB, flagged[fpB], records[fpB])
	if got := normal + nAlerts + deadLetters; got != int64(2*n) || deadLetters != 0 || len(records) != 2 || records[fpA]+records[fpB] != int64(2*n) {
		t.Errorf("books: normal %d + alerts %d + dead letters %d = %d, want %d; records by model %v", normal, nAlerts, deadLetters, got, 2*n, records)
	}
	if records[fpB] < int64(n) {
		t.Errorf("the learned model scored %d records, want at least the second round's %d", records[fpB], n)
	}
	rateA := float64(flagged[fpA]) / float64(max(records[fpA], 1))
	rateB := float64(flagged[fpB]) / float64(max(records[fpB], 1))
	if !(rateB < rateA) {
		t.Errorf("flagged share %.3f with the learned model, %.3f before: want fewer", rateB, rateA)
	}
}
