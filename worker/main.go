// Command worker runs Brain's deploy jobs: it pulls them from NATS JetStream, fetches the commit,
// renders its manifests, applies them into the chat's namespace, and publishes every step as an
// event for the gateways to relay.
//
//	worker               run (configuration: flags, or the environment variables they name)
//	worker healthcheck   GET /health of the local worker; exit 0 when it answers 200
//	worker doctor        print the worker's cluster identity and check its permissions
package main

import (
	"context"
	"fmt"
	"github.com/backendim/brain/proto/buildinfo"
	"github.com/backendim/brain/proto/healthcheck"
	"github.com/backendim/brain/proto/logging"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/backendim/brain/worker/internal/joblog"
)

func main() {
	if buildinfo.Requested(os.Args[1:]) {
		fmt.Println(buildinfo.String("worker"))
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

// run dispatches the subcommands: none (serve), healthcheck or doctor.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "healthcheck":
			return healthcheck.Run(ctx, "worker", args[1:], getenv, stderr)
		case "doctor":
			return doctor(ctx, args[1:], getenv, stderr)
		}
	}
	return serve(ctx, args, getenv, stderr)
}

// newLogger returns a JSON logger, or a text one when format is "text" or when format is empty
// and w is a terminal. Records logged with a job's context carry its IDs (joblog).
func newLogger(format, level string, w io.Writer) *slog.Logger {
	return slog.New(joblog.NewHandler(logging.Handler(format, level, w)))
}
