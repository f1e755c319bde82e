package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/worker/internal/events"
	"github.com/backendim/brain/worker/internal/joblog"
	"github.com/backendim/brain/worker/internal/metrics"
	"github.com/backendim/brain/worker/internal/nslock"
	"github.com/backendim/brain/worker/internal/pipeline"
)

// attempt is one delivery of one job.
type attempt struct {
	r        *Runner
	msg      jetstream.Msg
	job      proto.Job
	delivery int // the message's delivery count; the job's attempt number
	log      *slog.Logger
	pub      *events.Publisher
	start    time.Time
	lock     *nslock.Lock // held from the lock stage until finish
}

// handle runs one delivered message to its end: acked, TERMed or NAKed.
func (r *Runner) handle(ctx context.Context, msg jetstream.Msg) {
	start := time.Now()
	meta, err := msg.Metadata()
	if err != nil {
		r.log.Error("job message without metadata; terminating it", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	job, err := proto.DecodeJob(msg.Data())
	if err != nil {
		r.log.Error("undecodable job; terminating it", "subject", msg.Subject(), "err", err)
		_ = msg.TermWithReason("undecodable job")
		r.m.Jobs.WithLabelValues(metrics.ResultFailed).Inc()
		return
	}
	a := &attempt{r: r, msg: msg, job: job, delivery: int(meta.NumDelivered), start: start,
		log: r.log.With("job", job.JobID, "chat", job.ChatID, "user", job.UserID, "attempt", meta.NumDelivered)}
	a.pub = events.New(r.js, job, a.delivery)
	if a.delivery > 1 {
		r.m.Redeliveries.Inc()
	}
	r.m.InFlight.Inc()
	defer r.m.InFlight.Dec()
	hbCtx, stopHeartbeat := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHeartbeat()
	go r.heartbeat(hbCtx, msg, a.log)

	a.log.Info("job received", "repo", redacted(job.RepoURL), "ref", job.CommitHash)
	result := a.run(joblog.With(ctx, "job", job.JobID, "chat", job.ChatID, "user", job.UserID))
	r.m.Jobs.WithLabelValues(result).Inc()
	r.m.JobDuration.Observe(time.Since(start).Seconds())
	a.log.Info("job attempt ended", "result", result, "duration", time.Since(start).Round(time.Millisecond))
}

// redacted is a repository URL for the log, without a password.
func redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// errCancelRequested refuses the start of a job whose user asked to cancel it.
var errCancelRequested = errors.New("cancel requested")

// run starts the job (design step 2), runs it, and finishes it.
func (a *attempt) run(ctx context.Context) string {
	_, err := a.r.updateJob(ctx, a.job.JobID, func(s *proto.JobStatus) error {
		switch {
		case s.State.Final():
			return errJobEnded
		case s.CancelRequested:
			return errCancelRequested
		}
		s.State, s.Attempt, s.Worker, s.StartedAt = proto.StateRunning, a.delivery, a.r.opts.WorkerID, time.Now().UTC()
		return nil
	})
	switch {
	case errors.Is(err, errJobEnded):
		a.log.Info("job already ended; dropping the delivery")
		a.ack(ctx)
		return metrics.ResultDropped
	case errors.Is(err, jetstream.ErrKeyNotFound):
		a.log.Warn("job has no record (expired or never created); dropping the delivery")
		_ = a.msg.TermWithReason("no job record")
		return metrics.ResultDropped
	case errors.Is(err, errCancelRequested):
		return a.finish(ctx, decision{verdict: endError, err: errCancelled, result: metrics.ResultCancelled}, nil)
	case err != nil:
		a.log.Error("cannot start job; handing it back", "err", err)
		_ = a.msg.NakWithDelay(a.r.backoff(a.delivery))
		return metrics.ResultHandedBack
	}
	a.report(proto.Message{Type: proto.TypeProgress, Stage: proto.StageStarted, Attempt: a.delivery,
		Worker: a.r.opts.WorkerID, Message: a.startedMessage()})

	jobCtx, cancelTimeout := context.WithTimeoutCause(ctx, a.r.opts.JobTimeout, a.r.timeoutError())
	defer cancelTimeout()
	jobCtx, stop := context.WithCancelCause(jobCtx)
	defer stop(nil)
	watched := make(chan struct{})
	go func() { defer close(watched); a.watchCancel(jobCtx, stop) }()

	res, err := a.execute(jobCtx, stop)
	d := a.r.decide(jobCtx, err, a.delivery, a.log)
	stop(nil)
	<-watched
	return a.finish(ctx, d, res)
}

func (a *attempt) startedMessage() string {
	if a.r.opts.MaxDeliver > 0 {
		return fmt.Sprintf("worker %s started attempt %d of %d", a.r.opts.WorkerID, a.delivery, a.r.opts.MaxDeliver)
	}
	return fmt.Sprintf("worker %s started attempt %d", a.r.opts.WorkerID, a.delivery)
}

// execute takes the namespace lock and runs the pipeline while holding it. A lock lost on the
// way (it expired and another job took it) stops the job.
func (a *attempt) execute(ctx context.Context, stop context.CancelCauseFunc) (*proto.Result, error) {
	ns := a.job.Namespace()
	start := time.Now()
	lock, err := a.r.locks.Acquire(ctx, ns, a.job.JobID, func(holder string) {
		a.report(proto.Message{Type: proto.TypeProgress, Stage: proto.StageBlocked,
			Message: fmt.Sprintf("waiting for job %s, which is deploying to namespace %s", holder, ns)})
	})
	if err != nil {
		return nil, err
	}
	a.lock = lock
	waited := time.Since(start)
	a.r.m.StageDuration.WithLabelValues(pipeline.StageLock).Observe(waited.Seconds())
	go func() {
		select {
		case <-lock.Lost():
			stop(errLockLost)
		case <-ctx.Done():
		}
	}()
	res, err := a.r.pipe.Run(ctx, a.job, a.report)
	if res != nil {
		res.StagesMs[pipeline.StageLock] = waited.Milliseconds()
	}
	return res, err
}

// watchCancel stops the job with errCancelled when its record gets cancelRequested, until ctx ends.
func (a *attempt) watchCancel(ctx context.Context, stop context.CancelCauseFunc) {
	w, err := a.r.jobs.Watch(ctx, a.job.JobID)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("cannot watch the job's record; cancel requests will not stop it", "err", err)
		}
		return
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			st, err := proto.DecodeJobStatus(e.Value())
			if err == nil && st.CancelRequested {
				a.log.Info("cancel requested; stopping the job")
				stop(errCancelled)
				return
			}
		}
	}
}

// report publishes a progress event of the job; a failure is logged, and the job goes on.
func (a *attempt) report(m proto.Message) {
	if _, err := a.pub.Publish(context.Background(), m); err != nil {
		a.log.Warn("publish progress event", "stage", m.Stage, "err", err)
	}
}

// ack acknowledges the message and waits for the server to confirm it.
func (a *attempt) ack(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout)
	defer cancel()
	if err := a.msg.DoubleAck(ctx); err != nil {
		a.log.Warn("ack job; it may be delivered again and will then be dropped", "err", err)
	}
}

// release gives up the namespace lock, if held.
func (a *attempt) release(ctx context.Context) {
	if a.lock == nil {
		return
	}
	if err := a.lock.Release(ctx); err != nil {
		a.log.Warn("release namespace lock; it expires after LOCK_TTL", "err", err)
	}
}
