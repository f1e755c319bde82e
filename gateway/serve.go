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

	"github.com/backendim/brain/gateway/internal/auth"
	"github.com/backendim/brain/gateway/internal/config"
	"github.com/backendim/brain/gateway/internal/jobs"
	"github.com/backendim/brain/gateway/internal/metrics"
	"github.com/backendim/brain/gateway/internal/relay"
	"github.com/backendim/brain/gateway/internal/wsapi"
	"github.com/backendim/brain/proto/layout"
	"github.com/backendim/brain/proto/logging"
	"github.com/backendim/brain/proto/natsauth"
	"github.com/backendim/brain/proto/natsserver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
)

func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := config.Load(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg.LogFormat, cfg.LogLevel, stderr)
	natsURL, nkeyFile := cfg.NATSURL, cfg.NATSNkeyFile
	if cfg.NATSEmbedded {
		ns, err := natsserver.StartEmbedded("brain-embedded", cfg.NATSEmbeddedListen, cfg.NATSStoreDir,
			natsserver.SlogLogger(log.With("component", "nats")))
		if err != nil {
			return fmt.Errorf("embedded nats: %w", err)
		}
		defer ns.Shutdown()
		natsURL = ns.ClientURL()
		nkeyFile = natsauth.SeedFile(natsserver.SeedDir(cfg.NATSStoreDir), natsauth.Gateway)
		log.Info("embedded NATS JetStream server running", "url", natsURL, "store", cfg.NATSStoreDir,
			"seeds", natsserver.SeedDir(cfg.NATSStoreDir))
	}
	nc, err := connectNATS(natsURL, nkeyFile, cfg.NATSCredsFile, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	setupCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	kv, err := layout.Shared(setupCtx, js, cfg.Layout)
	cancel()
	if err != nil {
		return fmt.Errorf("nats layout: %w", err)
	}
	verifier, err := newVerifier(cfg, log)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ws := wsapi.New(wsapi.Options{Verifier: verifier, Jobs: jobs.New(js, kv, cfg.Layout.DedupWindow),
		Relay: relay.New(js), Metrics: metrics.New(reg), Logger: log, AllowedOrigins: cfg.AllowedOrigins,
		PingInterval: cfg.PingInterval, WriteTimeout: cfg.WriteTimeout, SendQueue: cfg.SendQueue,
		MaxChats: cfg.MaxChats, JobsPerMinute: cfg.JobsPerMinute, JobsBurst: cfg.JobsBurst,
		MessagesPerSecond: cfg.MessagesPerSecond})
	srv := &http.Server{Addr: cfg.ListenAddr, Handler: routes(ws, nc, reg), ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.ListenAddr, err)
	}
	log.Info("gateway listening", "addr", ln.Addr().String(), "auth", cfg.AuthMode)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		log.Info("shutting down: closing sockets with 1001", "timeout", cfg.ShutdownTimeout)
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		errs := []error{ws.Shutdown(sctx), srv.Shutdown(sctx)}
		if err := nc.Drain(); err != nil {
			errs = append(errs, fmt.Errorf("drain nats: %w", err))
		}
		return errors.Join(errs...)
	})
	return g.Wait()
}

func routes(ws http.Handler, nc *nats.Conn, reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /ws", ws)
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		if !nc.IsConnected() {
			http.Error(w, "nats: "+nc.Status().String(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}

// connectNATS connects with the gateway's identity (an nkey seed or a credentials file) and
// refuses a server that admits clients without credentials.
func connectNATS(url, nkeyFile, credsFile string, log *slog.Logger) (*nats.Conn, error) {
	return natsauth.Connect(natsauth.Gateway, url, nkeyFile, credsFile, nats.Name("brain-gateway"),
		nats.Timeout(5*time.Second), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second), nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("nats disconnected", "err", err) }),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { log.Error("nats", "err", err) }))
}

func newVerifier(cfg config.Config, log *slog.Logger) (*auth.Verifier, error) {
	if cfg.AuthMode == "none" {
		log.Warn("AUTH_MODE=none: clients are NOT authenticated and any client may act as any user; development only")
		return nil, nil
	}
	secrets, err := cfg.Secrets()
	if err != nil {
		return nil, err
	}
	v, err := auth.New(auth.Options{Secrets: secrets, PublicKeyFile: cfg.JWTPublicKeyFile,
		Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience})
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return v, nil
}

func newLogger(format, level string, w io.Writer) *slog.Logger {
	return slog.New(logging.Handler(format, level, w))
}
