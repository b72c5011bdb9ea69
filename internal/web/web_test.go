package web

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func TestServerLifecycle(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "netsentinel_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)
	s := New(Options{Listen: "127.0.0.1:0", Gatherer: reg})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	base := "http://" + s.Addr()

	steps := []struct {
		set        Status
		wantStatus int
		wantBody   string
	}{
		{NotReady, http.StatusServiceUnavailable, "not ready"},
		{Ready, http.StatusOK, "is ready"},
		{NotReady, http.StatusServiceUnavailable, "not ready"},
		{Ready, http.StatusOK, "is ready"},
		{Stopping, http.StatusServiceUnavailable, "stopping"},
		{Ready, http.StatusServiceUnavailable, "stopping"}, // Stopping is final
	}
	for i, st := range steps {
		s.SetStatus(st.set)
		code, body := get(t, base+"/-/ready")
		if code != st.wantStatus || !strings.Contains(body, st.wantBody) {
			t.Errorf("step %d (set %v): /-/ready = %d %q, want %d containing %q", i, st.set, code, body, st.wantStatus, st.wantBody)
		}
	}
	if code, body := get(t, base+"/-/healthy"); code != http.StatusOK || !strings.Contains(body, "healthy") {
		t.Errorf("/-/healthy = %d %q", code, body)
	}
	if code, body := get(t, base+"/metrics"); code != http.StatusOK || !strings.Contains(body, "netsentinel_test_total 3") {
		t.Errorf("/metrics = %d %q", code, body)
	}
	if code, _ := get(t, base+"/nope"); code != http.StatusNotFound {
		t.Errorf("/nope = %d, want 404", code)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if _, err := http.Get(base + "/-/healthy"); err == nil {
		t.Error("server still answers after Shutdown")
	}
}

func TestStartListenError(t *testing.T) {
	a := New(Options{Listen: "127.0.0.1:0"})
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	b := New(Options{Listen: a.Addr()})
	if err := b.Start(); err == nil {
		b.Shutdown(context.Background())
		t.Fatal("second server on the same address started")
	}
}

func TestStatusString(t *testing.T) {
	for st, want := range map[Status]string{NotReady: "not ready", Ready: "ready", Stopping: "stopping", Status(9): "Status(9)"} {
		if got := st.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(st), got, want)
		}
	}
	if New(Options{}).srv.Addr != DefaultListen {
		t.Errorf("default listen is not %s", DefaultListen)
	}
}

// TestHealthy checks that /-/healthy follows Options.Healthy.
func TestHealthy(t *testing.T) {
	var unhealthy atomic.Pointer[error]
	s := New(Options{Listen: "127.0.0.1:0", Healthy: func() error {
		if e := unhealthy.Load(); e != nil {
			return *e
		}
		return nil
	}})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	url := "http://" + s.Addr() + "/-/healthy"
	if code, body := get(t, url); code != http.StatusOK || !strings.Contains(body, "is healthy") {
		t.Errorf("/-/healthy = %d %q, want 200", code, body)
	}
	err := errors.New("no progress for 31s: connection refused")
	unhealthy.Store(&err)
	if code, body := get(t, url); code != http.StatusServiceUnavailable || !strings.Contains(body, "connection refused") {
		t.Errorf("/-/healthy = %d %q, want 503 naming the error", code, body)
	}
	unhealthy.Store(nil)
	if code, _ := get(t, url); code != http.StatusOK {
		t.Errorf("/-/healthy = %d after recovery, want 200", code)
	}
}
