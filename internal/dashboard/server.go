package dashboard

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:embed assets
var assets embed.FS

// contentSecurityPolicy allows only the dashboard's own scripts, styles
// and API: no inline script or style, no other origin.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Query limits.
const (
	maxParamLen  = 256
	maxPageLimit = 500
	defPageLimit = 50
	// maxStreams bounds the open event streams.
	maxStreams = 64
)

// Handler returns the page, its assets and the JSON API:
//
//	GET /                      the page
//	GET /static/...            its scripts, styles and the vendored uPlot
//	GET /api/summary?span=S    the Summary of span S (5m, 1h or 24h)
//	GET /api/alerts?...        a page of alerts (AlertQuery: category,
//	                           attack, addr, q, before, limit)
//	GET /api/alerts/{id}       one alert's AlertDetail
//	GET /api/incidents?...     a page of incidents (IncidentQuery: category,
//	                           attack, state, addr, q, before, limit)
//	GET /api/incident?id=ID    one incident's IncidentDetail
//	GET /api/dead-letters?before=&limit=  a page of dead letters
//	GET /api/health            Health
//	GET /api/events?span=S     server-sent events: "update" with the
//	                           summary, health and versions on each change
//	GET /-/healthy             200 while the process runs
//
// Every response carries a Content-Security-Policy without
// 'unsafe-inline'. The handler does no authentication: Server adds it.
func (d *Dashboard) Handler() http.Handler {
	mux := http.NewServeMux()
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree always has assets/
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		b, _ := fs.ReadFile(static, "index.html")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(b)
	})
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /api/summary", d.handleSummary)
	mux.HandleFunc("GET /api/alerts", d.handleAlerts)
	mux.HandleFunc("GET /api/alerts/{id}", d.handleAlert)
	mux.HandleFunc("GET /api/incidents", d.handleIncidents)
	mux.HandleFunc("GET /api/incident", d.handleIncident)
	mux.HandleFunc("GET /api/dead-letters", d.handleDeadLetters)
	mux.HandleFunc("GET /api/health", d.handleHealth)
	mux.HandleFunc("GET /api/events", d.handleEvents)
	mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("netsentinel dashboard is healthy.\n"))
	})
	return securityHeaders(mux)
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// badRequest answers 400 with a JSON error.
func badRequest(w http.ResponseWriter, format string, args ...any) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf(format, args...)})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode: "+err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSONBytes(w, code, b)
}

func writeJSONBytes(w http.ResponseWriter, code int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(b)
}

// params checks a request's query: only the named keys, each at most once
// and at most maxParamLen bytes.
func params(r *http.Request, allowed ...string) (map[string]string, error) {
	q, err := urlQuery(r)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, vs := range q {
		if !containsString(allowed, k) {
			return nil, fmt.Errorf("unknown parameter %q (want %s)", k, strings.Join(allowed, ", "))
		}
		if len(vs) > 1 {
			return nil, fmt.Errorf("parameter %s given %d times", k, len(vs))
		}
		if len(vs[0]) > maxParamLen {
			return nil, fmt.Errorf("parameter %s is %d bytes long (at most %d)", k, len(vs[0]), maxParamLen)
		}
		out[k] = vs[0]
	}
	return out, nil
}

func urlQuery(r *http.Request) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	return q, nil
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func spanParam(p map[string]string) (Span, error) {
	name := p["span"]
	if name == "" {
		name = "1h"
	}
	s, ok := spanByName(name)
	if !ok {
		return Span{}, fmt.Errorf("span %q: want 5m, 1h or 24h", name)
	}
	return s, nil
}

func uintParam(p map[string]string, key string, def, hi uint64) (uint64, error) {
	v, ok := p[key]
	if !ok || v == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > hi {
		return 0, fmt.Errorf("parameter %s %q: want a whole number from 0 to %d", key, v, hi)
	}
	return n, nil
}

func (d *Dashboard) handleSummary(w http.ResponseWriter, r *http.Request) {
	p, err := params(r, "span")
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	span, err := spanParam(p)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	b, err := d.st.summaryJSON(span)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSONBytes(w, http.StatusOK, b)
}

// pageParams reads a page's "before" (an id, 0 for the newest) and
// "limit" parameters.
func pageParams(p map[string]string) (before uint64, limit int, err error) {
	if before, err = uintParam(p, "before", 0, 1<<62); err != nil {
		return 0, 0, err
	}
	n, err := uintParam(p, "limit", defPageLimit, maxPageLimit)
	if err != nil {
		return 0, 0, err
	}
	if n == 0 {
		return 0, 0, fmt.Errorf("parameter limit 0: want 1 to %d", maxPageLimit)
	}
	return before, int(n), nil
}

// alertQuery reads an AlertQuery from the request.
func alertQuery(r *http.Request) (AlertQuery, error) {
	p, err := params(r, "category", "attack", "addr", "q", "before", "limit")
	if err != nil {
		return AlertQuery{}, err
	}
	q := AlertQuery{Category: p["category"], Attack: p["attack"], Addr: strings.TrimSpace(p["addr"]), Text: strings.TrimSpace(p["q"])}
	q.Before, q.Limit, err = pageParams(p)
	return q, err
}

func (d *Dashboard) handleAlerts(w http.ResponseWriter, r *http.Request) {
	q, err := alertQuery(r)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, d.st.queryAlerts(q))
}

func (d *Dashboard) handleAlert(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		badRequest(w, "alert id %q: want a whole number", r.PathValue("id"))
		return
	}
	a, ok := d.st.alert(id)
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("alert %d is not kept (only the newest %d are)", id, d.opts.MaxAlerts)})
		return
	}
	writeJSON(w, http.StatusOK, a.detail())
}

// incidentQuery reads an IncidentQuery from the request.
func incidentQuery(r *http.Request) (IncidentQuery, error) {
	p, err := params(r, "category", "attack", "state", "addr", "q", "before", "limit")
	if err != nil {
		return IncidentQuery{}, err
	}
	q := IncidentQuery{Category: p["category"], Attack: p["attack"], State: p["state"], Addr: strings.TrimSpace(p["addr"]), Text: strings.TrimSpace(p["q"])}
	if q.State != "" && q.State != IncidentOpen && q.State != IncidentClosed {
		return q, fmt.Errorf("parameter state %q: want open or closed", q.State)
	}
	q.Before, q.Limit, err = pageParams(p)
	return q, err
}

func (d *Dashboard) handleIncidents(w http.ResponseWriter, r *http.Request) {
	q, err := incidentQuery(r)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, d.st.queryIncidents(q))
}

func (d *Dashboard) handleIncident(w http.ResponseWriter, r *http.Request) {
	p, err := params(r, "id")
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	if p["id"] == "" {
		badRequest(w, "parameter id: want an incident id (topic/partition/offset)")
		return
	}
	in, ok := d.st.incident(p["id"])
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("incident %q is not kept", p["id"])})
		return
	}
	writeJSON(w, http.StatusOK, in)
}

func (d *Dashboard) handleDeadLetters(w http.ResponseWriter, r *http.Request) {
	p, err := params(r, "before", "limit")
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	before, err := uintParam(p, "before", 0, 1<<62)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	limit, err := uintParam(p, "limit", 20, maxPageLimit)
	if err != nil || limit == 0 {
		badRequest(w, "parameter limit %q: want 1 to %d", p["limit"], maxPageLimit)
		return
	}
	writeJSON(w, http.StatusOK, d.st.queryDeadLetters(before, int(limit)))
}

func (d *Dashboard) handleHealth(w http.ResponseWriter, r *http.Request) {
	if _, err := params(r); err != nil {
		badRequest(w, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, d.st.health(d.opts.Now()))
}

// update is the data of one server-sent "update" event.
type update struct {
	Summary json.RawMessage `json:"summary"`
	Health  Health          `json:"health"`
	// AlertsTotal and DeadLettersTotal tell the page whether to fetch its
	// tables again.
	AlertsTotal      uint64 `json:"alerts_total"`
	DeadLettersTotal uint64 `json:"dead_letters_total"`
	// IncidentMessages counts the incident messages read.
	IncidentMessages int64 `json:"incident_messages"`
}

// handleEvents streams "update" events: one at once, then one after each
// change (at most one per SummaryEvery), and one at least every 5 seconds
// so the health stays current.
func (d *Dashboard) handleEvents(w http.ResponseWriter, r *http.Request) {
	p, err := params(r, "span")
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	span, err := spanParam(p)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	if d.streams.Add(1) > maxStreams {
		d.streams.Add(-1)
		http.Error(w, "too many open event streams", http.StatusServiceUnavailable)
		return
	}
	defer d.streams.Add(-1)
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	heartbeat := time.NewTicker(5 * time.Second)
	defer heartbeat.Stop()
	for {
		_, changed := d.st.watch()
		b, err := d.st.summaryJSON(span)
		if err != nil {
			return
		}
		u := update{Summary: b, Health: d.st.health(d.opts.Now())}
		u.AlertsTotal, u.DeadLettersTotal, u.IncidentMessages = d.st.totals()
		msg, err := json.Marshal(u)
		if err != nil {
			return
		}
		_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintf(w, "event: update\ndata: %s\n\n", msg); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-changed:
		case <-heartbeat.C:
		}
		// Gather the changes of the next moment into one event.
		select {
		case <-r.Context().Done():
			return
		case <-time.After(d.opts.SummaryEvery / 4):
		}
	}
}

// totals returns the numbers of alerts, dead letters and incident messages
// read.
func (s *state) totals() (alerts, dead uint64, incidents int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.nextID - 1, s.nextDeadID - 1, s.reader.Incidents
}

// ServerOptions configures Server.
type ServerOptions struct {
	// Listen is the address, host:port.
	Listen string
	// TLSCert and TLSKey are PEM files; with them the server speaks HTTPS.
	TLSCert, TLSKey string
	// User and Password, when User is set, require HTTP basic
	// authentication.
	User, Password string
}

// Server serves a Handler over HTTP or HTTPS, with optional basic
// authentication.
type Server struct {
	srv      *http.Server
	ln       net.Listener
	tls      bool
	done     chan struct{}
	once     sync.Once
	serveErr error
	// cancel ends the requests' base context, which stops event streams.
	cancel context.CancelFunc
}

// NewServer returns a server for h that has not started yet.
func NewServer(h http.Handler, o ServerOptions) (*Server, error) {
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return nil, errors.New("dashboard: a TLS certificate needs its key and a key its certificate")
	}
	if o.User != "" {
		if o.Password == "" {
			return nil, errors.New("dashboard: basic authentication needs a password")
		}
		h = basicAuth(h, o.User, o.Password)
	}
	base, cancel := context.WithCancel(context.Background())
	s := &Server{done: make(chan struct{}), tls: o.TLSCert != "", cancel: cancel}
	s.srv = &http.Server{
		BaseContext:       func(net.Listener) context.Context { return base },
		Addr:              o.Listen,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		// The event stream sets its own deadline per write.
		WriteTimeout:   30 * time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
	}
	if s.tls {
		cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("dashboard: tls certificate: %w", err)
		}
		s.srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	return s, nil
}

// basicAuth requires user and password, compared in constant time.
func basicAuth(next http.Handler, user, password string) http.Handler {
	want := sha256.Sum256([]byte(user + "\x00" + password))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		got := sha256.Sum256([]byte(u + "\x00" + p))
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="netsentinel dashboard", charset="UTF-8"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Start listens and serves in the background; it returns once the
// listener is bound.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.srv.Addr)
	if err != nil {
		return fmt.Errorf("dashboard: listen %s: %w", s.srv.Addr, err)
	}
	s.ln = ln
	go func() {
		defer close(s.done)
		var err error
		if s.tls {
			err = s.srv.ServeTLS(ln, "", "")
		} else {
			err = s.srv.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			s.serveErr = err
		}
	}()
	return nil
}

// URL returns the page's address once Start has returned.
func (s *Server) URL() string {
	scheme := "http"
	if s.tls {
		scheme = "https"
	}
	return scheme + "://" + s.ln.Addr().String() + "/"
}

// Shutdown stops the server, closing event streams and waiting for other
// requests until ctx ends. It is safe to call more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		// Event streams never finish by themselves: end their context.
		s.cancel()
		err = s.srv.Shutdown(ctx)
		if s.ln != nil {
			select {
			case <-s.done:
			case <-ctx.Done():
			}
		}
		if err == nil {
			err = s.serveErr
		}
	})
	return err
}
