// Package runner is the worker's job consumer. It pulls jobs from the shared durable consumer
// "workers" only when one of its slots is free, keeps each delivery alive with in-progress
// heartbeats, runs the job's lifecycle (docs/design.md, "Job lifecycle") around the pipeline, and
// decides in one place (decide.go) whether a job ends, is retried later or is handed back.
package runner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/backendim/brain/worker/internal/metrics"
	"github.com/backendim/brain/worker/internal/nslock"
	"github.com/backendim/brain/worker/internal/pipeline"
)

// Defaults of Options.
const (
	DefaultConcurrency     = 4
	DefaultJobTimeout      = 10 * time.Minute
	DefaultShutdownTimeout = 30 * time.Second
	DefaultPullWait        = 2 * time.Second
	// requestTimeout bounds every key-value request, publish and acknowledgement.
	requestTimeout = 10 * time.Second
)

// DefaultBackoff returns the delays before the 2nd, 3rd, 4th and later deliveries of a job whose
// attempt failed with a retryable error.
func DefaultBackoff() []time.Duration {
	return []time.Duration{5 * time.Second, 20 * time.Second, time.Minute, 2 * time.Minute}
}

// Options configure a Runner. Zero values take the defaults.
type Options struct {
	// WorkerID names this worker in "started" events and job records (WORKER_ID).
	WorkerID string
	// Concurrency is the number of jobs run at once (WORKER_CONCURRENCY).
	Concurrency int
	// JobTimeout bounds one attempt of a job (JOB_TIMEOUT); past it the job ends with "timeout".
	JobTimeout time.Duration
	// ShutdownTimeout is how long running jobs may still finish once Run's context ends; then they
	// are stopped and handed back (SHUTDOWN_TIMEOUT). Zero hands them back at once.
	ShutdownTimeout time.Duration
	// AckWait and MaxDeliver default to the consumer's configuration. Heartbeats go every AckWait/3.
	AckWait    time.Duration
	MaxDeliver int
	// Backoff holds the NAK delays after a retryable failure of the 1st, 2nd, … delivery; the last
	// one repeats. Default DefaultBackoff.
	Backoff []time.Duration
	// PullWait bounds one pull request (and so how long a stop waits for it); default
	// DefaultPullWait.
	PullWait time.Duration
	// Logger defaults to discarding; Metrics to unregistered ones.
	Logger  *slog.Logger
	Metrics *metrics.Metrics
}

// Runner consumes and runs jobs.
type Runner struct {
	js    jetstream.JetStream
	cons  jetstream.Consumer
	jobs  jetstream.KeyValue
	locks *nslock.Locker
	pipe  *pipeline.Pipeline
	opts  Options
	log   *slog.Logger
	m     *metrics.Metrics
}

// New returns a Runner of the consumer cons (layout.Workers), writing job records to jobs
// (layout.Shared) and events through js, taking namespace locks from locks and running jobs
// through pipe.
func New(js jetstream.JetStream, cons jetstream.Consumer, jobs jetstream.KeyValue, locks *nslock.Locker,
	pipe *pipeline.Pipeline, opts Options) (*Runner, error) {
	if opts.WorkerID == "" {
		return nil, errors.New("new runner: no worker ID")
	}
	info := cons.CachedInfo()
	if info == nil {
		return nil, errors.New("new runner: consumer has no cached info")
	}
	opts.Concurrency = cmp.Or(opts.Concurrency, DefaultConcurrency)
	opts.JobTimeout = cmp.Or(opts.JobTimeout, DefaultJobTimeout)
	opts.AckWait = cmp.Or(opts.AckWait, info.Config.AckWait)
	opts.MaxDeliver = cmp.Or(opts.MaxDeliver, info.Config.MaxDeliver)
	opts.PullWait = cmp.Or(opts.PullWait, DefaultPullWait)
	if len(opts.Backoff) == 0 {
		opts.Backoff = DefaultBackoff()
	}
	if opts.AckWait < 3*time.Millisecond {
		return nil, fmt.Errorf("new runner: ack wait %s is too short for heartbeats", opts.AckWait)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New(nil)
	}
	return &Runner{js: js, cons: cons, jobs: jobs, locks: locks, pipe: pipe, opts: opts,
		log: opts.Logger, m: opts.Metrics}, nil
}

// errShutdown stops the jobs still running when the shutdown timeout has passed.
var errShutdown = errors.New("worker shutting down")

// Run pulls and runs jobs until ctx ends, then stops pulling, gives running jobs
// ShutdownTimeout to finish, stops the rest (they are handed back to the queue for another
// worker) and returns once every job has been acknowledged or handed back. It returns an error
// only when pulling fails for good (the NATS connection closed).
func (r *Runner) Run(ctx context.Context) error {
	jobsCtx, stopJobs := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopJobs(errShutdown)
	var wg sync.WaitGroup
	err := r.consume(ctx, jobsCtx, &wg)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	grace := r.opts.ShutdownTimeout
	if err != nil {
		grace = 0
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		r.log.Warn("shutdown timeout passed; handing running jobs back", "timeout", grace)
		stopJobs(errShutdown)
		<-done
	}
	return err
}

// consume pulls one message whenever a slot is free, so no message waits in a local buffer while
// its AckWait runs.
func (r *Runner) consume(ctx, jobsCtx context.Context, wg *sync.WaitGroup) error {
	slots := make(chan struct{}, r.opts.Concurrency)
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		msg, err := r.cons.Next(jetstream.FetchMaxWait(r.opts.PullWait))
		if err != nil {
			<-slots
			if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, jetstream.ErrConnectionClosed) {
				return fmt.Errorf("pull jobs: %w", err)
			}
			if !errors.Is(err, nats.ErrTimeout) {
				r.log.Warn("pull jobs", "err", err)
				pause(ctx, time.Second)
			}
			continue
		}
		if ctx.Err() != nil { // arrived as the stop began: let another worker have it
			_ = msg.Nak()
			<-slots
			return nil
		}
		wg.Go(func() {
			defer func() { <-slots }()
			r.handle(jobsCtx, msg)
		})
	}
}

func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// heartbeat tells the server every AckWait/3 that msg is still being worked on, until ctx ends.
func (r *Runner) heartbeat(ctx context.Context, msg jetstream.Msg, log *slog.Logger) {
	t := time.NewTicker(r.opts.AckWait / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := msg.InProgress(); err != nil {
				log.Warn("job heartbeat", "err", err)
			}
		}
	}
}

func (r *Runner) backoff(delivery int) time.Duration {
	i := min(max(delivery-1, 0), len(r.opts.Backoff)-1)
	return r.opts.Backoff[i]
}
