// Package deployer is the worker's Kubernetes stage: it checks a commit's rendered objects against
// the operator's policy, server-side applies them into the chat's namespace (creating the namespace
// and its guard objects on first use), prunes what the previous deploy applied and this one no
// longer has, and waits until everything is healthy, reporting a progress event per object.
//
// It applies with github.com/fluxcd/pkg/ssa and judges health with kstatus
// (github.com/fluxcd/cli-utils). docs/kubernetes.md describes the behaviour for operators.
package deployer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/pkg/ssa"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/worker/internal/render"
)

// FieldManager is the server-side apply field manager of everything Brain applies.
const FieldManager = "brain"

// Defaults of Options.
const (
	DefaultHealthTimeout    = 5 * time.Minute  // HEALTH_TIMEOUT
	DefaultProgressInterval = 30 * time.Second // a "waiting" event repeats at least this often
	DefaultRequestTimeout   = 30 * time.Second // KUBE_TIMEOUT
	DefaultPollInterval     = 2 * time.Second  // how often health is polled
	// DefaultProgressMinInterval is the least time between two "waiting" events.
	DefaultProgressMinInterval = 3 * time.Second
	// DefaultCrashLoopRestarts is how often a container may restart before a crash loop fails the job.
	DefaultCrashLoopRestarts = 3
)

// concurrency is how many objects are dry-run or compared with the cluster at once.
const concurrency = 8

// Options configure a Deployer. Zero values take the defaults.
type Options struct {
	// FieldManager names Brain's server-side apply field manager; default FieldManager.
	FieldManager string
	// ForceConflicts takes over fields that another field manager owns instead of failing
	// (APPLY_FORCE_CONFLICTS).
	ForceConflicts bool
	// AllowedKinds lifts the refusal of otherwise refused kinds (APPLY_ALLOWED_KINDS): each entry is
	// "Kind" (any API group) or "group/Kind", e.g. "ClusterRole" or "rbac.authorization.k8s.io/ClusterRole".
	AllowedKinds []string
	// Guards are the objects created in every chat namespace. The zero value creates none; use
	// DefaultGuards or ParseGuards.
	Guards Guards
	// HealthTimeout bounds the wait for health (HEALTH_TIMEOUT); default DefaultHealthTimeout.
	HealthTimeout time.Duration
	// ProgressInterval is the longest time between two "waiting" events when nothing changes;
	// default DefaultProgressInterval.
	ProgressInterval time.Duration
	// ProgressMinInterval is the least time between two "waiting" events: one is sent when what
	// is pending changes, but not sooner; default DefaultProgressMinInterval.
	ProgressMinInterval time.Duration
	// CrashLoopRestarts is how many restarts of a crash-looping container fail the job
	// (crash_loop); default DefaultCrashLoopRestarts.
	CrashLoopRestarts int32
	// PollInterval is how often object status is read while waiting; default DefaultPollInterval.
	PollInterval time.Duration
	// RequestTimeout bounds every API request; default the config's Timeout, else
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// Logger receives debug and warning logs; default discards them.
	Logger *slog.Logger
}

// Deployer applies objects to one cluster. It is safe for concurrent use by several jobs, as long
// as no two of them deploy into the same namespace at once (the worker's namespace lock).
type Deployer struct {
	opts    Options
	allowed allowList
	host    string
	disc    *discovery.DiscoveryClient
	client  client.Client
	mapper  meta.RESTMapper
	rm      *ssa.ResourceManager
	log     *slog.Logger
}

// New returns a Deployer for the cluster of cfg. It makes no request: a cluster that is down makes
// Deploy and Ping fail, not New.
func New(cfg *rest.Config, opts Options) (*Deployer, error) {
	if cfg == nil {
		return nil, errors.New("new deployer: nil rest config")
	}
	allowed, err := parseAllowList(opts.AllowedKinds)
	if err != nil {
		return nil, fmt.Errorf("new deployer: %w", err)
	}
	if err := opts.Guards.validate(); err != nil {
		return nil, fmt.Errorf("new deployer: %w", err)
	}
	opts.FieldManager = cmp.Or(opts.FieldManager, FieldManager)
	opts.HealthTimeout = cmp.Or(opts.HealthTimeout, DefaultHealthTimeout)
	opts.ProgressInterval = cmp.Or(opts.ProgressInterval, DefaultProgressInterval)
	opts.PollInterval = cmp.Or(opts.PollInterval, DefaultPollInterval)
	opts.ProgressMinInterval = cmp.Or(opts.ProgressMinInterval, DefaultProgressMinInterval)
	opts.CrashLoopRestarts = cmp.Or(opts.CrashLoopRestarts, DefaultCrashLoopRestarts)
	opts.RequestTimeout = cmp.Or(opts.RequestTimeout, cfg.Timeout, DefaultRequestTimeout)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = opts.RequestTimeout
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("new deployer: http client for %s: %w", cfg.Host, err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("new deployer: rest mapper for %s: %w", cfg.Host, err)
	}
	c, err := client.New(cfg, client.Options{HTTPClient: hc, Mapper: mapper})
	if err != nil {
		return nil, fmt.Errorf("new deployer: client for %s: %w", cfg.Host, err)
	}
	disc, err := discovery.NewDiscoveryClientForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("new deployer: discovery client for %s: %w", cfg.Host, err)
	}
	poller := polling.NewStatusPoller(c, mapper, polling.Options{})
	rm := ssa.NewResourceManager(c, poller, ssa.Owner{Field: opts.FieldManager, Group: labelDomain})
	rm.SetConcurrency(concurrency)
	return &Deployer{opts: opts, allowed: allowed, host: cfg.Host, disc: disc, client: c, mapper: mapper,
		rm: rm, log: opts.Logger}, nil
}

// Request is one deploy of a chat.
type Request struct {
	JobID, UserID, ChatID string
	Namespace             string // the chat's namespace, proto.Namespace(ChatID, UserID)
	Objects               []render.Object
	DryRun                bool
}

// Deploy applies req.Objects into req.Namespace and waits until they are healthy.
//
// report receives "progress" messages: StageApplying, one per object with Object filled in
// (action created, configured, unchanged or pruned; on a dry run with a Diff summary), and
// StageWaiting while objects are not yet healthy, naming them and what they wait for in Pending:
// after the first status read, whenever that changes (at most every ProgressMinInterval), and at
// least every ProgressInterval.
// The namespace and Brain's guard objects are reported like the repository's objects.
//
// It returns every object with its action and final kstatus status. Errors a user should see are
// *proto.Error; a cancelled or expired ctx returns an error wrapping ctx.Err().
func (d *Deployer) Deploy(ctx context.Context, req Request, report func(proto.Message)) ([]proto.ObjectResult, error) {
	if report == nil {
		report = func(proto.Message) {}
	}
	log := d.log.With("job", req.JobID, "chat", req.ChatID, "namespace", req.Namespace)
	r := &run{d: d, req: req, log: log, report: report}
	res, err := r.deploy(ctx)
	if err != nil && ctx.Err() != nil {
		return res, fmt.Errorf("deploy to %s: %w", req.Namespace, ctx.Err())
	}
	return res, err
}

// Ping reports whether the API server answers an authenticated request.
func (d *Deployer) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, d.opts.RequestTimeout)
	defer cancel()
	if err := d.disc.RESTClient().Get().AbsPath("/api").Do(ctx).Error(); err != nil {
		return fmt.Errorf("ping %s: %w", d.host, err)
	}
	return nil
}
