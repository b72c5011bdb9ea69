// Package mail delivers netsentinel reports by SMTP: a multipart message
// with the HTML report (charts inline as CID images), a plain-text
// alternative and the charts attached. It uses github.com/wneessen/go-mail
// for MIME and SMTP (STARTTLS or implicit TLS, AUTH PLAIN or LOGIN).
//
// [Send] makes one attempt. An [Outbox] keeps reports on disk until they
// are delivered: [Outbox.Flush] delivers the queued reports oldest first
// and [Outbox.FlushRetry] retries with a [Backoff]; a [StateFile] records
// each delivery (and the end of the last window the report command
// produced), so a report is sent once across restarts. [Deliver] adapts
// Send to the outbox. The package starts no goroutines.
package mail

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/netsentinel/netsentinel/internal/report"
)

// TLS modes for Config.TLS.
const (
	TLSNone     = "none"     // plain SMTP (only sensible on a trusted network)
	TLSStartTLS = "starttls" // STARTTLS, mandatory
	TLSImplicit = "tls"      // implicit TLS (SMTPS, usually port 465)
)

// Auth mechanisms for Config.Auth.
const (
	AuthPlain = "plain"
	AuthLogin = "login"
)

// Config holds the SMTP settings.
type Config struct {
	// Addr is the server's host:port.
	Addr string
	// TLS is TLSNone, TLSStartTLS (the default) or TLSImplicit.
	TLS string
	// TLSConfig, if set, is used for the TLS handshake (e.g. a private CA);
	// its ServerName defaults to the host of Addr.
	TLSConfig *tls.Config
	// Auth is AuthPlain (the default when User is set) or AuthLogin.
	Auth string
	// User and Password authenticate; no authentication when User is
	// empty. The password is never logged.
	User, Password string
	// From is the sender address; To are the recipients.
	From string
	To   []string
	// Timeout bounds connecting and each SMTP command; zero means 30s.
	Timeout time.Duration
}

// Validate reports every problem in the configuration.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := splitAddr(c.Addr); err != nil {
		errs = append(errs, err)
	}
	switch c.TLS {
	case "", TLSNone, TLSStartTLS, TLSImplicit:
	default:
		errs = append(errs, fmt.Errorf("smtp tls %q: want none, starttls or tls", c.TLS))
	}
	switch strings.ToLower(c.Auth) {
	case "", AuthPlain, AuthLogin:
	default:
		errs = append(errs, fmt.Errorf("smtp auth %q: want plain or login", c.Auth))
	}
	if c.From == "" {
		errs = append(errs, errors.New("no sender address (--mail-from)"))
	}
	if len(c.To) == 0 {
		errs = append(errs, errors.New("no recipients (--mail-to)"))
	}
	if c.User != "" && c.Password == "" {
		errs = append(errs, errors.New("smtp user set but no password (NETSENTINEL_SMTP_PASSWORD or --smtp-password-file)"))
	}
	return errors.Join(errs...)
}

func splitAddr(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("smtp address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("smtp address %q: bad port", addr)
	}
	return host, port, nil
}

// Subject returns the mail's subject, e.g.
// "netsentinel: 3.2% attacks, 1 spike — 2026-11-26 14:00–15:00 UTC".
func Subject(rep *report.Report) string {
	return "netsentinel: " + rep.Title + " — " + rep.WindowLabel
}

// Message builds the MIME message for rep: an HTML body referring to the
// charts by Content-ID, a plain-text alternative, the charts inline and
// again as attachments. Its Message-ID is derived from the report's window
// so a resent report can be recognised as the same message.
func Message(cfg Config, rep *report.Report, charts []report.Chart) (*gomail.Msg, error) {
	m := gomail.NewMsg()
	if err := m.From(cfg.From); err != nil {
		return nil, fmt.Errorf("mail from %q: %w", cfg.From, err)
	}
	if err := m.To(cfg.To...); err != nil {
		return nil, fmt.Errorf("mail to %v: %w", cfg.To, err)
	}
	m.Subject(Subject(rep))
	domain := "netsentinel.invalid"
	if i := strings.LastIndexByte(cfg.From, '@'); i >= 0 {
		domain = strings.Trim(cfg.From[i+1:], "> ")
	}
	m.SetMessageIDWithValue("report-" + rep.ID + "@" + domain)
	m.SetDate()
	var page bytes.Buffer
	if err := report.WriteHTML(&page, rep, charts, report.ContentID); err != nil {
		return nil, err
	}
	m.SetBodyString(gomail.TypeTextPlain, report.PlainText(rep))
	m.AddAlternativeString(gomail.TypeTextHTML, page.String())
	for _, c := range charts {
		if err := m.EmbedReader(c.Name, bytes.NewReader(c.PNG), gomail.WithFileContentType(typePNG)); err != nil {
			return nil, fmt.Errorf("mail embed %s: %w", c.Name, err)
		}
		if err := m.AttachReader(c.Name, bytes.NewReader(c.PNG), gomail.WithFileContentType(typePNG)); err != nil {
			return nil, fmt.Errorf("mail attach %s: %w", c.Name, err)
		}
	}
	return m, nil
}

// Send renders rep's charts and sends it in one attempt.
func Send(ctx context.Context, cfg Config, rep *report.Report) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	charts, err := report.Charts(rep)
	if err != nil {
		return err
	}
	m, err := Message(cfg, rep, charts)
	if err != nil {
		return err
	}
	c, err := client(cfg)
	if err != nil {
		return err
	}
	if err := c.DialAndSendWithContext(ctx, m); err != nil {
		return fmt.Errorf("send report %s via %s: %w", rep.ID, cfg.Addr, err)
	}
	return nil
}

func client(cfg Config) (*gomail.Client, error) {
	host, port, err := splitAddr(cfg.Addr)
	if err != nil {
		return nil, err
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	opts := []gomail.Option{gomail.WithPort(port), gomail.WithTimeout(timeout)}
	switch cfg.TLS {
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if cfg.TLS != TLSNone {
		tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		if cfg.TLSConfig != nil {
			tc = cfg.TLSConfig.Clone()
			if tc.ServerName == "" {
				tc.ServerName = host
			}
		}
		opts = append(opts, gomail.WithTLSConfig(tc))
	}
	if cfg.User != "" {
		mech := gomail.SMTPAuthPlain
		if strings.EqualFold(cfg.Auth, AuthLogin) {
			mech = gomail.SMTPAuthLogin
		}
		opts = append(opts, gomail.WithSMTPAuth(mech), gomail.WithUsername(cfg.User), gomail.WithPassword(cfg.Password))
	}
	c, err := gomail.NewClient(host, opts...)
	if err != nil {
		return nil, fmt.Errorf("smtp client %s: %w", cfg.Addr, err)
	}
	return c, nil
}

const typePNG = gomail.ContentType("image/png")

// Deliver returns a function that sends a report with cfg, for
// Outbox.Deliver.
func Deliver(cfg Config) func(ctx context.Context, rep *report.Report) error {
	return func(ctx context.Context, rep *report.Report) error { return Send(ctx, cfg, rep) }
}
