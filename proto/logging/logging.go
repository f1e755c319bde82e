// Package logging makes the slog handler the gateway and the worker log with: JSON, or text when
// LOG_FORMAT=text or when LOG_FORMAT is empty and the output is a terminal.
package logging

import (
	"io"
	"log/slog"
	"os"
	"strings"
)

// Handler returns the handler for LOG_FORMAT format and LOG_LEVEL level (debug, info, warn or
// error; anything else means info) writing to w.
func Handler(format, level string, w io.Writer) slog.Handler {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level)) // validated by each binary's config
	opts := &slog.HandlerOptions{Level: lv}
	if format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	if strings.EqualFold(format, "text") {
		return slog.NewTextHandler(w, opts)
	}
	return slog.NewJSONHandler(w, opts)
}
