package render

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/backendim/brain/proto"
)

// clearLine returns the cursor to the start of the line and erases it.
const clearLine = "\r\x1b[K"

var spinnerFrames = [...]string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// Terminal shows one job live: finished stages as lines with a check mark and their duration,
// the running stage as a spinner line with its elapsed time, one line per applied object, and a
// summary when the job ends. Call Tick a few times a second to animate the spinner.
type Terminal struct {
	mu     sync.Mutex
	out    io.Writer
	errOut io.Writer
	now    func() time.Time
	width  int

	frame   int
	live    *stage   // the running stage, drawn as the last line; nil when none is
	shown   int      // objects shown while applying
	pending []string // what the last "waiting" event named, printed under the stage
}

type stage struct {
	name  proto.Stage
	since time.Time
	text  string
}

// TerminalOptions configure a Terminal renderer.
type TerminalOptions struct {
	Now   func() time.Time // default time.Now
	Width int              // columns of the terminal; the spinner line is cut to fit. Default 80.
}

// NewTerminal returns a Terminal renderer writing to out, and notices to errOut (usually the same
// terminal).
func NewTerminal(out, errOut io.Writer, o TerminalOptions) *Terminal {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Width <= 0 {
		o.Width = 80
	}
	return &Terminal{out: out, errOut: errOut, now: o.Now, width: o.Width}
}

// Message updates the view with m.
func (t *Terminal) Message(m proto.Message, _ []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	at := m.Time
	if at.IsZero() {
		at = t.now()
	}
	switch {
	case m.Type == proto.TypeProgress && m.Duplicate:
		t.print("• " + m.Message)
	case m.Type == proto.TypeProgress:
		t.progress(m, at)
	case m.Type == proto.TypeSuccess:
		t.finish("✓", at)
		t.summary(m)
	case m.Type == proto.TypeError:
		t.finish("✗", at)
		t.print(fmt.Sprintf("✗ %s: %s", m.Code, m.Message))
		if m.JobID != "" {
			t.print("  job " + m.JobID)
		}
	}
	t.draw()
}

func (t *Terminal) progress(m proto.Message, at time.Time) {
	text := progressText(m)
	if m.Stage == proto.StageWaiting && len(m.Pending) > 0 {
		text = m.Message // the pending list gets lines of its own, below
		defer t.pendingLines(m.Pending)
	}
	if t.live != nil && t.live.name == m.Stage {
		if m.Object != nil {
			t.objectLine(*m.Object)
			return
		}
		t.live.text = text
		return
	}
	mark := "✓"
	if m.Stage == proto.StageRetrying {
		mark = "✗"
	}
	t.finish(mark, at)
	t.live = &stage{name: m.Stage, since: at, text: text}
	if m.Object != nil {
		t.live.text = ""
		t.objectLine(*m.Object)
	}
}

// pendingLines prints what blocks each object, each time that changes.
func (t *Terminal) pendingLines(pending []string) {
	if slices.Equal(pending, t.pending) {
		return
	}
	t.pending = pending
	for _, p := range pending {
		t.print("    … " + p)
	}
}

func (t *Terminal) objectLine(o proto.ObjectResult) {
	t.shown++
	t.print("    " + objectText(o))
	for _, l := range diffLines(o) {
		t.print(l)
	}
	t.live.text = count(t.shown, "object") + " applied"
}

// finish turns the running stage into a finished line, as of at.
func (t *Terminal) finish(mark string, at time.Time) {
	if t.live == nil {
		return
	}
	t.print(t.stageLine(mark, at))
	t.live = nil
}

func (t *Terminal) summary(m proto.Message) {
	r := m.Payload
	if r == nil {
		t.print("✓ " + m.Message)
		return
	}
	d := duration(time.Duration(r.DurationMs) * time.Millisecond)
	if r.DryRun {
		t.print("✓ dry run finished in " + d + " (nothing was applied)")
	} else {
		t.print("✓ deployed in " + d)
	}
	commit := r.Commit
	if r.Subject != "" {
		commit += " " + r.Subject
	}
	t.print("  commit     " + commit)
	t.print("  namespace  " + r.Namespace)
	objects := fmt.Sprintf("%d", len(r.Objects))
	if len(r.Objects) > 0 {
		objects += " (" + actionCounts(r.Objects) + ")"
	}
	t.print("  objects    " + objects)
	if t.shown == 0 {
		for _, o := range r.Objects {
			t.print("    " + objectText(o))
			for _, l := range diffLines(o) {
				t.print(l)
			}
		}
	}
}

// Notice shows text on the error output, above the spinner line.
func (t *Terminal) Notice(text string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.out, "%s", clearLine)
	fmt.Fprintf(t.errOut, "! %s\n", text)
	t.draw()
}

// Tick advances the spinner and redraws the running stage with its elapsed time.
func (t *Terminal) Tick() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.frame++
	t.draw()
}

// Close ends the view: a stage still running keeps its last line, so that whatever is written
// next starts on a line of its own.
func (t *Terminal) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.live != nil {
		t.print(t.stageLine("…", t.now()))
		t.live = nil
	}
}

// print writes a finished line in place of the spinner line.
func (t *Terminal) print(line string) {
	fmt.Fprintf(t.out, "%s%s\n", clearLine, safe(line))
}

// draw writes the spinner line of the running stage, if any.
func (t *Terminal) draw() {
	if t.live == nil {
		return
	}
	line := t.stageLine(spinnerFrames[t.frame%len(spinnerFrames)], t.now())
	fmt.Fprintf(t.out, "%s%s", clearLine, cut(line, t.width-1))
}

func (t *Terminal) stageLine(mark string, at time.Time) string {
	line := fmt.Sprintf("%s %-11s %6s", mark, t.live.name, duration(at.Sub(t.live.since)))
	if t.live.text != "" {
		line += "  " + oneLine(t.live.text)
	}
	return line
}

// cut shortens s to at most n characters, marking the cut with an ellipsis.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:max(n-1, 0)]) + "…"
}

func oneLine(s string) string { return safe(s) }
