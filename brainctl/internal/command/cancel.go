package command

import (
	"context"
	"fmt"
	"time"

	"github.com/backendim/brain/brainctl/internal/session"
	"github.com/backendim/brain/proto"
)

type cancelFlags struct {
	conn    connFlags
	req     proto.Request
	wait    bool
	timeout time.Duration
}

func parseCancel(e *env, args []string) (cancelFlags, error) {
	var f cancelFlags
	fs := newFlagSet("cancel", "--job J [flags]",
		"Cancels a queued or running job of yours. A running job stops at its next safe point and ends\n"+
			"with an error coded cancelled; brainctl waits for that unless --wait=false.")
	f.conn.register(fs, e.getenv)
	fs.StringVar(&f.req.JobID, "job", "", "job ID, the 32 hex digits that deploy and status show (required)")
	fs.BoolVar(&f.wait, "wait", true, "wait until the job has ended")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Minute, "stop waiting after this long")
	if err := parse(fs, "cancel", args, e.stdout); err != nil {
		return f, err
	}
	if err := required("cancel", [2]string{"job", f.req.JobID}); err != nil {
		return f, err
	}
	if err := f.conn.check("cancel"); err != nil {
		return f, err
	}
	if err := positive("cancel", "timeout", f.timeout); err != nil {
		return f, err
	}
	f.req.Type, f.req.UserID = proto.TypeCancel, f.conn.user
	if perr := f.req.Validate(); perr != nil {
		return f, usageError("cancel", "%s", perr.Message)
	}
	return f, nil
}

func cancel(parent context.Context, e *env, args []string) error {
	f, err := parseCancel(e, args)
	if err != nil {
		return err
	}
	ctx, stopTimeout := context.WithTimeout(parent, f.timeout)
	defer stopTimeout()
	r, stop := e.output(f.conn.json, false, false)
	defer stop()
	var answer *proto.JobStatus // the gateway's answer, once it came
	// The gateway answers and then follows the job's chat from the job's first event; a new
	// connection resumes that, or sends the cancel again if no answer came.
	resume := func(last uint64) proto.Request {
		if answer == nil {
			return f.req
		}
		return proto.Request{Type: proto.TypeSubscribe, UserID: f.req.UserID, ChatID: answer.ChatID, After: max(last, answer.FirstSeq-1)}
	}
	s, err := session.Open(ctx, sessionOptions(f.conn, r), f.req, resume)
	if err != nil {
		return stopped(parent, ctx, err, "the cancel request", "check --url and --token")
	}
	defer s.Close()
	for {
		fr, err := s.Next(ctx)
		if err != nil {
			return stopped(parent, ctx, err, "job "+f.req.JobID, "see brainctl status")
		}
		m := fr.Msg
		switch {
		case isRefusal(m):
			r.Message(m, fr.Raw)
			return refused(m)
		case answer == nil && m.Type == proto.TypeStatusInfo && m.JobID == f.req.JobID && m.Job != nil:
			answer = m.Job
			r.Message(m, fr.Raw)
			if !f.wait {
				return nil
			}
		case answer != nil && m.JobID == f.req.JobID && m.Final():
			r.Message(m, fr.Raw) // the replay of the job's earlier events is not shown
			return cancelOutcome(m)
		}
	}
}

func cancelOutcome(m proto.Message) error {
	if m.Type == proto.TypeError && m.Code == proto.CodeCancelled {
		return nil
	}
	what := "succeeded"
	if m.Type == proto.TypeError {
		what = "failed with " + string(m.Code)
	}
	return &ExitError{Code: ExitFailed, Err: fmt.Errorf("job %s %s before the cancel took effect", m.JobID, what)}
}
