package natsserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/proto/layout"
	"github.com/backendim/brain/proto/natsauth"
	"github.com/backendim/brain/proto/natsserver"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// env is Brain's server with its layout in place (made by the admin), one job queued for bob and
// one lock held.
type env struct {
	srv   *server.Server
	seeds string
	admin jetstream.JetStream
	lock  jetstream.KeyValueEntry
}

func start(t *testing.T) *env {
	t.Helper()
	seeds := t.TempDir()
	keys, err := natsauth.EnsureSeeds(seeds)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := natsserver.Start(natsserver.Config{Name: "test", Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	e := &env{srv: srv, seeds: seeds}
	e.admin = e.connect(t, natsauth.Admin).js
	ctx := ctx(t)
	c := layout.Defaults()
	if _, err := layout.Shared(ctx, e.admin, c); err != nil {
		t.Fatal(err)
	}
	locks, err := layout.Locks(ctx, e.admin, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := layout.Workers(ctx, e.admin, c); err != nil {
		t.Fatal(err)
	}
	job, _ := json.Marshal(proto.Job{JobID: proto.NewJobID(), UserID: "bob", ChatID: "victimchat"})
	if _, err := e.admin.Publish(ctx, proto.JobSubject("bob", "victimchat"), job); err != nil {
		t.Fatal(err)
	}
	if _, err := locks.PutString(ctx, proto.LockKey("im-victimchat-bob"), "bobs-job"); err != nil {
		t.Fatal(err)
	}
	if e.lock, err = locks.Get(ctx, proto.LockKey("im-victimchat-bob")); err != nil {
		t.Fatal(err)
	}
	return e
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// client is a connection of one role that collects the server's permission errors.
type client struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	errs chan error
}

func (e *env) connect(t *testing.T, r natsauth.Role) *client {
	t.Helper()
	c := &client{errs: make(chan error, 100)}
	var err error
	c.nc, err = natsauth.Connect(r, e.srv.ClientURL(), natsauth.SeedFile(e.seeds, r), "", nats.Name(string(r)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { c.errs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.nc.Close)
	if c.js, err = jetstream.New(c.nc); err != nil {
		t.Fatal(err)
	}
	return c
}

// refused waits for the server to refuse subject to c.
func (c *client) refused(t *testing.T, subject string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case err := <-c.errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), `"`+subject+`"`) {
				return
			}
			t.Logf("other error: %v", err)
		case <-timeout:
			t.Fatalf("the server did not refuse %q", subject)
		}
	}
}

func TestUnauthenticatedClientsAreRefused(t *testing.T) {
	t.Parallel()
	e := start(t)
	stranger, _ := nkeys.CreateUser()
	seed, _ := stranger.Seed()
	pub, _ := stranger.PublicKey()
	tests := []struct {
		name string
		opts []nats.Option
	}{
		{"no credentials", nil},
		{"a key the server does not know", []nats.Option{nats.Nkey(pub, func(nonce []byte) ([]byte, error) {
			kp, err := nkeys.FromSeed(seed)
			if err != nil {
				return nil, err
			}
			return kp.Sign(nonce)
		})}},
		{"a user and password", []nats.Option{nats.UserInfo("admin", "admin")}},
		{"a token", []nats.Option{nats.Token("s3cr3t")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			nc, err := nats.Connect(e.srv.ClientURL(), append(tt.opts, nats.Timeout(5*time.Second))...)
			if err == nil {
				nc.Close()
				t.Fatal("connected")
			}
			if !errors.Is(err, nats.ErrAuthorization) {
				t.Fatalf("err = %v, want an authorization violation", err)
			}
		})
	}
}

// TestRolesCannotReachPastTheirJob runs, for each role, what it must not do, as the raw subject
// a client would send; the server must refuse every one and nothing may change.
func TestRolesCannotReachPastTheirJob(t *testing.T) {
	t.Parallel()
	e := start(t)
	ackReply := e.pendingAck(t)
	job, _ := json.Marshal(proto.Job{JobID: proto.NewJobID(), UserID: "bob", ChatID: "victimchat",
		RepoURL: "https://git.example.com/evil.git", CommitHash: "main"})
	forged, _ := json.Marshal(proto.Message{Type: proto.TypeSuccess, ChatID: "victimchat"})
	api := func(op string) string { return "$JS.API." + op }
	tests := []attack{
		{natsauth.Worker, "publish a job", proto.JobSubject("bob", "victimchat"), job, false},
		{natsauth.Worker, "read every user's events", proto.EventsSubjects, nil, true},
		{natsauth.Worker, "follow a chat's events", api("CONSUMER.CREATE.BRAIN_EVENTS.spy.brain.events.bob.victimchat"), nil, false},
		{natsauth.Worker, "read the gateway's replies", natsauth.InboxPrefix(natsauth.Gateway) + ".>", nil, true},
		{natsauth.Gateway, "take a job from the workers consumer", api("CONSUMER.MSG.NEXT.BRAIN_JOBS.workers"), []byte(`{"batch":1}`), false},
		{natsauth.Gateway, "look at the workers consumer", api("CONSUMER.INFO.BRAIN_JOBS.workers"), nil, false},
		{natsauth.Gateway, "end a worker's job", ackReply, []byte("+TERM"), false},
		{natsauth.Gateway, "make its own consumer of the jobs", api("CONSUMER.CREATE.BRAIN_JOBS.mine.brain.jobs.>"), nil, false},
		{natsauth.Gateway, "make an unnamed consumer of the jobs", api("CONSUMER.CREATE.BRAIN_JOBS"), nil, false},
		{natsauth.Gateway, "read a lock", api("DIRECT.GET.KV_brain_locks.$KV.brain_locks.ns.im-victimchat-bob"), nil, false},
		{natsauth.Gateway, "take a lock", "$KV.brain_locks.ns.im-victimchat-bob", []byte("mine"), false},
		{natsauth.Gateway, "open the locks bucket", api("STREAM.INFO.KV_brain_locks"), nil, false},
		{natsauth.Gateway, "read the orphan advisories", proto.MaxDeliveriesAdvisory, nil, true},
		{natsauth.Gateway, "read the worker's replies", natsauth.InboxPrefix(natsauth.Worker) + ".>", nil, true},
		{natsauth.Gateway, "read every reply", "_INBOX.>", nil, true},
		{natsauth.Gateway, "remove a job", api("STREAM.MSG.DELETE.BRAIN_JOBS"), []byte(`{"seq":1}`), false},
	}
	for _, r := range []natsauth.Role{natsauth.Gateway, natsauth.Worker} {
		for _, s := range []string{"BRAIN_JOBS", "BRAIN_EVENTS", "KV_brain_jobs", "KV_brain_locks"} {
			tests = append(tests, attack{r, "delete stream " + s, api("STREAM.DELETE." + s), nil, false},
				attack{r, "purge stream " + s, api("STREAM.PURGE." + s), nil, false},
				attack{r, "change stream " + s, api("STREAM.UPDATE." + s), nil, false})
		}
		tests = append(tests, attack{r, "delete the workers consumer", api("CONSUMER.DELETE.BRAIN_JOBS.workers"), nil, false},
			attack{r, "make a stream of its own", api("STREAM.CREATE.SPY"), []byte(`{"name":"SPY","subjects":["_INBOX.>"]}`), false},
			attack{r, "publish an event outside a chat's subject", "brain.events.bob", forged, false},
			attack{r, "delete an event", api("STREAM.MSG.DELETE.BRAIN_EVENTS"), []byte(`{"seq":1}`), false})
	}
	clients := map[natsauth.Role]*client{natsauth.Gateway: e.connect(t, natsauth.Gateway), natsauth.Worker: e.connect(t, natsauth.Worker)}
	for _, tt := range tests {
		t.Run(string(tt.role)+" cannot "+tt.what, func(t *testing.T) {
			c := clients[tt.role]
			if tt.sub {
				if _, err := c.nc.SubscribeSync(tt.subject); err != nil {
					t.Fatal(err)
				}
			} else if err := c.nc.PublishRequest(tt.subject, c.nc.NewRespInbox(), tt.data); err != nil {
				t.Fatal(err)
			}
			c.refused(t, tt.subject)
		})
	}
	e.unchanged(t)
}

// attack is one thing a role must not do: publish to (or subscribe to) subject.
type attack struct {
	role    natsauth.Role
	what    string
	subject string
	data    []byte
	sub     bool
}

// pendingAck takes bob's job as the admin would as a worker and returns its ack subject; the
// delivery stays unacknowledged.
func (e *env) pendingAck(t *testing.T) string {
	t.Helper()
	cons, err := e.admin.Consumer(ctx(t), proto.JobsStream, proto.WorkersConsumer)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return msg.Reply()
}

// unchanged checks, as the admin, that the attacks changed nothing: every stream is there, bob's
// job is still the only one and still in flight, the lock still holds bob's job.
func (e *env) unchanged(t *testing.T) {
	t.Helper()
	ctx := ctx(t)
	for _, s := range []string{"BRAIN_JOBS", "BRAIN_EVENTS", "KV_brain_jobs", "KV_brain_locks"} {
		if _, err := e.admin.Stream(ctx, s); err != nil {
			t.Errorf("stream %s: %v", s, err)
		}
	}
	jobs, err := e.admin.Stream(ctx, proto.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := jobs.Info(ctx); err != nil || info.State.Msgs != 1 {
		t.Errorf("BRAIN_JOBS: %+v, %v; want bob's job only", info, err)
	}
	cons, err := e.admin.Consumer(ctx, proto.JobsStream, proto.WorkersConsumer)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := cons.Info(ctx); err != nil || info.NumAckPending != 1 || info.NumPending != 0 {
		t.Errorf("workers consumer: %+v, %v; want bob's job in flight", info, err)
	}
	events, err := e.admin.Stream(ctx, proto.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := events.Info(ctx); err != nil || info.State.Msgs != 0 {
		t.Errorf("BRAIN_EVENTS: %+v, %v; want no event", info, err)
	}
	locks, err := e.admin.KeyValue(ctx, proto.LocksBucket)
	if err != nil {
		t.Fatal(err)
	}
	if l, err := locks.Get(ctx, proto.LockKey("im-victimchat-bob")); err != nil || l.Revision() != e.lock.Revision() {
		t.Errorf("lock: %v, %v; want revision %d untouched", l, err, e.lock.Revision())
	}
	if _, err := e.admin.Stream(ctx, "SPY"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("stream SPY: %v, want not found", err)
	}
}
