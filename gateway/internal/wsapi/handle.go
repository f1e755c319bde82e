package wsapi

import (
	"context"
	"errors"
	"time"

	"github.com/backendim/brain/proto"
)

// handle answers one client frame. A bad message gets an error reply; the socket stays usable.
func (c *conn) handle(data []byte) {
	req, perr := proto.DecodeRequest(data)
	c.s.o.Metrics.Messages.WithLabelValues("in", messageType(req.Type, perr)).Inc()
	if perr == nil {
		perr = c.identify(&req)
	}
	if perr != nil {
		if req.Type == proto.TypeDeploy {
			c.s.o.Metrics.JobsSubmitted.WithLabelValues("rejected").Inc()
		}
		c.reply(proto.ErrorMessage(perr, req.RequestID))
		return
	}
	// Work that must finish even if the socket goes away (a publish half done) is not tied to it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), c.s.o.RequestTimeout)
	defer cancel()
	switch req.Type {
	case proto.TypeDeploy:
		perr = c.deploy(ctx, req)
	case proto.TypeSubscribe:
		ack := proto.Message{Type: proto.TypeSubscribed, ChatID: req.ChatID, After: req.After}
		perr = c.follow(req.UserID, req.ChatID, req.After+1, true, &ack)
	case proto.TypeStatus:
		perr = c.status(ctx, req)
	case proto.TypeCancel:
		perr = c.cancelJob(ctx, req)
	}
	if perr != nil {
		c.reply(proto.ErrorMessage(perr, req.RequestID))
	}
}

func messageType(t string, perr *proto.Error) string {
	if perr != nil && perr.Code == proto.CodeBadRequest {
		return "invalid"
	}
	return t
}

// identify sets the request's user from the token, refusing a message that names another user.
// With AUTH_MODE=none the message's own userId is the identity, and it is required.
func (c *conn) identify(req *proto.Request) *proto.Error {
	switch {
	case c.id.UserID == "" && req.UserID == "":
		return proto.Errorf(proto.CodeInvalidField, "userId is required: this gateway runs without authentication (AUTH_MODE=none)")
	case c.id.UserID == "":
	case req.UserID == "":
		req.UserID = c.id.UserID
	case req.UserID != c.id.UserID:
		return proto.Errorf(proto.CodeForbidden, "userId %q is not the user of your token", req.UserID)
	}
	return nil
}

func (c *conn) deploy(ctx context.Context, req proto.Request) *proto.Error {
	// Checked before submitting: a job whose socket could not follow it would run unseen.
	if err := c.tooManyChats(req.ChatID); err != nil {
		c.s.o.Metrics.JobsSubmitted.WithLabelValues("rejected").Inc()
		return err
	}
	if ok, wait := c.s.jobRate.allow(req.UserID, time.Now()); !ok {
		c.s.o.Metrics.JobsSubmitted.WithLabelValues("rejected").Inc()
		return proto.Errorf(proto.CodeRateLimited, "too many jobs: at most %g per minute (burst %d); retry in %s",
			c.s.o.JobsPerMinute, c.s.o.JobsBurst, wait.Round(time.Second)+time.Second)
	}
	sub, err := c.s.o.Jobs.Submit(ctx, req)
	if err != nil {
		c.s.o.Metrics.JobsSubmitted.WithLabelValues("failed").Inc()
		return c.clientError("submit job", err)
	}
	log := c.log.With("job", sub.JobID, "chat", req.ChatID)
	if sub.Duplicate {
		c.s.o.Metrics.JobsSubmitted.WithLabelValues("duplicate").Inc()
		log.Info("duplicate request", "requestId", req.RequestID)
		dup := proto.Message{Type: proto.TypeProgress, Stage: proto.StageQueued, JobID: sub.JobID, ChatID: req.ChatID,
			RequestID: req.RequestID, Duplicate: true, Time: time.Now().UTC(),
			Message: "requestId " + req.RequestID + " was already accepted as job " + sub.JobID + "; following it"}
		return c.follow(req.UserID, req.ChatID, sub.FirstSeq, false, &dup)
	}
	c.s.o.Metrics.JobsSubmitted.WithLabelValues("accepted").Inc()
	log.Info("job queued", "repo", req.RepoURL, "ref", req.CommitHash)
	return c.follow(req.UserID, req.ChatID, sub.FirstSeq, false, nil)
}

func (c *conn) status(ctx context.Context, req proto.Request) *proto.Error {
	st, events, err := c.s.o.Jobs.Status(ctx, req.UserID, req.ChatID)
	if err != nil {
		return c.clientError("status", err)
	}
	m := proto.Message{Type: proto.TypeStatusInfo, ChatID: req.ChatID, Job: st, Events: events}
	if st == nil {
		m.Message = "no jobs for this chat"
	}
	c.reply(m)
	return nil
}

func (c *conn) cancelJob(ctx context.Context, req proto.Request) *proto.Error {
	st, err := c.s.o.Jobs.Cancel(ctx, req.UserID, req.JobID)
	if err != nil {
		return c.clientError("cancel", err)
	}
	msg := "cancel requested; the job ends with an error coded cancelled"
	if st.State.Final() {
		msg = "cancelled"
	}
	reply := proto.Message{Type: proto.TypeStatusInfo, ChatID: st.ChatID, JobID: st.JobID, Job: &st, Message: msg}
	return c.follow(req.UserID, st.ChatID, st.FirstSeq, false, &reply)
}

// clientError turns err into what the client may see; unexpected errors are logged here.
func (c *conn) clientError(op string, err error) *proto.Error {
	var pe *proto.Error
	if errors.As(err, &pe) {
		if pe.Code == proto.CodeUnavailable || pe.Code == proto.CodeInternal {
			c.log.Warn(op+" failed", "err", err)
		}
		return pe
	}
	c.log.Error(op+" failed", "err", err)
	return proto.Errorf(proto.CodeInternal, "%s failed; retry, and report it if it persists", op)
}
