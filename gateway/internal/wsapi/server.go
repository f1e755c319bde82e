// Package wsapi serves Brain's WebSocket protocol on /ws: it authenticates the client, validates
// every message, submits jobs, and relays the events of the chats a socket follows.
package wsapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/backendim/brain/gateway/internal/auth"
	"github.com/backendim/brain/gateway/internal/jobs"
	"github.com/backendim/brain/gateway/internal/metrics"
	"github.com/backendim/brain/gateway/internal/relay"
	"github.com/backendim/brain/proto"
	"github.com/coder/websocket"
)

// Options configure a Server.
type Options struct {
	Verifier          *auth.Verifier // nil: AUTH_MODE=none
	Jobs              *jobs.Service
	Relay             *relay.Relay
	Metrics           *metrics.Metrics
	Logger            *slog.Logger
	AllowedOrigins    []string
	PingInterval      time.Duration
	WriteTimeout      time.Duration
	SendQueue         int
	MaxChats          int
	JobsPerMinute     float64
	JobsBurst         int
	MessagesPerSecond float64
	RequestTimeout    time.Duration // bound on each NATS round of a request; default 10s
}

// Server is the /ws handler.
type Server struct {
	o       Options
	jobRate *userLimiter

	mu      sync.Mutex
	conns   map[*conn]struct{}
	closing bool
	wg      sync.WaitGroup
}

// New returns a Server.
func New(o Options) *Server {
	if o.RequestTimeout == 0 {
		o.RequestTimeout = 10 * time.Second
	}
	return &Server{o: o, conns: map[*conn]struct{}{}, jobRate: newUserLimiter(o.JobsPerMinute/60, o.JobsBurst)}
}

// ServeHTTP upgrades an authenticated request to a WebSocket and serves it until it closes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, err := s.o.Verifier.Authenticate(r)
	if err != nil {
		httpError(w, http.StatusUnauthorized, proto.Errorf(proto.CodeUnauthorized, "%v", err))
		return
	}
	s.mu.Lock()
	closing := s.closing
	if !closing {
		s.wg.Add(1)
	}
	s.mu.Unlock()
	if closing {
		httpError(w, http.StatusServiceUnavailable, proto.Errorf(proto.CodeShuttingDown, "this gateway is shutting down; reconnect"))
		return
	}
	defer s.wg.Done()
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: s.o.AllowedOrigins})
	if err != nil {
		s.o.Logger.Debug("websocket accept failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	ws.SetReadLimit(proto.MaxFrameBytes)
	c := newConn(s, ws, id, s.o.Logger.With("user", id.UserID, "remote", r.RemoteAddr))
	if !s.add(c) {
		c.close(proto.CloseGoingAway, "server shutting down")
		return
	}
	defer s.remove(c)
	c.serve()
}

func (s *Server) add(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = struct{}{}
	s.o.Metrics.Connections.Inc()
	return true
}

func (s *Server) remove(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	s.o.Metrics.Connections.Dec()
}

// Shutdown stops accepting sockets, closes every open one with 1001 so clients reconnect to another
// replica, and waits until their handlers (and any publish in flight) finish or ctx ends. It may be
// called more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close(proto.CloseGoingAway, "server shutting down")
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func httpError(w http.ResponseWriter, status int, e *proto.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(proto.ErrorMessage(e, ""))
}
