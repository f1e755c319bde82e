package health_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/backendim/brain/testkit/natstest"
	"github.com/backendim/brain/worker/internal/health"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func TestEndpoints(t *testing.T) {
	t.Parallel()
	nc, _ := natstest.Start(t).Connect(t)
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "brain_worker_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Inc()
	var pings atomic.Int32
	h := health.New(health.Options{NATS: nc, Gatherer: reg, PingTTL: time.Hour, Ping: func(ctx context.Context) error {
		pings.Add(1)
		if _, ok := ctx.Deadline(); !ok {
			t.Error("ping without a deadline")
		}
		return nil
	}})

	tests := []struct {
		path string
		code int
		body string
	}{
		{"/health", 200, "ok"},
		{"/ready", 200, "ready"},
		{"/ready", 200, "ready"}, // cached: no second ping
		{"/metrics", 200, "brain_worker_test_total 1"},
	}
	for _, tt := range tests {
		if code, body := get(t, h, tt.path); code != tt.code || !strings.Contains(body, tt.body) {
			t.Errorf("GET %s = %d %q, want %d %q", tt.path, code, body, tt.code, tt.body)
		}
	}
	if n := pings.Load(); n != 1 {
		t.Errorf("pinged %d times, want 1 (cached for PingTTL)", n)
	}

	h.Drain()
	if code, body := get(t, h, "/ready"); code != http.StatusServiceUnavailable || !strings.Contains(body, "shutting down") {
		t.Errorf("/ready while draining = %d %q", code, body)
	}
	if code, _ := get(t, h, "/health"); code != http.StatusOK {
		t.Errorf("/health while draining = %d", code)
	}
}

func TestNotReady(t *testing.T) {
	t.Parallel()
	nc, _ := natstest.Start(t).Connect(t)
	tests := []struct {
		name string
		opts health.Options
		want string
	}{
		{"cluster down", health.Options{NATS: nc, Ping: func(context.Context) error { return errors.New("connection refused") }},
			"cluster: connection refused"},
		{"no nats", health.Options{}, "nats: not connected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, body := get(t, health.New(tt.opts), "/ready"); code != http.StatusServiceUnavailable || !strings.Contains(body, tt.want) {
				t.Errorf("/ready = %d %q, want 503 %q", code, body, tt.want)
			}
		})
	}
	nc.Close()
	if code, body := get(t, health.New(health.Options{NATS: nc}), "/ready"); code != http.StatusServiceUnavailable || !strings.Contains(body, "CLOSED") {
		t.Errorf("/ready with a closed connection = %d %q", code, body)
	}
}
