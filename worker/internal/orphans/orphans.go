// Package orphans ends the jobs JetStream gives up on: when a job's last allowed delivery (MAX_DELIVER)
// goes unacknowledged — its worker died mid-job — the server stops delivering it and publishes a
// max-deliveries advisory. One worker (a queue group) takes each advisory and ends the job the way
// its worker would have: a final error event, its record failed, its message removed.
package orphans

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/backendim/brain/proto"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Subject is where the server announces a message of BRAIN_JOBS that ran out of deliveries.
const Subject = proto.MaxDeliveriesAdvisory

// queue makes one worker of all take each advisory.
const queue = "brain-orphans"

// timeout bounds the handling of one advisory.
const timeout = 10 * time.Second

// Sweeper ends orphaned jobs.
type Sweeper struct {
	js  jetstream.JetStream
	kv  jetstream.KeyValue
	log *slog.Logger
	sub *nats.Subscription
}

// Start subscribes to the advisories. The subscription ends with the connection (Drain).
func Start(nc *nats.Conn, js jetstream.JetStream, jobs jetstream.KeyValue, log *slog.Logger) (*Sweeper, error) {
	s := &Sweeper{js: js, kv: jobs, log: log}
	sub, err := nc.QueueSubscribe(Subject, queue, s.handle)
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", Subject, err)
	}
	s.sub = sub
	return s, nil
}

type advisory struct {
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries int    `json:"deliveries"`
}

func (s *Sweeper) handle(msg *nats.Msg) {
	var a advisory
	if err := json.Unmarshal(msg.Data, &a); err != nil || a.StreamSeq == 0 {
		s.log.Warn("unreadable max-deliveries advisory", "data", string(msg.Data))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.end(ctx, a); err != nil {
		s.log.Error("ending an orphaned job", "stream_seq", a.StreamSeq, "err", err)
	}
}

// end finishes the job stored at a.StreamSeq, unless its record is already final.
func (s *Sweeper) end(ctx context.Context, a advisory) error {
	stream, err := s.js.Stream(ctx, proto.JobsStream)
	if err != nil {
		return err
	}
	raw, err := stream.GetMsg(ctx, a.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil // acked after all, or already removed
	}
	if err != nil {
		return fmt.Errorf("read job %d: %w", a.StreamSeq, err)
	}
	job, err := proto.DecodeJob(raw.Data)
	if err != nil {
		return errors.Join(err, stream.DeleteMsg(ctx, a.StreamSeq))
	}
	log := s.log.With("job", job.JobID, "chat", job.ChatID)
	perr := proto.Errorf(proto.CodeRetriesExhausted,
		"the worker running the last allowed attempt (%d) stopped without finishing the job; submit it again", a.Deliveries)
	ended, err := s.markFailed(ctx, job.JobID, perr)
	if err != nil {
		return fmt.Errorf("job %s: %w", job.JobID, err)
	}
	if ended {
		if err := s.publish(ctx, job, perr); err != nil {
			return fmt.Errorf("job %s: %w", job.JobID, err)
		}
		log.Warn("ended a job whose worker died on its last attempt", "deliveries", a.Deliveries)
	}
	return stream.DeleteMsg(ctx, a.StreamSeq)
}

// markFailed CASes the job's record to failed; false when it is already final.
func (s *Sweeper) markFailed(ctx context.Context, jobID string, perr *proto.Error) (bool, error) {
	for range 5 {
		entry, err := s.kv.Get(ctx, jobID)
		if err != nil {
			return false, fmt.Errorf("read record: %w", err)
		}
		st, err := proto.DecodeJobStatus(entry.Value())
		if err != nil {
			return false, err
		}
		if st.State.Final() {
			return false, nil
		}
		st.State, st.Code, st.Message, st.FinishedAt = proto.StateFailed, perr.Code, perr.Message, time.Now().UTC()
		b, err := json.Marshal(st)
		if err != nil {
			return false, err
		}
		if _, err := s.kv.Update(ctx, jobID, b, entry.Revision()); err == nil {
			return true, nil
		} else if !errors.Is(err, jetstream.ErrKeyExists) {
			return false, fmt.Errorf("update record: %w", err)
		}
	}
	return false, errors.New("update record: too many concurrent writers")
}

func (s *Sweeper) publish(ctx context.Context, job proto.Job, perr *proto.Error) error {
	retry := perr.Code.Retryable()
	b, err := json.Marshal(proto.Message{Type: proto.TypeError, JobID: job.JobID, ChatID: job.ChatID,
		RequestID: job.RequestID, Code: perr.Code, Message: perr.Message, Retryable: &retry, Time: time.Now().UTC()})
	if err != nil {
		return err
	}
	_, err = s.js.Publish(ctx, proto.EventSubject(job.UserID, job.ChatID), b,
		jetstream.WithMsgID(job.JobID+".orphaned"), jetstream.WithExpectStream(proto.EventsStream))
	return err
}
