package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/backendim/brain/proto"
	"github.com/coder/websocket"
)

// AuthError means the gateway refused the client's token at the handshake.
type AuthError struct {
	Status  int    // HTTP status of the refusal
	Message string // the gateway's explanation
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("the gateway refused the token (HTTP %d): %s", e.Status, e.Message)
}

// ClosedError means the gateway closed the socket with a code that does not call for a reconnect.
type ClosedError struct {
	Code   int
	Reason string
}

func (e *ClosedError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("the gateway closed the connection (code %d)", e.Code)
	}
	return fmt.Sprintf("the gateway closed the connection (code %d): %s", e.Code, e.Reason)
}

// DefaultBackoff waits nothing before the first attempt after a replica shut down (1001: another
// replica answers at once), at least a second after 4029 (too many messages), and otherwise 250ms
// doubling per attempt up to 10s, each with up to 25% jitter.
func DefaultBackoff(n, closeCode int) time.Duration {
	if n <= 1 && closeCode == proto.CloseGoingAway {
		return 0
	}
	d := 250 * time.Millisecond << min(n-1, 6)
	if closeCode == proto.CloseFlood {
		d = max(d, time.Second)
	}
	d = min(d, 10*time.Second)
	return d + rand.N(d/4+1)
}

// reconnectable reports whether proto marks a close code as calling for a new connection.
func reconnectable(code int) bool {
	for _, c := range proto.CloseCodes() {
		if c.Code == code {
			return c.Reconnect
		}
	}
	return false
}

func (s *Session) dial(ctx context.Context) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.o.DialTimeout)
	defer cancel()
	h := http.Header{}
	if s.o.Token != "" {
		h.Set("Authorization", "Bearer "+s.o.Token)
	}
	c, resp, err := websocket.Dial(ctx, s.o.URL, &websocket.DialOptions{HTTPHeader: h, HTTPClient: s.o.HTTPClient})
	if err != nil {
		if resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
			return nil, &AuthError{Status: resp.StatusCode, Message: refusalText(resp)}
		}
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, fmt.Errorf("connect to %s: HTTP %d: %s", s.o.URL, resp.StatusCode, refusalText(resp))
		}
		return nil, fmt.Errorf("connect to %s: %w", s.o.URL, err)
	}
	c.SetReadLimit(maxMessageBytes)
	return c, nil
}

// refusalText returns the message of a gateway's HTTP refusal, which is a proto error message.
func refusalText(resp *http.Response) string {
	if resp.Body == nil {
		return http.StatusText(resp.StatusCode)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if m, err := proto.DecodeMessage(b); err == nil && m.Message != "" {
		return m.Message
	}
	if t := strings.TrimSpace(string(b)); t != "" {
		return t
	}
	return http.StatusText(resp.StatusCode)
}

func (s *Session) attach(c *websocket.Conn) {
	s.conn = c
	s.pinger = startPinger(c, s.o.PingInterval)
}

func (s *Session) drop() {
	if s.conn == nil {
		return
	}
	s.pinger.stop()
	_ = s.conn.CloseNow()
	s.conn, s.pinger = nil, nil
}

// lost drops the connection after cause ended it. It returns an error when the session must end
// instead of reconnecting.
func (s *Session) lost(ctx context.Context, cause error) error {
	s.drop()
	if err := ctx.Err(); err != nil {
		return err
	}
	code := int(websocket.CloseStatus(cause))
	if code != -1 && !reconnectable(code) {
		var ce websocket.CloseError
		errors.As(cause, &ce)
		return &ClosedError{Code: code, Reason: ce.Reason}
	}
	if s.failingSince.IsZero() {
		s.failingSince = time.Now()
	}
	s.closeCode, s.cause = code, cause
	return nil
}

// reconnect dials until a connection is made and the resume request sent, the window since the
// connection was lost has passed, the gateway refuses the token, or ctx ends.
func (s *Session) reconnect(ctx context.Context) error {
	for {
		if time.Since(s.failingSince) > s.o.ReconnectWindow {
			return fmt.Errorf("connection lost and not restored within %s: %w", s.o.ReconnectWindow, s.cause)
		}
		s.attempt++
		d := s.o.Backoff(s.attempt, s.closeCode)
		if s.attempt == 1 {
			s.o.Notify(fmt.Sprintf("connection lost (%s); reconnecting in %s", describe(s.cause), d.Round(time.Millisecond)))
		} else {
			s.o.Notify(fmt.Sprintf("reconnect attempt %d failed (%s); retrying in %s", s.attempt-1, describe(s.cause), d.Round(time.Millisecond)))
		}
		if err := wait(ctx, d); err != nil {
			return err
		}
		c, err := s.dial(ctx)
		var authErr *AuthError
		switch {
		case errors.As(err, &authErr):
			return err
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			s.closeCode, s.cause = -1, err
			continue
		}
		s.attach(c)
		req := s.resume(s.last)
		if err := s.send(ctx, req); err != nil {
			if err := s.lost(ctx, err); err != nil {
				return err
			}
			continue
		}
		s.o.Notify(fmt.Sprintf("reconnected; resumed with %s", describeRequest(req)))
		return nil
	}
}

func describe(err error) string {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		if ce.Reason != "" {
			return fmt.Sprintf("closed with %d: %s", ce.Code, ce.Reason)
		}
		return fmt.Sprintf("closed with %d", ce.Code)
	}
	return err.Error()
}

func describeRequest(r proto.Request) string {
	if r.Type == proto.TypeSubscribe {
		return fmt.Sprintf("subscribe after %d", r.After)
	}
	return r.Type
}

func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// pinger checks that the gateway still answers, so a half-open connection is noticed: when a
// ping gets no pong in time the connection is closed, and the pending Read fails.
type pinger struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func startPinger(c *websocket.Conn, every time.Duration) *pinger {
	ctx, cancel := context.WithCancel(context.Background())
	p := &pinger{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			pctx, pcancel := context.WithTimeout(ctx, every/2)
			err := c.Ping(pctx)
			pcancel()
			if err != nil && ctx.Err() == nil {
				_ = c.CloseNow()
				return
			}
		}
	}()
	return p
}

func (p *pinger) stop() {
	p.cancel()
	<-p.done
}
