// Package pipeline runs the stages of one job attempt after its namespace lock is held: fetch the
// commit, render its manifests, deploy them (or only list them when there is no cluster), and
// build the success payload. It reports progress through a callback and returns errors unchanged
// for the runner to judge: *proto.Error values a user can act on, ctx's cause when the job was
// stopped, anything else as an internal failure.
package pipeline

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/worker/internal/deployer"
	"github.com/backendim/brain/worker/internal/gitcache"
	"github.com/backendim/brain/worker/internal/metrics"
	"github.com/backendim/brain/worker/internal/render"
)

// Stage names in Result.StagesMs and in brain_worker_stage_duration_seconds.
const (
	StageLock   = "lock" // measured by the runner
	StageFetch  = "fetch"
	StageRender = "render"
	StageDeploy = "deploy"
)

// DefaultProgressInterval is the least time between two git progress events.
const DefaultProgressInterval = time.Second

// Deployer is the Kubernetes stage; *deployer.Deployer satisfies it.
type Deployer interface {
	Deploy(ctx context.Context, req deployer.Request, report func(proto.Message)) ([]proto.ObjectResult, error)
}

// Options configure a Pipeline.
type Options struct {
	Git    *gitcache.Cache
	Limits render.Limits
	// Deployer applies the objects; nil (KUBE_AUTH=none) lists them with action "found" instead.
	Deployer Deployer
	// Metrics, if not nil, get stage durations and cache hits.
	Metrics *metrics.Metrics
	// ProgressInterval is the least time between two git progress events; default
	// DefaultProgressInterval.
	ProgressInterval time.Duration
}

// Pipeline runs jobs. It is safe for concurrent use.
type Pipeline struct {
	opts Options
}

// New returns a Pipeline.
func New(opts Options) *Pipeline {
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = DefaultProgressInterval
	}
	return &Pipeline{opts: opts}
}

// Run fetches, renders and deploys job, calling report with a progress message at each step
// (report must be safe for concurrent use), and returns the success payload. Result.DurationMs is
// the time Run took; the caller may replace it with the whole job's time.
func (p *Pipeline) Run(ctx context.Context, job proto.Job, report func(proto.Message)) (*proto.Result, error) {
	start := time.Now()
	res := &proto.Result{Ref: job.CommitHash, Namespace: job.Namespace(), DryRun: job.DryRun,
		StagesMs: map[string]int64{}}

	var commit *gitcache.Commit
	err := p.stage(ctx, res, StageFetch, func() (err error) {
		commit, err = p.fetch(ctx, job, report)
		return err
	})
	if err != nil {
		return nil, err
	}
	res.Commit, res.Subject, res.CacheHit = commit.Hash, commit.Subject, commit.CacheHit

	var out *render.Output
	err = p.stage(ctx, res, StageRender, func() (err error) {
		out, err = render.Render(ctx, commit.FS, job.Path, p.opts.Limits)
		return err
	})
	if err != nil {
		return nil, err
	}
	res.Path = out.Dir
	report(proto.Message{Type: proto.TypeProgress, Stage: proto.StageRendering, Count: len(out.Objects),
		Message: renderedMessage(out)})

	err = p.stage(ctx, res, StageDeploy, func() (err error) {
		res.Objects, err = p.deploy(ctx, job, out.Objects, report)
		return err
	})
	if err != nil {
		return nil, err
	}
	res.DurationMs = time.Since(start).Milliseconds()
	return res, nil
}

// stage runs fn as the named stage, records its duration, and makes a stopped ctx the error
// (checked before and after: the safe points between stages).
func (p *Pipeline) stage(ctx context.Context, res *proto.Result, name string, fn func() error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	start := time.Now()
	err := fn()
	d := time.Since(start)
	res.StagesMs[name] = d.Milliseconds()
	if p.opts.Metrics != nil {
		p.opts.Metrics.StageDuration.WithLabelValues(name).Observe(d.Seconds())
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
}

func (p *Pipeline) fetch(ctx context.Context, job proto.Job, report func(proto.Message)) (*gitcache.Commit, error) {
	repo := displayURL(job.RepoURL)
	report(proto.Message{Type: proto.TypeProgress, Stage: proto.StageFetching,
		Message: fmt.Sprintf("fetching %s at %s", repo, job.CommitHash)})
	commit, err := p.opts.Git.Checkout(ctx, job.RepoURL, job.CommitHash, throttle(p.opts.ProgressInterval, func(line string) {
		report(proto.Message{Type: proto.TypeProgress, Stage: proto.StageFetching, Message: line})
	}))
	if err != nil {
		return nil, err
	}
	hit := "miss"
	if commit.CacheHit {
		hit = "hit"
	}
	if p.opts.Metrics != nil {
		p.opts.Metrics.GitCache.WithLabelValues(hit).Inc()
	}
	report(proto.Message{Type: proto.TypeProgress, Stage: proto.StageCheckedOut, Commit: commit.Hash,
		Message: fmt.Sprintf("checked out %s %s (cache %s)", commit.Hash, commit.Subject, hit)})
	return commit, nil
}

func (p *Pipeline) deploy(ctx context.Context, job proto.Job, objs []render.Object, report func(proto.Message)) ([]proto.ObjectResult, error) {
	if p.opts.Deployer == nil {
		found := make([]proto.ObjectResult, 0, len(objs))
		for _, o := range objs {
			found = append(found, proto.ObjectResult{Kind: o.GetKind(), Namespace: o.GetNamespace(),
				Name: o.GetName(), File: o.File, Action: proto.ActionFound})
		}
		return found, nil
	}
	return p.opts.Deployer.Deploy(ctx, deployer.Request{JobID: job.JobID, UserID: job.UserID, ChatID: job.ChatID,
		Namespace: job.Namespace(), Objects: objs, DryRun: job.DryRun}, report)
}

func renderedMessage(out *render.Output) string {
	dir := out.Dir + "/"
	if out.Dir == "." {
		dir = "the repository root"
	}
	n := plural(len(out.Objects), "object")
	if out.Kustomize {
		return fmt.Sprintf("rendered %s from %s with kustomize", n, dir)
	}
	return fmt.Sprintf("rendered %s from %s in %s", n, plural(out.Files, "file"), dir)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// displayURL is how events name a repository: without any password in it.
func displayURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = url.User(u.User.Username())
	return u.String()
}

// throttle passes on at most one line per interval; the first line always passes.
func throttle(interval time.Duration, fn func(string)) func(string) {
	var (
		mu   sync.Mutex
		last time.Time
	)
	return func(line string) {
		mu.Lock()
		now := time.Now()
		if !last.IsZero() && now.Sub(last) < interval {
			mu.Unlock()
			return
		}
		last = now
		mu.Unlock()
		fn(line)
	}
}
