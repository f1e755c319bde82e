package wsapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/backendim/brain/gateway/internal/auth"
	"github.com/backendim/brain/proto"
	"github.com/coder/websocket"
)

// conn is one client socket. The reader runs in serve; a writer goroutine drains the bounded send
// queue; a pinger keeps the connection alive; one follower goroutine runs per followed chat.
type conn struct {
	s    *Server
	ws   *websocket.Conn
	id   auth.Identity
	log  *slog.Logger
	send chan []byte

	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	follows map[string]*follower

	closeOnce sync.Once
	msgRate   bucket
}

type follower struct {
	stop context.CancelFunc
	done chan struct{}
}

func newConn(s *Server, ws *websocket.Conn, id auth.Identity, log *slog.Logger) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	return &conn{s: s, ws: ws, id: id, log: log, send: make(chan []byte, s.o.SendQueue),
		ctx: ctx, cancel: cancel, follows: map[string]*follower{}}
}

func (c *conn) serve() {
	defer c.cancel()
	go c.writeLoop()
	go c.pingLoop()
	if !c.id.Expires.IsZero() {
		t := time.AfterFunc(time.Until(c.id.Expires), func() { c.close(proto.CloseTokenExpire, "token expired") })
		defer t.Stop()
	}
	for {
		typ, data, err := c.ws.Read(c.ctx)
		if err != nil {
			c.readFailed(err)
			return
		}
		if !c.msgRate.allow(time.Now(), c.s.o.MessagesPerSecond, int(2*c.s.o.MessagesPerSecond)+1) {
			c.close(proto.CloseFlood, "too many messages")
			return
		}
		if typ != websocket.MessageText {
			c.reply(proto.ErrorMessage(proto.Errorf(proto.CodeBadRequest, "send JSON text frames, not binary"), ""))
			continue
		}
		c.handle(data)
	}
}

func (c *conn) readFailed(err error) {
	switch websocket.CloseStatus(err) {
	case websocket.StatusMessageTooBig:
		c.s.o.Metrics.Closes.WithLabelValues(strconv.Itoa(proto.CloseTooBig)).Inc()
		c.log.Info("closed: frame too big", "limit", proto.MaxFrameBytes)
	case -1:
		if c.ctx.Err() == nil && !errors.Is(err, context.Canceled) {
			c.log.Debug("read failed", "err", err)
		}
	}
}

// writeLoop sends queued messages. A write that takes longer than WriteTimeout means the client is
// not reading: the library then closes the connection, and the client resumes elsewhere.
func (c *conn) writeLoop() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case b := <-c.send:
			ctx, cancel := context.WithTimeout(c.ctx, c.s.o.WriteTimeout)
			err := c.ws.Write(ctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					c.s.o.Metrics.SlowDisconnects.Inc()
					c.log.Info("closed: client not reading", "timeout", c.s.o.WriteTimeout)
				}
				c.cancel()
				return
			}
		}
	}
}

func (c *conn) pingLoop() {
	t := time.NewTicker(c.s.o.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(c.ctx, c.s.o.PingInterval)
			err := c.ws.Ping(ctx)
			cancel()
			if err != nil {
				c.log.Debug("ping failed", "err", err)
				c.cancel()
				_ = c.ws.CloseNow()
				return
			}
		}
	}
}

// enqueue queues m for the client without blocking. A full queue means the client does not keep
// up: it is closed with 4008 rather than allowed to hold up the chat's other sockets.
func (c *conn) enqueue(m proto.Message) bool {
	b, err := json.Marshal(m)
	if err != nil {
		c.log.Error("marshal message", "err", err)
		return false
	}
	select {
	case c.send <- b:
		c.s.o.Metrics.Messages.WithLabelValues("out", m.Type).Inc()
		return true
	case <-c.ctx.Done():
		return false
	default:
		c.s.o.Metrics.SlowDisconnects.Inc()
		c.close(proto.CloseSlowClient, "client too slow: resume with subscribe after")
		return false
	}
}

func (c *conn) reply(m proto.Message) { c.enqueue(m) }

// close closes the socket with code, once, without blocking the caller.
func (c *conn) close(code int, reason string) {
	c.closeOnce.Do(func() {
		c.s.o.Metrics.Closes.WithLabelValues(strconv.Itoa(code)).Inc()
		c.log.Debug("closing", "code", code, "reason", reason)
		go func() {
			_ = c.ws.Close(websocket.StatusCode(code), reason)
			c.cancel()
		}()
	})
}

// tooManyChats refuses a request that would make the socket follow one chat more than it may.
func (c *conn) tooManyChats(chatID string) *proto.Error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.follows[chatID] != nil || len(c.follows) < c.s.o.MaxChats {
		return nil
	}
	return proto.Errorf(proto.CodeTooManyChats, "this connection already follows %d chats (WS_MAX_CHATS); open another", c.s.o.MaxChats)
}

// follow makes the socket follow chatID from sequence from. If it already follows the chat it is
// left alone, unless restart (a subscribe) asks to replay from the new point. first, if not nil, is
// queued before any event of the chat.
func (c *conn) follow(userID, chatID string, from uint64, restart bool, first *proto.Message) *proto.Error {
	c.mu.Lock()
	old := c.follows[chatID]
	if old != nil && !restart {
		c.mu.Unlock()
		if first != nil {
			c.enqueue(*first)
		}
		return nil
	}
	if old == nil && len(c.follows) >= c.s.o.MaxChats {
		c.mu.Unlock()
		return proto.Errorf(proto.CodeTooManyChats, "this connection already follows %d chats (WS_MAX_CHATS); open another", c.s.o.MaxChats)
	}
	ctx, stop := context.WithCancel(c.ctx)
	f := &follower{stop: stop, done: make(chan struct{})}
	c.follows[chatID] = f
	c.mu.Unlock()
	if old != nil {
		old.stop()
		<-old.done // no event of the old follower may arrive after the new replay starts
	}
	if first != nil {
		c.enqueue(*first)
	}
	go c.runFollower(ctx, f, userID, chatID, from)
	return nil
}

func (c *conn) runFollower(ctx context.Context, f *follower, userID, chatID string, from uint64) {
	defer close(f.done)
	err := c.s.o.Relay.Follow(ctx, userID, chatID, from, func(m proto.Message) bool {
		if !m.Time.IsZero() {
			c.s.o.Metrics.RelayLag.Observe(time.Since(m.Time).Seconds())
		}
		return c.enqueue(m)
	})
	if err != nil {
		c.log.Error("relay failed", "chat", chatID, "err", err)
		c.close(proto.CloseInternal, "event relay failed; reconnect and resume")
	}
}
