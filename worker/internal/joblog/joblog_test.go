package joblog_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/backendim/brain/worker/internal/joblog"
)

func TestContextAttrsOnEveryLine(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(joblog.NewHandler(slog.NewTextHandler(&buf, nil))).With("component", "gitcache")
	ctx := joblog.With(context.Background(), "job", "j1", "chat", "c1")
	log.InfoContext(ctx, "git fetch", "repo", "r")
	log.InfoContext(context.Background(), "no job")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines:\n%s", len(lines), buf.String())
	}
	for _, want := range []string{"component=gitcache", "repo=r", "job=j1", "chat=c1"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("line %q lacks %q", lines[0], want)
		}
	}
	if strings.Contains(lines[1], "job=") {
		t.Errorf("line without a job context has job attrs: %q", lines[1])
	}
}
