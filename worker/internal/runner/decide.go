package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/worker/internal/metrics"
)

// verdict is how an attempt ends.
type verdict int

const (
	endSuccess verdict = iota // final success event; ack
	endError                  // final error event; TERM (ack for a cancelled job)
	retryLater                // "retrying" event, state queued; NAK with a delay
	handBack                  // no event, state queued; NAK now so another worker runs it
)

// decision is the verdict on an attempt and the error its user is told about.
type decision struct {
	verdict verdict
	err     *proto.Error // endError and retryLater
	result  string       // brain_worker_jobs_total's result label
}

var (
	// errCancelled is the cause of a job stopped because its user cancelled it.
	errCancelled = proto.Errorf(proto.CodeCancelled, "the job was cancelled")
	// errLockLost is the cause of a job stopped because its namespace lock expired and was taken.
	errLockLost = errors.New("the namespace lock expired while the job held it")
)

func (r *Runner) timeoutError() *proto.Error {
	return proto.Errorf(proto.CodeTimeout, "the job ran longer than the worker's limit of %s (JOB_TIMEOUT); deploy less, or ask the operator to raise the limit", r.opts.JobTimeout)
}

// decide judges how an attempt ends, from the pipeline's error and why its context ended. This is
// the only place that chooses between ending a job, retrying it later and handing it back.
func (r *Runner) decide(ctx context.Context, runErr error, delivery int, log *slog.Logger) decision {
	if runErr == nil {
		return decision{verdict: endSuccess, result: metrics.ResultSucceeded}
	}
	if ctx.Err() != nil {
		cause := context.Cause(ctx)
		var pe *proto.Error
		switch {
		case errors.Is(cause, errShutdown) && r.lastDelivery(delivery):
			// A hand-back would never be delivered again: the consumer's MaxDeliver is used up.
			return decision{verdict: endError, result: metrics.ResultFailed, err: proto.Errorf(proto.CodeRetriesExhausted,
				"the worker running the last allowed attempt (%d) stopped before the job finished; submit it again", delivery)}
		case errors.Is(cause, errShutdown):
			return decision{verdict: handBack, result: metrics.ResultHandedBack}
		case errors.Is(cause, errCancelled):
			return decision{verdict: endError, err: errCancelled, result: metrics.ResultCancelled}
		case errors.As(cause, &pe) && pe.Code == proto.CodeTimeout:
			// Final even though the code is retryable: the user decides whether to try again.
			return decision{verdict: endError, err: pe, result: metrics.ResultFailed}
		case errors.Is(cause, errLockLost):
			runErr = cause
		}
	}
	var pe *proto.Error
	if !errors.As(runErr, &pe) {
		log.Error("job attempt failed", "err", runErr)
		pe = proto.Errorf(proto.CodeInternal, "the worker failed unexpectedly (the operator's log has the details)")
	}
	// health_timeout is retryable for the user, but the wait already spent HEALTH_TIMEOUT: running
	// the job again at once would only wait again, so it ends here like JOB_TIMEOUT does.
	if !pe.Code.Retryable() || pe.Code == proto.CodeHealthTimeout {
		return decision{verdict: endError, err: pe, result: metrics.ResultFailed}
	}
	if r.lastDelivery(delivery) {
		return decision{verdict: endError, result: metrics.ResultFailed, err: proto.Errorf(proto.CodeRetriesExhausted,
			"gave up after %d attempts; the last one failed with %s: %s", delivery, pe.Code, pe.Message)}
	}
	return decision{verdict: retryLater, err: pe, result: metrics.ResultRetrying}
}

// lastDelivery reports whether the consumer will not deliver the job again after delivery.
func (r *Runner) lastDelivery(delivery int) bool {
	return r.opts.MaxDeliver > 0 && delivery >= r.opts.MaxDeliver
}

// finish carries out d (design step 5): publish the final event, record the final state, release
// the lock, then ack or TERM; or, for a retry or a hand-back, record state queued, release the
// lock and NAK. A final event that cannot be published leaves the job unacknowledged: it is
// handed back and runs again.
func (a *attempt) finish(ctx context.Context, d decision, res *proto.Result) string {
	ctx = context.WithoutCancel(ctx)
	switch d.verdict {
	case endSuccess:
		res.DurationMs = time.Since(a.start).Milliseconds()
		if _, err := a.pub.Publish(ctx, proto.Message{Type: proto.TypeSuccess, Payload: res}); err != nil {
			return a.giveBack(ctx, err)
		}
		a.record(ctx, func(s *proto.JobStatus) {
			s.State, s.Commit, s.Code, s.Message = proto.StateSucceeded, res.Commit, "", ""
		})
		a.release(ctx)
		a.ack(ctx)
	case endError:
		retryable := d.err.Code.Retryable()
		m := proto.Message{Type: proto.TypeError, Code: d.err.Code, Message: d.err.Message, Retryable: &retryable}
		if _, err := a.pub.Publish(ctx, m); err != nil {
			return a.giveBack(ctx, err)
		}
		state := proto.StateFailed
		if d.err.Code == proto.CodeCancelled {
			state = proto.StateCancelled
		}
		a.record(ctx, func(s *proto.JobStatus) { s.State, s.Code, s.Message = state, d.err.Code, d.err.Message })
		a.release(ctx)
		if state == proto.StateCancelled {
			a.ack(ctx)
		} else if err := a.msg.TermWithReason(string(d.err.Code)); err != nil {
			a.log.Warn("terminate job", "err", err)
		}
	case retryLater:
		delay := a.r.backoff(a.delivery)
		next := fmt.Sprintf("attempt %d", a.delivery+1)
		if a.r.opts.MaxDeliver > 0 {
			next += fmt.Sprintf(" of %d", a.r.opts.MaxDeliver)
		}
		a.report(proto.Message{Type: proto.TypeProgress, Stage: proto.StageRetrying, Code: d.err.Code,
			Message: fmt.Sprintf("%s; trying again in %s (%s)", d.err.Message, delay, next)})
		a.requeue(ctx, delay)
	case handBack:
		a.requeue(ctx, 0)
	}
	return d.result
}

// giveBack hands back a job whose final event could not be published.
func (a *attempt) giveBack(ctx context.Context, err error) string {
	a.log.Error("cannot publish the job's final event; handing it back", "err", err)
	a.requeue(ctx, a.r.backoff(a.delivery))
	return metrics.ResultHandedBack
}

// requeue records state queued, releases the lock and NAKs the message with delay.
func (a *attempt) requeue(ctx context.Context, delay time.Duration) {
	a.record(ctx, func(s *proto.JobStatus) { s.State = proto.StateQueued })
	a.release(ctx)
	var err error
	if delay > 0 {
		err = a.msg.NakWithDelay(delay)
	} else {
		err = a.msg.Nak()
	}
	if err != nil {
		a.log.Warn("hand back job; it is delivered again after ACK_WAIT", "err", err)
	}
}

// record writes the job's new state unless it has already ended; a failure is logged.
func (a *attempt) record(ctx context.Context, change func(*proto.JobStatus)) {
	_, err := a.r.updateJob(ctx, a.job.JobID, func(s *proto.JobStatus) error {
		if s.State.Final() {
			return errJobEnded
		}
		change(s)
		if s.State.Final() {
			s.FinishedAt = time.Now().UTC()
		}
		return nil
	})
	if err != nil {
		a.log.Warn("record job state", "err", err)
	}
}
