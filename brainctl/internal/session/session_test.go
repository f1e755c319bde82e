package session_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backendim/brain/brainctl/internal/gatewaytest"
	"github.com/backendim/brain/brainctl/internal/session"
	"github.com/backendim/brain/proto"
	"github.com/google/go-cmp/cmp"
)

const job = "0123456789abcdef0123456789abcdef"

var deploy = proto.Request{Type: proto.TypeDeploy, ChatID: "c1", RepoURL: "https://git.example.com/app.git",
	CommitHash: "main", RequestID: "r-1"}

// resumeDeploy is what brainctl deploy does: send the deploy again (same requestId) until an event
// was seen, then subscribe after the last one.
func resumeDeploy(last uint64) proto.Request {
	if last == 0 {
		return deploy
	}
	return proto.Request{Type: proto.TypeSubscribe, ChatID: "c1", After: last}
}

func event(seq uint64, stage proto.Stage) proto.Message {
	return proto.Message{Type: proto.TypeProgress, JobID: job, ChatID: "c1", Seq: seq, Stage: stage, RequestID: "r-1"}
}

func success(seq uint64) proto.Message {
	return proto.Message{Type: proto.TypeSuccess, JobID: job, ChatID: "c1", Seq: seq,
		Payload: &proto.Result{Commit: strings.Repeat("a", 40), Namespace: "im-c1-u1"}}
}

// fast is a session configuration for tests: no waiting between attempts.
func fast(url string, notes *notes) session.Options {
	return session.Options{URL: url, Token: "t", Backoff: func(int, int) time.Duration { return time.Millisecond },
		ReconnectWindow: 5 * time.Second, Notify: notes.add}
}

type notes struct {
	mu sync.Mutex
	l  []string
}

func (n *notes) add(s string) { n.mu.Lock(); n.l = append(n.l, s); n.mu.Unlock() }

func (n *notes) String() string { n.mu.Lock(); defer n.mu.Unlock(); return strings.Join(n.l, "\n") }

// follow reads until the job's final event and returns what each delivered frame was.
func follow(t *testing.T, s *session.Session) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var got []string
	for {
		f, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("Next after %v: %v", got, err)
		}
		got = append(got, describe(f.Msg))
		if f.Msg.Final() {
			return got
		}
	}
}

func describe(m proto.Message) string {
	switch {
	case m.Duplicate:
		return "duplicate " + m.JobID
	case m.Seq != 0:
		return fmt.Sprintf("%d %s%s", m.Seq, m.Type, m.Stage)
	default:
		return m.Type
	}
}

func TestResumeAfterConnectionEnds(t *testing.T) {
	t.Parallel()
	ends := map[string]func(c *gatewaytest.Conn){
		"going away":     func(c *gatewaytest.Conn) { c.Close(proto.CloseGoingAway, "server shutting down") },
		"internal error": func(c *gatewaytest.Conn) { c.Close(proto.CloseInternal, "event relay failed") },
		"slow client":    func(c *gatewaytest.Conn) { c.Close(proto.CloseSlowClient, "client too slow") },
		"flood":          func(c *gatewaytest.Conn) { c.Close(proto.CloseFlood, "too many messages") },
		"too big":        func(c *gatewaytest.Conn) { c.Close(proto.CloseTooBig, "message too big") },
		"dropped":        func(c *gatewaytest.Conn) { c.Drop() },
	}
	for name, end := range ends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			gw := gatewaytest.New(t, func(c *gatewaytest.Conn) {
				if _, ok := c.Read(); !ok {
					return
				}
				if c.N == 0 {
					c.Send(event(5, proto.StageQueued), event(6, proto.StageStarted), event(7, proto.StageFetching))
					end(c)
					return
				}
				// A replica that replays more than asked: the session must drop what it has seen.
				c.Send(event(6, proto.StageStarted), event(7, proto.StageFetching), event(8, proto.StageCheckedOut), success(9))
				c.WaitClosed()
			})
			var n notes
			s, err := session.Open(t.Context(), fast(gw.URL, &n), deploy, resumeDeploy)
			if err != nil {
				t.Fatal(err)
			}
			got := follow(t, s)
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			want := []string{"5 progressqueued", "6 progressstarted", "7 progressfetching", "8 progresschecked_out", "9 success"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("delivered (-want +got):\n%s", diff)
			}
			wantReqs := []gatewaytest.Request{{Conn: 0, Req: deploy},
				{Conn: 1, Req: proto.Request{Type: proto.TypeSubscribe, ChatID: "c1", After: 7}}}
			if diff := cmp.Diff(wantReqs, gw.Requests()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			if !strings.Contains(n.String(), "reconnected; resumed with subscribe after 7") {
				t.Errorf("notices do not tell about the resume:\n%s", n.String())
			}
		})
	}
}

func TestResendBeforeFirstEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		first func(c *gatewaytest.Conn)
	}{
		{"dropped before queued", func(c *gatewaytest.Conn) { c.Drop() }},
		{"gateway unavailable", func(c *gatewaytest.Conn) {
			c.Send(proto.ErrorMessage(proto.Errorf(proto.CodeUnavailable, "NATS did not answer; retry"), "r-1"))
			c.WaitClosed()
		}},
		{"gateway shutting down", func(c *gatewaytest.Conn) {
			c.Send(proto.ErrorMessage(proto.Errorf(proto.CodeShuttingDown, "reconnect"), "r-1"))
			c.WaitClosed()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			gw := gatewaytest.New(t, func(c *gatewaytest.Conn) {
				if _, ok := c.Read(); !ok {
					return
				}
				if c.N == 0 {
					tt.first(c)
					return
				}
				dup := proto.Message{Type: proto.TypeProgress, Stage: proto.StageQueued, JobID: job, ChatID: "c1",
					RequestID: "r-1", Duplicate: true}
				c.Send(dup, event(5, proto.StageQueued), success(6))
				c.WaitClosed()
			})
			var n notes
			s, err := session.Open(t.Context(), fast(gw.URL, &n), deploy, resumeDeploy)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			got := follow(t, s)
			want := []string{"duplicate " + job, "5 progressqueued", "6 success"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("delivered (-want +got):\n%s", diff)
			}
			wantReqs := []gatewaytest.Request{{Conn: 0, Req: deploy}, {Conn: 1, Req: deploy}}
			if diff := cmp.Diff(wantReqs, gw.Requests()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEndsWithoutReconnect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code int
	}{{proto.CloseNormal}, {1008}, {4999}}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.code), func(t *testing.T) {
			t.Parallel()
			gw := gatewaytest.New(t, func(c *gatewaytest.Conn) {
				if _, ok := c.Read(); ok {
					c.Send(event(5, proto.StageQueued))
					c.Close(tt.code, "bye")
				}
			})
			s, err := session.Open(t.Context(), fast(gw.URL, &notes{}), deploy, resumeDeploy)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.Next(t.Context()); err != nil {
				t.Fatalf("first Next: %v", err)
			}
			_, err = s.Next(t.Context())
			var ce *session.ClosedError
			if !errors.As(err, &ce) {
				t.Fatalf("Next: err = %v, want a *session.ClosedError", err)
			}
			if diff := cmp.Diff(&session.ClosedError{Code: tt.code, Reason: "bye"}, ce); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if n := gw.Conns(); n != 1 {
				t.Errorf("%d connections, want 1 (no reconnect)", n)
			}
		})
	}
}

func TestAuthRefused(t *testing.T) {
	t.Parallel()
	t.Run("at open", func(t *testing.T) {
		t.Parallel()
		gw := gatewaytest.New(t, func(*gatewaytest.Conn) {}, gatewaytest.WithAuth(func(int, string) bool { return false }))
		_, err := session.Open(t.Context(), fast(gw.URL, &notes{}), deploy, resumeDeploy)
		var ae *session.AuthError
		if !errors.As(err, &ae) || ae.Status != 401 || !strings.Contains(ae.Message, "token is expired") {
			t.Fatalf("Open: err = %v, want a 401 *session.AuthError with the gateway's message", err)
		}
	})
	t.Run("token expired mid-job", func(t *testing.T) {
		t.Parallel()
		var auth []string
		var mu sync.Mutex
		gw := gatewaytest.New(t, func(c *gatewaytest.Conn) {
			if _, ok := c.Read(); ok {
				c.Send(event(5, proto.StageQueued))
				c.Close(proto.CloseTokenExpire, "token expired")
			}
		}, gatewaytest.WithAuth(func(attempt int, h string) bool {
			mu.Lock()
			auth = append(auth, h)
			mu.Unlock()
			return attempt == 0
		}))
		s, err := session.Open(t.Context(), fast(gw.URL, &notes{}), deploy, resumeDeploy)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Next(t.Context()); err != nil {
			t.Fatal(err)
		}
		_, err = s.Next(t.Context())
		var ae *session.AuthError
		if !errors.As(err, &ae) {
			t.Fatalf("Next: err = %v, want *session.AuthError", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if diff := cmp.Diff([]string{"Bearer t", "Bearer t"}, auth); diff != "" {
			t.Errorf("Authorization headers (-want +got):\n%s", diff)
		}
	})
}

func TestGivesUpAfterReconnectWindow(t *testing.T) {
	t.Parallel()
	gw := gatewaytest.New(t, func(c *gatewaytest.Conn) {
		if _, ok := c.Read(); ok {
			c.Close(proto.CloseInternal, "event relay failed")
		}
	})
	o := fast(gw.URL, &notes{})
	o.ReconnectWindow = 100 * time.Millisecond
	o.Backoff = func(int, int) time.Duration { return 20 * time.Millisecond }
	s, err := session.Open(t.Context(), o, deploy, resumeDeploy)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Next(t.Context())
	if err == nil || !strings.Contains(err.Error(), "not restored within 100ms") {
		t.Fatalf("Next: err = %v, want the reconnect window to run out", err)
	}
	if n := gw.Conns(); n < 2 {
		t.Errorf("%d connections, want at least 2 (it should have tried again)", n)
	}
}

func TestUnansweredPingsReconnect(t *testing.T) {
	t.Parallel()
	gw := gatewaytest.New(t, func(c *gatewaytest.Conn) {
		if _, ok := c.Read(); !ok {
			return
		}
		if c.N == 0 {
			c.Send(event(5, proto.StageQueued))
			c.Stall()
			return
		}
		c.Send(success(6))
		c.WaitClosed()
	})
	o := fast(gw.URL, &notes{})
	o.PingInterval = 100 * time.Millisecond
	s, err := session.Open(t.Context(), o, deploy, resumeDeploy)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := follow(t, s)
	if diff := cmp.Diff([]string{"5 progressqueued", "6 success"}, got); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
	wantReqs := []gatewaytest.Request{{Conn: 0, Req: deploy},
		{Conn: 1, Req: proto.Request{Type: proto.TypeSubscribe, ChatID: "c1", After: 5}}}
	if diff := cmp.Diff(wantReqs, gw.Requests()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestLargeMessage(t *testing.T) {
	t.Parallel()
	big := success(6)
	for i := range 2000 {
		big.Payload.Objects = append(big.Payload.Objects, proto.ObjectResult{Kind: "ConfigMap", Name: fmt.Sprintf("config-%04d", i), Action: proto.ActionFound})
	}
	gw := gatewaytest.New(t, func(c *gatewaytest.Conn) {
		if _, ok := c.Read(); ok {
			c.Send(event(5, proto.StageQueued), big)
			c.WaitClosed()
		}
	})
	s, err := session.Open(t.Context(), fast(gw.URL, &notes{}), deploy, resumeDeploy)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	follow(t, s)
	if n := gw.Conns(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

func TestOpenFailsWithoutGateway(t *testing.T) {
	t.Parallel()
	gw := gatewaytest.New(t, func(*gatewaytest.Conn) {})
	_, err := session.Open(t.Context(), fast("ws://127.0.0.1:1/ws", &notes{}), deploy, resumeDeploy)
	if err == nil || !strings.Contains(err.Error(), "connect to ws://127.0.0.1:1/ws") {
		t.Errorf("Open on a closed port: err = %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := session.Open(ctx, fast(gw.URL, &notes{}), deploy, resumeDeploy); !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a cancelled context: err = %v, want context.Canceled", err)
	}
}
