package command_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/backendim/brain/brainctl/internal/command"
	"github.com/backendim/brain/brainctl/internal/gatewaytest"
	"github.com/backendim/brain/proto"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
)

// cancelOn is an output that interrupts the command (as Ctrl-C would) once it has written marker.
type cancelOn struct {
	syncBuffer
	marker string
	cancel context.CancelFunc
}

func (c *cancelOn) Write(p []byte) (int, error) {
	n, err := c.syncBuffer.Write(p)
	if strings.Contains(c.String(), c.marker) {
		c.cancel()
	}
	return n, err
}

func TestWatch(t *testing.T) {
	t.Parallel()
	jobB := strings.Repeat("b", 32)
	gw := gatewaytest.New(t, func(c *gatewaytest.Conn) {
		req, ok := c.Read()
		if !ok {
			return
		}
		ack := proto.Message{Type: proto.TypeSubscribed, ChatID: "c1", After: req.After}
		if c.N == 0 {
			b := ev(11, proto.StageQueued, "queued: waiting for a worker")
			b.JobID = jobB
			c.Send(ack, ev(10, proto.StageStarted, "attempt 1 on worker w-1"), b)
			c.Close(proto.CloseSlowClient, "client too slow")
			return
		}
		c.Send(ack, success(12))
		c.WaitClosed()
	})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	out := &cancelOn{marker: "success", cancel: cancel}
	var stderr syncBuffer
	err := command.Run(ctx, []string{"watch", "--url", gw.URL, "--chat", "c1", "--after", "9"}, func(string) string { return "" }, out, &stderr)
	if err != nil {
		t.Fatalf("watch ended with %v (exit %d); stderr:\n%s", err, command.ExitCode(err), stderr.String())
	}
	// The subscribed lines carry no time: they are stamped with the clock, so only their text is compared.
	var got []string
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		got = append(got, l[len("2025-06-01T12:00:00.000Z "):])
	}
	want := []string{
		"-        subscribed  following chat c1 after seq 9",
		"5f3a9c0e started     attempt 1 on worker w-1",
		"bbbbbbbb queued      queued: waiting for a worker",
		"-        subscribed  following chat c1 after seq 11",
		"5f3a9c0e success     deployed " + sha + " to im-c1-u1: 1 object in 4.2s (1 found)",
		"5f3a9c0e object      found      Deployment/web",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	wantReqs := []gatewaytest.Request{
		{Conn: 0, Req: proto.Request{Type: proto.TypeSubscribe, ChatID: "c1", After: 9}},
		{Conn: 1, Req: proto.Request{Type: proto.TypeSubscribe, ChatID: "c1", After: 11}},
	}
	if diff := cmp.Diff(wantReqs, gw.Requests()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestWatchRefused(t *testing.T) {
	t.Parallel()
	gw := gatewaytest.New(t, func(c *gatewaytest.Conn) {
		if _, ok := c.Read(); ok {
			c.Send(refusal(proto.CodeTooManyChats, "this connection already follows 16 chats"))
			c.WaitClosed()
		}
	})
	r := run(t, nil, "watch", "--url", gw.URL, "--chat", "c1")
	if r.code != command.ExitFailed || !strings.Contains(r.stdout, "too_many_chats") {
		t.Errorf("want exit 1 naming the code; got %s", r)
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	st := &proto.JobStatus{
		Job: proto.Job{JobID: job, UserID: "u1", ChatID: "c1", RepoURL: "https://git.example.com/org/app.git",
			CommitHash: "nosuchbranch", SubmittedAt: t0},
		State: proto.StateFailed, Published: true, FirstSeq: 1, Attempt: 1, Worker: "w-1",
		Code: proto.CodeCommitNotFound, Message: "commit nosuchbranch not found",
		StartedAt: t0.Add(time.Second), FinishedAt: t0.Add(2 * time.Second),
	}
	answer := proto.Message{Type: proto.TypeStatusInfo, ChatID: "c1", Job: st,
		Events: []proto.Message{queued(1, ""), failure(2, proto.CodeCommitNotFound, "commit nosuchbranch not found")}}
	tests := []struct {
		name   string
		answer proto.Message
		args   []string
		want   string
	}{
		{"job", answer, nil, `job        ` + job + `
chat       c1
state      failed
repo       https://git.example.com/org/app.git
ref        nosuchbranch
namespace  im-c1-u1
worker     w-1 (attempt 1)
submitted  2025-06-01T12:00:00Z
started    2025-06-01T12:00:01Z
finished   2025-06-01T12:00:02Z (2s after submission)
error      commit_not_found: commit nosuchbranch not found

last 2 events:
2025-06-01T12:00:01.000Z queued      queued: waiting for a worker
2025-06-01T12:00:02.000Z error       commit_not_found: commit nosuchbranch not found
`},
		{"no job", proto.Message{Type: proto.TypeStatusInfo, ChatID: "c1", Message: "no jobs for this chat"}, nil,
			"chat c1: no jobs for this chat\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			gw := gatewaytest.New(t, func(c *gatewaytest.Conn) {
				if _, ok := c.Read(); ok {
					c.Send(tt.answer)
					c.WaitClosed()
				}
			})
			r := run(t, nil, append([]string{"status", "--url", gw.URL, "--chat", "c1"}, tt.args...)...)
			if r.code != 0 {
				t.Fatalf("want exit 0; got %s", r)
			}
			if diff := cmp.Diff(tt.want, r.stdout); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("json", func(t *testing.T) {
		t.Parallel()
		gw := gatewaytest.New(t, func(c *gatewaytest.Conn) {
			if _, ok := c.Read(); ok {
				c.Send(answer)
				c.WaitClosed()
			}
		})
		r := run(t, nil, "status", "--url", gw.URL, "--chat", "c1", "--json")
		got, err := proto.DecodeMessage([]byte(r.stdout))
		if r.code != 0 || err != nil {
			t.Fatalf("want exit 0 and one message (%v); got %s", err, r)
		}
		if diff := cmp.Diff(answer, got); diff != "" {
			t.Errorf("message (-want +got):\n%s", diff)
		}
	})
}

func TestCancel(t *testing.T) {
	t.Parallel()
	running := &proto.JobStatus{Job: proto.Job{JobID: job, UserID: "u1", ChatID: "c1"}, State: proto.StateRunning,
		CancelRequested: true, FirstSeq: 7}
	answer := proto.Message{Type: proto.TypeStatusInfo, ChatID: "c1", JobID: job, Job: running,
		Message: "cancel requested; the job ends with an error coded cancelled"}
	tests := []struct {
		name     string
		script   gatewaytest.Script
		args     []string
		wantCode int
		wantOut  string
		wantReqs []gatewaytest.Request
	}{
		{
			name: "cancelled",
			script: func(c *gatewaytest.Conn) {
				if _, ok := c.Read(); ok {
					c.Send(answer, ev(7, proto.StageQueued, "queued"), ev(8, proto.StageStarted, "attempt 1"),
						failure(9, proto.CodeCancelled, "cancelled by the user"))
					c.WaitClosed()
				}
			},
			wantCode: command.ExitOK,
			wantOut: "status      cancel requested; the job ends with an error coded cancelled\n" +
				"2025-06-01T12:00:09.000Z error       cancelled: cancelled by the user\n",
		},
		{
			name: "finished first",
			script: func(c *gatewaytest.Conn) {
				if _, ok := c.Read(); ok {
					c.Send(answer, success(9))
					c.WaitClosed()
				}
			},
			wantCode: command.ExitFailed,
			wantOut:  "success     deployed",
		},
		{
			name: "resumes after a lost connection",
			script: func(c *gatewaytest.Conn) {
				if _, ok := c.Read(); !ok {
					return
				}
				if c.N == 0 {
					c.Send(answer)
					c.Close(proto.CloseGoingAway, "server shutting down")
					return
				}
				c.Send(proto.Message{Type: proto.TypeSubscribed, ChatID: "c1", After: 6}, ev(7, proto.StageQueued, "queued"),
					failure(8, proto.CodeCancelled, "cancelled by the user"))
				c.WaitClosed()
			},
			wantCode: command.ExitOK,
			wantOut:  "cancelled: cancelled by the user",
			wantReqs: []gatewaytest.Request{{Conn: 0, Req: proto.Request{Type: proto.TypeCancel, JobID: job}},
				{Conn: 1, Req: proto.Request{Type: proto.TypeSubscribe, ChatID: "c1", After: 6}}},
		},
		{
			name: "no wait",
			script: func(c *gatewaytest.Conn) {
				if _, ok := c.Read(); ok {
					c.Send(answer)
					c.WaitClosed()
				}
			},
			args:     []string{"--wait=false"},
			wantCode: command.ExitOK,
			wantOut:  "cancel requested",
		},
		{
			name: "already finished",
			script: func(c *gatewaytest.Conn) {
				if _, ok := c.Read(); ok {
					c.Send(refusal(proto.CodeJobFinished, "job "+job+" has already ended (succeeded)"))
					c.WaitClosed()
				}
			},
			wantCode: command.ExitFailed,
			wantOut:  "job_finished: job " + job + " has already ended",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			gw := gatewaytest.New(t, tt.script)
			r := run(t, nil, append([]string{"cancel", "--url", gw.URL, "--job", job}, tt.args...)...)
			if r.code != tt.wantCode {
				t.Fatalf("want exit %d; got %s", tt.wantCode, r)
			}
			if !strings.Contains(r.stdout, tt.wantOut) {
				t.Errorf("stdout lacks %q; got %s", tt.wantOut, r)
			}
			if tt.wantReqs != nil {
				if diff := cmp.Diff(tt.wantReqs, gw.Requests()); diff != "" {
					t.Errorf("requests (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestToken(t *testing.T) {
	t.Parallel()
	secret := "0123456789abcdef0123456789abcdef"
	file := t.TempDir() + "/secret"
	if err := writeFile(file, secret+"\n"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want jwt.RegisteredClaims
	}{
		{"secret flag", nil, []string{"--secret", secret, "--user", "dev"}, jwt.RegisteredClaims{Subject: "dev"}},
		{"secret file and env user", map[string]string{"BRAIN_USER": "u1"}, []string{"--secret-file", file, "--ttl", "24h"},
			jwt.RegisteredClaims{Subject: "u1"}},
		{"issuer and audience", nil, []string{"--secret", secret, "--user", "dev", "--issuer", "me", "--audience", "brain"},
			jwt.RegisteredClaims{Subject: "dev", Issuer: "me", Audience: jwt.ClaimStrings{"brain"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, tt.env, append([]string{"token"}, tt.args...)...)
			if r.code != 0 || !strings.HasSuffix(r.stdout, "\n") {
				t.Fatalf("want exit 0 and one line; got %s", r)
			}
			var claims jwt.RegisteredClaims
			_, err := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired()).ParseWithClaims(
				strings.TrimSuffix(r.stdout, "\n"), &claims, func(*jwt.Token) (any, error) { return []byte(secret), nil })
			if err != nil {
				t.Fatalf("the printed token does not verify: %v", err)
			}
			if claims.ExpiresAt == nil || claims.IssuedAt == nil || !claims.ExpiresAt.After(claims.IssuedAt.Time) {
				t.Errorf("iat %v, exp %v: want exp after iat", claims.IssuedAt, claims.ExpiresAt)
			}
			claims.ExpiresAt, claims.IssuedAt = nil, nil
			if diff := cmp.Diff(tt.want, claims); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
		})
	}
}
