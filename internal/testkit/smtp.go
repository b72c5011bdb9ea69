package testkit

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTP TLS modes for SMTPOptions.TLS; the same words as mail.Config.TLS.
const (
	SMTPPlain    = "none"     // no TLS
	SMTPStartTLS = "starttls" // STARTTLS offered; AUTH only after it
	SMTPImplicit = "tls"      // TLS from the first byte (SMTPS)
)

// SMTPOptions configure StartSMTP.
type SMTPOptions struct {
	// Addr is the address to listen on; empty means "127.0.0.1:0".
	Addr string
	// TLS is SMTPPlain (the default), SMTPStartTLS or SMTPImplicit.
	TLS string
	// Cert is the server's certificate, required with TLS.
	Cert *tls.Certificate
	// User and Password are the only credentials accepted (AUTH PLAIN or
	// LOGIN); a message is refused without them.
	User, Password string
}

// SMTPMessage is one message the server accepted.
type SMTPMessage struct {
	From string
	To   []string
	// User is the authenticated user.
	User string
	// TLS is whether the session was encrypted.
	TLS bool
	// Data is the message as sent (headers and body).
	Data []byte
}

// SMTPServer is a real SMTP server (emersion/go-smtp) on the loopback
// interface that requires authentication and keeps what it receives.
type SMTPServer struct {
	// Addr is the address it listens on.
	Addr string

	opts SMTPOptions
	mu   sync.Mutex
	msgs []SMTPMessage
}

// StartSMTP starts an SMTP server that stops when the test ends.
func StartSMTP(t testing.TB, opts SMTPOptions) *SMTPServer {
	t.Helper()
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	s := &SMTPServer{opts: opts}
	srv := smtp.NewServer(s)
	srv.Domain = "localhost"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.AllowInsecureAuth = opts.TLS == "" || opts.TLS == SMTPPlain
	var l net.Listener
	var err error
	switch opts.TLS {
	case SMTPImplicit:
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*opts.Cert}}
		l, err = tls.Listen("tcp", opts.Addr, srv.TLSConfig)
	case SMTPStartTLS:
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*opts.Cert}}
		fallthrough
	default:
		l, err = net.Listen("tcp", opts.Addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = l.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return s
}

// Messages returns the messages received so far, oldest first.
func (s *SMTPServer) Messages() []SMTPMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SMTPMessage(nil), s.msgs...)
}

// NewSession implements smtp.Backend.
func (s *SMTPServer) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{srv: s, conn: c}, nil
}

type session struct {
	srv  *SMTPServer
	conn *smtp.Conn
	cur  SMTPMessage
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain, sasl.Login} }

func (s *session) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if user != s.srv.opts.User || pass != s.srv.opts.Password {
			return errors.New("invalid credentials")
		}
		s.cur.User = user
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnsupported
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.cur.User == "" {
		return smtp.ErrAuthRequired
	}
	s.cur.From = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.To = append(s.cur.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := s.cur
	m.Data = b
	_, m.TLS = s.conn.TLSConnectionState()
	s.srv.mu.Lock()
	s.srv.msgs = append(s.srv.msgs, m)
	s.srv.mu.Unlock()
	s.cur.To = nil
	return nil
}

func (s *session) Reset()        { s.cur.To = nil; s.cur.From = "" }
func (s *session) Logout() error { return nil }

// loginServer implements the LOGIN mechanism (which go-sasl dropped).
type loginServer struct {
	step  int
	user  string
	check func(user, pass string) error
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step++
		if len(resp) > 0 {
			l.user = string(resp)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.user = string(resp)
		l.step++
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(resp))
	}
}
