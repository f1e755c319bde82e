// Command brainctl is the command-line client of Brain: it deploys a commit into a chat's
// namespace and shows the job's progress live, follows a chat's events, shows a chat's latest
// job, cancels jobs, and mints development tokens. Run brainctl --help for the commands.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/backendim/brain/brainctl/internal/command"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil && err.Error() != "" {
		fmt.Fprintln(os.Stderr, "brainctl:", err)
	}
	os.Exit(command.ExitCode(err))
}

// run runs the command line args and returns an error that carries the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return command.Run(ctx, args, getenv, stdout, stderr)
}
