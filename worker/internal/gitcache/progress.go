package gitcache

import (
	"strings"
	"sync"
	"time"
)

// progressEvery is how often a line that the server keeps rewriting ("Counting objects: 45%")
// is passed on.
const progressEvery = 2 * time.Second

// maxProgressLine bounds a progress line's length.
const maxProgressLine = 160

// progressWriter turns the server's sideband progress stream into short lines for fn: every
// finished line ("...done."), and a line the server rewrites in place (ending in '\r') at most
// every progressEvery. Control characters are dropped, since the text comes from the server.
type progressWriter struct {
	fn  func(string)
	now func() time.Time

	mu   sync.Mutex
	buf  []byte
	last time.Time
}

func newProgressWriter(fn func(string)) *progressWriter {
	return &progressWriter{fn: fn, now: time.Now}
}

func (w *progressWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range p {
		switch c {
		case '\n':
			w.emit(true)
		case '\r':
			w.emit(false)
		default:
			if c >= ' ' && c != 0x7f && len(w.buf) < 4*maxProgressLine {
				w.buf = append(w.buf, c)
			}
		}
	}
	return len(p), nil
}

func (w *progressWriter) emit(final bool) {
	line := strings.TrimSpace(strings.ToValidUTF8(string(w.buf), ""))
	w.buf = w.buf[:0]
	if line == "" {
		return
	}
	now := w.now()
	if !final && now.Sub(w.last) < progressEvery {
		return
	}
	w.last = now
	if len(line) > maxProgressLine {
		line = strings.ToValidUTF8(line[:maxProgressLine], "") + "…"
	}
	w.fn(line)
}
