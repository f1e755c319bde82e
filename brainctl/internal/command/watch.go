package command

import (
	"context"
	"fmt"

	"github.com/backendim/brain/brainctl/internal/session"
	"github.com/backendim/brain/proto"
)

func watch(ctx context.Context, e *env, args []string) error {
	var c connFlags
	var chat string
	var after uint64
	fs := newFlagSet("watch", "--chat C [--after N] [flags]",
		"Follows a chat's events, of every job, until interrupted: first the retained events after\n"+
			"sequence N, then new ones as they happen. Reconnects and resumes when the connection is lost.")
	c.register(fs, e.getenv)
	fs.StringVar(&chat, "chat", "", "chat ID (required)")
	fs.Uint64Var(&after, "after", 0, "show events with a sequence after N (0: every retained event)")
	if err := parse(fs, "watch", args, e.stdout); err != nil {
		return err
	}
	if err := required("watch", [2]string{"chat", chat}); err != nil {
		return err
	}
	if err := c.check("watch"); err != nil {
		return err
	}
	sub := func(after uint64) proto.Request {
		return proto.Request{Type: proto.TypeSubscribe, UserID: c.user, ChatID: chat, After: after}
	}
	if perr := sub(after).Validate(); perr != nil {
		return usageError("watch", "%s", perr.Message)
	}
	r, stop := e.output(c.json, false, true)
	defer stop()
	o := sessionOptions(c, r)
	o.After = after
	s, err := session.Open(ctx, o, sub(after), sub)
	if ctx.Err() != nil {
		return nil // interrupted: the normal end of watch
	}
	if err != nil {
		return connectionError(err)
	}
	defer s.Close()
	for {
		f, err := s.Next(ctx)
		if ctx.Err() != nil {
			return nil // interrupted: the normal end of watch
		}
		if err != nil {
			return connectionError(fmt.Errorf("%w; resume with brainctl watch --chat %s --after %d", err, chat, s.Last()))
		}
		r.Message(f.Msg, f.Raw)
		if isRefusal(f.Msg) {
			return refused(f.Msg)
		}
	}
}
