// Package session keeps a client's WebSocket to a Brain gateway open for as long as the client
// follows a chat. It dials with the client's token and sends a first request; when the gateway
// closes the socket with a close code that proto marks Reconnect (or the connection drops without
// a close frame), it dials again with backoff and sends a resume request built from the last event
// sequence seen, and it drops any event it has already delivered. The caller sees each event once,
// in order.
//
// A Session follows one chat: event sequences are compared across the whole events stream, which
// is ordered per chat.
package session

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/backendim/brain/proto"
	"github.com/coder/websocket"
)

// maxMessageBytes bounds one message from the gateway. A status answer carries up to 50 events and
// a success payload one entry per object, which can exceed the library's 32 KiB default.
const maxMessageBytes = 16 << 20

// Options configure a Session. Zero durations take the defaults given.
type Options struct {
	URL   string // ws:// or wss:// address of the gateway's /ws
	Token string // sent as "Authorization: Bearer"; empty when the gateway runs with AUTH_MODE=none
	// After is the last sequence the caller has already seen: events up to it are not delivered.
	After uint64

	DialTimeout     time.Duration // bound on one connection attempt; default 10s
	WriteTimeout    time.Duration // bound on sending one request; default 10s
	PingInterval    time.Duration // how often the client checks that the gateway answers; default 30s
	ReconnectWindow time.Duration // how long to keep trying to reconnect before giving up; default 1m
	// Backoff returns the delay before reconnect attempt n (1, 2, …) after the connection ended
	// with closeCode (-1 when it dropped without one). Default: DefaultBackoff.
	Backoff func(n, closeCode int) time.Duration
	// Notify, when set, is told in one sentence each time the connection is lost or resumed.
	Notify func(string)
	// HTTPClient makes the handshake; default http.DefaultClient.
	HTTPClient *http.Client
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.DialTimeout, 10*time.Second)
	def(&o.WriteTimeout, 10*time.Second)
	def(&o.PingInterval, 30*time.Second)
	def(&o.ReconnectWindow, time.Minute)
	if o.Backoff == nil {
		o.Backoff = DefaultBackoff
	}
	if o.Notify == nil {
		o.Notify = func(string) {}
	}
	return o
}

// Resume returns the request that continues the conversation on a new connection. last is the
// highest event sequence delivered so far (Options.After if none was).
type Resume func(last uint64) proto.Request

// Frame is one message from the gateway, decoded and as it was sent.
type Frame struct {
	Msg proto.Message
	Raw []byte
}

// Session is one client's conversation with the gateways, across reconnects. Its methods must be
// called from one goroutine.
type Session struct {
	o      Options
	resume Resume
	conn   *websocket.Conn
	pinger *pinger
	last   uint64

	// While the connection is down: when it was lost, how many attempts were made, and why the
	// last one failed.
	failingSince time.Time
	attempt      int
	closeCode    int
	cause        error
}

// Open connects to the gateway and sends first. It fails when the gateway cannot be reached or
// refuses the token; once it succeeds, connection losses are handled by Next.
func Open(ctx context.Context, o Options, first proto.Request, resume Resume) (*Session, error) {
	s := &Session{o: o.withDefaults(), resume: resume, last: o.After}
	c, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	s.attach(c)
	if err := s.send(ctx, first); err != nil {
		if err := s.lost(ctx, err); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Next returns the next message: a chat event not delivered before, or an answer to a request.
// It reconnects and resumes as often as needed. It fails when ctx ends, when the gateway closes
// the socket with a code that is not marked Reconnect (*ClosedError), when it refuses the token
// (*AuthError), or when the connection cannot be restored within Options.ReconnectWindow.
func (s *Session) Next(ctx context.Context) (Frame, error) {
	for {
		if s.conn == nil {
			if err := s.reconnect(ctx); err != nil {
				return Frame{}, err
			}
		}
		typ, data, err := s.conn.Read(ctx)
		if err != nil {
			if err := s.lost(ctx, err); err != nil {
				return Frame{}, err
			}
			continue
		}
		if typ != websocket.MessageText {
			continue
		}
		m, err := proto.DecodeMessage(data)
		if err != nil {
			s.o.Notify(fmt.Sprintf("ignored a message that is not Brain's protocol: %v", err))
			continue
		}
		if transientRefusal(m) {
			err := fmt.Errorf("the gateway answered %s: %s", m.Code, m.Message)
			if err := s.lost(ctx, err); err != nil {
				return Frame{}, err
			}
			continue
		}
		if m.Seq != 0 {
			if m.Seq <= s.last {
				continue // seen before the reconnect
			}
			s.last = m.Seq
		}
		s.failingSince, s.attempt = time.Time{}, 0
		return Frame{Msg: m, Raw: data}, nil
	}
}

// Last returns the highest event sequence delivered (Options.After if none was).
func (s *Session) Last() uint64 { return s.last }

// Close ends the conversation with a normal closure. It may be called more than once.
func (s *Session) Close() error {
	if s.conn == nil {
		return nil
	}
	s.pinger.stop()
	err := s.conn.Close(websocket.StatusNormalClosure, "")
	s.conn, s.pinger = nil, nil
	if err != nil {
		return fmt.Errorf("close connection to %s: %w", s.o.URL, err)
	}
	return nil
}

func (s *Session) send(ctx context.Context, r proto.Request) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode %s request: %w", r.Type, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.WriteTimeout)
	defer cancel()
	if err := s.conn.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("send %s request: %w", r.Type, err)
	}
	return nil
}

// transientRefusal reports whether m refuses a request for a reason that a new attempt, possibly
// on another replica, may not meet.
func transientRefusal(m proto.Message) bool {
	if m.Type != proto.TypeError || m.JobID != "" {
		return false
	}
	switch m.Code {
	case proto.CodeUnavailable, proto.CodeShuttingDown, proto.CodeInternal:
		return true
	}
	return false
}
