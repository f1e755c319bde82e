package command

import (
	"context"
	"errors"
	"fmt"

	"github.com/backendim/brain/proto"
)

// Exit codes of brainctl.
const (
	ExitOK          = 0   // the job succeeded, or the command did what it was asked
	ExitFailed      = 1   // the job ended with an error, or the gateway refused the request
	ExitUsage       = 2   // bad command line
	ExitConnection  = 3   // the gateway could not be reached, refused the token, or the connection was lost for good
	ExitTimeout     = 4   // --timeout passed before the job ended; it may still be running
	ExitInterrupted = 130 // interrupted (Ctrl-C) while following a job; it keeps running
)

// ExitError ends brainctl with Code. Err, when not nil, is printed; a nil Err means the output
// already said what happened.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return ""
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode returns the exit code for the error Run returned.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var e *ExitError
	if errors.As(err, &e) {
		return e.Code
	}
	return ExitFailed
}

func usageError(cmd string, format string, args ...any) error {
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf("%s: %s\nRun 'brainctl %s --help' for usage", cmd, fmt.Sprintf(format, args...), cmd)}
}

// connectionError is a failure to reach the gateway or keep talking to it.
func connectionError(err error) error {
	return &ExitError{Code: ExitConnection, Err: err}
}

// refused is the exit for an error answer that concerns no job: a refused request. The renderer
// has shown it.
func refused(m proto.Message) error {
	switch m.Code {
	case proto.CodeUnauthorized, proto.CodeForbidden:
		return &ExitError{Code: ExitConnection}
	}
	return &ExitError{Code: ExitFailed}
}

// isRefusal reports whether m is the gateway's refusal of a request (an error outside any job).
func isRefusal(m proto.Message) bool { return m.Type == proto.TypeError && m.JobID == "" }

// stopped explains why following ended with err: the user interrupted (parent ended), --timeout
// passed (ctx ended), or the connection failed. about names what was being followed, and hint
// says how to pick it up again.
func stopped(parent, ctx context.Context, err error, about, hint string) error {
	switch {
	case parent.Err() != nil:
		return &ExitError{Code: ExitInterrupted, Err: fmt.Errorf("interrupted while following %s; %s", about, hint)}
	case ctx.Err() != nil:
		return &ExitError{Code: ExitTimeout, Err: fmt.Errorf("--timeout passed while following %s; %s", about, hint)}
	}
	return connectionError(fmt.Errorf("%w; %s", err, hint))
}
