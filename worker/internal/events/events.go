// Package events publishes the progress, success and error events of a job attempt to the chat's
// subject of BRAIN_EVENTS, where gateways relay them to clients.
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/backendim/brain/proto"
)

// DefaultTimeout bounds one publish, retries included.
const DefaultTimeout = 10 * time.Second

// Publisher publishes the events of one attempt of one job, in order. Each event carries the
// message ID <jobId>.<attempt>.<n> (n = 1, 2, … per attempt), so a publish retried after a lost
// acknowledgement is stored once. It is safe for concurrent use.
type Publisher struct {
	js      jetstream.JetStream
	job     proto.Job
	attempt int
	timeout time.Duration
	now     func() time.Time

	mu sync.Mutex
	n  int
}

// New returns the publisher of attempt (the message's delivery count) of job.
func New(js jetstream.JetStream, job proto.Job, attempt int) *Publisher {
	return &Publisher{js: js, job: job, attempt: attempt, timeout: DefaultTimeout, now: time.Now}
}

// Publish fills in m's JobID, ChatID and Time and stores it in BRAIN_EVENTS, returning its stream
// sequence. It publishes even when ctx is already cancelled (a cancelled job still reports how it
// ended); the publish has its own deadline.
func (p *Publisher) Publish(ctx context.Context, m proto.Message) (uint64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m.JobID, m.ChatID, m.Seq = p.job.JobID, p.job.ChatID, 0
	m.Time = p.now().UTC()
	data, err := json.Marshal(m)
	if err != nil {
		return 0, fmt.Errorf("encode %s event: %w", eventName(m), err)
	}
	p.n++
	id := p.job.JobID + "." + strconv.Itoa(p.attempt) + "." + strconv.Itoa(p.n)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.timeout)
	defer cancel()
	ack, err := p.js.Publish(ctx, proto.EventSubject(p.job.UserID, p.job.ChatID), data,
		jetstream.WithMsgID(id), jetstream.WithExpectStream(proto.EventsStream),
		jetstream.WithRetryAttempts(3), jetstream.WithRetryWait(250*time.Millisecond))
	if err != nil {
		return 0, fmt.Errorf("publish %s event %s: %w", eventName(m), id, err)
	}
	return ack.Sequence, nil
}

func eventName(m proto.Message) string {
	if m.Stage != "" {
		return m.Type + " " + string(m.Stage)
	}
	return m.Type
}
