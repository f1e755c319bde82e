package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/testkit/gitserver"
	"github.com/backendim/brain/testkit/stack"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestOutsiderCannotDeployIntoAnotherUsersChat is the reproduction of issue 7: a client that reaches
// NATS without Brain's credentials (a tenant pod, say) records a job for bob's chat, publishes it on
// brain.jobs.bob.victimchat and publishes a forged success for bob's socket. The connection must be
// refused, so that bob sees nothing but his own job and the worker runs nothing else.
func TestOutsiderCannotDeployIntoAnotherUsersChat(t *testing.T) {
	t.Parallel()
	git := gitserver.New(t)
	repo := git.Repo(t, "app")
	sha := repo.Commit(t, "Add web", map[string]string{"deploy/app.yaml": manifests})
	s := stack.Start(t, stack.Options{BinDir: binDir})
	bob := stack.Dial(t, s.Gateways[0], s.Token("bob"))
	bob.Send(map[string]any{"type": "subscribe", "chatId": "victimchat", "after": 0})
	if m := bob.Read(10 * time.Second); m.Type != proto.TypeSubscribed {
		t.Fatalf("subscribe = %+v", m)
	}

	outsider, err := nats.Connect(s.NATS.ClientURL(), nats.Timeout(5*time.Second), nats.Name("outsider"))
	switch {
	case err == nil:
		t.Errorf("a client without credentials connected to NATS")
		forgeJob(t, outsider, repo.URL(), sha)
		outsider.Close()
	case !errors.Is(err, nats.ErrAuthorization):
		t.Fatalf("connect without credentials: %v, want an authorization violation", err)
	}

	// Bob's own deploy is the barrier: its queued event must be the first event of the chat, and
	// the worker must run it and nothing else.
	bob.Send(deploy("bob", "victimchat", repo.URL(), sha))
	first := bob.Read(10 * time.Second)
	if first.Stage != proto.StageQueued || first.Seq != 1 {
		t.Fatalf("bob's first event is %+v, want his own queued event at seq 1", first)
	}
	events := bob.UntilFinal(first.JobID, 60*time.Second)
	if final := events[len(events)-1]; final.Type != proto.TypeSuccess || final.Payload.Namespace != "im-victimchat-bob" {
		t.Fatalf("bob's job ended with %+v", final)
	}
	_, admin := s.NATS.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := admin.Consumer(ctx, proto.JobsStream, proto.WorkersConsumer)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := cons.Info(ctx); err != nil || info.Delivered.Consumer != 1 {
		t.Errorf("workers consumer: %+v, %v; want one delivery, bob's job", info, err)
	}
}

// forgeJob does what the outsider of issue 7 did: a job record, the job, and a forged success.
func forgeJob(t *testing.T, nc *nats.Conn, repoURL, sha string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	jobID := proto.NewJobID()
	job := proto.NewJob(jobID, proto.Request{UserID: "bob", ChatID: "victimchat", RepoURL: repoURL, CommitHash: sha}, time.Now())
	record, _ := json.Marshal(proto.JobStatus{Job: job, State: proto.StateQueued, Published: true})
	if kv, err := js.KeyValue(ctx, proto.JobsBucket); err == nil {
		_, _ = kv.Create(ctx, jobID, record)
	}
	body, _ := json.Marshal(job)
	if _, err := js.Publish(ctx, proto.JobSubject("bob", "victimchat"), body); err == nil {
		t.Errorf("the outsider published a job for bob")
	}
	forged, _ := json.Marshal(proto.Message{Type: proto.TypeSuccess, JobID: jobID, ChatID: "victimchat",
		Payload: &proto.Result{Namespace: "im-victimchat-bob", Commit: sha}, Time: time.Now().UTC()})
	if _, err := js.Publish(ctx, proto.EventSubject("bob", "victimchat"), forged); err == nil {
		t.Errorf("the outsider published a success event into bob's chat")
	}
}
