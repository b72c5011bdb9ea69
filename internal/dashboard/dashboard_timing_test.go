package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netsentinel/netsentinel/internal/event"
	"github.com/netsentinel/netsentinel/internal/record"
)

// The load these benchmarks model: 20,000 records/s for 24 hours from two
// detector instances, each committing a transaction (and so a statistics
// message) every second, and alerts that carry all 41 features and the
// connection's addresses.
const (
	benchRate      = 20_000
	benchInstances = 2
)

var benchAttacks = []string{"neptune", "smurf", "satan", "ipsweep", "portsweep", "nmap", "back", "teardrop", "guess_passwd", "warezclient", "buffer_overflow", "unknown"}

// detectorAlert returns an alert as the detector writes it.
func detectorAlert(i int, at time.Time, src, dst string) []byte {
	feats := make(map[string]any, record.NumFeatures)
	for j, f := range record.Features {
		switch {
		case f.Kind == record.KindSymbolic:
			feats[f.Name] = []string{"tcp", "http", "SF"}[min(j-1, 2)]
		case f.Kind == record.KindRate:
			feats[f.Name] = 0.25
		default:
			feats[f.Name] = i % 1000
		}
	}
	attack := benchAttacks[i%len(benchAttacks)]
	b, _ := json.Marshal(map[string]any{
		"time": at, "topic": "netsentinel-records", "partition": i % 4, "offset": i, "attack": attack,
		"category": record.CategoryOf(attack).String(), "probability": 0.93, "attack_probability": 0.99, "novelty": 0.31,
		"flagged_by": "classifier", "features": feats, "instance": fmt.Sprintf("detector-%d", i%benchInstances),
		"src_ip": src, "dst_ip": dst, "src_port": 40000 + i%20000, "dst_port": 80,
	})
	return b
}

// statsMessage returns one instance's statistics for one second of
// traffic in minute m.
func statsMessage(m time.Time, instance int) []byte {
	per := int64(benchRate / benchInstances)
	b, _ := json.Marshal(event.Stats{Minute: m, Instance: fmt.Sprintf("detector-%d", instance), Records: per,
		ByCategory: map[string]int64{"normal": per * 95 / 100, "dos": per * 3 / 100, "probe": per / 100, "r2l": per / 200, "u2r": 10, "unknown": per/200 - 10},
		ByAttack: map[string]int64{"neptune": per * 2 / 100, "smurf": per / 100, "satan": per / 200, "ipsweep": per / 200,
			"back": per / 400, "warezclient": per / 400, "buffer_overflow": 10, "guess_passwd": per / 400, "teardrop": per / 400},
		DeadLetters: 3})
	return b
}

// incidentsPerMinute is how many incidents open each minute of the day:
// DefaultMaxIncidents over the day.
const incidentsPerMinute = 7

// incidentMessages returns the three messages (opened, updated, closed)
// of incident j of minute m, as the detector writes them: addresses, full
// top lists, an explanation and samples.
func incidentMessages(m time.Time, j int) [][]byte {
	n := int(m.Unix()/60)*incidentsPerMinute + j
	tops := func(f string) []event.Count {
		out := make([]event.Count, 5)
		for i := range out {
			out[i] = event.Count{Value: fmt.Sprintf(f, i), Count: int64(100 - i)}
		}
		return out
	}
	attack := benchAttacks[n%len(benchAttacks)]
	in := event.Incident{ID: fmt.Sprintf("netsentinel-records/%d/%d", n%4, n), Topic: "netsentinel-records", Partition: int32(n % 4),
		Attack: attack, Category: record.CategoryOf(attack).String(), Src: fmt.Sprintf("198.51.%d.%d", j, n%250),
		Dst: fmt.Sprintf("10.0.0.%d", n%40), FirstSeen: m, MaxProbability: 0.97,
		TopSources: tops("198.51.0.%d"), TopDestinations: tops("10.0.1.%d"), TopPorts: tops("8%d"), TopServices: tops("svc%d"),
		Features: tops("feature%d")[:3], Samples: []int64{1, 2, 3, 4, 5}, Instance: "detector-0"}
	for i, f := range []string{"count", "srv_count", "serror_rate", "src_bytes", "dst_host_count"} {
		in.Explanation = append(in.Explanation, event.Reason{Feature: f, Value: float64(100 * i), Typical: 2, Contribution: 0.1})
	}
	var out [][]byte
	for seq, st := range []string{event.IncidentOpened, event.IncidentUpdated, event.IncidentClosed} {
		in.Seq, in.Status, in.Count = int64(seq+1), st, int64(1+500*seq)
		in.LastSeen, in.Updated = m.Add(time.Duration(20*seq)*time.Second), m.Add(time.Duration(20*seq)*time.Second)
		out = append(out, in.AppendJSON(nil))
	}
	return out
}

// fill24h feeds a dashboard a day of statistics (one message per instance
// and second), alerts (alertsPerMinute in each minute, from as many
// source addresses, so the per-minute address counts are full) and
// incidents (incidentsPerMinute, three messages each). It goes through
// the same decoding as messages from Kafka.
func fill24h(b *testing.B, d *Dashboard, now time.Time, alertsPerMinute int) {
	b.Helper()
	end := now.Truncate(time.Minute)
	id := 0
	for m := end.Add(-24 * time.Hour); !m.After(end); m = m.Add(time.Minute) {
		for s := range 60 {
			written := m.Add(time.Duration(s) * time.Second)
			if written.After(now) {
				break
			}
			for in := range benchInstances {
				d.ingest(&kgo.Record{Topic: d.opts.StatsTopic, Value: statsMessage(m, in), Timestamp: written})
			}
		}
		for i := range alertsPerMinute {
			id++
			src := fmt.Sprintf("198.51.%d.%d", i/250, i%250)
			dst := fmt.Sprintf("10.0.%d.%d", (i%40)/250, i%40)
			d.ingest(&kgo.Record{Topic: d.opts.AlertsTopic, Value: detectorAlert(id, m.Add(time.Duration(i)*time.Second/time.Duration(alertsPerMinute)), src, dst)})
		}
		for j := range incidentsPerMinute {
			for _, v := range incidentMessages(m, j) {
				d.ingest(&kgo.Record{Topic: d.opts.IncidentsTopic, Value: v})
			}
		}
	}
	d.st.notify()
	if bad := d.st.reader.Bad; bad != 0 {
		b.Fatalf("%d messages undecodable: %s", bad, d.st.reader.LastBad)
	}
}

func benchDashboard(b *testing.B, alertsPerMinute int) (*Dashboard, *fakeClock) {
	b.Helper()
	d, c := newTestDashboard(b, Options{AlertsTopic: "a", StatsTopic: "s", DeadLetterTopic: "d", IncidentsTopic: "i", Group: "g"})
	c.t = time.Date(2026, 11, 26, 14, 30, 30, 0, time.UTC)
	fill24h(b, d, c.t, alertsPerMinute)
	return d, c
}

// BenchmarkHandlers24h measures the API over a day at 20,000 records/s
// with the newest 10^5 alerts and 10^4 incidents kept. "page" is
// everything the page fetches when it opens (HTML, scripts, styles, the
// 24h summary computed afresh, health, the first page of alerts, of
// incidents and of dead letters).
//
//	go test -run XXX -bench Handlers24h -benchmem ./internal/dashboard/
func BenchmarkHandlers24h(b *testing.B) {
	d, c := benchDashboard(b, 70) // 100,800 alerts in the day
	if n := len(d.st.alerts); n != DefaultMaxAlerts {
		b.Fatalf("%d alerts kept, want %d", n, DefaultMaxAlerts)
	}
	if n := len(d.st.incidents); n < DefaultMaxIncidents*9/10 {
		b.Fatalf("%d incidents kept, want about %d", n, DefaultMaxIncidents)
	}
	h := d.Handler()
	getOK := func(target string) int {
		w := get(b, h, target)
		if w.Code != 200 {
			b.Fatalf("GET %s = %d %s", target, w.Code, w.Body)
		}
		return w.Body.Len()
	}
	cold := func() {
		d.st.cacheMu.Lock()
		clear(d.st.cache)
		d.st.cacheMu.Unlock()
	}
	pageTargets := []string{"/", "/static/app.js", "/static/app.css", "/static/vendor/uplot/uPlot.iife.min.js",
		"/static/vendor/uplot/uPlot.min.css", "/api/summary?span=24h", "/api/health", "/api/alerts?limit=25", "/api/incidents?limit=25", "/api/dead-letters?limit=20"}
	b.Run("page", func(b *testing.B) {
		var bytes int
		for b.Loop() {
			cold()
			bytes = 0
			for _, t := range pageTargets {
				bytes += getOK(t)
			}
		}
		b.ReportMetric(float64(bytes)/1024, "KiB/page")
	})
	for _, span := range Spans {
		b.Run("summary-cold-"+span.Name, func(b *testing.B) {
			for b.Loop() {
				cold()
				getOK("/api/summary?span=" + span.Name)
			}
		})
	}
	b.Run("summary-cached-24h", func(b *testing.B) {
		for b.Loop() {
			getOK("/api/summary?span=24h")
		}
	})
	b.Run("alerts-first-page", func(b *testing.B) {
		for b.Loop() {
			getOK("/api/alerts?limit=25")
		}
	})
	b.Run("alerts-text-filter", func(b *testing.B) {
		for b.Loop() {
			getOK("/api/alerts?q=SATAN&limit=25")
		}
	})
	b.Run("incidents-first-page", func(b *testing.B) {
		for b.Loop() {
			getOK("/api/incidents?limit=25")
		}
	})
	b.Run("incidents-text-filter", func(b *testing.B) {
		for b.Loop() {
			getOK("/api/incidents?q=SATAN&state=closed&limit=25")
		}
	})
	b.Run("alert-detail", func(b *testing.B) {
		id := d.st.nextID - 500
		for b.Loop() {
			getOK(fmt.Sprintf("/api/alerts/%d", id))
		}
	})
	_ = c
}

// BenchmarkMemory24h measures the heap a dashboard holds after a day at
// 20,000 records/s: the statistics of every second of the day, and the
// worst case for the rest: every minute's address counts full
// (DefaultMaxAddresses sources and destinations each) and the alert ring
// full. Run it once:
//
//	go test -run XXX -bench Memory24h -benchtime 1x ./internal/dashboard/
func BenchmarkMemory24h(b *testing.B) {
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		d, _ := benchDashboard(b, DefaultMaxAddresses)
		runtime.GC()
		runtime.ReadMemStats(&after)
		held := float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20)
		b.ReportMetric(held, "MiB-held")
		b.ReportMetric(float64(len(d.st.alerts)), "alerts-kept")
		b.ReportMetric(float64(len(d.st.incidents)), "incidents-kept")
		b.ReportMetric(float64(len(d.st.agg.Series())), "minutes-kept")
		runtime.KeepAlive(d)
	}
}

// BenchmarkPageLoad24h opens the page in headless Chromium over a day at
// 20,000 records/s with 10^5 alerts kept, and measures the time from
// navigation until the totals, the charts and the first page of alerts
// are on screen. It is skipped without Chromium.
//
//	go test -run XXX -bench PageLoad24h -benchtime 10x ./internal/dashboard/
func BenchmarkPageLoad24h(b *testing.B) {
	d, _ := benchDashboard(b, 70)
	srv := httptest.NewServer(d.Handler())
	b.Cleanup(srv.Close) // after the browser's cleanup, which ends its event stream
	bctx := browser(b, context.Background())
	for b.Loop() {
		d.st.cacheMu.Lock()
		clear(d.st.cache)
		d.st.cacheMu.Unlock()
		if err := chromedp.Do(bctx, chromedp.Navigate(srv.URL+"/?span=24h")); err != nil {
			b.Fatal(err)
		}
		ok, err := chromedp.Run(bctx, chromedp.Poll[bool](`document.querySelectorAll('#alerts-body tr[data-id]').length === 25 &&
			document.getElementById('records-count').textContent !== '–' && document.querySelector('#rate-chart canvas') !== null &&
			document.querySelector('#category-chart canvas') !== null`, chromedp.WithPollingInterval(5*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second)))
		if err != nil || !ok {
			b.Fatalf("page did not load: %v", err)
		}
	}
	timing, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`JSON.stringify(performance.getEntriesByType('resource').map(e => [e.name.replace(/^.*\//, ''), Math.round(e.startTime), Math.round(e.responseEnd)]).concat([['dcl', Math.round(performance.timing.domContentLoadedEventEnd - performance.timing.navigationStart)], ['load', Math.round(performance.timing.loadEventEnd - performance.timing.navigationStart)], ['now', Math.round(performance.now())]]))`))
	b.Logf("last load, ms from navigation (start, end): %s", timing)
	text, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.getElementById('records-count').textContent`))
	if strings.TrimSpace(text) == "" {
		b.Fatal("no record count")
	}
}
