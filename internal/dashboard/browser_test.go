package dashboard

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netsentinel/netsentinel/data"
	"github.com/netsentinel/netsentinel/internal/broker"
	"github.com/netsentinel/netsentinel/internal/model"
	"github.com/netsentinel/netsentinel/internal/record"
	"github.com/netsentinel/netsentinel/internal/stream"
)

// envChromium names a Chromium binary other than the one on PATH.
const envChromium = "NETSENTINEL_CHROMIUM"

// envScreenshot, when set, names the PNG file the browser test writes a
// screenshot of the dashboard to (docs/dashboard.png is made this way).
const envScreenshot = "NETSENTINEL_DASHBOARD_SCREENSHOT"

// chromiumPath returns the Chromium binary, or skips the test.
func chromiumPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(envChromium); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium found (scripts/deps.sh installs Debian's chromium; or set " + envChromium + "): browser tests skipped")
	return ""
}

// browser starts headless Chromium with a fresh profile and no background
// networking, and fails the test on any JavaScript exception or console
// error (a Content-Security-Policy violation is one).
func browser(t testing.TB, ctx context.Context) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("no-pings", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 2000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	var mu sync.Mutex
	listen := func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			mu.Lock()
			defer mu.Unlock()
			t.Errorf("javascript exception: %s %s", e.ExceptionDetails.Text, describe(e.ExceptionDetails.Exception))
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, describe(a))
				}
				mu.Lock()
				defer mu.Unlock()
				t.Errorf("browser console %s: %s", e.Type, strings.Join(parts, " "))
			}
		}
	}
	if err := chromedp.Listen(bctx, listen); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	// Record Content-Security-Policy violations where the test can read
	// them (Chromium reports them only to the page and its log).
	addScript := chromedp.Action[chromedp.Void](func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
			Source: `window.__csp = []; document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));`,
		})
		return chromedp.Void{}, err
	})
	if err := chromedp.Do(bctx, addScript); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	return bctx
}

func describe(o *runtime.RemoteObject) string {
	if o == nil {
		return ""
	}
	if o.Description != "" {
		return o.Description
	}
	return string(o.Value)
}

// labelScorer calls every record what its label says, so the test knows
// each verdict in advance.
type labelScorer struct{}

func (labelScorer) PredictRecord(r *record.Record) model.Verdict {
	if r.Label == "" || r.Label == "normal" {
		return model.Verdict{Attack: "normal", Category: record.CategoryNormal, Probability: 1, CategoryProbability: 1}
	}
	return model.Verdict{Attack: r.Label, Category: record.CategoryOf(r.Label), IsAttack: true, Probability: 0.97,
		CategoryProbability: 0.98, AttackProbability: 0.99, FlaggedBy: "classifier"}
}

// kddLines returns the first n labelled CSV lines of the shipped NSL-KDD
// 20% file.
func kddLines(t *testing.T, n int) [][]byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data.NSLKDDTrain20))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	var out [][]byte
	for len(out) < n && sc.Scan() {
		out = append(out, bytes.Clone(sc.Bytes()))
	}
	if len(out) < n {
		t.Fatalf("only %d lines in the shipped file", len(out))
	}
	return out
}

// relabel replaces a CSV line's label (the 42nd field).
func relabel(line []byte, label string) []byte {
	f := strings.Split(string(line), ",")
	f[41] = label
	return []byte(strings.Join(f, ","))
}

// pipeline is an embedded broker, a detector and a dashboard over them.
type pipeline struct {
	t          *testing.T
	broker     *broker.Broker
	brokers    []string
	producer   *kgo.Client
	topic      string
	group      string
	d          *Dashboard
	url        string
	stopDetect context.CancelFunc
	detectDone chan struct{}
}

const (
	tInput  = "records"
	tAlerts = "alerts"
	tStats  = "stats"
	tDead   = "dead-letters"
	tInc    = "incidents"
	tGroup  = "detect"
)

func startPipeline(t *testing.T, ctx context.Context) *pipeline {
	t.Helper()
	b, err := broker.Start(ctx, broker.Config{Listen: "127.0.0.1:0", Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	p := &pipeline{t: t, broker: b, brokers: b.Addrs(), topic: tInput, group: tGroup}
	p.producer, err = kgo.NewClient(kgo.SeedBrokers(p.brokers...), kgo.DefaultProduceTopic(tInput), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.producer.Close)
	if _, err := kadm.NewClient(p.producer).CreateTopics(ctx, 2, 1, nil, tInput, tAlerts, tStats, tDead, tInc); err != nil {
		t.Fatal(err)
	}

	p.startDetector(ctx)

	p.d, err = New(Options{
		Kafka: []kgo.Opt{kgo.SeedBrokers(p.brokers...)}, AlertsTopic: tAlerts, StatsTopic: tStats, DeadLetterTopic: tDead, IncidentsTopic: tInc,
		InputTopic: tInput, Group: tGroup, PollInterval: 300 * time.Millisecond, SummaryEvery: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := p.d.Run(rctx); err != nil {
			t.Errorf("dashboard run: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	srv := httptest.NewServer(p.d.Handler())
	t.Cleanup(srv.Close)
	p.url = srv.URL + "/"
	return p
}

func (p *pipeline) startDetector(ctx context.Context) {
	t := p.t
	det, err := stream.New(stream.Options{
		Client: stream.ClientConfig{Brokers: p.brokers}, Topic: tInput, Group: tGroup, Instance: "detector-1",
		AlertsTopic: tAlerts, StatsTopic: tStats, DeadLetterTopic: tDead, Scorer: explainedScorer{},
		SessionTimeout: 6 * time.Second,
		// Alerts and incidents (detect --alerts both).
		Incidents: stream.IncidentOptions{Topic: tInc, IdleFlush: 200 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	dctx, cancel := context.WithCancel(ctx)
	p.stopDetect = cancel
	p.detectDone = make(chan struct{})
	go func() {
		defer close(p.detectDone)
		if err := det.Run(dctx); err != nil {
			t.Errorf("detector: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-p.detectDone })
}

// publish writes records to the input topic.
func (p *pipeline) publish(ctx context.Context, topic string, values ...[]byte) {
	p.t.Helper()
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Topic: topic, Value: v}
	}
	if err := p.producer.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		p.t.Fatalf("produce to %s: %v", topic, err)
	}
}

// waitText waits until the element's text satisfies ok, and fails the test
// with the last text seen when it does not within d.
func waitText(t *testing.T, ctx context.Context, sel string, d time.Duration, ok func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(d)
	var text string
	for {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q)||{}).textContent||""`, sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		text = got
		if ok(text) {
			return text
		}
		if time.Now().After(deadline) {
			state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`['live','banners','group-line','reader-line'].map(id => id + ': ' + document.getElementById(id).textContent).join('; ')`))
			t.Fatalf("%s: text %q after %v (page: %s)", sel, text, d, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// injection is text built to run script if a page ever used it as HTML.
const injection = `<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>`

// craftedAlert is an alert as a detector that knows addresses writes it,
// with hostile strings in every free-text field.
func craftedAlert(src, dst string) []byte {
	feats := map[string]any{}
	for i, f := range record.Features {
		if f.Kind == record.KindSymbolic {
			feats[f.Name] = "tcp"
		} else {
			feats[f.Name] = i
		}
	}
	feats["service"] = injection
	b, _ := json.Marshal(map[string]any{
		"time": time.Now().UTC(), "topic": tInput, "partition": 1, "offset": 4242,
		"attack": "portsweep", "category": "probe", "probability": 0.91, "attack_probability": 0.95,
		"novelty": 0.7, "flagged_by": "novelty", "novelty_features": []string{"src_bytes", "dst_host_count"},
		"explanation": []map[string]any{{"feature": "src_bytes", "value": 5, "typical": 100, "contribution": 0.4}},
		"top_classes": []map[string]any{{"name": "portsweep", "probability": 0.91}, {"name": "satan", "probability": 0.06}},
		"features":    feats, "instance": injection,
		"src_ip": src, "dst_ip": dst, "src_port": 31337, "dst_port": "443", "comment": injection,
	})
	return b
}

func TestBrowser(t *testing.T) {
	chromiumPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	p := startPipeline(t, ctx)

	// Known records: the first 300 of the shipped file, 3 of them
	// broken on purpose (one with HTML in it).
	lines := kddLines(t, 300)
	var normal, attacks int
	byAttack := map[string]int{}
	for _, l := range lines {
		f := strings.Split(string(l), ",")
		if f[41] == "normal" {
			normal++
		} else {
			attacks++
			byAttack[f[41]]++
		}
	}
	bad := [][]byte{[]byte(injection), []byte("1,tcp,http\x00\xff,SF"), []byte("not,a,record")}
	p.publish(ctx, tInput, append(lines, bad...)...)
	// Alerts of a detector that knows addresses, written straight to the
	// alerts topic.
	p.publish(ctx, tAlerts, craftedAlert(injection, "10.0.0.7"), craftedAlert("192.0.2.1", "10.0.0.7"), craftedAlert("192.0.2.1", "10.0.0.8"))

	bctx := browser(t, ctx)
	if err := chromedp.Do(bctx, chromedp.Navigate(p.url+"?span=5m"), chromedp.WaitVisible(chromedp.CSS("#records-count"))); err != nil {
		t.Fatal(err)
	}

	t.Run("counts match the records sent", func(t *testing.T) {
		waitText(t, bctx, "#records-count", 45*time.Second, func(s string) bool { return s == strconv.Itoa(len(lines)) })
		waitText(t, bctx, "#attacks-count", 5*time.Second, func(s string) bool { return s == strconv.Itoa(attacks) })
		waitText(t, bctx, "#dead-count", 5*time.Second, func(s string) bool { return s == strconv.Itoa(len(bad)) })
		got := eval[string](t, bctx, `document.querySelector('#categories-body tr[data-category="normal"] td:nth-child(2)').textContent`)
		if got != strconv.Itoa(normal) {
			t.Errorf("normal in the categories table = %q, want %d", got, normal)
		}
		waitText(t, bctx, "#alerts-count", 5*time.Second, func(s string) bool {
			return strings.HasPrefix(s, strconv.Itoa(attacks+3)+" matching")
		})
		// The same verdicts as incidents (keyed by attack, service and
		// flag: the records carry no addresses), their counts together the
		// attacks sent; the page lists them all.
		var page IncidentPage
		deadline := time.Now().Add(10 * time.Second)
		for {
			page = p.d.st.queryIncidents(IncidentQuery{Limit: maxPageLimit})
			var n int64
			for _, in := range page.Incidents {
				n += in.Count
			}
			if n == int64(attacks) && page.Matching > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("incidents hold %d verdicts, want %d", n, attacks)
			}
			time.Sleep(50 * time.Millisecond)
		}
		waitText(t, bctx, "#incidents-count", 5*time.Second, func(s string) bool {
			return strings.HasPrefix(s, strconv.Itoa(page.Matching)+" matching")
		})
		if n := eval[int](t, bctx, `document.querySelectorAll('#incidents-body tr[data-incident]').length`); n != min(25, page.Matching) {
			t.Errorf("incident rows on the page = %d, want %d", n, min(25, page.Matching))
		}
	})

	t.Run("the span buttons switch the summary", func(t *testing.T) {
		if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`#spans button[data-span="24h"]`))); err != nil {
			t.Fatal(err)
		}
		waitText(t, bctx, "#span-label", 3*time.Second, func(s string) bool { return s == "last 24 hours" })
		waitText(t, bctx, "#bucket-label", 3*time.Second, func(s string) bool { return strings.HasPrefix(s, "per 1h") })
		waitText(t, bctx, "#records-count", 3*time.Second, func(s string) bool { return s == strconv.Itoa(len(lines)) })
		if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`#spans button[data-span="5m"]`))); err != nil {
			t.Fatal(err)
		}
		waitText(t, bctx, "#span-label", 3*time.Second, func(s string) bool { return s == "last 5 minutes" })
	})

	t.Run("input is shown as text, never run", func(t *testing.T) {
		waitText(t, bctx, "#sources-body", 5*time.Second, func(s string) bool { return strings.Contains(s, injection) })
		waitText(t, bctx, "#dead-body", 5*time.Second, func(s string) bool {
			return strings.Contains(s, injection) && strings.Contains(s, `http\x00\xff`)
		})
		if v := eval[string](t, bctx, `String(window.__pwned)`); v != "undefined" {
			t.Errorf("injected script ran: window.__pwned = %s", v)
		}
		if n := eval[int](t, bctx, `document.querySelectorAll('img, body script:not([src])').length`); n != 0 {
			t.Errorf("%d injected elements in the page", n)
		}
		top := eval[string](t, bctx, `document.querySelector('#targets-body tr td').textContent`)
		if top != "10.0.0.7" {
			t.Errorf("most attacked host = %q, want 10.0.0.7 (2 alerts)", top)
		}
	})

	t.Run("a new attack appears within 2s", func(t *testing.T) {
		sent := time.Now()
		p.publish(ctx, tInput, relabel(lines[0], "teardrop"))
		waitText(t, bctx, "#alerts-body tr:first-child td:nth-child(3)", 2*time.Second, func(s string) bool { return s == "teardrop" })
		t.Logf("new attack on the page %v after it was published", time.Since(sent).Round(time.Millisecond))
	})

	t.Run("the filter narrows the table", func(t *testing.T) {
		before := eval[int](t, bctx, `document.querySelectorAll('#alerts-body tr[data-id]').length`)
		if err := chromedp.Do(bctx, chromedp.SendKeys(chromedp.CSS("#filter-addr"), "192.0.2.1")); err != nil {
			t.Fatal(err)
		}
		waitText(t, bctx, "#alerts-count", 3*time.Second, func(s string) bool { return strings.HasPrefix(s, "2 matching") })
		n := eval[int](t, bctx, `document.querySelectorAll('#alerts-body tr[data-id]').length`)
		if n != 2 || n >= before {
			t.Errorf("rows with the address filter = %d (before %d), want 2", n, before)
		}
		if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`#filters button[type=reset]`))); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(bctx, chromedp.SetValue(chromedp.CSS("#filter-category"), "dos")); err != nil {
			t.Fatal(err)
		}
		eval[bool](t, bctx, `document.getElementById('filter-category').dispatchEvent(new Event('change', {bubbles: true}))`)
		want := 0
		for a, n := range byAttack {
			if record.CategoryOf(a) == record.CategoryDoS {
				want += n
			}
		}
		want++ // teardrop
		waitText(t, bctx, "#alerts-count", 3*time.Second, func(s string) bool { return strings.HasPrefix(s, strconv.Itoa(want)+" matching") })
		cats := eval[[]string](t, bctx, `[...document.querySelectorAll('#alerts-body tr[data-id] td:nth-child(4)')].map(td => td.textContent)`)
		for _, c := range cats {
			if c != "dos" {
				t.Fatalf("category filter dos shows a %q row", c)
			}
		}
		if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`#filters button[type=reset]`))); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("the alert detail shows its features", func(t *testing.T) {
		if err := chromedp.Do(bctx, chromedp.SendKeys(chromedp.CSS("#filter-text"), "ONERROR")); err != nil {
			t.Fatal(err)
		}
		waitText(t, bctx, "#alerts-count", 3*time.Second, func(s string) bool { return strings.HasPrefix(s, "3 matching") })
		if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`#alerts-body tr[data-id]`)), chromedp.WaitVisible(chromedp.CSS("#alert-detail"))); err != nil {
			t.Fatal(err)
		}
		waitText(t, bctx, "#detail-features", 3*time.Second, func(s string) bool { return strings.Contains(s, "dst_host_count") })
		nf := eval[int](t, bctx, `document.querySelectorAll('#detail-features tr[data-feature]').length`)
		if nf != record.NumFeatures {
			t.Errorf("detail shows %d features, want %d", nf, record.NumFeatures)
		}
		standout := eval[[]string](t, bctx, `[...document.querySelectorAll('#detail-features tr.standout td:first-child')].map(td => td.textContent)`)
		if strings.Join(standout, ",") != "src_bytes,dst_host_count" {
			t.Errorf("highlighted features = %q, want src_bytes, dst_host_count", standout)
		}
		if r := eval[string](t, bctx, `document.getElementById('detail-reasons').textContent`); r != "src_bytes51000.400" {
			t.Errorf("explanation = %q, want src_bytes 5 100 0.400", r)
		}
		classes := eval[string](t, bctx, `document.getElementById('detail-classes').textContent`)
		if !strings.Contains(classes, "portsweep0.9100") || !strings.Contains(classes, "satan0.0600") {
			t.Errorf("top classes = %q", classes)
		}
		facts := eval[string](t, bctx, `document.getElementById('detail-facts').textContent`)
		if !strings.Contains(facts, "records partition 1 offset 4242") || !strings.Contains(facts, ":31337") || !strings.Contains(facts, "10.0.0.8:443") && !strings.Contains(facts, "10.0.0.7:443") {
			t.Errorf("detail facts = %q", facts)
		}
		if v := eval[string](t, bctx, `String(window.__pwned)`); v != "undefined" {
			t.Errorf("injected script ran in the detail: window.__pwned = %s", v)
		}
		if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`#alert-detail .close`)), chromedp.Click(chromedp.CSS(`#filters button[type=reset]`))); err != nil {
			t.Fatal(err)
		}
	})

	if path := os.Getenv(envScreenshot); path != "" {
		waitText(t, bctx, "#alerts-count", 3*time.Second, func(s string) bool { return strings.HasPrefix(s, strconv.Itoa(attacks+4)+" matching") })
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("the health banner appears when the detector stops", func(t *testing.T) {
		if s := eval[string](t, bctx, `document.getElementById('banners').textContent`); strings.Contains(s, "No detector is running") {
			t.Fatalf("banner before the detector stopped: %q", s)
		}
		p.stopDetect()
		<-p.detectDone
		waitText(t, bctx, "#banners", 5*time.Second, func(s string) bool { return strings.Contains(s, "No detector is running") })
	})
	t.Run("the broker banner appears when the broker goes away", func(t *testing.T) {
		p.broker.Close()
		waitText(t, bctx, "#banners", 15*time.Second, func(s string) bool { return strings.Contains(s, "Cannot reach the Kafka brokers") })
	})

	if v := eval[[]string](t, bctx, `window.__csp`); len(v) > 0 {
		t.Errorf("Content-Security-Policy violations: %q", v)
	}
	t.Logf("browser test took %v", time.Since(start).Round(time.Millisecond))
}
