package command

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/backendim/brain/brainctl/internal/render"
	"github.com/backendim/brain/brainctl/internal/session"
	"github.com/backendim/brain/proto"
)

func status(parent context.Context, e *env, args []string) error {
	var c connFlags
	var chat string
	var timeout time.Duration
	fs := newFlagSet("status", "--chat C [flags]", "Shows the chat's latest job (its state, commit, worker, error) and its last events.")
	c.register(fs, e.getenv)
	fs.StringVar(&chat, "chat", "", "chat ID (required)")
	fs.DurationVar(&timeout, "timeout", 30*time.Second, "give up after this long")
	if err := parse(fs, "status", args, e.stdout); err != nil {
		return err
	}
	if err := required("status", [2]string{"chat", chat}); err != nil {
		return err
	}
	if err := c.check("status"); err != nil {
		return err
	}
	if err := positive("status", "timeout", timeout); err != nil {
		return err
	}
	req := proto.Request{Type: proto.TypeStatus, UserID: c.user, ChatID: chat}
	if perr := req.Validate(); perr != nil {
		return usageError("status", "%s", perr.Message)
	}
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	r, stop := e.output(c.json, false, false)
	defer stop()
	s, err := session.Open(ctx, sessionOptions(c, r), req, func(uint64) proto.Request { return req })
	if err != nil {
		return stopped(parent, ctx, err, "the status request", "check --url and --token")
	}
	defer s.Close()
	for {
		f, err := s.Next(ctx)
		if err != nil {
			return stopped(parent, ctx, err, "the status request", "try again")
		}
		switch {
		case isRefusal(f.Msg):
			r.Message(f.Msg, f.Raw)
			return refused(f.Msg)
		case f.Msg.Type != proto.TypeStatusInfo:
			continue
		case c.json:
			r.Message(f.Msg, f.Raw)
		default:
			printStatus(e.stdout, f.Msg)
		}
		return nil
	}
}

// printStatus writes a status answer for people.
func printStatus(w io.Writer, m proto.Message) {
	if m.Job == nil {
		msg := m.Message
		if msg == "" {
			msg = "no jobs"
		}
		fmt.Fprintf(w, "chat %s: %s\n", m.ChatID, msg)
		return
	}
	printJob(w, *m.Job)
	if len(m.Events) > 0 {
		fmt.Fprintf(w, "\nlast %d events:\n", len(m.Events))
		p := render.NewPlain(w, w, render.PlainOptions{})
		for _, ev := range m.Events {
			p.Message(ev, nil)
		}
	}
}

func printJob(w io.Writer, j proto.JobStatus) {
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%-10s %s\n", k, v)
		}
	}
	row("job", j.JobID)
	row("chat", j.ChatID)
	row("state", string(j.State))
	if j.CancelRequested && !j.State.Final() {
		row("cancel", "requested")
	}
	row("repo", j.RepoURL)
	row("ref", j.CommitHash)
	row("path", j.Path)
	if j.DryRun {
		row("dry run", "yes")
	}
	row("commit", j.Commit)
	if j.UserID != "" && j.ChatID != "" {
		row("namespace", proto.Namespace(j.ChatID, j.UserID))
	}
	if j.Worker != "" {
		row("worker", fmt.Sprintf("%s (attempt %d)", j.Worker, j.Attempt))
	}
	row("request", j.RequestID)
	row("submitted", stamp(j.SubmittedAt))
	row("started", stamp(j.StartedAt))
	if !j.FinishedAt.IsZero() {
		row("finished", fmt.Sprintf("%s (%s after submission)", stamp(j.FinishedAt), j.FinishedAt.Sub(j.SubmittedAt).Round(time.Millisecond)))
	}
	if j.Code != "" {
		row("error", fmt.Sprintf("%s: %s", j.Code, j.Message))
	}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
