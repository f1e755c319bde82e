package events_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/proto/layout"
	"github.com/backendim/brain/testkit/natstest"
	"github.com/backendim/brain/worker/internal/events"
)

func TestPublish(t *testing.T) {
	t.Parallel()
	_, js := natstest.Start(t).Connect(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := layout.Shared(ctx, js, layout.Defaults()); err != nil {
		t.Fatal(err)
	}
	job := proto.Job{JobID: "0123456789abcdef0123456789abcdef", UserID: "u1", ChatID: "c1"}
	pub := events.New(js, job, 3)
	stopped, stop := context.WithCancel(ctx)
	stop() // a stopped job still reports how it ended
	before := time.Now().UTC()
	for _, m := range []proto.Message{
		{Type: proto.TypeProgress, Stage: proto.StageStarted, Attempt: 3, JobID: "other", ChatID: "other", Seq: 9},
		{Type: proto.TypeError, Code: proto.CodeCancelled, Message: "the job was cancelled"},
	} {
		if _, err := pub.Publish(stopped, m); err != nil {
			t.Fatal(err)
		}
	}
	// The same attempt published again (a worker restarting its publisher) reuses message IDs,
	// so JetStream drops the copies.
	again := events.New(js, job, 3)
	seq, err := again.Publish(ctx, proto.Message{Type: proto.TypeProgress, Stage: proto.StageStarted, Attempt: 3})
	if err != nil {
		t.Fatal(err)
	}
	if seq != 1 {
		t.Errorf("republished event got seq %d, want the original 1", seq)
	}

	cons, err := js.OrderedConsumer(ctx, proto.EventsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{proto.EventSubject("u1", "c1")}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	var got []proto.Message
	for range 2 {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, msg.Headers().Get(jetstream.MsgIDHeader))
		m, err := proto.DecodeMessage(msg.Data())
		if err != nil {
			t.Fatal(err)
		}
		if m.Time.Before(before) || m.Time.Location() != time.UTC {
			t.Errorf("time %v: want UTC and after %v", m.Time, before)
		}
		m.Time = time.Time{}
		got = append(got, m)
	}
	wantIDs := []string{job.JobID + ".3.1", job.JobID + ".3.2"}
	if diff := cmp.Diff(wantIDs, ids); diff != "" {
		t.Errorf("message IDs (-want +got):\n%s", diff)
	}
	want := []proto.Message{
		{Type: proto.TypeProgress, Stage: proto.StageStarted, Attempt: 3, JobID: job.JobID, ChatID: "c1"},
		{Type: proto.TypeError, Code: proto.CodeCancelled, Message: "the job was cancelled", JobID: job.JobID, ChatID: "c1"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	info, err := js.Stream(ctx, proto.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != 2 {
		t.Errorf("stream holds %d events, want 2", n)
	}
}
