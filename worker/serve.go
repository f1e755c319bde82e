package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/backendim/brain/proto/layout"
	"github.com/backendim/brain/proto/natsauth"
	"github.com/backendim/brain/worker/internal/cluster"
	"github.com/backendim/brain/worker/internal/config"
	"github.com/backendim/brain/worker/internal/deployer"
	"github.com/backendim/brain/worker/internal/gitcache"
	"github.com/backendim/brain/worker/internal/health"
	"github.com/backendim/brain/worker/internal/metrics"
	"github.com/backendim/brain/worker/internal/nslock"
	"github.com/backendim/brain/worker/internal/orphans"
	"github.com/backendim/brain/worker/internal/pipeline"
	"github.com/backendim/brain/worker/internal/runner"
)

// setupTimeout bounds start-up work against NATS and the cluster.
const setupTimeout = 30 * time.Second

// serve runs the worker until ctx ends, then shuts down: stop pulling jobs, let running jobs
// finish for SHUTDOWN_TIMEOUT, hand the rest back, drain NATS.
func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := config.Load(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg.LogFormat, cfg.LogLevel, stderr)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg)
	pipe, ping, err := newPipeline(ctx, cfg, m, log)
	if err != nil {
		return err
	}
	closed := make(chan struct{})
	nc, err := connectNATS(cfg, log, closed)
	if err != nil {
		return err
	}
	defer nc.Close()
	rn, err := newRunner(ctx, cfg, nc, pipe, m, log)
	if err != nil {
		return err
	}
	hh := health.New(health.Options{NATS: nc, Ping: ping, Gatherer: reg})
	srv := &http.Server{Addr: cfg.ListenAddr, Handler: hh, ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.ListenAddr, err)
	}
	log.Info("worker running", "addr", ln.Addr().String(), "worker", cfg.WorkerID, "concurrency", cfg.Concurrency,
		"kube_auth", cfg.Cluster.Mode, "cache_dir", cfg.CacheDir)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve %s: %w", cfg.ListenAddr, err)
		}
		return nil
	})
	g.Go(func() error {
		stopped := context.AfterFunc(gctx, func() {
			hh.Drain()
			log.Info("stopping: no new jobs; running jobs may finish", "timeout", cfg.ShutdownTimeout)
		})
		defer stopped()
		runErr := rn.Run(gctx)
		hh.Drain()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return errors.Join(runErr, srv.Shutdown(sctx), drain(sctx, nc, closed))
	})
	err = g.Wait()
	log.Info("worker stopped", "err", err)
	return err
}

// newPipeline opens the git cache and, unless KUBE_AUTH=none, the cluster. ping is nil without
// a cluster.
func newPipeline(ctx context.Context, cfg config.Config, m *metrics.Metrics, log *slog.Logger) (*pipeline.Pipeline, func(context.Context) error, error) {
	creds := gitcache.Credentials{}
	if cfg.GitCredentialsFile != "" {
		var err error
		if creds, err = gitcache.LoadCredentials(cfg.GitCredentialsFile); err != nil {
			return nil, nil, err
		}
		log.Info("git credentials loaded", "origins", creds.Origins())
	}
	cache, err := gitcache.Open(gitcache.Options{Dir: cfg.CacheDir, Policy: cfg.Policy(), Credentials: creds,
		SSHKeyFile: cfg.GitSSHKeyFile, SSHKnownHostsFile: cfg.GitSSHKnownHosts,
		FetchTimeout: cfg.GitFetchTimeout, MaxFetchBytes: cfg.GitMaxFetchBytes, Logger: log.With("component", "gitcache")})
	if err != nil {
		return nil, nil, err
	}
	if cfg.GitSSHKeyFile != "" {
		log.Info("ssh repository URLs enabled", "key", cfg.GitSSHKeyFile, "known_hosts", cfg.GitSSHKnownHosts)
	}
	opts := pipeline.Options{Git: cache, Limits: cfg.RenderLimits, Metrics: m}
	dep, err := newDeployer(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	if dep == nil {
		log.Warn("KUBE_AUTH=none: jobs render manifests only; nothing is applied to a cluster")
		return pipeline.New(opts), nil, nil
	}
	opts.Deployer = dep
	return pipeline.New(opts), dep.Ping, nil
}

// newDeployer returns the cluster's deployer, or nil for KUBE_AUTH=none.
func newDeployer(ctx context.Context, cfg config.Config, log *slog.Logger) (*deployer.Deployer, error) {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	restCfg, err := cluster.RESTConfig(ctx, cfg.Cluster, nil)
	if err != nil || restCfg == nil {
		return nil, err
	}
	guards, err := deployer.ParseGuards(cfg.NamespaceQuota, cfg.NamespaceLimitRange, cfg.NamespaceNetworkPol, cfg.NamespacePodSecurity)
	if err != nil {
		return nil, err
	}
	dep, err := deployer.New(restCfg, deployer.Options{ForceConflicts: cfg.ApplyForceConflicts,
		AllowedKinds: cfg.ApplyAllowedKinds, Guards: guards, HealthTimeout: cfg.HealthTimeout,
		RequestTimeout: cfg.Cluster.Timeout, Logger: log.With("component", "deployer")})
	if err != nil {
		return nil, err
	}
	log.Info("cluster configured", "kube_auth", cfg.Cluster.Mode, "host", restCfg.Host)
	return dep, nil
}

// newRunner ensures the JetStream layout, starts the orphan sweeper and builds the job runner.
func newRunner(ctx context.Context, cfg config.Config, nc *nats.Conn, pipe *pipeline.Pipeline, m *metrics.Metrics, log *slog.Logger) (*runner.Runner, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	jobs, err := layout.Shared(ctx, js, cfg.Layout)
	if err != nil {
		return nil, fmt.Errorf("nats layout: %w", err)
	}
	locks, err := layout.Locks(ctx, js, cfg.Layout)
	if err != nil {
		return nil, fmt.Errorf("nats layout: %w", err)
	}
	cons, err := layout.Workers(ctx, js, cfg.Layout)
	if err != nil {
		return nil, fmt.Errorf("nats layout: %w", err)
	}
	if _, err := orphans.Start(nc, js, jobs, log.With("component", "orphans")); err != nil {
		return nil, err
	}
	locker := nslock.New(locks, nslock.Options{TTL: cfg.Layout.LockTTL, Logger: log.With("component", "nslock")})
	return runner.New(js, cons, jobs, locker, pipe, runner.Options{WorkerID: cfg.WorkerID,
		Concurrency: cfg.Concurrency, JobTimeout: cfg.JobTimeout, ShutdownTimeout: cfg.ShutdownTimeout,
		Logger: log.With("component", "runner"), Metrics: m})
}

// connectNATS connects with the worker's identity (an nkey seed or a credentials file) and
// refuses a server that admits clients without credentials.
func connectNATS(cfg config.Config, log *slog.Logger, closed chan struct{}) (*nats.Conn, error) {
	return natsauth.Connect(natsauth.Worker, cfg.NATSURL, cfg.NATSNkeyFile, cfg.NATSCredsFile,
		nats.Name("brain-worker "+cfg.WorkerID), nats.Timeout(5*time.Second),
		nats.MaxReconnects(-1), nats.ReconnectWait(time.Second), nats.DrainTimeout(5*time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("nats disconnected", "err", err) }),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { log.Error("nats", "err", err) }),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
}

// drain drains the NATS connection and waits until it has closed.
func drain(ctx context.Context, nc *nats.Conn, closed <-chan struct{}) error {
	if err := nc.Drain(); err != nil {
		if errors.Is(err, nats.ErrConnectionClosed) {
			return nil
		}
		return fmt.Errorf("drain nats: %w", err)
	}
	select {
	case <-closed:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("drain nats: %w", ctx.Err())
	}
}
