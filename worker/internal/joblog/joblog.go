// Package joblog puts a job's IDs on every log line written with a context that carries them,
// including lines logged by packages that know nothing of jobs (the git cache logs with
// InfoContext(ctx, …) and so gets them too).
package joblog

import (
	"context"
	"log/slog"
)

type ctxKey struct{}

// With returns ctx carrying attrs (for example "job", id, "chat", chat) for Handler to add.
func With(ctx context.Context, attrs ...any) context.Context {
	prev, _ := ctx.Value(ctxKey{}).([]slog.Attr)
	all := append(append([]slog.Attr(nil), prev...), slog.Group("", attrs...).Value.Group()...)
	return context.WithValue(ctx, ctxKey{}, all)
}

// Handler adds the attributes of With to every record logged with such a context.
type Handler struct {
	slog.Handler
}

// NewHandler wraps h.
func NewHandler(h slog.Handler) Handler { return Handler{Handler: h} }

// Handle implements slog.Handler.
func (h Handler) Handle(ctx context.Context, r slog.Record) error {
	if attrs, ok := ctx.Value(ctxKey{}).([]slog.Attr); ok {
		r = r.Clone()
		r.AddAttrs(attrs...)
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return Handler{Handler: h.Handler.WithAttrs(attrs)}
}

// WithGroup implements slog.Handler.
func (h Handler) WithGroup(name string) slog.Handler {
	return Handler{Handler: h.Handler.WithGroup(name)}
}
