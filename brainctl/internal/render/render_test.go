package render_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backendim/brain/brainctl/internal/render"
	"github.com/backendim/brain/proto"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const (
	jobA = "5f3a9c0e1b2d4f6a8c0e1b2d4f6a8c0e"
	jobB = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"
	sha  = "3b18e512dba79e4c8300dd08aeb37f8e728b8dad"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// at is t0 plus ms milliseconds.
func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

type step struct {
	msg    *proto.Message
	notice string
}

func progress(job string, seq uint64, ms int, stage proto.Stage, text string) step {
	return step{msg: &proto.Message{Type: proto.TypeProgress, JobID: job, ChatID: "c1", Seq: seq, Stage: stage,
		Message: text, Time: at(ms)}}
}

func applied(seq uint64, ms int, kind, name, action string) step {
	return step{msg: &proto.Message{Type: proto.TypeProgress, JobID: jobA, ChatID: "c1", Seq: seq,
		Stage: proto.StageApplying, Time: at(ms), Object: &proto.ObjectResult{Kind: kind, Name: name, Action: action}}}
}

func succeeded(job string, seq uint64, ms int, objs ...proto.ObjectResult) step {
	return step{msg: &proto.Message{Type: proto.TypeSuccess, JobID: job, ChatID: "c1", Seq: seq, Time: at(ms),
		Payload: &proto.Result{Commit: sha, Subject: "Add web", Ref: "main", Namespace: "im-c1-u1", Path: "deploy",
			Objects: objs, DurationMs: int64(ms), StagesMs: map[string]int64{"fetch": 1200}}}}
}

func failed(job string, seq uint64, ms int, code proto.Code, text string) step {
	retry := code.Retryable()
	return step{msg: &proto.Message{Type: proto.TypeError, JobID: job, ChatID: "c1", Seq: seq, Time: at(ms),
		Code: code, Message: text, Retryable: &retry}}
}

var (
	web     = proto.ObjectResult{Kind: "Deployment", Name: "web", Action: proto.ActionCreated, Status: "Current"}
	webSvc  = proto.ObjectResult{Kind: "Service", Name: "web", Action: proto.ActionConfigured, Status: "Current"}
	found   = proto.ObjectResult{Kind: "Deployment", Name: "web", Action: proto.ActionFound}
	queued  = progress(jobA, 41, 0, proto.StageQueued, "queued: waiting for a worker")
	started = progress(jobA, 42, 300, proto.StageStarted, "attempt 1 on worker w-1")
)

var scenarios = map[string][]step{
	"success": {
		queued, started,
		progress(jobA, 43, 400, proto.StageFetching, "fetching https://git.example.com/org/app.git (cache miss)"),
		progress(jobA, 44, 1600, proto.StageCheckedOut, "checked out "+sha+" Add web"),
		progress(jobA, 45, 1700, proto.StageRendering, "rendered 2 objects from deploy/"),
		applied(46, 1900, "Deployment", "web", proto.ActionCreated),
		applied(47, 2000, "Service", "web", proto.ActionConfigured),
		progress(jobA, 48, 2100, proto.StageWaiting, "waiting for Deployment/web: 0 of 2 replicas available"),
		{notice: "connection lost (closed with 1001: server shutting down); reconnecting in 0s"},
		{notice: "reconnected; resumed with subscribe after 48"},
		progress(jobA, 49, 3500, proto.StageWaiting, "waiting for Deployment/web: 1 of 2 replicas available"),
		succeeded(jobA, 50, 4210, web, webSvc),
	},
	"error": {
		queued, started,
		progress(jobA, 43, 400, proto.StageFetching, "fetching https://git.example.com/org/app.git (cache hit)"),
		failed(jobA, 44, 650, proto.CodeCommitNotFound, "commit nosuchbranch not found in https://git.example.com/org/app.git: use a full or abbreviated SHA, a branch or a tag"),
	},
	"retry-then-found": {
		queued, started,
		progress(jobA, 43, 400, proto.StageFetching, "fetching https://git.example.com/org/app.git (cache miss)"),
		progress(jobA, 44, 10400, proto.StageRetrying, "attempt 1 failed (repo_unreachable: connection reset); trying again in 5s"),
		progress(jobA, 45, 15500, proto.StageStarted, "attempt 2 on worker w-2"),
		progress(jobA, 46, 15600, proto.StageFetching, "fetching https://git.example.com/org/app.git (cache miss)"),
		progress(jobA, 47, 16000, proto.StageCheckedOut, "checked out "+sha+" Add web"),
		progress(jobA, 48, 16100, proto.StageRendering, "rendered 1 object from deploy/"),
		succeeded(jobA, 49, 16200, found),
	},
	"duplicate": {
		{msg: &proto.Message{Type: proto.TypeProgress, Stage: proto.StageQueued, JobID: jobA, ChatID: "c1", RequestID: "r-42",
			Duplicate: true, Time: at(90000), Message: "requestId r-42 was already accepted as job " + jobA + "; following it"}},
		queued, started,
		progress(jobA, 43, 400, proto.StageFetching, "fetching https://git.example.com/org/app.git (cache hit)"),
		failed(jobA, 44, 700, proto.CodeCancelled, "cancelled by the user"),
	},
	"refused": {
		{msg: &proto.Message{Type: proto.TypeError, Code: proto.CodeRateLimited, RequestID: "r-1",
			Message: "too many jobs: at most 30 per minute (burst 10); retry in 3s"}},
	},
	"dry-run": {
		queued, started,
		progress(jobA, 43, 350, proto.StageBlocked, "waiting for job "+jobB+", which is deploying to namespace im-c1-u1"),
		progress(jobA, 44, 2400, proto.StageFetching, "fetching https://git.example.com/org/app.git (cache hit)"),
		progress(jobA, 45, 2500, proto.StageRendering, "rendered 2 objects from deploy/"),
		{msg: &proto.Message{Type: proto.TypeProgress, JobID: jobA, ChatID: "c1", Seq: 46, Stage: proto.StageApplying, Time: at(2600),
			Object: &proto.ObjectResult{Kind: "ConfigMap", Name: "settings", Action: proto.ActionConfigured,
				Diff: "~ data.color: \"blue\" → \"green\"\n+ data.size"}}},
		{msg: &proto.Message{Type: proto.TypeProgress, JobID: jobA, ChatID: "c1", Seq: 47, Stage: proto.StageApplying, Time: at(2700),
			Object: &proto.ObjectResult{Kind: "Deployment", Name: "web", Action: proto.ActionCreated, Diff: "new object"}}},
		{msg: &proto.Message{Type: proto.TypeSuccess, JobID: jobA, ChatID: "c1", Seq: 48, Time: at(2800),
			Payload: &proto.Result{Commit: sha, Subject: "Add web", Namespace: "im-c1-u1", DryRun: true, DurationMs: 2800,
				Objects: []proto.ObjectResult{{Kind: "ConfigMap", Name: "settings", Action: proto.ActionConfigured}, web}}}},
	},
	"waiting": {
		queued, started,
		applied(43, 400, "Deployment", "web", proto.ActionCreated),
		{msg: &proto.Message{Type: proto.TypeProgress, JobID: jobA, ChatID: "c1", Seq: 44, Stage: proto.StageWaiting, Time: at(500),
			Message: "waiting for 1 of 2 objects to become healthy",
			Pending: []string{"Deployment/web: 0/2 replicas ready; pods web-7d9f-x and 1 more: CrashLoopBackOff (exit code 1, 1 restarts)"}}},
		{msg: &proto.Message{Type: proto.TypeProgress, JobID: jobA, ChatID: "c1", Seq: 45, Stage: proto.StageWaiting, Time: at(3500),
			Message: "waiting for 1 of 2 objects to become healthy",
			Pending: []string{"Deployment/web: 0/2 replicas ready; pods web-7d9f-x and 1 more: CrashLoopBackOff (exit code 1, 2 restarts)"}}},
		failed(jobA, 46, 6000, proto.CodeCrashLoop, "Deployment/web (deploy/web.yaml:1): pod web-7d9f-x: container web keeps crashing: CrashLoopBackOff (exit code 1, 3 restarts); its last message: \x1b[31mpanic: boom"),
	},
	"watch": {
		{msg: &proto.Message{Type: proto.TypeSubscribed, ChatID: "c1", After: 40}},
		queued,
		progress(jobB, 42, 200, proto.StageQueued, "queued: waiting for a worker"),
		progress(jobA, 43, 300, proto.StageStarted, "attempt 1 on worker w-1"),
		progress(jobB, 44, 400, proto.StageBlocked, "waiting for job "+jobA+" of the same namespace"),
		succeeded(jobA, 45, 1200, found),
		progress(jobB, 46, 1300, proto.StageStarted, "attempt 1 on worker w-1"),
		failed(jobB, 47, 1500, proto.CodeInvalidManifest, "deploy/app.yaml line 7: mapping values are not allowed in this context"),
	},
}

// clock is the renderers' notion of now: a little after the last event.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func play(r render.Renderer, c *clock, tick func(), steps []step) {
	for _, s := range steps {
		if s.notice != "" {
			r.Notice(s.notice)
			continue
		}
		if !s.msg.Time.IsZero() {
			c.now = s.msg.Time.Add(50 * time.Millisecond)
		}
		raw, _ := json.Marshal(s.msg)
		r.Message(*s.msg, raw)
		c.now = c.now.Add(450 * time.Millisecond)
		tick()
	}
}

func TestGolden(t *testing.T) {
	t.Parallel()
	renderers := map[string]func(out *bytes.Buffer, c *clock) (render.Renderer, func()){
		"terminal": func(out *bytes.Buffer, c *clock) (render.Renderer, func()) {
			r := render.NewTerminal(out, out, render.TerminalOptions{Now: c.Now, Width: 100})
			return r, r.Tick
		},
		"plain": func(out *bytes.Buffer, c *clock) (render.Renderer, func()) {
			return render.NewPlain(out, out, render.PlainOptions{Now: c.Now}), func() {}
		},
		"plain-jobs": func(out *bytes.Buffer, c *clock) (render.Renderer, func()) {
			return render.NewPlain(out, out, render.PlainOptions{Now: c.Now, ShowJob: true}), func() {}
		},
		"json": func(out *bytes.Buffer, c *clock) (render.Renderer, func()) {
			return render.NewJSON(out, out), func() {}
		},
	}
	cases := map[string][]string{
		"terminal":   {"success", "error", "retry-then-found", "duplicate", "refused", "dry-run", "waiting"},
		"plain":      {"success", "error", "retry-then-found", "duplicate", "refused", "dry-run", "waiting"},
		"plain-jobs": {"watch"},
		"json":       {"success"},
	}
	for mode, names := range cases {
		for _, name := range names {
			t.Run(mode+"/"+name, func(t *testing.T) {
				t.Parallel()
				var out bytes.Buffer
				c := &clock{now: t0.Add(-time.Second)}
				r, tick := renderers[mode](&out, c)
				play(r, c, tick, scenarios[name])
				golden(t, filepath.Join("testdata", mode+"-"+name+".golden"), out.String())
			})
		}
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

// screen replays terminal output the way a terminal shows it: "\r\x1b[K" erases the current line.
func screen(out string) string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if i := strings.LastIndex(l, "\r\x1b[K"); i >= 0 {
			l = l[i+len("\r\x1b[K"):]
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n")
}

func TestTerminalScreen(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	c := &clock{}
	r := render.NewTerminal(&out, &out, render.TerminalOptions{Now: c.Now, Width: 60})
	play(r, c, r.Tick, scenarios["error"])
	want := `✓ queued        0.3s  queued: waiting for a worker
✓ started       0.1s  attempt 1 on worker w-1
✗ fetching      0.2s  fetching https://git.example.com/org/app.git (cache hit)
✗ commit_not_found: commit nosuchbranch not found in https://git.example.com/org/app.git: use a full or abbreviated SHA, a branch or a tag
  job ` + jobA + `
`
	if diff := cmp.Diff(want, screen(out.String())); diff != "" {
		t.Errorf("screen (-want +got):\n%s", diff)
	}
}

func TestTerminalCutsSpinnerLine(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	c := &clock{}
	r := render.NewTerminal(&out, &out, render.TerminalOptions{Now: c.Now, Width: 40})
	play(r, c, r.Tick, scenarios["success"][:3])
	last := out.String()[strings.LastIndex(out.String(), "\r\x1b[K")+len("\r\x1b[K"):]
	want := "⠸ fetching      0.5s  fetching https:/…" // 39 columns and the cursor
	if last != want {
		t.Errorf("spinner line = %q, want %q", last, want)
	}
}

// TestServerTextCannotDriveTheTerminal: text from the cluster (a pod's termination message, an
// image name) reaches brainctl through the gateway; escape sequences and control characters in it
// must not reach the user's terminal or log.
func TestServerTextCannotDriveTheTerminal(t *testing.T) {
	t.Parallel()
	hostile := "boom \x1b]0;owned\x07\x1b[2J\x1b[31mred\x1b[0m \u202eevil\x08\x00 end"
	steps := []step{queued,
		progress(jobA, 42, 100, proto.StageWaiting, "waiting for 1 of 1 objects to become healthy"),
		{msg: &proto.Message{Type: proto.TypeProgress, JobID: jobA, ChatID: "c1", Seq: 43, Stage: proto.StageWaiting, Time: at(200),
			Message: "waiting for 1 of 1 objects", Pending: []string{"Deployment/web: " + hostile}}},
		failed(jobA, 44, 300, proto.CodeCrashLoop, hostile)}
	for name, mk := range map[string]func(*bytes.Buffer, *clock) (render.Renderer, func()){
		"terminal": func(out *bytes.Buffer, c *clock) (render.Renderer, func()) {
			r := render.NewTerminal(out, out, render.TerminalOptions{Now: c.Now, Width: 300})
			return r, r.Tick
		},
		"plain": func(out *bytes.Buffer, c *clock) (render.Renderer, func()) {
			return render.NewPlain(out, out, render.PlainOptions{Now: c.Now}), func() {}
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			c := &clock{now: t0}
			r, tick := mk(&out, c)
			play(r, c, tick, steps)
			got := strings.ReplaceAll(out.String(), "\r\x1b[K", "") // the renderer's own line clearing
			if i := strings.IndexFunc(got, func(r rune) bool {
				return r != '\n' && (r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u202e')
			}); i >= 0 {
				t.Errorf("output carries control character %q: %q", got[i], got)
			}
			if !strings.Contains(got, "boom red evil end") {
				t.Errorf("output lost the text around the escapes: %q", got)
			}
		})
	}
}
