package orphans_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/proto/layout"
	"github.com/backendim/brain/proto/natsauth"
	"github.com/backendim/brain/testkit/natstest"
	"github.com/backendim/brain/worker/internal/orphans"
	"github.com/nats-io/nats.go/jetstream"
)

// TestDeadWorkerOnLastDelivery: a worker takes a job on its last allowed delivery and dies (it
// never acks). The server gives up on the message; the sweeper ends the job.
func TestDeadWorkerOnLastDelivery(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := layout.Defaults()
	cfg.MaxDeliver, cfg.AckWait = 1, time.Second
	kv, err := layout.Shared(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := layout.Workers(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The sweeper runs with the worker's identity.
	wnc, wjs := srv.ConnectAs(t, natsauth.Worker)
	wkv, err := wjs.KeyValue(ctx, proto.JobsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := orphans.Start(wnc, wjs, wkv, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	job := proto.NewJob(proto.NewJobID(), proto.Request{UserID: "u1", ChatID: "c1", RepoURL: "https://h/r.git", CommitHash: "main"}, time.Now())
	running := proto.JobStatus{Job: job, State: proto.StateRunning, Published: true, Attempt: 1, Worker: "dead"}
	b, _ := json.Marshal(running)
	if _, err := kv.Create(ctx, job.JobID, b); err != nil {
		t.Fatal(err)
	}
	jb, _ := json.Marshal(job)
	if _, err := js.Publish(ctx, proto.JobSubject("u1", "c1"), jb); err != nil {
		t.Fatal(err)
	}
	events, err := js.OrderedConsumer(ctx, proto.EventsStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// The doomed delivery: taken, never acked.
	if _, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	// Live workers keep pulling; the server finds the message out of deliveries while serving them.
	go func() {
		for ctx.Err() == nil {
			msgs, err := cons.Fetch(1, jetstream.FetchMaxWait(500*time.Millisecond))
			if err == nil {
				for m := range msgs.Messages() {
					t.Errorf("message delivered again past MAX_DELIVER: %s", m.Data())
				}
			}
		}
	}()
	msg, err := events.Next(jetstream.FetchMaxWait(20 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := proto.DecodeMessage(msg.Data())
	if m.Type != proto.TypeError || m.Code != proto.CodeRetriesExhausted || m.JobID != job.JobID || m.Retryable == nil || !*m.Retryable {
		t.Fatalf("event = %+v, want a retryable retries_exhausted error", m)
	}
	entry, err := kv.Get(ctx, job.JobID)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := proto.DecodeJobStatus(entry.Value())
	if st.State != proto.StateFailed || st.Code != proto.CodeRetriesExhausted {
		t.Errorf("record = %s %s, want failed retries_exhausted", st.State, st.Code)
	}
	stream, _ := js.Stream(ctx, proto.JobsStream)
	for {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the orphaned job is still in %s", proto.JobsStream)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
