// Package render shows the messages of a Brain gateway to a person or a program: a live view with
// a spinner per stage on a terminal (Terminal), timestamped lines otherwise (Plain), or the raw
// messages, one JSON document per line (JSON).
package render

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/backendim/brain/proto"
)

// Renderer shows what a client receives. Implementations are safe for concurrent use.
type Renderer interface {
	// Message shows one message from the gateway; raw is the frame as received.
	Message(m proto.Message, raw []byte)
	// Notice shows a remark of the client itself, such as a reconnect, on the error output.
	Notice(text string)
}

// JSON writes every message as received, one per line, and notices as plain lines on errOut.
type JSON struct {
	mu     sync.Mutex
	out    io.Writer
	errOut io.Writer
}

// NewJSON returns a JSON renderer.
func NewJSON(out, errOut io.Writer) *JSON { return &JSON{out: out, errOut: errOut} }

// Message writes raw (or m encoded, when raw is empty) and a newline.
func (j *JSON) Message(m proto.Message, raw []byte) {
	if len(raw) == 0 {
		raw, _ = json.Marshal(m) // a Message always encodes
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	fmt.Fprintf(j.out, "%s\n", raw)
}

// Notice writes text on the error output.
func (j *JSON) Notice(text string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	fmt.Fprintf(j.errOut, "brainctl: %s\n", text)
}

// objectText describes an object result: "created Deployment/web (Current)".
func objectText(o proto.ObjectResult) string {
	s := o.Kind + "/" + o.Name
	if o.Action != "" {
		s = fmt.Sprintf("%-10s %s", o.Action, s)
	}
	if o.Status != "" {
		s += " (" + o.Status + ")"
	}
	if o.Message != "" {
		s += ": " + o.Message
	}
	return s
}

// progressText describes a progress event, from its message or, lacking one, its fields. A
// "waiting" event names what is pending and why: "waiting for 1 of 7 objects to become healthy:
// Deployment/web: 0/2 replicas ready; …".
func progressText(m proto.Message) string {
	if m.Object != nil {
		return objectText(*m.Object)
	}
	if m.Stage == proto.StageWaiting && len(m.Pending) > 0 && m.Message != "" {
		return m.Message + ": " + strings.Join(m.Pending, "; ")
	}
	if m.Message != "" {
		return m.Message
	}
	switch {
	case m.Commit != "":
		return m.Commit
	case m.Worker != "":
		return fmt.Sprintf("attempt %d on %s", m.Attempt, m.Worker)
	case m.Count != 0:
		return count(m.Count, "object")
	case len(m.Pending) > 0:
		return "waiting for " + strings.Join(m.Pending, ", ")
	}
	return ""
}

// diffLines are the lines of an object's dry-run diff ("~ data.color: \"blue\" → \"green\""), each
// indented under the object's line.
func diffLines(o proto.ObjectResult) []string {
	if o.Diff == "" {
		return nil
	}
	var out []string
	for _, l := range strings.Split(o.Diff, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, "      "+l)
		}
	}
	return out
}

// actionCounts summarizes objects by action: "1 created, 2 unchanged".
func actionCounts(objs []proto.ObjectResult) string {
	var order []string
	n := map[string]int{}
	for _, o := range objs {
		a := o.Action
		if a == "" {
			a = "listed"
		}
		if n[a] == 0 {
			order = append(order, a)
		}
		n[a]++
	}
	parts := make([]string, len(order))
	for i, a := range order {
		parts[i] = fmt.Sprintf("%d %s", n[a], a)
	}
	return strings.Join(parts, ", ")
}

// escapeRE matches terminal escape sequences: CSI (colours, cursor moves, clearing) and OSC
// (window titles, hyperlinks).
var escapeRE = regexp.MustCompile(`\x1b\[[0-9:;<=>?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?`)

// safe makes text from the gateway fit to print on one line of a terminal: messages quote the
// cluster and the pods of a repository, which may send escape sequences (to rewrite the screen or
// the window title) and control or bidirectional-override characters. They are dropped; a
// newline becomes a space.
func safe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return ' '
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r):
			return -1
		}
		return r
	}, escapeRE.ReplaceAllString(s, ""))
}

// count returns "1 object", "2 objects".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// duration formats d for people: 0.8s, 4.2s, 2m03s.
func duration(d time.Duration) string {
	switch {
	case d < 0:
		return "0.0s"
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	default:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
}

// shortJob is the prefix of a job ID that lines show.
func shortJob(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
