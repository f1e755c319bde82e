// Package health serves the worker's /health (the process is alive), /ready (NATS is connected,
// the cluster answers, and the worker is not stopping) and /metrics.
package health

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Defaults of Options.
const (
	DefaultPingTTL     = 5 * time.Second
	DefaultPingTimeout = 5 * time.Second
)

// Options configure a Handler.
type Options struct {
	NATS *nats.Conn
	// Ping checks the cluster; nil when the worker has none (KUBE_AUTH=none).
	Ping func(ctx context.Context) error
	// PingTTL is how long a ping result is reused, so probes do not load the API server; default
	// DefaultPingTTL. PingTimeout bounds one ping; default DefaultPingTimeout.
	PingTTL     time.Duration
	PingTimeout time.Duration
	// Gatherer serves /metrics.
	Gatherer prometheus.Gatherer
}

// Handler serves the three endpoints.
type Handler struct {
	opts     Options
	mux      *http.ServeMux
	draining atomic.Bool

	mu       sync.Mutex
	pingedAt time.Time
	pingErr  error
}

// New returns a Handler.
func New(opts Options) *Handler {
	if opts.PingTTL <= 0 {
		opts.PingTTL = DefaultPingTTL
	}
	if opts.PingTimeout <= 0 {
		opts.PingTimeout = DefaultPingTimeout
	}
	h := &Handler{opts: opts, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	h.mux.HandleFunc("GET /ready", h.ready)
	if opts.Gatherer != nil {
		h.mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	}
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Drain makes /ready fail from now on: the worker is stopping.
func (h *Handler) Drain() { h.draining.Store(true) }

func (h *Handler) ready(w http.ResponseWriter, r *http.Request) {
	if err := h.check(r.Context()); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ready")
}

func (h *Handler) check(ctx context.Context) error {
	if h.draining.Load() {
		return fmt.Errorf("shutting down")
	}
	if h.opts.NATS == nil || !h.opts.NATS.IsConnected() {
		status := "not connected"
		if h.opts.NATS != nil {
			status = h.opts.NATS.Status().String()
		}
		return fmt.Errorf("nats: %s", status)
	}
	if h.opts.Ping == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if time.Since(h.pingedAt) >= h.opts.PingTTL {
		ctx, cancel := context.WithTimeout(ctx, h.opts.PingTimeout)
		h.pingErr = h.opts.Ping(ctx)
		cancel()
		h.pingedAt = time.Now()
	}
	if h.pingErr != nil {
		return fmt.Errorf("cluster: %w", h.pingErr)
	}
	return nil
}
