package command_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/backendim/brain/brainctl/internal/command"
	"github.com/backendim/brain/proto"
)

const (
	job = "5f3a9c0e1b2d4f6a8c0e1b2d4f6a8c0e"
	sha = "3b18e512dba79e4c8300dd08aeb37f8e728b8dad"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// result is what one brainctl run did.
type result struct {
	code   int
	err    error
	stdout string
	stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, err %v\nstdout:\n%s\nstderr:\n%s", r.code, r.err, r.stdout, r.stderr)
}

// syncBuffer is a bytes.Buffer safe for the renderer and the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// brainctl runs the command line with env as the whole environment.
func brainctl(ctx context.Context, env map[string]string, args ...string) result {
	var stdout, stderr syncBuffer
	err := command.Run(ctx, args, func(k string) string { return env[k] }, &stdout, &stderr)
	return result{code: command.ExitCode(err), err: err, stdout: stdout.String(), stderr: stderr.String()}
}

func run(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	return brainctl(ctx, env, args...)
}

// Events of the job, as a worker and gateway would send them.
func ev(seq uint64, stage proto.Stage, text string) proto.Message {
	return proto.Message{Type: proto.TypeProgress, JobID: job, ChatID: "c1", Seq: seq, Stage: stage, Message: text,
		Time: t0.Add(time.Duration(seq) * time.Second)}
}

func queued(seq uint64, requestID string) proto.Message {
	m := ev(seq, proto.StageQueued, "queued: waiting for a worker")
	m.RequestID = requestID
	return m
}

func success(seq uint64) proto.Message {
	return proto.Message{Type: proto.TypeSuccess, JobID: job, ChatID: "c1", Seq: seq, Time: t0.Add(time.Duration(seq) * time.Second),
		Payload: &proto.Result{Commit: sha, Subject: "Add web", Namespace: "im-c1-u1", DurationMs: 4200,
			Objects: []proto.ObjectResult{{Kind: "Deployment", Name: "web", Action: proto.ActionFound}}}}
}

func failure(seq uint64, code proto.Code, text string) proto.Message {
	retry := code.Retryable()
	return proto.Message{Type: proto.TypeError, JobID: job, ChatID: "c1", Seq: seq, Time: t0.Add(time.Duration(seq) * time.Second),
		Code: code, Message: text, Retryable: &retry}
}

func refusal(code proto.Code, text string) proto.Message {
	return proto.ErrorMessage(proto.Errorf(code, "%s", text), "")
}

func deployArgs(url string, extra ...string) []string {
	return append([]string{"deploy", "--url", url, "--token", "tok", "--chat", "c1",
		"--repo", "https://git.example.com/org/app.git", "--commit", "main"}, extra...)
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }
