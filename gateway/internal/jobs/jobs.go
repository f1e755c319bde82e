// Package jobs is the gateway's side of the job lifecycle in docs/design.md: it submits jobs to
// JetStream exactly once per jobId, answers status requests and cancels jobs. Every write to a job's
// key-value entry is a compare-and-set, so gateways and workers never overwrite each other.
package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/backendim/brain/proto"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Service talks to BRAIN_JOBS, BRAIN_EVENTS and the brain_jobs bucket.
type Service struct {
	js          jetstream.JetStream
	kv          jetstream.KeyValue
	dedupWindow time.Duration
	now         func() time.Time
}

// New returns a Service. kv is the brain_jobs bucket (layout.Shared returns it).
func New(js jetstream.JetStream, kv jetstream.KeyValue, dedupWindow time.Duration) *Service {
	return &Service{js: js, kv: kv, dedupWindow: dedupWindow, now: time.Now}
}

// Submitted is the outcome of Submit.
type Submitted struct {
	JobID     string
	FirstSeq  uint64 // stream sequence of the job's queued event: follow the chat from here
	Duplicate bool   // the requestId was used before; no new job was started
}

// Submit starts the job of a validated deploy request from user.
func (s *Service) Submit(ctx context.Context, r proto.Request) (Submitted, error) {
	jobID := proto.NewJobID()
	if r.RequestID != "" {
		jobID = proto.RequestJobID(r.UserID, r.RequestID)
	}
	st := proto.JobStatus{Job: proto.NewJob(jobID, r, s.now()), State: proto.StateQueued}
	rev, err := s.kv.Create(ctx, jobID, mustJSON(st))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return s.duplicate(ctx, jobID, r)
	}
	if err != nil {
		return Submitted{}, unavailable("record job", err)
	}
	queued := proto.Message{Type: proto.TypeProgress, JobID: jobID, ChatID: r.ChatID, Stage: proto.StageQueued,
		RequestID: r.RequestID, Time: s.now().UTC(), Message: "queued: waiting for a worker"}
	ack, err := s.publishEvent(ctx, r.UserID, queued, jobID+".queued")
	if err != nil {
		s.fail(ctx, jobID, rev, err)
		return Submitted{}, unavailable("publish queued event", err)
	}
	if err := s.publishJob(ctx, st.Job); err != nil {
		s.fail(ctx, jobID, rev, err)
		return Submitted{}, unavailable("publish job", err)
	}
	if err := s.update(ctx, jobID, func(st *proto.JobStatus) { st.Published, st.FirstSeq = true, ack.Sequence }); err != nil {
		return Submitted{}, unavailable("record job", err)
	}
	if _, err := s.kv.PutString(ctx, proto.ChatKey(r.UserID, r.ChatID), jobID); err != nil {
		return Submitted{}, unavailable("record chat's latest job", err)
	}
	return Submitted{JobID: jobID, FirstSeq: ack.Sequence}, nil
}

// duplicate answers a repeated requestId with the original job. An entry whose gateway died
// between recording and publishing is published now (the msg-id keeps that idempotent).
func (s *Service) duplicate(ctx context.Context, jobID string, r proto.Request) (Submitted, error) {
	entry, err := s.kv.Get(ctx, jobID)
	if err != nil {
		return Submitted{}, unavailable("read job", err)
	}
	st, err := proto.DecodeJobStatus(entry.Value())
	if err != nil {
		return Submitted{}, err
	}
	if st.UserID != r.UserID {
		return Submitted{}, proto.Errorf(proto.CodeForbidden, "requestId %q belongs to another user", r.RequestID)
	}
	if !st.Published && !st.State.Final() && s.now().Sub(entry.Created()) < s.dedupWindow {
		if err := s.publishJob(ctx, st.Job); err != nil {
			return Submitted{}, unavailable("publish job", err)
		}
		if err := s.update(ctx, jobID, func(st *proto.JobStatus) { st.Published = true }); err != nil {
			return Submitted{}, unavailable("record job", err)
		}
	}
	return Submitted{JobID: jobID, FirstSeq: st.FirstSeq, Duplicate: true}, nil
}

// fail ends a job that could not be published, best effort: NATS is failing already.
func (s *Service) fail(ctx context.Context, jobID string, rev uint64, cause error) {
	entry, err := s.kv.Get(ctx, jobID)
	if err != nil || entry.Revision() != rev {
		return
	}
	st, err := proto.DecodeJobStatus(entry.Value())
	if err != nil {
		return
	}
	st.State, st.Code, st.Message, st.FinishedAt = proto.StateFailed, proto.CodeUnavailable, cause.Error(), s.now().UTC()
	_, _ = s.kv.Update(ctx, jobID, mustJSON(st), rev)
}

func (s *Service) publishJob(ctx context.Context, j proto.Job) error {
	_, err := s.js.Publish(ctx, proto.JobSubject(j.UserID, j.ChatID), mustJSON(j), jetstream.WithMsgID(j.JobID),
		jetstream.WithExpectStream(proto.JobsStream))
	return err
}

func (s *Service) publishEvent(ctx context.Context, userID string, m proto.Message, msgID string) (*jetstream.PubAck, error) {
	msg := nats.NewMsg(proto.EventSubject(userID, m.ChatID))
	msg.Data = mustJSON(m)
	return s.js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(proto.EventsStream))
}

// update applies change to a job's entry with compare-and-set, retrying on concurrent writes.
func (s *Service) update(ctx context.Context, jobID string, change func(*proto.JobStatus)) error {
	_, err := s.modify(ctx, jobID, func(st *proto.JobStatus) (bool, error) { change(st); return true, nil })
	return err
}

// modify reads the entry, lets decide change it (returning false leaves it alone) and writes it
// back with compare-and-set, retrying when another writer came first. It returns the status as
// last written or read.
func (s *Service) modify(ctx context.Context, jobID string, decide func(*proto.JobStatus) (bool, error)) (proto.JobStatus, error) {
	for range 10 {
		entry, err := s.kv.Get(ctx, jobID)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return proto.JobStatus{}, proto.Errorf(proto.CodeJobNotFound, "job %s not found (it may have expired)", jobID)
		}
		if err != nil {
			return proto.JobStatus{}, err
		}
		st, err := proto.DecodeJobStatus(entry.Value())
		if err != nil {
			return proto.JobStatus{}, err
		}
		write, err := decide(&st)
		if err != nil || !write {
			return st, err
		}
		_, err = s.kv.Update(ctx, jobID, mustJSON(st), entry.Revision())
		if err == nil {
			return st, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return proto.JobStatus{}, err
		}
	}
	return proto.JobStatus{}, fmt.Errorf("job %s: too many concurrent updates", jobID)
}

func unavailable(op string, err error) error {
	var pe *proto.Error
	if errors.As(err, &pe) {
		return pe
	}
	return &proto.Error{Code: proto.CodeUnavailable, Message: op + ": NATS JetStream did not answer (" + err.Error() + "); retry"}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshal %T: %v", v, err)) // only plain structs are marshalled here
	}
	return b
}
