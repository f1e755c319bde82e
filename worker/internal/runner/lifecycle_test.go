package runner_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/proto/layout"
	"github.com/backendim/brain/worker/internal/runner"
)

// untilStage reads events until job's first event of stage.
func (ev *events) untilStage(t testing.TB, jobID string, stage proto.Stage, d time.Duration) []event {
	t.Helper()
	deadline := time.Now().Add(d)
	var out []event
	for {
		m := ev.next(t, time.Until(deadline))
		out = append(out, m)
		if m.JobID == jobID && m.Stage == stage {
			return out
		}
	}
}

func indexOf(evs []event, jobID string, match func(event) bool) int {
	return slices.IndexFunc(evs, func(m event) bool { return m.JobID == jobID && match(m) })
}

func isStage(s proto.Stage) func(event) bool { return func(m event) bool { return m.Stage == s } }

func TestSameNamespaceJobsTakeTurns(t *testing.T) {
	t.Parallel()
	lc := layout.Defaults()
	lc.AckWait = 2 * time.Second
	e := newEnv(t, lc)
	e.repo(t, "app")
	f := newFront(t, e.git)
	f.hold()
	w := e.startWorker(t, runner.Options{Concurrency: 2})
	ev := e.follow(t, "u1", "c1")
	first := e.submit(t, "u1", "c1", f.url("app"), "main")
	f.waitHeld(t)
	second := e.submit(t, "u1", "c1", f.url("app"), "main")
	evs := ev.untilStage(t, second.JobID, proto.StageBlocked, 15*time.Second)
	if blocked := evs[len(evs)-1]; !strings.Contains(blocked.text(), first.JobID) || !strings.Contains(blocked.text(), "im-c1-u1") {
		t.Errorf("blocked = %q, want it to name job %s and the namespace", blocked.text(), first.JobID)
	}
	// Both wait past AckWait: only heartbeats keep them from being delivered again.
	<-time.After(lc.AckWait + lc.AckWait/2)
	f.release()
	evs = append(evs, ev.untilFinal(t, second.JobID, 30*time.Second)...)

	firstDone := indexOf(evs, first.JobID, func(m event) bool { return m.Type == proto.TypeSuccess })
	secondFetch := indexOf(evs, second.JobID, isStage(proto.StageFetching))
	if firstDone < 0 || secondFetch < firstDone {
		t.Errorf("second job fetched (event %d) before the first finished (event %d): %v", secondFetch, firstDone, stages(evs))
	}
	if last := evs[len(evs)-1]; last.Type != proto.TypeSuccess {
		t.Errorf("second final = %+v", last.Message)
	}
	var starts []string
	for _, m := range evs {
		if m.Stage == proto.StageStarted {
			starts = append(starts, m.JobID[:4]+"#"+string(rune('0'+m.Attempt)))
		}
	}
	if diff := cmp.Diff([]string{first.JobID[:4] + "#1", second.JobID[:4] + "#1"}, starts); diff != "" {
		t.Errorf("started events (-want +got):\n%s", diff)
	}
	if got := w.counter(t, "brain_worker_redeliveries_total", "", ""); got != 0 {
		t.Errorf("redeliveries = %v: heartbeats did not keep the jobs", got)
	}
	e.waitJobsLeft(t, 0)
}

func TestCancelBlockedAndRunningJobs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, layout.Defaults())
	e.repo(t, "app")
	f := newFront(t, e.git)
	f.hold()
	e.startWorker(t, runner.Options{Concurrency: 2})
	ev := e.follow(t, "u1", "c1")
	first := e.submit(t, "u1", "c1", f.url("app"), "main")
	f.waitHeld(t)
	second := e.submit(t, "u1", "c1", f.url("app"), "main")
	ev.untilStage(t, second.JobID, proto.StageBlocked, 15*time.Second)

	for _, tt := range []struct {
		name string
		job  proto.Job
	}{{"blocked on the lock", second}, {"fetching", first}} {
		e.requestCancel(t, tt.job.JobID)
		evs := ev.untilFinal(t, tt.job.JobID, 15*time.Second)
		final := evs[len(evs)-1]
		if final.Code != proto.CodeCancelled || *final.Retryable {
			t.Errorf("%s: final = %+v", tt.name, final.Message)
		}
		if st := e.settled(t, tt.job.JobID); st.State != proto.StateCancelled || st.Code != proto.CodeCancelled {
			t.Errorf("%s: record = %+v", tt.name, st)
		}
	}
	e.waitJobsLeft(t, 0)
	// The cancelled job released the lock: a new job of the chat runs at once.
	f.release()
	third := e.submit(t, "u1", "c1", f.url("app"), "main")
	evs := ev.untilFinal(t, third.JobID, 15*time.Second)
	if slices.ContainsFunc(evs, isStage(proto.StageBlocked)) || evs[len(evs)-1].Type != proto.TypeSuccess {
		t.Errorf("third job: %v", stages(evs))
	}
}

func TestKilledWorkersJobFinishesElsewhere(t *testing.T) {
	t.Parallel()
	lc := layout.Defaults()
	lc.AckWait, lc.LockTTL = 2*time.Second, 2*time.Second
	e := newEnv(t, lc)
	_, sha := e.repo(t, "app")
	f := newFront(t, e.git)
	f.hold()
	a := e.startWorker(t, runner.Options{WorkerID: "a"})
	ev := e.follow(t, "u1", "c1")
	job := e.submit(t, "u1", "c1", f.url("app"), "main")
	f.waitHeld(t)
	evs := ev.untilStage(t, job.JobID, proto.StageFetching, 15*time.Second)

	a.nc.Close() // dies: no more heartbeats, acks or events
	a.stop(t)
	b := e.startWorker(t, runner.Options{WorkerID: "b"})
	f.release()
	evs = append(evs, ev.untilFinal(t, job.JobID, 30*time.Second)...)

	final := evs[len(evs)-1]
	if final.Type != proto.TypeSuccess || final.Payload.Commit != sha {
		t.Fatalf("final = %+v", final.Message)
	}
	var starts []string
	for _, m := range evs {
		if m.Stage == proto.StageStarted {
			starts = append(starts, m.Worker+"#"+string(rune('0'+m.Attempt)))
		}
	}
	if diff := cmp.Diff([]string{"a#1", "b#2"}, starts); diff != "" {
		t.Errorf("started events (-want +got):\n%s", diff)
	}
	if st := e.settled(t, job.JobID); st.State != proto.StateSucceeded || st.Worker != "b" || st.Attempt != 2 {
		t.Errorf("record = %+v", st)
	}
	if got := b.counter(t, "brain_worker_redeliveries_total", "", ""); got != 1 {
		t.Errorf("b's redeliveries = %v, want 1", got)
	}
	e.waitJobsLeft(t, 0)
}

func TestDeliveryOfEndedJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t, layout.Defaults())
	repoURL, _ := e.repo(t, "app")
	w := e.startWorker(t, runner.Options{})
	tests := []struct {
		name       string
		state      proto.JobState
		cancel     bool
		wantEvents []string
		wantState  proto.JobState
	}{
		{"succeeded before its ack", proto.StateSucceeded, false, nil, proto.StateSucceeded},
		{"cancelled while queued", proto.StateCancelled, false, nil, proto.StateCancelled},
		{"cancel requested before a redelivery", proto.StateRunning, true, []string{"error"}, proto.StateCancelled},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chat := "d" + string(rune('a'+i))
			ev := e.follow(t, "u1", chat)
			job := proto.Job{JobID: proto.NewJobID(), UserID: "u1", ChatID: chat, RepoURL: repoURL, CommitHash: "main"}
			e.submitJob(t, proto.JobStatus{Job: job, State: tt.state, Published: true, CancelRequested: tt.cancel})
			e.waitJobsLeft(t, 0)
			var got []string
			for range tt.wantEvents {
				m := ev.next(t, 10*time.Second)
				got = append(got, m.Type)
				if m.Type == proto.TypeError && m.Code != proto.CodeCancelled {
					t.Errorf("error event %+v, want cancelled", m.Message)
				}
			}
			ev.none(t, 300*time.Millisecond)
			if diff := cmp.Diff(tt.wantEvents, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if st := e.settled(t, job.JobID); st.State != tt.wantState {
				t.Errorf("state = %s, want %s", st.State, tt.wantState)
			}
		})
	}
	w.waitCounter(t, "brain_worker_jobs_total", "result", "dropped", 2)
}

func TestShutdownHandsBackRunningJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t, layout.Defaults())
	e.repo(t, "app")
	f := newFront(t, e.git)
	f.hold()
	a := e.startWorker(t, runner.Options{WorkerID: "a", ShutdownTimeout: 200 * time.Millisecond})
	ev := e.follow(t, "u1", "c1")
	job := e.submit(t, "u1", "c1", f.url("app"), "main")
	f.waitHeld(t)
	evs := ev.untilStage(t, job.JobID, proto.StageFetching, 15*time.Second)
	if err := a.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if st := e.status(t, job.JobID); st.State != proto.StateQueued {
		t.Errorf("state after hand-back = %s, want queued", st.State)
	}
	if got := a.counter(t, "brain_worker_jobs_total", "result", "handed_back"); got != 1 {
		t.Errorf("jobs_total{handed_back} = %v", got)
	}
	f.release()
	e.startWorker(t, runner.Options{WorkerID: "b"})
	evs = append(evs, ev.untilFinal(t, job.JobID, 15*time.Second)...)
	want := []string{"started", "fetching", "started", "fetching", "checked_out", "rendering", "success"}
	if diff := cmp.Diff(want, stages(evs)); diff != "" {
		t.Errorf("stages (-want +got):\n%s", diff)
	}
}

func TestShutdownDuringLastAttemptEndsJob(t *testing.T) {
	t.Parallel()
	lc := layout.Defaults()
	lc.MaxDeliver = 1
	e := newEnv(t, lc)
	e.repo(t, "app")
	f := newFront(t, e.git)
	f.hold()
	a := e.startWorker(t, runner.Options{})
	ev := e.follow(t, "u1", "c1")
	job := e.submit(t, "u1", "c1", f.url("app"), "main")
	f.waitHeld(t)
	if err := a.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	evs := ev.untilFinal(t, job.JobID, 5*time.Second)
	if final := evs[len(evs)-1]; final.Code != proto.CodeRetriesExhausted || !strings.Contains(final.text(), "submit it again") {
		t.Errorf("final = %+v", final.Message)
	}
	e.waitJobsLeft(t, 0)
	if st := e.settled(t, job.JobID); st.State != proto.StateFailed {
		t.Errorf("record = %+v", st)
	}
}

func TestShutdownLetsRunningJobFinish(t *testing.T) {
	t.Parallel()
	e := newEnv(t, layout.Defaults())
	e.repo(t, "app")
	f := newFront(t, e.git)
	f.hold()
	a := e.startWorker(t, runner.Options{ShutdownTimeout: time.Minute})
	ev := e.follow(t, "u1", "c1")
	job := e.submit(t, "u1", "c1", f.url("app"), "main")
	f.waitHeld(t)
	a.cancel()
	e.waitNoPulls(t)
	f.release()
	if err := a.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	evs := ev.untilFinal(t, job.JobID, 5*time.Second)
	if final := evs[len(evs)-1]; final.Type != proto.TypeSuccess {
		t.Errorf("final = %+v", final.Message)
	}
	e.waitJobsLeft(t, 0)
}

// waitNoPulls waits until no worker has a pull request waiting: the workers have stopped pulling.
func (e *env) waitNoPulls(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := e.js.Consumer(context.Background(), proto.JobsStream, proto.WorkersConsumer)
		if err != nil {
			t.Fatal(err)
		}
		if c.CachedInfo().NumWaiting == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("workers still pulling")
		}
		pause(50 * time.Millisecond)
	}
}
