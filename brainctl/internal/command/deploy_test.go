package command_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/backendim/brain/brainctl/internal/command"
	"github.com/backendim/brain/brainctl/internal/gatewaytest"
	"github.com/backendim/brain/proto"
	"github.com/google/go-cmp/cmp"
)

func TestDeployExitCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		script   gatewaytest.Script
		auth     func(int, string) bool
		extra    []string
		wantCode int
		wantOut  string // in stdout
		wantErr  string // in the returned error
	}{
		{
			name: "success",
			script: func(c *gatewaytest.Conn) {
				if req, ok := c.Read(); ok {
					c.Send(queued(1, req.RequestID), ev(2, proto.StageStarted, "attempt 1 on worker w-1"), success(3))
					c.WaitClosed()
				}
			},
			wantCode: command.ExitOK,
			wantOut:  "success     deployed " + sha + " to im-c1-u1: 1 object in 4.2s (1 found)",
		},
		{
			name: "job error",
			script: func(c *gatewaytest.Conn) {
				if req, ok := c.Read(); ok {
					c.Send(queued(1, req.RequestID), failure(2, proto.CodeCommitNotFound, "commit main not found in https://git.example.com/org/app.git"))
					c.WaitClosed()
				}
			},
			wantCode: command.ExitFailed,
			wantOut:  "error       commit_not_found: commit main not found",
		},
		{
			name: "refused: rate limited",
			script: func(c *gatewaytest.Conn) {
				if _, ok := c.Read(); ok {
					c.Send(refusal(proto.CodeRateLimited, "too many jobs: at most 30 per minute (burst 10); retry in 3s"))
					c.WaitClosed()
				}
			},
			wantCode: command.ExitFailed,
			wantOut:  "error       rate_limited: too many jobs",
		},
		{
			name: "refused: another user",
			script: func(c *gatewaytest.Conn) {
				if _, ok := c.Read(); ok {
					c.Send(refusal(proto.CodeForbidden, `userId "u2" is not the user of your token`))
					c.WaitClosed()
				}
			},
			extra:    []string{"--user", "u2"},
			wantCode: command.ExitConnection,
			wantOut:  "forbidden: userId",
		},
		{
			name:     "token refused",
			script:   func(*gatewaytest.Conn) {},
			auth:     func(int, string) bool { return false },
			wantCode: command.ExitConnection,
			wantErr:  "the gateway refused the token (HTTP 401): invalid token",
		},
		{
			name: "closed without reconnect",
			script: func(c *gatewaytest.Conn) {
				if req, ok := c.Read(); ok {
					c.Send(queued(1, req.RequestID))
					c.Close(1008, "policy violation")
				}
			},
			wantCode: command.ExitConnection,
			wantErr:  "the gateway closed the connection (code 1008): policy violation; it keeps running: brainctl watch --chat c1 --after 1",
		},
		{
			name: "timeout",
			script: func(c *gatewaytest.Conn) {
				if req, ok := c.Read(); ok {
					c.Send(queued(1, req.RequestID))
					c.WaitClosed()
				}
			},
			extra:    []string{"--timeout", "300ms"},
			wantCode: command.ExitTimeout,
			wantErr:  "--timeout passed while following job " + job + "; it keeps running: brainctl watch --chat c1 --after 1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var opts []gatewaytest.Option
			if tt.auth != nil {
				opts = append(opts, gatewaytest.WithAuth(tt.auth))
			}
			gw := gatewaytest.New(t, tt.script, opts...)
			r := run(t, nil, deployArgs(gw.URL, tt.extra...)...)
			if r.code != tt.wantCode {
				t.Fatalf("want exit %d; got %s", tt.wantCode, r)
			}
			if !strings.Contains(r.stdout, tt.wantOut) {
				t.Errorf("stdout lacks %q; got %s", tt.wantOut, r)
			}
			if tt.wantErr != "" && (r.err == nil || !strings.Contains(r.err.Error(), tt.wantErr)) {
				t.Errorf("error lacks %q; got %s", tt.wantErr, r)
			}
		})
	}
}

func TestDeployNoGateway(t *testing.T) {
	t.Parallel()
	r := run(t, nil, deployArgs("ws://127.0.0.1:1/ws")...)
	if r.code != command.ExitConnection || !strings.Contains(r.err.Error(), "connect to ws://127.0.0.1:1/ws") {
		t.Errorf("want exit 3 naming the address; got %s", r)
	}
}

func TestDeployInterrupted(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	gw := gatewaytest.New(t, func(c *gatewaytest.Conn) {
		if req, ok := c.Read(); ok {
			c.Send(queued(1, req.RequestID))
			cancel() // Ctrl-C
			c.WaitClosed()
		}
	})
	r := brainctl(ctx, nil, deployArgs(gw.URL)...)
	if r.code != command.ExitInterrupted || !strings.Contains(r.err.Error(), "interrupted while following") {
		t.Errorf("want exit %d; got %s", command.ExitInterrupted, r)
	}
}

// TestDeployResumes checks the whole client: the deploy is sent with a requestId and the token from
// the environment; the first connection is lost before any event, so the deploy is sent again with
// the same requestId; the second replica shuts down mid-job; the third resumes after the last event
// seen and replays one more than asked. Every event is shown once.
func TestDeployResumes(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var auth []string
	gw := gatewaytest.New(t, func(c *gatewaytest.Conn) {
		req, ok := c.Read()
		if !ok {
			return
		}
		switch c.N {
		case 0:
			c.Drop()
		case 1:
			dup := proto.Message{Type: proto.TypeProgress, Stage: proto.StageQueued, JobID: job, ChatID: "c1",
				RequestID: req.RequestID, Duplicate: true, Time: t0, Message: "requestId was already accepted; following it"}
			other := ev(2, proto.StageQueued, "another job of the chat")
			other.JobID = strings.Repeat("e", 32)
			c.Send(dup, queued(1, req.RequestID), other, ev(3, proto.StageStarted, "attempt 1 on worker w-1"))
			c.Close(proto.CloseGoingAway, "server shutting down")
		default:
			c.Send(ev(3, proto.StageStarted, "attempt 1 on worker w-1"), ev(4, proto.StageFetching, "fetching"), success(5))
			c.WaitClosed()
		}
	}, gatewaytest.WithAuth(func(_ int, h string) bool {
		mu.Lock()
		defer mu.Unlock()
		auth = append(auth, h)
		return true
	}))
	env := map[string]string{"BRAIN_URL": gw.URL, "BRAIN_TOKEN": "env-token", "BRAIN_USER": "u1"}
	r := run(t, env, "deploy", "--chat", "c1", "--repo", "https://git.example.com/org/app.git", "--commit", "main", "--request-id", "r-42")
	if r.code != 0 {
		t.Fatalf("want exit 0; got %s", r)
	}
	want := `2025-06-01T12:00:00.000Z queued      requestId was already accepted; following it
2025-06-01T12:00:01.000Z queued      queued: waiting for a worker
2025-06-01T12:00:03.000Z started     attempt 1 on worker w-1
2025-06-01T12:00:04.000Z fetching    fetching
2025-06-01T12:00:05.000Z success     deployed ` + sha + ` to im-c1-u1: 1 object in 4.2s (1 found)
2025-06-01T12:00:05.000Z object      found      Deployment/web
`
	if diff := cmp.Diff(want, r.stdout); diff != "" {
		t.Errorf("stdout (-want +got):\n%s", diff)
	}
	deploy := proto.Request{Type: proto.TypeDeploy, UserID: "u1", ChatID: "c1", RepoURL: "https://git.example.com/org/app.git",
		CommitHash: "main", RequestID: "r-42"}
	wantReqs := []gatewaytest.Request{{Conn: 0, Req: deploy}, {Conn: 1, Req: deploy},
		{Conn: 2, Req: proto.Request{Type: proto.TypeSubscribe, UserID: "u1", ChatID: "c1", After: 3}}}
	if diff := cmp.Diff(wantReqs, gw.Requests()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]string{"Bearer env-token", "Bearer env-token", "Bearer env-token"}, auth); diff != "" {
		t.Errorf("Authorization headers (-want +got):\n%s", diff)
	}
	for _, w := range []string{"reconnecting", "resumed with deploy", "resumed with subscribe after 3"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
		}
	}
}

func TestDeployJSON(t *testing.T) {
	t.Parallel()
	sent := []proto.Message{queued(1, "r-1"), ev(2, proto.StageStarted, "attempt 1"), success(3)}
	gw := gatewaytest.New(t, func(c *gatewaytest.Conn) {
		if _, ok := c.Read(); ok {
			c.Send(sent...)
			c.WaitClosed()
		}
	})
	r := run(t, nil, deployArgs(gw.URL, "--json", "--request-id", "r-1")...)
	if r.code != 0 {
		t.Fatalf("want exit 0; got %s", r)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	var got []proto.Message
	for _, l := range lines {
		m, err := proto.DecodeMessage([]byte(l))
		if err != nil {
			t.Fatalf("line %q is not a message: %v", l, err)
		}
		got = append(got, m)
	}
	if diff := cmp.Diff(sent, got); diff != "" {
		t.Errorf("JSON lines (-want +got):\n%s", diff)
	}
}
