// Command gateway serves Brain's WebSocket API: it authenticates clients, validates their messages,
// publishes jobs to NATS JetStream and relays each chat's events back to its sockets.
package main

import (
	"context"
	"fmt"
	"github.com/backendim/brain/proto/buildinfo"
	"github.com/backendim/brain/proto/healthcheck"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if buildinfo.Requested(os.Args[1:]) {
		fmt.Println(buildinfo.String("gateway"))
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

// run dispatches the subcommands: none (serve), healthcheck or nats-keys.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "healthcheck":
			return healthcheck.Run(ctx, "gateway", args[1:], getenv, stderr)
		case "nats-keys":
			return natsKeys(args[1:], stderr)
		}
	}
	return serve(ctx, args, getenv, stderr)
}
