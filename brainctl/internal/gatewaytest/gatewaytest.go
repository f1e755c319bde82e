// Package gatewaytest runs a scripted WebSocket peer on 127.0.0.1 that speaks Brain's client
// protocol, for testing brainctl's client side while a test decides what the gateway answers.
// Each accepted connection is handed to the test's script; every request the peer reads is
// recorded with the index of its connection.
package gatewaytest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backendim/brain/proto"
	"github.com/coder/websocket"
)

// Timeout bounds each read and write of the peer.
const Timeout = 10 * time.Second

// Script plays the gateway's side of one connection. It runs in its own goroutine, so it reports
// failures with t.Errorf (through Conn) and returns.
type Script func(c *Conn)

// Server is a scripted gateway.
type Server struct {
	// URL is the ws:// address of its /ws endpoint.
	URL string

	t      testing.TB
	srv    *httptest.Server
	script Script
	auth   func(attempt int, authorization string) bool
	ctx    context.Context // ends when the test does, ending every script's reads and writes
	wg     sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	attempts int // handshakes seen, accepted or not
	conns    int
	requests []Request
}

// Request is one request the peer read.
type Request struct {
	Conn int // 0 for the first connection, 1 for the second, …
	Req  proto.Request
}

// Option configures a Server.
type Option func(*Server)

// WithAuth makes the server refuse, with HTTP 401 and a proto error body as a gateway does, every
// handshake for which accept returns false. attempt counts handshakes from 0; authorization is the
// request's Authorization header.
func WithAuth(accept func(attempt int, authorization string) bool) Option {
	return func(s *Server) { s.auth = accept }
}

// New starts a server that runs script for each connection; it stops when the test ends.
func New(t testing.TB, script Script, opts ...Option) *Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{t: t, script: script, ctx: ctx}
	for _, o := range opts {
		o(s)
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = "ws://" + strings.TrimPrefix(s.srv.URL, "http://") + "/ws"
	t.Cleanup(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		cancel()
		s.srv.Close()
		s.wg.Wait() // hijacked connections are not waited for by httptest
	})
	return s
}

// Requests returns the requests read so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Conns returns how many connections were accepted.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	attempt := s.attempts
	s.attempts++
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "test over", http.StatusServiceUnavailable)
		return
	}
	if s.auth != nil && !s.auth(attempt, r.Header.Get("Authorization")) {
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		e := proto.Errorf(proto.CodeUnauthorized, "invalid token: token has invalid claims: token is expired")
		_ = json.NewEncoder(w).Encode(proto.ErrorMessage(e, ""))
		return
	}
	s.wg.Add(1)
	defer s.wg.Done()
	n := s.conns
	s.conns++
	s.mu.Unlock()
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		s.t.Errorf("gatewaytest: accept: %v", err)
		return
	}
	defer ws.CloseNow()
	s.script(&Conn{N: n, s: s, ws: ws, ctx: s.ctx})
}

// Conn is one accepted connection.
type Conn struct {
	N int // the connection's index

	s   *Server
	ws  *websocket.Conn
	ctx context.Context
}

// Read reads and records one request. ok is false when the connection ended first; waiting longer
// than Timeout, or a frame that is not a valid request, also fails the test.
func (c *Conn) Read() (req proto.Request, ok bool) {
	ctx, cancel := context.WithTimeout(c.ctx, Timeout)
	defer cancel()
	_, data, err := c.ws.Read(ctx)
	if err != nil {
		if c.ctx.Err() == nil && ctx.Err() != nil {
			c.s.t.Errorf("gatewaytest: connection %d: no request within %s", c.N, Timeout)
		}
		return proto.Request{}, false
	}
	req, perr := proto.DecodeRequest(data)
	if perr != nil {
		c.s.t.Errorf("gatewaytest: connection %d: the client sent %s: %v", c.N, data, perr)
		return proto.Request{}, false
	}
	c.s.mu.Lock()
	c.s.requests = append(c.s.requests, Request{Conn: c.N, Req: req})
	c.s.mu.Unlock()
	return req, true
}

// Send sends messages in order; it returns false when the connection ended first.
func (c *Conn) Send(ms ...proto.Message) bool {
	for _, m := range ms {
		b, err := json.Marshal(m)
		if err != nil {
			c.s.t.Errorf("gatewaytest: encode %+v: %v", m, err)
			return false
		}
		ctx, cancel := context.WithTimeout(c.ctx, Timeout)
		err = c.ws.Write(ctx, websocket.MessageText, b)
		cancel()
		if err != nil {
			return false // the client went away; the test checks what it received
		}
	}
	return true
}

// Close closes the connection with a close frame carrying code.
func (c *Conn) Close(code int, reason string) { _ = c.ws.Close(websocket.StatusCode(code), reason) }

// Drop ends the connection without a close frame, as a gateway that dies does.
func (c *Conn) Drop() { _ = c.ws.CloseNow() }

// Stall stops reading, so the connection answers no pings, until the test ends.
func (c *Conn) Stall() { <-c.ctx.Done() }

// WaitClosed waits until the client closes the connection, and reports its close code
// (-1 when it went away without one).
func (c *Conn) WaitClosed() int {
	ctx, cancel := context.WithTimeout(c.ctx, Timeout)
	defer cancel()
	for {
		if _, _, err := c.ws.Read(ctx); err != nil {
			return int(websocket.CloseStatus(err))
		}
	}
}
