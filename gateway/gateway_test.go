package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/proto/natsauth"
	"github.com/backendim/brain/proto/natsserver"
	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go/jetstream"
)

const testSecret = "0123456789abcdef0123456789abcdef-test-only"

// gateway is a running gateway process (run in-process) with its own embedded NATS.
type gateway struct {
	addr    string
	natsURL string
	seeds   string // the embedded server's seed directory
	stop    context.CancelFunc
	done    chan error
	logs    syncBuffer
}

// syncBuffer collects a gateway's log.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startGateway runs the gateway with env on top of test defaults. With via == nil it embeds NATS;
// otherwise it connects to via's embedded NATS with the gateway's seed.
func startGateway(t testing.TB, via *gateway, env map[string]string) *gateway {
	t.Helper()
	g := &gateway{addr: freeAddr(t), done: make(chan error, 1)}
	vars := map[string]string{"LISTEN_ADDR": g.addr, "AUTH_MODE": "jwt", "AUTH_JWT_SECRET": testSecret, "WS_MAX_MESSAGES_PER_SECOND": "1000",
		"LOG_LEVEL": "error", "SHUTDOWN_TIMEOUT": "5s"}
	if via == nil {
		g.natsURL = "nats://" + freeAddr(t)
		store := t.TempDir()
		vars["NATS_EMBEDDED"] = "true"
		vars["NATS_EMBEDDED_LISTEN"] = strings.TrimPrefix(g.natsURL, "nats://")
		vars["NATS_STORE_DIR"] = store
	} else {
		g.natsURL, g.seeds = via.natsURL, via.seeds
		vars["NATS_URL"] = via.natsURL
		vars["NATS_NKEY_FILE"] = g.seed(natsauth.Gateway)
	}
	for k, v := range env {
		vars[k] = v
	}
	if via == nil {
		g.seeds = natsserver.SeedDir(vars["NATS_STORE_DIR"])
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.stop = cancel
	var logw io.Writer = &g.logs
	if os.Getenv("BRAIN_TEST_LOG") != "" {
		logw = io.MultiWriter(logw, os.Stderr)
	}
	go func() { g.done <- run(ctx, nil, func(k string) string { return vars[k] }, logw) }()
	t.Cleanup(func() { g.shutdown(t) })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + g.addr + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return g
			}
		}
		select {
		case err := <-g.done:
			g.done <- nil
			t.Fatalf("gateway exited: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("gateway not ready in 20s")
		}
	}
}

// seed is the seed file of role on the gateway's embedded NATS.
func (g *gateway) seed(r natsauth.Role) string { return natsauth.SeedFile(g.seeds, r) }

func (g *gateway) shutdown(t testing.TB) {
	t.Helper()
	g.stop()
	select {
	case err, ok := <-g.done:
		if ok && err != nil {
			t.Errorf("gateway: %v", err)
		}
		if ok {
			close(g.done) // a second shutdown finds it closed
		}
		// The embedded NATS server logs a subject it refused to a client: a role lacks a permission.
		if v := grep(g.logs.String(), "Violation"); v != "" {
			t.Errorf("NATS refused subjects (a role lacks a permission in proto/natsauth?):\n%s", v)
		}
	case <-time.After(15 * time.Second):
		t.Error("gateway did not stop in 15s")
	}
}

func token(t testing.TB, user string, ttl time.Duration) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: user,
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(ttl))}).SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// client is a real WebSocket client.
type client struct {
	t  testing.TB
	ws *websocket.Conn
}

func dial(t testing.TB, g *gateway, tok string) *client {
	t.Helper()
	c, err := dialErr(g, tok)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return &client{t: t, ws: c}
}

func dialErr(g *gateway, tok string) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h := http.Header{}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	c, _, err := websocket.Dial(ctx, "ws://"+g.addr+"/ws", &websocket.DialOptions{HTTPHeader: h})
	if err == nil {
		c.SetReadLimit(1 << 20)
	}
	return c, err
}

func (c *client) send(v any) {
	c.t.Helper()
	b, ok := v.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(v); err != nil {
			c.t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) read() proto.Message {
	c.t.Helper()
	m, err := c.readErr(10 * time.Second)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return m
}

func (c *client) readErr(d time.Duration) (proto.Message, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, b, err := c.ws.Read(ctx)
	if err != nil {
		return proto.Message{}, err
	}
	return proto.DecodeMessage(b)
}

// natsWorker plays a worker's part on the NATS side: it takes jobs and publishes events.
type natsWorker struct {
	t  testing.TB
	js jetstream.JetStream
	kv jetstream.KeyValue
}

// newNATSWorker connects to g's NATS as the admin (it also inspects streams).
func newNATSWorker(t testing.TB, g *gateway) *natsWorker {
	t.Helper()
	nc, err := natsauth.Connect(natsauth.Admin, g.natsURL, g.seed(natsauth.Admin), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	kv, err := js.KeyValue(context.Background(), proto.JobsBucket)
	if err != nil {
		t.Fatal(err)
	}
	return &natsWorker{t: t, js: js, kv: kv}
}

func (w *natsWorker) publish(user string, m proto.Message) uint64 {
	w.t.Helper()
	m.Time = time.Now().UTC()
	b, _ := json.Marshal(m)
	ack, err := w.js.Publish(context.Background(), proto.EventSubject(user, m.ChatID), b)
	if err != nil {
		w.t.Fatal(err)
	}
	return ack.Sequence
}

func (w *natsWorker) jobCount() uint64 {
	w.t.Helper()
	s, err := w.js.Stream(context.Background(), proto.JobsStream)
	if err != nil {
		w.t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return info.State.Msgs
}

func deployMsg(user, chat string) map[string]any {
	return map[string]any{"userId": user, "chatId": chat, "repoURL": "https://git.example.com/org/app.git", "commitHash": "a1b2c3d4e5"}
}

// until reads messages until one satisfies ok, failing after 10s.
func (c *client) until(ok func(proto.Message) bool) (seen []proto.Message) {
	c.t.Helper()
	for {
		m := c.read()
		seen = append(seen, m)
		if ok(m) {
			return seen
		}
	}
}

func closeCode(err error) int { return int(websocket.CloseStatus(err)) }
