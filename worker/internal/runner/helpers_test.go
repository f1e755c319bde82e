package runner_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/proto/layout"
	"github.com/backendim/brain/proto/natsauth"
	"github.com/backendim/brain/testkit/gitserver"
	"github.com/backendim/brain/testkit/natstest"
	"github.com/backendim/brain/worker/internal/gitcache"
	"github.com/backendim/brain/worker/internal/metrics"
	"github.com/backendim/brain/worker/internal/nslock"
	"github.com/backendim/brain/worker/internal/pipeline"
	"github.com/backendim/brain/worker/internal/runner"
	"github.com/backendim/brain/worker/internal/urlpolicy"
)

const manifests = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx:1.27}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80}]
`

// env is one embedded JetStream server with Brain's layout, and a git server.
type env struct {
	srv    *natstest.Server
	js     jetstream.JetStream
	jobs   jetstream.KeyValue
	layout layout.Config
	git    *gitserver.Server
}

func newEnv(t testing.TB, lc layout.Config) *env {
	t.Helper()
	e := &env{srv: natstest.Start(t), layout: lc, git: gitserver.New(t)}
	_, e.js = e.srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	if e.jobs, err = layout.Shared(ctx, e.js, lc); err != nil {
		t.Fatal(err)
	}
	return e
}

// repo makes a fixture repository with the manifests under deploy/ and returns its URL and SHA.
func (e *env) repo(t testing.TB, name string) (string, string) {
	t.Helper()
	r := e.git.Repo(t, name)
	sha := r.Commit(t, "Add web", map[string]string{"deploy/app.yaml": manifests, "README.md": "hi"})
	return r.URL(), sha
}

// worker is a runner with its own NATS connection, git cache and metrics.
type worker struct {
	nc      *nats.Conn
	reg     *prometheus.Registry
	cancel  context.CancelFunc
	done    chan struct{}
	runErr  error
	stopped sync.Once
}

func (e *env) startWorker(t testing.TB, opts runner.Options) *worker {
	t.Helper()
	nc, js := e.srv.ConnectAs(t, natsauth.Worker)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	locksKV, err := layout.Locks(ctx, js, e.layout)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := layout.Workers(ctx, js, e.layout)
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := js.KeyValue(ctx, proto.JobsBucket)
	if err != nil {
		t.Fatal(err)
	}
	cache, err := gitcache.Open(gitcache.Options{Dir: t.TempDir(),
		Policy: urlpolicy.Policy{AllowHTTP: true, AllowPrivateNetworks: true}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	w := &worker{nc: nc, reg: prometheus.NewRegistry(), done: make(chan struct{})}
	opts.Metrics = metrics.New(w.reg)
	if opts.WorkerID == "" {
		opts.WorkerID = "w1"
	}
	if opts.PullWait == 0 {
		opts.PullWait = 200 * time.Millisecond
	}
	pipe := pipeline.New(pipeline.Options{Git: cache, Metrics: opts.Metrics})
	rn, err := runner.New(js, cons, jobs, nslock.New(locksKV, nslock.Options{TTL: e.layout.LockTTL, Retry: 100 * time.Millisecond}), pipe, opts)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	w.cancel = stop
	go func() { defer close(w.done); w.runErr = rn.Run(runCtx) }()
	t.Cleanup(func() { w.stop(t) })
	return w
}

// stop ends the worker's Run and waits for it.
func (w *worker) stop(t testing.TB) error {
	t.Helper()
	w.stopped.Do(func() {
		w.cancel()
		select {
		case <-w.done:
		case <-time.After(30 * time.Second):
			t.Errorf("runner did not stop within 30s")
		}
	})
	return w.runErr
}

// waitCounter waits until a counter reaches want: results are counted just after the ack.
func (w *worker) waitCounter(t testing.TB, name, label, value string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := w.counter(t, name, label, value)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s{%s=%q} = %v, want %v", name, label, value, got, want)
			return
		}
		pause(20 * time.Millisecond)
	}
}

func (w *worker) counter(t testing.TB, name, label, value string) float64 {
	t.Helper()
	mfs, err := w.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" {
				return m.GetCounter().GetValue()
			}
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// submit publishes a job the way a gateway does: the job's record (queued, published), then the
// job with Nats-Msg-Id = jobId.
func (e *env) submit(t testing.TB, user, chat, repo, ref string) proto.Job {
	t.Helper()
	job := proto.Job{JobID: proto.NewJobID(), UserID: user, ChatID: chat, RepoURL: repo, CommitHash: ref,
		SubmittedAt: time.Now().UTC()}
	e.submitJob(t, proto.JobStatus{Job: job, State: proto.StateQueued, Published: true})
	return job
}

func (e *env) submitJob(t testing.TB, st proto.JobStatus) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.jobs.Create(ctx, st.JobID, rec); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(st.Job)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.js.Publish(ctx, proto.JobSubject(st.UserID, st.ChatID), data, jetstream.WithMsgID(st.JobID)); err != nil {
		t.Fatal(err)
	}
}

// settled waits until the job's record is in a final state (a worker writes it just after the
// final event) and returns it.
func (e *env) settled(t testing.TB, jobID string) proto.JobStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := e.status(t, jobID)
		if st.State.Final() {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s", jobID, st.State)
		}
		pause(20 * time.Millisecond)
	}
}

func (e *env) status(t testing.TB, jobID string) proto.JobStatus {
	t.Helper()
	ent, err := e.jobs.Get(context.Background(), jobID)
	if err != nil {
		t.Fatal(err)
	}
	st, err := proto.DecodeJobStatus(ent.Value())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// requestCancel does what a gateway does to cancel a running job.
func (e *env) requestCancel(t testing.TB, jobID string) {
	t.Helper()
	for range 10 {
		ent, err := e.jobs.Get(context.Background(), jobID)
		if err != nil {
			t.Fatal(err)
		}
		st, err := proto.DecodeJobStatus(ent.Value())
		if err != nil {
			t.Fatal(err)
		}
		st.CancelRequested = true
		data, _ := json.Marshal(st)
		if _, err := e.jobs.Update(context.Background(), jobID, data, ent.Revision()); err == nil {
			return
		} else if !errors.Is(err, jetstream.ErrKeyExists) {
			t.Fatal(err)
		}
	}
	t.Fatal("could not set cancelRequested")
}

// jobsLeft waits until BRAIN_JOBS holds want messages (acked and TERMed jobs leave it).
func (e *env) waitJobsLeft(t testing.TB, want uint64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		s, err := e.js.Stream(context.Background(), proto.JobsStream)
		if err != nil {
			t.Fatal(err)
		}
		if s.CachedInfo().State.Msgs == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("BRAIN_JOBS holds %d messages, want %d", s.CachedInfo().State.Msgs, want)
		}
		pause(50 * time.Millisecond)
	}
}

// pause polls; it is used only between checks of a condition with a deadline.
func pause(d time.Duration) { <-time.After(d) }

// event is an event as stored in BRAIN_EVENTS, with its message ID.
type event struct {
	proto.Message
	msgID string
	seq   uint64
}

func (e event) text() string { return e.Message.Message }

// events follows a chat's events from the start, like a gateway's relay.
type events struct {
	ch chan event
}

func (e *env) follow(t testing.TB, user, chat string) *events {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cons, err := e.js.OrderedConsumer(ctx, proto.EventsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{proto.EventSubject(user, chat)}})
	if err != nil {
		t.Fatal(err)
	}
	ev := &events{ch: make(chan event, 1000)}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		msg, err := proto.DecodeMessage(m.Data())
		if err != nil {
			t.Errorf("undecodable event %q: %v", m.Data(), err)
			return
		}
		meta, _ := m.Metadata()
		ev.ch <- event{Message: msg, msgID: m.Headers().Get(jetstream.MsgIDHeader), seq: meta.Sequence.Stream}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return ev
}

func (ev *events) next(t testing.TB, d time.Duration) event {
	t.Helper()
	select {
	case m := <-ev.ch:
		return m
	case <-time.After(d):
		t.Fatalf("no event within %s", d)
		return event{}
	}
}

// untilFinal returns the events up to and including job's final one.
func (ev *events) untilFinal(t testing.TB, jobID string, d time.Duration) []event {
	t.Helper()
	deadline := time.Now().Add(d)
	var out []event
	for {
		m := ev.next(t, time.Until(deadline))
		out = append(out, m)
		if m.JobID == jobID && m.Final() {
			return out
		}
	}
}

// none checks that no event arrives within d.
func (ev *events) none(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case m := <-ev.ch:
		t.Errorf("unexpected event %+v", m.Message)
	case <-time.After(d):
	}
}

func stages(evs []event) []string {
	var out []string
	for _, m := range evs {
		s := m.Type
		if m.Stage != "" {
			s = string(m.Stage)
		}
		if len(out) == 0 || out[len(out)-1] != s {
			out = append(out, s)
		}
	}
	return out
}

// front is an HTTP server in front of the git server that can fail requests and hold them.
type front struct {
	*httptest.Server
	failures atomic.Int64 // the next this many requests get 500
	mu       sync.Mutex
	open     chan struct{}
	held     chan struct{} // one value per request held
}

func newFront(t testing.TB, git *gitserver.Server) *front {
	t.Helper()
	u, err := url.Parse(git.BaseURL())
	if err != nil {
		t.Fatal(err)
	}
	f := &front{open: make(chan struct{}), held: make(chan struct{}, 100)}
	close(f.open)
	proxy := httputil.NewSingleHostReverseProxy(u)
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.failures.Add(-1) >= 0 {
			http.Error(w, "try later", http.StatusInternalServerError)
			return
		}
		f.mu.Lock()
		open := f.open
		f.mu.Unlock()
		select {
		case <-open:
		default:
			f.held <- struct{}{}
			select {
			case <-open:
			case <-r.Context().Done():
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Server.Close)
	t.Cleanup(f.release) // before Close, so held requests end
	return f
}

func (f *front) url(name string) string { return f.URL + "/" + name + ".git" }

// hold makes later requests wait until release.
func (f *front) hold() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.open = make(chan struct{})
}

func (f *front) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.open:
	default:
		close(f.open)
	}
}

func (f *front) waitHeld(t testing.TB) {
	t.Helper()
	select {
	case <-f.held:
	case <-time.After(15 * time.Second):
		t.Fatal("no request reached the held git server")
	}
}
