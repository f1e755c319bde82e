package command

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/backendim/brain/brainctl/internal/render"
	"github.com/backendim/brain/brainctl/internal/session"
	"github.com/backendim/brain/proto"
)

type deployFlags struct {
	conn    connFlags
	req     proto.Request
	timeout time.Duration
}

func parseDeploy(e *env, args []string) (deployFlags, error) {
	var f deployFlags
	fs := newFlagSet("deploy", "--chat C --repo URL --commit REF [flags]",
		"Sends a deploy job to the gateway and follows it until it succeeds or fails: a spinner per stage\n"+
			"on a terminal, timestamped lines otherwise. If the gateway closes the connection with a code\n"+
			"that asks for it (or the connection drops), brainctl reconnects and resumes where it left off.")
	f.conn.register(fs, e.getenv)
	fs.StringVar(&f.req.ChatID, "chat", "", "chat ID: the job deploys into the chat's namespace im-<chat>-<user> (required)")
	fs.StringVar(&f.req.RepoURL, "repo", "", "git repository URL, such as https://git.example.com/org/app.git (required)")
	fs.StringVar(&f.req.CommitHash, "commit", "", "commit SHA (full, or at least 4 hex digits), branch or tag (required)")
	fs.StringVar(&f.req.Path, "path", "", "directory of the manifests in the repository (default: the first of .brain/, deploy/, k8s/, kubernetes/, manifests/)")
	fs.BoolVar(&f.req.DryRun, "dry-run", false, "apply with server-side dry run: report the changes, change nothing")
	fs.StringVar(&f.req.RequestID, "request-id", "", "idempotency key: the same key never starts a second job (default: a random one)")
	fs.DurationVar(&f.timeout, "timeout", 15*time.Minute, "stop following after this long (the job keeps running)")
	if err := parse(fs, "deploy", args, e.stdout); err != nil {
		return f, err
	}
	if err := required("deploy", [2]string{"chat", f.req.ChatID}, [2]string{"repo", f.req.RepoURL},
		[2]string{"commit", f.req.CommitHash}); err != nil {
		return f, err
	}
	if err := f.conn.check("deploy"); err != nil {
		return f, err
	}
	if err := positive("deploy", "timeout", f.timeout); err != nil {
		return f, err
	}
	f.req.Type, f.req.UserID = proto.TypeDeploy, f.conn.user
	if f.req.RequestID == "" {
		f.req.RequestID = newRequestID()
	}
	if perr := f.req.Validate(); perr != nil {
		return f, usageError("deploy", "%s", perr.Message)
	}
	return f, nil
}

// newRequestID returns a fresh idempotency key. brainctl always sends one, so that after a lost
// connection it can send the deploy again without starting a second job.
func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "brainctl-" + hex.EncodeToString(b[:])
}

func deploy(parent context.Context, e *env, args []string) error {
	f, err := parseDeploy(e, args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(parent, f.timeout)
	defer cancel()
	r, stop := e.output(f.conn.json, true, false)
	defer stop()
	// Until the job's first event arrives, a new connection sends the deploy again: the requestId
	// makes the gateway answer with the job it already has. After that, it resumes the chat.
	resume := func(last uint64) proto.Request {
		if last == 0 {
			return f.req
		}
		return proto.Request{Type: proto.TypeSubscribe, UserID: f.req.UserID, ChatID: f.req.ChatID, After: last}
	}
	s, err := session.Open(ctx, sessionOptions(f.conn, r), f.req, resume)
	if err != nil {
		return stopped(parent, ctx, err, "the deploy", "check --url and --token")
	}
	defer s.Close()
	return followJob(parent, ctx, s, r, f.req)
}

// followJob shows the deploy's job until its final event.
func followJob(parent, ctx context.Context, s *session.Session, r render.Renderer, req proto.Request) error {
	var jobID string
	for {
		fr, err := s.Next(ctx)
		if err != nil {
			return stopped(parent, ctx, err, jobName(jobID), resumeHint(req, jobID, s.Last()))
		}
		m := fr.Msg
		if isRefusal(m) {
			r.Message(m, fr.Raw)
			return refused(m)
		}
		if jobID == "" && m.Type == proto.TypeProgress && m.Stage == proto.StageQueued && m.RequestID == req.RequestID {
			jobID = m.JobID
		}
		if jobID == "" || m.JobID != jobID {
			continue // an answer about the chat, or another job of the chat
		}
		r.Message(m, fr.Raw)
		if m.Final() {
			if m.Type == proto.TypeSuccess {
				return nil
			}
			return &ExitError{Code: ExitFailed}
		}
	}
}

func jobName(jobID string) string {
	if jobID == "" {
		return "the deploy"
	}
	return "job " + jobID
}

func resumeHint(req proto.Request, jobID string, last uint64) string {
	if jobID == "" {
		return fmt.Sprintf("the job may have been queued: see brainctl status --chat %s", req.ChatID)
	}
	return fmt.Sprintf("it keeps running: brainctl watch --chat %s --after %d", req.ChatID, last)
}
