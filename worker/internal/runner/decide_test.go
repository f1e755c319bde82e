package runner

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/backendim/brain/proto"
)

// TestDecide covers the one place that chooses between ending, retrying and handing back a job.
func TestDecide(t *testing.T) {
	t.Parallel()
	r := &Runner{opts: Options{MaxDeliver: 3}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cancelled, cancel := context.WithCancelCause(context.Background())
	cancel(errCancelled)
	shutdown, stop := context.WithCancelCause(context.Background())
	stop(errShutdown)
	tests := []struct {
		name     string
		ctx      context.Context
		err      error
		delivery int
		want     verdict
		code     proto.Code
	}{
		{"success", context.Background(), nil, 1, endSuccess, ""},
		{"permanent", context.Background(), proto.Errorf(proto.CodeCommitNotFound, "x"), 1, endError, proto.CodeCommitNotFound},
		{"retryable", context.Background(), proto.Errorf(proto.CodeRepoUnreachable, "x"), 1, retryLater, proto.CodeRepoUnreachable},
		{"retryable on last delivery", context.Background(), proto.Errorf(proto.CodeRepoUnreachable, "x"), 3, endError, proto.CodeRetriesExhausted},
		{"health timeout is not redelivered", context.Background(), proto.Errorf(proto.CodeHealthTimeout, "x"), 1, endError, proto.CodeHealthTimeout},
		{"cluster unreachable is", context.Background(), proto.Errorf(proto.CodeClusterUnreachable, "x"), 1, retryLater, proto.CodeClusterUnreachable},
		{"unexpected error", context.Background(), errors.New("disk full at /var/cache"), 1, retryLater, proto.CodeInternal},
		{"cancelled", cancelled, context.Canceled, 1, endError, proto.CodeCancelled},
		{"shutdown", shutdown, context.Canceled, 1, handBack, ""},
		{"shutdown on last delivery", shutdown, context.Canceled, 3, endError, proto.CodeRetriesExhausted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := r.decide(tt.ctx, tt.err, tt.delivery, log)
			var code proto.Code
			if d.err != nil {
				code = d.err.Code
			}
			if d.verdict != tt.want || code != tt.code {
				t.Fatalf("decide = verdict %d code %q, want %d %q", d.verdict, code, tt.want, tt.code)
			}
		})
	}
}
