package stack

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/backendim/brain/proto"
	"github.com/coder/websocket"
)

// Client is a real WebSocket client of a gateway.
type Client struct {
	t  testing.TB
	WS *websocket.Conn
}

// Dial connects to the gateway's /ws with token.
func Dial(t testing.TB, gw *Proc, token string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, gw.WSURL(), &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		t.Fatalf("dial %s: %v", gw.Name, err)
	}
	c.SetReadLimit(4 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return &Client{t: t, WS: c}
}

// Send writes v as one JSON text frame.
func (c *Client) Send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WS.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// Read returns the next message, failing the test after d.
func (c *Client) Read(d time.Duration) proto.Message {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, b, err := c.WS.Read(ctx)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	m, err := proto.DecodeMessage(b)
	if err != nil {
		c.t.Fatalf("decode %s: %v", b, err)
	}
	return m
}

// UntilFinal reads messages of jobID (others are skipped) up to and including its final event.
func (c *Client) UntilFinal(jobID string, d time.Duration) []proto.Message {
	c.t.Helper()
	deadline := time.Now().Add(d)
	var out []proto.Message
	for {
		m := c.Read(time.Until(deadline))
		if m.JobID != jobID {
			continue
		}
		out = append(out, m)
		if m.Final() {
			return out
		}
	}
}
