package gitcache

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"github.com/backendim/brain/proto"
)

// maxDetail bounds the underlying error text quoted in a repo_unreachable message.
const maxDetail = 300

// failure is what classify needs to know about a failed fetch.
type failure struct {
	err      error
	state    *fetchState
	repo     string // display URL
	origin   string // scheme://host[:port]
	hasCreds bool
	timeout  time.Duration
	fetchCtx context.Context
}

// classify turns a failed fetch into the *proto.Error a user sees. Credentials are never part
// of it: they travel only in request headers, which no error here repeats.
func classify(f failure) *proto.Error {
	if pe := f.state.refusal(); pe != nil {
		return pe
	}
	var pe *proto.Error
	if errors.As(f.err, &pe) {
		return pe
	}
	if f.state.tooLarge.Load() || errors.Is(f.err, errTooLarge) {
		return proto.Errorf(proto.CodeRepoTooLarge, "fetching %s read more than the operator's limit of %s; use a smaller repository or ask the operator to raise the limit",
			f.repo, byteSize(f.state.limit))
	}
	switch {
	case errors.Is(f.err, transport.ErrRepositoryNotFound):
		return proto.Errorf(proto.CodeRepoNotFound, "repository %s not found; check the URL", f.repo)
	case errors.Is(f.err, transport.ErrAuthenticationRequired), errors.Is(f.err, transport.ErrAuthorizationFailed):
		if f.hasCreds {
			return proto.Errorf(proto.CodeRepoAuthFailed, "%s refused the credentials configured for %s; ask the operator to check GIT_CREDENTIALS_FILE", f.repo, f.origin)
		}
		return proto.Errorf(proto.CodeRepoAuthFailed, "%s requires credentials and none are configured for %s; ask the operator to add them to GIT_CREDENTIALS_FILE, or use a public repository", f.repo, f.origin)
	case errors.Is(f.err, transport.ErrEmptyRemoteRepository):
		return proto.Errorf(proto.CodeCommitNotFound, "repository %s is empty: it has no branches or tags", f.repo)
	case errors.Is(f.fetchCtx.Err(), context.DeadlineExceeded), errors.Is(f.err, os.ErrDeadlineExceeded): // an SSH connection's deadline is the fetch's
		return proto.Errorf(proto.CodeRepoUnreachable, "fetching %s took longer than %s; try again later", f.repo, f.timeout)
	}
	if code, ok := httpStatus(f.err); ok {
		if code == http.StatusGone {
			return proto.Errorf(proto.CodeRepoNotFound, "repository %s is gone (HTTP 410); check the URL", f.repo)
		}
		return proto.Errorf(proto.CodeRepoUnreachable, "%s answered HTTP %d %s; try again later", f.repo, code, http.StatusText(code))
	}
	return proto.Errorf(proto.CodeRepoUnreachable, "cannot fetch %s: %s", f.repo, detail(f.err))
}

// httpStatus finds the HTTP status of a failed request in err. go-git wraps it in a
// plumbing.UnexpectedError, which does not unwrap.
func httpStatus(err error) (int, bool) {
	for err != nil {
		var he *githttp.Err
		if errors.As(err, &he) {
			return he.StatusCode(), true
		}
		var ue *plumbing.UnexpectedError
		if !errors.As(err, &ue) {
			return 0, false
		}
		err = ue.Err
	}
	return 0, false
}

// detail shortens an underlying error for a message.
func detail(err error) string {
	s := strings.ToValidUTF8(err.Error(), "")
	if len(s) > maxDetail {
		s = strings.ToValidUTF8(s[:maxDetail], "") + "…"
	}
	return s
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
