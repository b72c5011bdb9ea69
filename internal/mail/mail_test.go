package mail

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"image/png"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/netsentinel/netsentinel/internal/event"
	"github.com/netsentinel/netsentinel/internal/report"
	"github.com/netsentinel/netsentinel/internal/testkit"
)

const (
	testUser     = "admin"
	testPassword = "s3cret pass"
)

// startServer starts an SMTP server on addr ("127.0.0.1:0" for any port)
// that accepts testUser and testPassword.
func startServer(t *testing.T, addr, mode string, cert *tls.Certificate) *testkit.SMTPServer {
	t.Helper()
	return testkit.StartSMTP(t, testkit.SMTPOptions{Addr: addr, TLS: mode, Cert: cert, User: testUser, Password: testPassword})
}

// testReport: one hour, 1000 records (17 a minute for 40 minutes, then
// 16), and in the first minute all 17 are neptune (dos): 1.7% attacks.
func testReport(t *testing.T, hour int) *report.Report {
	t.Helper()
	start := time.Date(2026, 11, 26, hour, 0, 0, 0, time.UTC)
	var a report.Aggregator
	for i := range 60 {
		s := event.Stats{Minute: start.Add(time.Duration(i) * time.Minute), Instance: "det-a", Records: 16}
		if i < 40 {
			s.Records = 17
		}
		s.ByCategory = map[string]int64{"normal": s.Records}
		if i == 0 {
			s.ByCategory = map[string]int64{"dos": 17}
			s.ByAttack = map[string]int64{"neptune": 17}
		}
		a.Add(s, time.Time{})
	}
	rep, err := report.Build(a.Series(), report.Window{Start: start, End: start.Add(time.Hour), Location: time.UTC}, report.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func testConfig(addr, mode string) Config {
	return Config{
		Addr: addr, TLS: mode, User: testUser, Password: testPassword,
		From: "netsentinel@example.org", To: []string{"admin@example.org", "soc@example.org"},
		Timeout: 10 * time.Second,
	}
}

// part is one leaf of a parsed MIME tree.
type part struct {
	contentType string
	disposition string
	contentID   string
	filename    string
	body        []byte
}

func walk(t *testing.T, header map[string][]string, body io.Reader, out *[]part) {
	t.Helper()
	get := func(k string) string {
		if v := header[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	mt, params, err := mime.ParseMediaType(get("Content-Type"))
	if err != nil {
		t.Fatalf("content type %q: %v", get("Content-Type"), err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		r := multipart.NewReader(body, params["boundary"])
		for {
			p, err := r.NextRawPart()
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			walk(t, p.Header, p, out)
		}
	}
	switch strings.ToLower(get("Content-Transfer-Encoding")) {
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	disp, dparams, _ := mime.ParseMediaType(get("Content-Disposition"))
	*out = append(*out, part{contentType: mt, disposition: disp, contentID: strings.Trim(get("Content-Id"), "<>"), filename: dparams["filename"], body: b})
}

func TestSendMIME(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0", TLSNone, nil)
	rep := testReport(t, 14)
	// The window's top incidents, as report adds them from the incidents
	// topic.
	first := rep.Start.Add(5 * time.Minute)
	report.AddIncidents(rep, []report.IncidentSummary{
		{ID: "in/0/7", Status: event.IncidentClosed, Attack: "smurf", Category: "dos", Src: "10.0.0.1", Dst: "10.0.0.9", FirstSeen: first, LastSeen: first.Add(time.Minute), Count: 9000},
		{ID: "in/1/3", Status: event.IncidentOpened, Attack: "neptune", Category: "dos", Service: "http", FirstSeen: first, LastSeen: first, Count: 40},
	}, 10)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := Send(ctx, testConfig(srv.Addr, TLSNone), rep); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("server got %d messages, want 1", len(msgs))
	}
	got := msgs[0]
	if got.User != testUser || got.From != "netsentinel@example.org" || strings.Join(got.To, ",") != "admin@example.org,soc@example.org" {
		t.Errorf("envelope: user %q from %q to %v", got.User, got.From, got.To)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(got.Data))
	if err != nil {
		t.Fatal(err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "netsentinel: all quiet, 1.7% attacks, 0 spikes — 2026-11-26 14:00–15:00 UTC"; subject != want {
		t.Errorf("subject %q, want %q", subject, want)
	}
	if id := msg.Header.Get("Message-Id"); id != "<report-"+rep.ID+"@example.org>" {
		t.Errorf("Message-ID %q", id)
	}
	var parts []part
	walk(t, map[string][]string(msg.Header), msg.Body, &parts)

	var plain, html string
	inline := map[string]bool{}
	attached := map[string]bool{}
	for _, p := range parts {
		switch {
		case p.contentType == "text/plain":
			plain = string(p.body)
		case p.contentType == "text/html":
			html = string(p.body)
		case p.contentType == "image/png":
			img, err := png.Decode(bytes.NewReader(p.body))
			if err != nil {
				t.Errorf("image %s/%s: %v", p.contentID, p.filename, err)
				continue
			}
			if img.Bounds().Dx() < 100 {
				t.Errorf("image %s is %v", p.filename, img.Bounds())
			}
			if p.disposition == "attachment" {
				attached[p.filename] = true
			} else {
				inline[p.contentID] = true
			}
		}
	}
	for _, want := range []string{"Records scored:  1000", "Attacks:         17 (1.7%)", "dos"} {
		if !strings.Contains(plain, want) {
			t.Errorf("plain text lacks %q:\n%s", want, plain)
		}
	}
	if !strings.Contains(html, `id="records">1000<`) || !strings.Contains(html, `id="attacks">17 (1.7%)<`) {
		t.Errorf("html lacks the numbers")
	}
	for _, want := range []string{"Top incidents", "smurf 10.0.0.1 → 10.0.0.9", "9000", "neptune on http"} {
		if !strings.Contains(plain, want) || !strings.Contains(html, want) {
			t.Errorf("the mail's text or HTML part lacks the top incident text %q", want)
		}
	}
	charts := []string{"categories.png", "attacks-dos.png", "attack-rate.png"}
	for _, c := range charts {
		if !inline[c] {
			t.Errorf("no inline image with Content-ID %s (have %v)", c, inline)
		}
		if !strings.Contains(html, `src="cid:`+c+`"`) {
			t.Errorf("html does not refer to cid:%s", c)
		}
		if !attached[c] {
			t.Errorf("no attachment %s (have %v)", c, attached)
		}
	}
	if len(inline) != len(charts) || len(attached) != len(charts) {
		t.Errorf("inline %v attached %v, want %v", inline, attached, charts)
	}
}

func TestSendTLSModes(t *testing.T) {
	c := testkit.SelfSigned(t)
	cert, pool := &c.TLS, c.Pool
	for _, tc := range []struct {
		mode, auth string
	}{
		{TLSStartTLS, AuthPlain},
		{TLSStartTLS, AuthLogin},
		{TLSImplicit, AuthPlain},
	} {
		t.Run(tc.mode+"-"+tc.auth, func(t *testing.T) {
			srv := startServer(t, "127.0.0.1:0", tc.mode, cert)
			cfg := testConfig(srv.Addr, tc.mode)
			cfg.Auth = tc.auth
			cfg.TLSConfig = &tls.Config{RootCAs: pool}
			if err := Send(t.Context(), cfg, testReport(t, 14)); err != nil {
				t.Fatal(err)
			}
			msgs := srv.Messages()
			if len(msgs) != 1 || !msgs[0].TLS || msgs[0].User != testUser {
				t.Fatalf("got %d messages (tls %v)", len(msgs), len(msgs) > 0 && msgs[0].TLS)
			}
		})
	}
	t.Run("untrusted", func(t *testing.T) {
		srv := startServer(t, "127.0.0.1:0", TLSStartTLS, cert)
		if err := Send(t.Context(), testConfig(srv.Addr, TLSStartTLS), testReport(t, 14)); err == nil {
			t.Fatal("sent to a server with an untrusted certificate")
		}
	})
}

func TestSendErrors(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0", TLSNone, nil)
	cfg := testConfig(srv.Addr, TLSNone)
	cfg.Password = "wrong"
	err := Send(t.Context(), cfg, testReport(t, 14))
	if err == nil {
		t.Fatal("wrong password: no error")
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("error shows the password: %v", err)
	}
	if len(srv.Messages()) != 0 {
		t.Error("message accepted with a wrong password")
	}
	bad := Config{Addr: "nohost", TLS: "ssl", Auth: "cram", User: "u"}
	err = bad.Validate()
	for _, want := range []string{"smtp address", "smtp tls", "smtp auth", "sender", "recipients", "password"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
}

// freeAddr returns a loopback address nobody listens on (for now).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestOutboxServerDownThenUp(t *testing.T) {
	addr := freeAddr(t)
	dir := t.TempDir()
	cfg := testConfig(addr, TLSNone)
	cfg.Timeout = 2 * time.Second
	ob := &Outbox{Dir: dir, Deliver: Deliver(cfg)}
	rep1, rep2 := testReport(t, 13), testReport(t, 14)
	for _, r := range []*report.Report{rep1, rep2} {
		if queued, err := ob.Enqueue(r); err != nil || !queued {
			t.Fatalf("Enqueue = %v, %v", queued, err)
		}
	}
	// Server down: delivery fails, both reports stay queued.
	err := ob.FlushRetry(t.Context(), Backoff{Initial: 10 * time.Millisecond}, 3)
	if err == nil {
		t.Fatal("delivered with the server down")
	}
	if ids, _ := ob.Pending(); len(ids) != 2 {
		t.Fatalf("pending %v, want both reports", ids)
	}
	// Server up: both are sent, in order, once.
	srv := startServer(t, addr, TLSNone, nil)
	if err := ob.FlushRetry(t.Context(), Backoff{Initial: 10 * time.Millisecond}, 3); err != nil {
		t.Fatal(err)
	}
	// Flushing again, or queueing a sent report again, sends nothing.
	if n, err := ob.Flush(t.Context()); n != 0 || err != nil {
		t.Errorf("second flush sent %d (%v)", n, err)
	}
	if queued, err := ob.Enqueue(rep1); err != nil || queued {
		t.Fatalf("re-queueing a sent report: Enqueue = %v, %v", queued, err)
	}
	if n, err := ob.Flush(t.Context()); n != 0 || err != nil {
		t.Errorf("flush after re-queueing a sent report sent %d (%v)", n, err)
	}
	msgs := srv.Messages()
	if len(msgs) != 2 {
		t.Fatalf("server got %d messages, want 2", len(msgs))
	}
	for i, want := range []string{rep1.ID, rep2.ID} {
		m, err := mail.ReadMessage(bytes.NewReader(msgs[i].Data))
		if err != nil {
			t.Fatal(err)
		}
		if id := m.Header.Get("Message-Id"); !strings.Contains(id, want) {
			t.Errorf("message %d is %s, want %s", i, id, want)
		}
	}
	st, err := NewStateFile(dir + "/" + StateFileName).Load()
	if err != nil || len(st.Sent) != 2 {
		t.Errorf("state %+v (%v), want 2 deliveries", st, err)
	}
}
