package dashboard

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/netsentinel/netsentinel/internal/testkit"
)

func newTestDashboard(t testing.TB, o Options) (*Dashboard, *fakeClock) {
	t.Helper()
	c := &fakeClock{t: t0}
	o.Now = c.now
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return d, c
}

func get(t testing.TB, h http.Handler, target string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", target, nil))
	return w
}

func TestHandlerStatus(t *testing.T) {
	d, _ := newTestDashboard(t, Options{})
	if err := d.st.addAlert(alertJSON(1, "neptune", "dos", "10.0.0.1", "10.0.0.2", t0)); err != nil {
		t.Fatal(err)
	}
	h := d.Handler()
	for _, tc := range []struct {
		target string
		code   int
		body   string
	}{
		{"/", 200, "<title>netsentinel dashboard</title>"},
		{"/static/app.js", 200, "textContent"},
		{"/static/vendor/uplot/uPlot.iife.min.js", 200, "uPlot"},
		{"/static/vendor/uplot/LICENSE", 200, "MIT"},
		{"/api/summary?span=24h", 200, `"span":"24h"`},
		{"/api/summary", 200, `"span":"1h"`},
		{"/api/summary?span=7d", 400, `span \"7d\": want 5m, 1h or 24h`},
		{"/api/summary?span=5m&span=1h", 400, "given 2 times"},
		{"/api/summary?zoom=2", 400, `unknown parameter \"zoom\"`},
		{"/api/summary?span=%zz", 400, "query: invalid URL escape"},
		{"/api/alerts?category=dos&limit=1", 200, `"attack":"neptune"`},
		{"/api/alerts?limit=0", 400, "limit 0"},
		{"/api/alerts?limit=501", 400, "from 0 to 500"},
		{"/api/alerts?before=-1", 400, "parameter before"},
		{"/api/alerts?q=" + strings.Repeat("x", 300), 400, "300 bytes long"},
		{"/api/alerts/1", 200, `"features":[`},
		{"/api/alerts/2", 404, "alert 2 is not kept"},
		{"/api/alerts/x", 400, "want a whole number"},
		{"/api/dead-letters?limit=5", 200, `"dead_letters":[]`},
		{"/api/dead-letters?limit=0", 400, "want 1 to 500"},
		{"/api/health", 200, `"banners":[]`},
		{"/api/health?x=1", 400, "unknown parameter"},
		{"/api/events?span=1d", 400, "want 5m, 1h or 24h"},
		{"/nothing", 404, ""},
		{"/-/healthy", 200, "healthy"},
	} {
		w := get(t, h, tc.target)
		if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.body) {
			t.Errorf("GET %s = %d %.200q, want %d containing %q", tc.target, w.Code, w.Body.String(), tc.code, tc.body)
		}
		csp := w.Header().Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("GET %s: Content-Security-Policy %q", tc.target, csp)
		}
		if w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no X-Content-Type-Options: nosniff", tc.target)
		}
	}
}

// TestAPIEscapesHTML checks that JSON answers never carry raw HTML
// characters taken from the input (encoding/json escapes them), a second
// line of defence behind the page's textContent.
func TestAPIEscapesHTML(t *testing.T) {
	d, _ := newTestDashboard(t, Options{})
	if err := d.st.addAlert(craftedAlert(injection, injection)); err != nil {
		t.Fatal(err)
	}
	h := d.Handler()
	for _, target := range []string{"/api/alerts", "/api/alerts/1", "/api/summary?span=5m"} {
		body := get(t, h, target).Body.String()
		if strings.ContainsAny(body, "<>") {
			t.Errorf("GET %s carries raw < or >: %.300s", target, body)
		}
	}
}

func TestPageHasNoInlineCode(t *testing.T) {
	static, _ := fs.Sub(assets, "assets")
	html, err := fs.ReadFile(static, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{`<script[^>]*>[^<]`, `\sstyle=`, `<style`, `\son[a-z]+=`} {
		if m := regexp.MustCompile(re).FindString(string(html)); m != "" {
			t.Errorf("index.html has inline code %q", m)
		}
	}
	for _, m := range regexp.MustCompile(`<script[^>]*>`).FindAllString(string(html), -1) {
		if !strings.Contains(m, `src="static/`) {
			t.Errorf("index.html has a script that is not a file of its own: %s", m)
		}
	}
	js, _ := fs.ReadFile(static, "app.js")
	if regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(`).Match(js) {
		t.Error("app.js writes HTML from strings or evaluates code")
	}
}

// TestVendoredUPlot checks the vendored files against the checksums in
// assets/vendor/uplot/README.md.
func TestVendoredUPlot(t *testing.T) {
	readme, err := fs.ReadFile(assets, "assets/vendor/uplot/README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"uPlot.iife.min.js", "uPlot.min.css"} {
		m := regexp.MustCompile(regexp.QuoteMeta(name) + `\s+sha256 ([0-9a-f]{64})`).FindSubmatch(readme)
		if m == nil {
			t.Fatalf("README.md has no checksum of %s", name)
		}
		b, err := fs.ReadFile(assets, "assets/vendor/uplot/"+name)
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != string(m[1]) {
			t.Errorf("%s: sha256 %x, README.md says %s", name, sum, m[1])
		}
	}
	if _, err := fs.Stat(assets, "assets/vendor/uplot/LICENSE"); err != nil {
		t.Error("uPlot's LICENSE is not beside it")
	}
}

func TestBasicAuth(t *testing.T) {
	d, _ := newTestDashboard(t, Options{})
	h := basicAuth(d.Handler(), "admin", "s3cret")
	for _, tc := range []struct {
		user, pass string
		set        bool
		code       int
	}{
		{"", "", false, 401},
		{"admin", "wrong", true, 401},
		{"admin2", "s3cret", true, 401},
		{"admin", "s3cret", true, 200},
	} {
		r := httptest.NewRequest("GET", "/api/health", nil)
		if tc.set {
			r.SetBasicAuth(tc.user, tc.pass)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.code {
			t.Errorf("user %q password %q: %d, want %d", tc.user, tc.pass, w.Code, tc.code)
		}
		if tc.code == 401 && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("401 without a Basic challenge")
		}
	}
	if _, err := NewServer(d.Handler(), ServerOptions{Listen: "127.0.0.1:0", User: "admin"}); err == nil {
		t.Error("NewServer accepted a user without a password")
	}
}

func TestServerTLSAndShutdown(t *testing.T) {
	d, _ := newTestDashboard(t, Options{})
	c := testkit.SelfSigned(t)
	cert, key, pool := c.PEMFile, c.KeyFile, c.Pool
	srv, err := NewServer(d.Handler(), ServerOptions{Listen: "127.0.0.1:0", TLSCert: cert, TLSKey: key, User: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(srv.URL(), "https://127.0.0.1:") {
		t.Errorf("URL = %s", srv.URL())
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()
	req, _ := http.NewRequest("GET", srv.URL()+"api/events?span=5m", nil)
	req.SetBasicAuth("u", "p")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	// The first event comes at once; an alert brings the next.
	br := bufio.NewReader(resp.Body)
	first := readEvent(t, br)
	if first.AlertsTotal != 0 {
		t.Errorf("first event: alerts_total %d", first.AlertsTotal)
	}
	if err := d.st.addAlert(alertJSON(1, "neptune", "dos", "", "", t0)); err != nil {
		t.Fatal(err)
	}
	d.st.notify()
	if next := readEvent(t, br); next.AlertsTotal != 1 {
		t.Errorf("event after an alert: alerts_total %d, want 1", next.AlertsTotal)
	}
	// Shutdown ends the open stream rather than waiting for it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("shutdown took %v", el)
	}
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("second shutdown: %v", err)
	}
	if _, err := io.ReadAll(br); err != nil && !strings.Contains(err.Error(), "EOF") {
		t.Logf("stream after shutdown: %v", err)
	}
}

func readEvent(t *testing.T, br *bufio.Reader) update {
	t.Helper()
	var u update
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read event: %v", err)
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			if err := json.Unmarshal([]byte(data), &u); err != nil {
				t.Fatalf("event data %q: %v", data, err)
			}
			return u
		}
	}
}
