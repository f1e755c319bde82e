package render

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/backendim/brain/proto"
)

// timeFormat is the timestamp of plain lines, always in UTC.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// Plain writes one timestamped line per message, for logs and pipes:
//
//	2025-06-01T12:00:01.250Z fetching    fetching https://git.example.com/app.git (cache hit)
type Plain struct {
	mu      sync.Mutex
	out     io.Writer
	errOut  io.Writer
	now     func() time.Time
	showJob bool
	shown   map[string]int // objects shown while applying, per job, until the job ends
}

// PlainOptions configure a Plain renderer.
type PlainOptions struct {
	Now     func() time.Time // the time of messages and notices that carry none; default time.Now
	ShowJob bool             // prefix lines with the job's ID, for a chat with several jobs
}

// NewPlain returns a Plain renderer writing messages to out and notices to errOut.
func NewPlain(out, errOut io.Writer, o PlainOptions) *Plain {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Plain{out: out, errOut: errOut, now: o.Now, showJob: o.ShowJob, shown: map[string]int{}}
}

// Message writes m as one line, or a success as a line and one per object not shown before.
func (p *Plain) Message(m proto.Message, _ []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch m.Type {
	case proto.TypeProgress:
		p.line(m, string(m.Stage), progressText(m))
		if m.Object != nil {
			p.shown[m.JobID]++
			p.lines(diffLines(*m.Object))
		}
	case proto.TypeSuccess:
		p.success(m)
	case proto.TypeError:
		delete(p.shown, m.JobID)
		p.line(m, "error", fmt.Sprintf("%s: %s", m.Code, m.Message))
	case proto.TypeSubscribed:
		p.line(m, "subscribed", fmt.Sprintf("following chat %s after seq %d", m.ChatID, m.After))
	case proto.TypeStatusInfo:
		if m.Message != "" {
			p.line(m, "status", m.Message)
		}
	}
}

func (p *Plain) success(m proto.Message) {
	r := m.Payload
	if r == nil {
		p.line(m, "success", m.Message)
		return
	}
	verb := "deployed"
	if r.DryRun {
		verb = "dry run of"
	}
	text := fmt.Sprintf("%s %s to %s: %s in %s", verb, r.Commit, r.Namespace, count(len(r.Objects), "object"),
		duration(time.Duration(r.DurationMs)*time.Millisecond))
	if len(r.Objects) > 0 {
		text += " (" + actionCounts(r.Objects) + ")"
	}
	p.line(m, "success", text)
	if p.shown[m.JobID] == 0 {
		for _, o := range r.Objects {
			p.line(m, "object", objectText(o))
			p.lines(diffLines(o))
		}
	}
	delete(p.shown, m.JobID)
}

func (p *Plain) line(m proto.Message, label, text string) {
	at := m.Time
	if at.IsZero() {
		at = p.now()
	}
	prefix := at.UTC().Format(timeFormat)
	if p.showJob {
		job := shortJob(m.JobID)
		if job == "" {
			job = "-"
		}
		prefix += fmt.Sprintf(" %-8s", job)
	}
	fmt.Fprintf(p.out, "%s %-11s %s\n", prefix, label, safe(text))
}

// lines writes continuation lines (a dry run's diff) under the last line, without a timestamp.
func (p *Plain) lines(ls []string) {
	for _, l := range ls {
		fmt.Fprintln(p.out, safe(l))
	}
}

// Notice writes a timestamped line on the error output.
func (p *Plain) Notice(text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.errOut, "%s notice      %s\n", p.now().UTC().Format(timeFormat), text)
}
