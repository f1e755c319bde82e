package runner_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/proto/layout"
	"github.com/backendim/brain/worker/internal/runner"
)

func TestJobSucceeds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, layout.Defaults())
	repoURL, sha := e.repo(t, "app")
	w := e.startWorker(t, runner.Options{WorkerID: "w1"})
	ev := e.follow(t, "u1", "c1")
	job := e.submit(t, "u1", "c1", repoURL, sha[:8])

	evs := ev.untilFinal(t, job.JobID, 30*time.Second)
	want := []string{"started", "fetching", "checked_out", "rendering", "success"}
	if diff := cmp.Diff(want, stages(evs)); diff != "" {
		t.Errorf("stages (-want +got):\n%s", diff)
	}
	for i, m := range evs {
		if wantID := fmt.Sprintf("%s.1.%d", job.JobID, i+1); m.msgID != wantID {
			t.Errorf("event %d has Nats-Msg-Id %q, want %q", i, m.msgID, wantID)
		}
		if m.JobID != job.JobID || m.ChatID != "c1" || m.Time.IsZero() {
			t.Errorf("event %d lacks job, chat or time: %+v", i, m.Message)
		}
	}
	if started := evs[0]; started.Attempt != 1 || started.Worker != "w1" {
		t.Errorf("started = %+v, want attempt 1 by w1", started.Message)
	}
	checked := evs[slices.IndexFunc(evs, func(m event) bool { return m.Stage == proto.StageCheckedOut })]
	if checked.Commit != sha || !strings.Contains(checked.text(), "Add web") || !strings.Contains(checked.text(), "cache miss") {
		t.Errorf("checked_out = %+v", checked.Message)
	}
	p := evs[len(evs)-1].Payload
	if p == nil {
		t.Fatalf("success without payload: %+v", evs[len(evs)-1].Message)
	}
	wantPayload := proto.Result{Commit: sha, Subject: "Add web", Ref: sha[:8], Namespace: "im-c1-u1", Path: "deploy",
		Objects: []proto.ObjectResult{
			{Kind: "Deployment", Name: "web", File: "deploy/app.yaml", Action: proto.ActionFound},
			{Kind: "Service", Name: "web", File: "deploy/app.yaml", Action: proto.ActionFound},
		}}
	if diff := cmp.Diff(wantPayload, *p, cmpopts.IgnoreFields(proto.Result{}, "DurationMs", "StagesMs")); diff != "" {
		t.Errorf("payload (-want +got):\n%s", diff)
	}
	var keys []string
	for k := range p.StagesMs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if diff := cmp.Diff([]string{"deploy", "fetch", "lock", "render"}, keys); diff != "" {
		t.Errorf("stagesMs keys (-want +got):\n%s", diff)
	}

	e.waitJobsLeft(t, 0)
	st := e.settled(t, job.JobID)
	if st.State != proto.StateSucceeded || st.Commit != sha || st.Worker != "w1" || st.Attempt != 1 || st.FinishedAt.IsZero() {
		t.Errorf("record = %+v", st)
	}
	w.waitCounter(t, "brain_worker_jobs_total", "result", "succeeded", 1)
	if got := w.counter(t, "brain_worker_git_cache_total", "result", "miss"); got != 1 {
		t.Errorf("git_cache_total{miss} = %v", got)
	}
}

func TestPermanentErrorIsTerminated(t *testing.T) {
	t.Parallel()
	e := newEnv(t, layout.Defaults())
	repoURL, _ := e.repo(t, "app")
	e.startWorker(t, runner.Options{})
	ev := e.follow(t, "u1", "c1")
	job := e.submit(t, "u1", "c1", repoURL, "deadbeef")

	evs := ev.untilFinal(t, job.JobID, 30*time.Second)
	final := evs[len(evs)-1]
	if final.Type != proto.TypeError || final.Code != proto.CodeCommitNotFound || final.Retryable == nil || *final.Retryable ||
		!strings.Contains(final.text(), "deadbeef") {
		t.Errorf("final = %+v", final.Message)
	}
	if diff := cmp.Diff([]string{"started", "fetching", "error"}, stages(evs)); diff != "" {
		t.Errorf("stages (-want +got):\n%s", diff)
	}
	e.waitJobsLeft(t, 0)
	st := e.settled(t, job.JobID)
	if st.State != proto.StateFailed || st.Code != proto.CodeCommitNotFound {
		t.Errorf("record = %+v", st)
	}
	ev.none(t, 500*time.Millisecond) // TERMed: no redelivery
}

func TestRetryableErrorRetriesThenSucceeds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, layout.Defaults())
	_, sha := e.repo(t, "app")
	f := newFront(t, e.git)
	f.failures.Store(1)
	e.startWorker(t, runner.Options{Backoff: []time.Duration{100 * time.Millisecond}})
	ev := e.follow(t, "u1", "c1")
	job := e.submit(t, "u1", "c1", f.url("app"), "main")

	evs := ev.untilFinal(t, job.JobID, 30*time.Second)
	want := []string{"started", "fetching", "retrying", "started", "fetching", "checked_out", "rendering", "success"}
	if diff := cmp.Diff(want, stages(evs)); diff != "" {
		t.Fatalf("stages (-want +got):\n%s", diff)
	}
	retry := evs[slices.IndexFunc(evs, func(m event) bool { return m.Stage == proto.StageRetrying })]
	if retry.Code != proto.CodeRepoUnreachable || !strings.Contains(retry.text(), "500") ||
		!strings.Contains(retry.text(), "attempt 2 of 5") {
		t.Errorf("retrying = %+v", retry.Message)
	}
	if p := evs[len(evs)-1].Payload; p.Commit != sha {
		t.Errorf("payload commit = %s, want %s", p.Commit, sha)
	}
	var attempts []int
	for _, m := range evs {
		if m.Stage == proto.StageStarted {
			attempts = append(attempts, m.Attempt)
		}
		if !strings.HasPrefix(m.msgID, fmt.Sprintf("%s.%d.", job.JobID, max(len(attempts), 1))) {
			t.Errorf("event %s has Nats-Msg-Id %q, not of attempt %d", m.Stage, m.msgID, len(attempts))
		}
	}
	if diff := cmp.Diff([]int{1, 2}, attempts); diff != "" {
		t.Errorf("attempts (-want +got):\n%s", diff)
	}
	e.waitJobsLeft(t, 0)
	if st := e.settled(t, job.JobID); st.State != proto.StateSucceeded || st.Attempt != 2 {
		t.Errorf("record = %+v", st)
	}
}

func TestRetriesExhausted(t *testing.T) {
	t.Parallel()
	lc := layout.Defaults()
	lc.MaxDeliver = 2
	e := newEnv(t, lc)
	e.repo(t, "app")
	f := newFront(t, e.git)
	f.failures.Store(1000)
	w := e.startWorker(t, runner.Options{Backoff: []time.Duration{100 * time.Millisecond}})
	ev := e.follow(t, "u1", "c1")
	job := e.submit(t, "u1", "c1", f.url("app"), "main")

	evs := ev.untilFinal(t, job.JobID, 30*time.Second)
	want := []string{"started", "fetching", "retrying", "started", "fetching", "error"}
	if diff := cmp.Diff(want, stages(evs)); diff != "" {
		t.Fatalf("stages (-want +got):\n%s", diff)
	}
	final := evs[len(evs)-1]
	if final.Code != proto.CodeRetriesExhausted || !*final.Retryable || !strings.Contains(final.text(), "500") ||
		!strings.Contains(final.text(), "2 attempts") {
		t.Errorf("final = %+v", final.Message)
	}
	e.waitJobsLeft(t, 0)
	if st := e.settled(t, job.JobID); st.State != proto.StateFailed || st.Code != proto.CodeRetriesExhausted {
		t.Errorf("record = %+v", st)
	}
	if got := w.counter(t, "brain_worker_redeliveries_total", "", ""); got != 1 {
		t.Errorf("redeliveries_total = %v, want 1", got)
	}
	w.waitCounter(t, "brain_worker_jobs_total", "result", "retrying", 1)
}

func TestJobTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, layout.Defaults())
	e.repo(t, "app")
	f := newFront(t, e.git)
	f.hold()
	e.startWorker(t, runner.Options{JobTimeout: time.Second})
	ev := e.follow(t, "u1", "c1")
	job := e.submit(t, "u1", "c1", f.url("app"), "main")

	evs := ev.untilFinal(t, job.JobID, 30*time.Second)
	final := evs[len(evs)-1]
	if final.Code != proto.CodeTimeout || !*final.Retryable || !strings.Contains(final.text(), "JOB_TIMEOUT") {
		t.Errorf("final = %+v", final.Message)
	}
	e.waitJobsLeft(t, 0)
	if st := e.settled(t, job.JobID); st.State != proto.StateFailed || st.Code != proto.CodeTimeout {
		t.Errorf("record = %+v", st)
	}
}
