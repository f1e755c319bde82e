// Package relay follows a chat's events in BRAIN_EVENTS: an ordered JetStream consumer replays
// the retained events from a given sequence and then delivers live ones, with no gap and no
// duplicate at the switch, whichever gateway replica runs it.
package relay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/backendim/brain/proto"
	"github.com/nats-io/nats.go/jetstream"
)

// Relay opens followers.
type Relay struct {
	js jetstream.JetStream
}

// New returns a Relay.
func New(js jetstream.JetStream) *Relay { return &Relay{js: js} }

// Follow delivers every event of the chat with stream sequence >= from (from 0 or 1: all retained
// events), with Seq filled in, until ctx ends or deliver returns false. It returns nil when ctx ended
// or deliver stopped it, and an error when the stream could not be read.
func (r *Relay) Follow(ctx context.Context, userID, chatID string, from uint64, deliver func(proto.Message) bool) error {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{proto.EventSubject(userID, chatID)},
		DeliverPolicy: jetstream.DeliverAllPolicy, InactiveThreshold: 5 * time.Minute}
	if from > 1 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
	}
	cons, err := r.js.OrderedConsumer(ctx, proto.EventsStream, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("follow chat %s: %w", chatID, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("follow chat %s: %w", chatID, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return fmt.Errorf("follow chat %s: %w", chatID, err)
		}
		m, err := proto.DecodeMessage(msg.Data())
		if err != nil {
			continue // not written by Brain; nothing a client could use
		}
		if meta, err := msg.Metadata(); err == nil {
			m.Seq = meta.Sequence.Stream
		}
		if !deliver(m) {
			return nil
		}
	}
}
