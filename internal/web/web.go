// Package web serves a long-running netsentinel process's operational
// endpoints over HTTP:
//
//	/metrics    Prometheus metrics from the injected gatherer
//	/-/healthy  200 while the process runs and Options.Healthy reports no
//	            error; 503 with the error otherwise
//	/-/ready    200 once the process is Ready, 503 while NotReady or Stopping
//
// The default address is the loopback DefaultListen.
package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultListen is the default listen address: loopback only.
const DefaultListen = "127.0.0.1:9108"

// Status is the readiness state reported by /-/ready.
type Status int32

// Readiness states, in the order a process goes through them.
const (
	NotReady Status = iota
	Ready
	Stopping
)

// String returns "not ready", "ready" or "stopping".
func (s Status) String() string {
	switch s {
	case NotReady:
		return "not ready"
	case Ready:
		return "ready"
	case Stopping:
		return "stopping"
	}
	return fmt.Sprintf("Status(%d)", int32(s))
}

// Options configures a Server.
type Options struct {
	// Listen is the address to listen on; default DefaultListen.
	Listen string
	// Gatherer supplies /metrics; nil serves no metrics.
	Gatherer prometheus.Gatherer
	// Logger receives server errors; nil discards them.
	Logger *slog.Logger
	// Healthy, when not nil, is asked on every /-/healthy request: an error
	// makes the answer 503 with the error's text (a process stuck without
	// progress, so that a supervisor restarts it).
	Healthy func() error
}

// Server is the HTTP server. Create it with New, start it with Start, stop
// it with Shutdown.
type Server struct {
	srv    *http.Server
	ln     net.Listener
	log    *slog.Logger
	status atomic.Int32
	done   chan struct{}
	once   sync.Once
}

// New returns a server that has not started listening yet.
func New(opts Options) *Server {
	if opts.Listen == "" {
		opts.Listen = DefaultListen
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{log: log, done: make(chan struct{})}
	mux := http.NewServeMux()
	if opts.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	}
	mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if opts.Healthy != nil {
			if err := opts.Healthy(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, "netsentinel is unhealthy: %v\n", err)
				return
			}
		}
		io.WriteString(w, "netsentinel is healthy.\n")
	})
	mux.HandleFunc("GET /-/ready", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		st := s.Status()
		if st != Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintf(w, "netsentinel is %s.\n", st)
	})
	s.srv = &http.Server{
		Addr:              opts.Listen,
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	return s
}

// Start listens and serves in the background; it returns once the listener
// is bound, or the listen error.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.srv.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.srv.Addr, err)
	}
	s.ln = ln
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server", "err", err)
		}
	}()
	return nil
}

// Addr returns the bound address once Start has returned, else "".
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// SetStatus sets what /-/ready reports. Once Stopping it stays Stopping.
func (s *Server) SetStatus(st Status) {
	for {
		cur := s.status.Load()
		if Status(cur) == Stopping || s.status.CompareAndSwap(cur, int32(st)) {
			return
		}
	}
}

// Status returns the current readiness state.
func (s *Server) Status() Status { return Status(s.status.Load()) }

// Shutdown marks the server Stopping and stops it gracefully, waiting for
// open requests until ctx ends. It is safe to call more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.SetStatus(Stopping)
	var err error
	s.once.Do(func() {
		err = s.srv.Shutdown(ctx)
		if s.ln != nil {
			select {
			case <-s.done:
			case <-ctx.Done():
			}
		}
	})
	return err
}
