package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netsentinel/netsentinel/internal/event"
	"github.com/netsentinel/netsentinel/internal/kafkatest"
	nsmail "github.com/netsentinel/netsentinel/internal/mail"
	"github.com/netsentinel/netsentinel/internal/report"
	"github.com/netsentinel/netsentinel/internal/testkit"
)

func TestReportCommand(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "stats", "incidents"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := strings.Join(cluster.ListenAddrs(), ",")

	// 60 minutes of statistics from two instances, 5% neptune (a rule
	// kept one verdict a minute of instance a out of incidents), and an
	// explained neptune incident over the hour, written transactionally
	// as the detector does.
	end := time.Date(2026, 11, 26, 15, 0, 0, 0, time.UTC)
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.TransactionalID("det"), kgo.DefaultProduceTopic("stats"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		m := end.Add(time.Duration(i-60) * time.Minute)
		for _, inst := range []string{"a", "b"} {
			st := event.Stats{Minute: m, Instance: inst, Records: 100,
				ByCategory: map[string]int64{"normal": 95, "dos": 5}, ByAttack: map[string]int64{"neptune": 5}}
			if inst == "a" {
				st.ByRule = map[string]int64{"backup-host": 1}
			}
			b, _ := json.Marshal(st)
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: b, Timestamp: m.Add(70 * time.Second)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	inc := event.Incident{ID: "in/0/7", Seq: 9, Status: event.IncidentClosed, Topic: "in", Attack: "neptune", Category: "dos",
		Service: "private", Flag: "S0", FirstSeen: end.Add(-time.Hour), LastSeen: end.Add(-time.Minute), Count: 540,
		Explanation: []event.Reason{{Feature: "count", Value: 300, Typical: 2, Contribution: 0.6}, {Feature: "serror_rate", Value: 1, Contribution: 0.3}},
		Samples:     []int64{7}, Updated: end}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "incidents", Value: inc.AppendJSON(nil), Timestamp: end}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}

	sink := testkit.StartSMTP(t, testkit.SMTPOptions{User: "ops", Password: "pw-from-env"})
	t.Setenv("NETSENTINEL_SMTP_PASSWORD", "pw-from-env")
	dir := t.TempDir()
	var out, errb bytes.Buffer
	args := []string{"report", "--brokers", brokers, "--stats-topic", "stats",
		"--alerts-topic", "missing-alerts", "--dead-letter-topic", "", "--incidents-topic", "incidents",
		"--window", "1h", "--end", "2026-11-26T15:00:00Z", "--tz", "UTC", "--out", dir,
		"--smtp", sink.Addr, "--smtp-tls", "none", "--smtp-user", "ops",
		"--mail-from", "netsentinel@example.org", "--mail-to", "a@example.org,b@example.org",
	}
	code := Main(ctx, args, &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb})
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "2026-11-26 14:00–15:00 UTC: all quiet, 5.0% attacks, 0 spikes") {
		t.Errorf("stdout: %s", out.String())
	}
	if strings.Contains(errb.String(), "pw-from-env") {
		t.Error("the password appears in the log")
	}
	rep, err := readSummary(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 12000 || rep.Attacks != 600 || len(rep.Instances) != 2 {
		t.Errorf("summary: records %d attacks %d instances %d, want 12000 600 2", rep.Records, rep.Attacks, len(rep.Instances))
	}
	if len(rep.TopIncidents) != 1 || strings.Join(rep.TopIncidents[0].Features, ",") != "count,serror_rate" || rep.TopIncidents[0].Count != 540 {
		t.Errorf("summary's top incidents %+v, want the neptune incident driven by count, serror_rate", rep.TopIncidents)
	}
	if len(rep.Withheld) != 1 || rep.Withheld[0] != (report.AttackCount{Name: "backup-host", Count: 60}) {
		t.Errorf("summary's withheld %+v, want backup-host 60", rep.Withheld)
	}
	for _, f := range []string{"report.html", "categories.png", "attacks-dos.png", "attack-rate.png"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	// The same report again: written again, not mailed twice.
	var out2 bytes.Buffer
	if code := Main(ctx, args, &Env{Stdin: strings.NewReader(""), Stdout: &out2, Stderr: &errb}); code != ExitOK || !strings.Contains(out2.String(), "not sent again") {
		t.Errorf("second run: exit %d, stdout %q", code, out2.String())
	}
	msgs := sink.Messages()
	if len(msgs) != 1 {
		t.Fatalf("smtp server got %d messages, want 1", len(msgs))
	}
	m, err := mail.ReadMessage(bytes.NewReader(msgs[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	if to := m.Header.Get("To"); !strings.Contains(to, "a@example.org") || !strings.Contains(to, "b@example.org") {
		t.Errorf("To: %q", to)
	}
	if text := mailText(t, m.Header.Get("Content-Type"), m.Body); !strings.Contains(text, "Top incidents") || !strings.Contains(text, "driven by count, serror_rate") {
		t.Errorf("the mail's text does not list the top incident and what drove it:\n%s", text)
	}

	// Bad usage exits 2.
	code = Main(ctx, []string{"report", "--brokers", brokers, "--smtp", "127.0.0.1:25"}, &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb})
	if code != ExitUsage {
		t.Errorf("--smtp without --mail-to: exit %d, want %d", code, ExitUsage)
	}
}

// TestWriteReportDemo is what the demo does at its end: a report on the
// minutes it just processed, from in-memory aggregates.
func TestWriteReportDemo(t *testing.T) {
	var agg report.Aggregator
	start := time.Now().UTC().Truncate(time.Minute).Add(-3 * time.Minute)
	for i := range 3 {
		agg.Add(event.Stats{Minute: start.Add(time.Duration(i) * time.Minute), Instance: "demo", Records: 1000,
			ByCategory: map[string]int64{"normal": 600, "dos": 300, "probe": 100},
			ByAttack:   map[string]int64{"neptune": 300, "satan": 100}}, time.Time{})
	}
	series := agg.Series()
	dir := t.TempDir()
	rep, err := writeReport(t.Context(), series, report.SeriesWindow(series, time.UTC), report.Config{}, dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 3000 || rep.Attacks != 1200 || len(rep.Buckets) != 3 {
		t.Errorf("records %d attacks %d buckets %d, want 3000 1200 3 (1-minute buckets)", rep.Records, rep.Attacks, len(rep.Buckets))
	}
	for _, f := range []string{"report.html", "summary.json", "categories.png", "attacks-dos.png", "attacks-probe.png", "attack-rate.png"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
}

// TestReportEvery starts the scheduler and stops it: it records where it
// starts in the state file and exits cleanly.
func TestReportEvery(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "stats"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	var out, errb bytes.Buffer
	code := Main(ctx, []string{"report", "--brokers", strings.Join(cluster.ListenAddrs(), ","), "--stats-topic", "stats",
		"--every", "1h", "--tz", "UTC", "--out", dir}, &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb})
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	st, err := nsmail.NewStateFile(filepath.Join(dir, nsmail.StateFileName)).Load()
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Now().UTC().Truncate(time.Hour); !st.LastEnd.Equal(want) {
		t.Errorf("state last end %v, want %v", st.LastEnd, want)
	}
	for _, bad := range [][]string{
		{"--every", "7h"},
		{"--every", "1h", "--window", "2h"},
		{"--every", "24h", "--at", "25:00"},
		{"--tz", "Mars/Olympus"},
	} {
		code := Main(t.Context(), append([]string{"report", "--out", dir}, bad...), &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb})
		if code != ExitUsage {
			t.Errorf("%v: exit %d, want %d", bad, code, ExitUsage)
		}
	}
}

// readSummary reads a report back from the summary.json in dir.
func readSummary(dir string) (*report.Report, error) {
	b, err := os.ReadFile(filepath.Join(dir, report.SummaryFile))
	if err != nil {
		return nil, err
	}
	var rep report.Report
	return &rep, json.Unmarshal(b, &rep)
}

// TestReportBeforeDetect runs report against a broker where no detector has
// written yet (the statistics topic does not exist): it says so, succeeds,
// and writes the empty report. It runs on kfake and, with
// NETSENTINEL_TEST_BROKERS, on the real broker.
func TestReportBeforeDetect(t *testing.T) {
	for _, backend := range []struct {
		name    string
		brokers func(t *testing.T) string
	}{
		{"kfake", func(t *testing.T) string {
			c, err := kfake.NewCluster(kfake.NumBrokers(1))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			return strings.Join(c.ListenAddrs(), ",")
		}},
		{"kafka", func(t *testing.T) string { return strings.Join(kafkatest.Brokers(t), ",") }},
	} {
		t.Run(backend.name, func(t *testing.T) {
			brokers := backend.brokers(t)
			stats := kafkatest.Name(t, "no-stats-yet")
			dir := t.TempDir()
			var out, errb bytes.Buffer
			code := Main(t.Context(), []string{"report", "--brokers", brokers, "--stats-topic", stats,
				"--alerts-topic", stats + "-alerts", "--dead-letter-topic", stats + "-dead",
				"--window", "1h", "--tz", "UTC", "--out", dir}, &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb})
			if code != ExitOK {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out.String(), errb.String())
			}
			if !strings.Contains(errb.String(), "no detector has written statistics yet") {
				t.Errorf("stderr does not say that no detector has written yet:\n%s", errb.String())
			}
			rep, err := readSummary(dir)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Records != 0 || len(rep.Notes) == 0 || !strings.Contains(rep.Notes[0], stats) {
				t.Errorf("summary: records %d notes %q, want an empty report with a note naming %s", rep.Records, rep.Notes, stats)
			}
			if _, err := os.Stat(filepath.Join(dir, report.HTMLFile)); err != nil {
				t.Error(err)
			}
		})
	}
}

// mailText returns the decoded text/plain parts of a MIME body.
func mailText(t *testing.T, contentType string, body io.Reader) string {
	t.Helper()
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(mt, "multipart/") {
		return ""
	}
	var out strings.Builder
	mr := multipart.NewReader(body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			return out.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		ct := p.Header.Get("Content-Type")
		if strings.HasPrefix(ct, "multipart/") {
			out.WriteString(mailText(t, ct, p))
			continue
		}
		if !strings.HasPrefix(ct, "text/plain") {
			continue
		}
		var r io.Reader = p
		switch strings.ToLower(p.Header.Get("Content-Transfer-Encoding")) {
		case "quoted-printable":
			r = quotedprintable.NewReader(p)
		case "base64":
			r = base64.NewDecoder(base64.StdEncoding, p)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		out.Write(b)
	}
}
