// Package command implements brainctl's commands: deploy, watch, status, cancel, token and version.
package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/backendim/brain/brainctl/internal/render"
	"github.com/backendim/brain/brainctl/internal/session"
	"github.com/backendim/brain/proto/buildinfo"
)

const usage = `brainctl is the command-line client of Brain, the chat GitOps deploy gateway.

Usage:
  brainctl <command> [flags]

Commands:
  deploy   deploy a commit of a repository into a chat's namespace and follow the job to its end
  watch    follow a chat's events, of every job, until interrupted
  status   show a chat's latest job and its last events
  cancel   cancel a queued or running job and wait until it stops
  token    print an HS256 token for a gateway running with AUTH_MODE=jwt (development)
  version  print brainctl's version

Environment: BRAIN_URL (default ` + DefaultURL + `), BRAIN_TOKEN, BRAIN_USER.

Exit codes: 0 success; 1 the job failed or the gateway refused the request; 2 usage error;
3 connection or authentication failure; 4 --timeout passed before the job ended; 130 interrupted.

Run 'brainctl <command> --help' for a command's flags.
`

// env is what a command may use of the world.
type env struct {
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
}

// Run runs the brainctl command line args (without the program name). The returned error carries
// the exit code (see ExitCode); its message, if any, is for stderr.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	e := &env{getenv: getenv, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &ExitError{Code: ExitUsage}
	}
	commands := map[string]func(context.Context, *env, []string) error{
		"deploy": deploy, "watch": watch, "status": status, "cancel": cancel, "token": mintToken,
	}
	cmd, ok := commands[args[0]]
	switch {
	case ok:
		err := cmd(ctx, e, args[1:])
		if errors.Is(err, errHelp) {
			return nil
		}
		return err
	case args[0] == "version" || args[0] == "--version" || args[0] == "-version":
		fmt.Fprintln(stdout, buildinfo.String("brainctl"))
		return nil
	case args[0] == "help" || args[0] == "-h" || args[0] == "-help" || args[0] == "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		return &ExitError{Code: ExitUsage, Err: fmt.Errorf("unknown command %q\nRun 'brainctl --help' for the commands", args[0])}
	}
}

// sessionOptions configures the connection of a command; notices go to r.
func sessionOptions(c connFlags, r render.Renderer) session.Options {
	return session.Options{URL: c.url, Token: c.token, Notify: r.Notice}
}

// output returns how to show a job's messages: JSON lines with --json, a live view on a terminal,
// timestamped lines otherwise. stop ends the live view's animation.
func (e *env) output(asJSON, live, showJob bool) (r render.Renderer, stop func()) {
	switch {
	case asJSON:
		return render.NewJSON(e.stdout, e.stderr), func() {}
	case live && e.terminal():
		width, _ := strconv.Atoi(e.getenv("COLUMNS"))
		t := render.NewTerminal(e.stdout, e.stderr, render.TerminalOptions{Width: width})
		stopAnimation := animate(t.Tick, 100*time.Millisecond)
		return t, func() { stopAnimation(); t.Close() }
	default:
		return render.NewPlain(e.stdout, e.stderr, render.PlainOptions{ShowJob: showJob}), func() {}
	}
}

// terminal reports whether stdout is a terminal that understands cursor movement.
func (e *env) terminal() bool {
	f, ok := e.stdout.(*os.File)
	if !ok || e.getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// animate calls tick every interval until the returned stop is called.
func animate(tick func(), every time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				tick()
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}
