package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/backendim/brain/proto"
	"github.com/nats-io/nats.go/jetstream"
)

// MaxStatusEvents is how many of the latest job's events a status answer carries at most.
const MaxStatusEvents = 50

// Status returns the chat's latest job and its last events (nil job when the chat has none).
func (s *Service) Status(ctx context.Context, userID, chatID string) (*proto.JobStatus, []proto.Message, error) {
	entry, err := s.kv.Get(ctx, proto.ChatKey(userID, chatID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, unavailable("read chat", err)
	}
	jobID := string(entry.Value())
	st, err := s.Job(ctx, jobID)
	if err != nil {
		return nil, nil, err
	}
	events, err := s.events(ctx, userID, chatID, st)
	if err != nil {
		return nil, nil, err
	}
	return &st, events, nil
}

// Job returns a job's status record.
func (s *Service) Job(ctx context.Context, jobID string) (proto.JobStatus, error) {
	entry, err := s.kv.Get(ctx, jobID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return proto.JobStatus{}, proto.Errorf(proto.CodeJobNotFound, "job %s not found (it may have expired)", jobID)
	}
	if err != nil {
		return proto.JobStatus{}, unavailable("read job", err)
	}
	return proto.DecodeJobStatus(entry.Value())
}

// events reads the job's events from its queued event on, keeping the last MaxStatusEvents.
func (s *Service) events(ctx context.Context, userID, chatID string, st proto.JobStatus) ([]proto.Message, error) {
	if st.FirstSeq == 0 {
		return nil, nil
	}
	stream, err := s.js.Stream(ctx, proto.EventsStream)
	if err != nil {
		return nil, unavailable("open events stream", err)
	}
	subject := proto.EventSubject(userID, chatID)
	var out []proto.Message
	for seq := st.FirstSeq; ; {
		raw, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, nil
		}
		if err != nil {
			return nil, unavailable(fmt.Sprintf("read event %d", seq), err)
		}
		m, err := proto.DecodeMessage(raw.Data)
		if err == nil && m.JobID == st.JobID {
			m.Seq = raw.Sequence
			out = append(out, m)
			if len(out) > MaxStatusEvents {
				out = out[1:]
			}
			if m.Final() {
				return out, nil
			}
		}
		seq = raw.Sequence + 1
	}
}
