package proto

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestDecodeRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want Request
		code Code
	}{
		{"original four fields", `{"userId":"u1","chatId":"c1","repoURL":"https://git.example.com/org/app.git","commitHash":"a1b2c3d4e5"}`,
			Request{Type: TypeDeploy, UserID: "u1", ChatID: "c1", RepoURL: "https://git.example.com/org/app.git", CommitHash: "a1b2c3d4e5"}, ""},
		{"full deploy", `{"type":"deploy","userId":"u1","chatId":"c1","repoURL":"https://h/r.git","commitHash":"main","requestId":"r-42","path":"deploy/","dryRun":true}`,
			Request{Type: TypeDeploy, UserID: "u1", ChatID: "c1", RepoURL: "https://h/r.git", CommitHash: "main", RequestID: "r-42", Path: "deploy/", DryRun: true}, ""},
		{"subscribe", `{"type":"subscribe","chatId":"c1","after":118}`, Request{Type: TypeSubscribe, ChatID: "c1", After: 118}, ""},
		{"status", `{"type":"status","chatId":"c1"}`, Request{Type: TypeStatus, ChatID: "c1"}, ""},
		{"cancel", `{"type":"cancel","jobId":"0123456789abcdef0123456789abcdef"}`, Request{Type: TypeCancel, JobID: "0123456789abcdef0123456789abcdef"}, ""},
		{"tag ref", `{"chatId":"c1","repoURL":"https://h/r","commitHash":"v1.2.3"}`, Request{Type: TypeDeploy, ChatID: "c1", RepoURL: "https://h/r", CommitHash: "v1.2.3"}, ""},
		{"ssh url", `{"chatId":"c1","repoURL":"ssh://git@h/r.git","commitHash":"main"}`, Request{Type: TypeDeploy, ChatID: "c1", RepoURL: "ssh://git@h/r.git", CommitHash: "main"}, ""},
		{"empty", ``, Request{}, CodeBadRequest},
		{"null", `null`, Request{Type: TypeDeploy}, CodeInvalidField},
		{"string", `"x"`, Request{}, CodeBadRequest},
		{"trailing garbage", `{"type":"status","chatId":"c"}x`, Request{}, CodeBadRequest},
		{"unknown field", `{"type":"status","chatId":"c","color":1}`, Request{}, CodeBadRequest},
		{"unknown type", `{"type":"nuke"}`, Request{Type: "nuke"}, CodeBadRequest},
		{"long chat", `{"type":"status","chatId":"` + strings.Repeat("c", 65) + `"}`, Request{Type: TypeStatus, ChatID: strings.Repeat("c", 65)}, CodeInvalidField},
		{"dot in user", `{"type":"status","chatId":"c","userId":"a.b"}`, Request{Type: TypeStatus, ChatID: "c", UserID: "a.b"}, CodeInvalidField},
		{"subject wildcard", `{"type":"status","chatId":">"}`, Request{Type: TypeStatus, ChatID: ">"}, CodeInvalidField},
		{"after in deploy", `{"chatId":"c","repoURL":"https://h/r","commitHash":"m","after":3}`, Request{Type: TypeDeploy, ChatID: "c", RepoURL: "https://h/r", CommitHash: "m", After: 3}, CodeInvalidField},
		{"repo in status", `{"type":"status","chatId":"c","repoURL":"https://h/r"}`, Request{Type: TypeStatus, ChatID: "c", RepoURL: "https://h/r"}, CodeInvalidField},
		{"ftp url", `{"chatId":"c","repoURL":"ftp://h/r","commitHash":"m"}`, Request{Type: TypeDeploy, ChatID: "c", RepoURL: "ftp://h/r", CommitHash: "m"}, CodeInvalidField},
		{"relative url", `{"chatId":"c","repoURL":"org/app","commitHash":"m"}`, Request{Type: TypeDeploy, ChatID: "c", RepoURL: "org/app", CommitHash: "m"}, CodeInvalidField},
		{"password", `{"chatId":"c","repoURL":"https://a:b@h/r","commitHash":"m"}`, Request{Type: TypeDeploy, ChatID: "c", RepoURL: "https://a:b@h/r", CommitHash: "m"}, CodeInvalidField},
		{"ref option", `{"chatId":"c","repoURL":"https://h/r","commitHash":"--upload-pack=x"}`, Request{Type: TypeDeploy, ChatID: "c", RepoURL: "https://h/r", CommitHash: "--upload-pack=x"}, CodeInvalidField},
		{"ref space", `{"chatId":"c","repoURL":"https://h/r","commitHash":"a b"}`, Request{Type: TypeDeploy, ChatID: "c", RepoURL: "https://h/r", CommitHash: "a b"}, CodeInvalidField},
		{"absolute path", `{"chatId":"c","repoURL":"https://h/r","commitHash":"m","path":"/etc"}`, Request{Type: TypeDeploy, ChatID: "c", RepoURL: "https://h/r", CommitHash: "m", Path: "/etc"}, CodeInvalidField},
		{"dotdot path", `{"chatId":"c","repoURL":"https://h/r","commitHash":"m","path":"a/../../b"}`, Request{Type: TypeDeploy, ChatID: "c", RepoURL: "https://h/r", CommitHash: "m", Path: "a/../../b"}, CodeInvalidField},
		{"bad request id", `{"chatId":"c","repoURL":"https://h/r","commitHash":"m","requestId":"a b"}`, Request{Type: TypeDeploy, ChatID: "c", RepoURL: "https://h/r", CommitHash: "m", RequestID: "a b"}, CodeInvalidField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeRequest([]byte(tt.in))
			var code Code
			if err != nil {
				code = err.Code
				if err.Message == "" {
					t.Error("error without a message")
				}
			}
			if code != tt.code {
				t.Fatalf("code = %q (%v), want %q", code, err, tt.code)
			}
			if tt.code != CodeBadRequest {
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("request (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestNamespace(t *testing.T) {
	t.Parallel()
	dns := regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	tests := []struct{ chat, user, want string }{
		{"c1", "u1", "im-c1-u1"},
		{"chat", "user", "im-chat-user"},
	}
	for _, tt := range tests {
		if got := Namespace(tt.chat, tt.user); got != tt.want {
			t.Errorf("Namespace(%q, %q) = %q, want %q", tt.chat, tt.user, got, tt.want)
		}
	}
	seen := map[string][2]string{}
	pairs := [][2]string{{"a-b", "c"}, {"a", "b-c"}, {"A", "b"}, {"a", "b"}, {"a_b", "c"}, {"x-", "y"},
		{strings.Repeat("c", 64), strings.Repeat("u", 64)}, {strings.Repeat("c", 64), strings.Repeat("u", 63) + "v"},
		{"Chat_ID-9", "User-1"}, {"-", "_"}}
	for _, p := range pairs {
		ns := Namespace(p[0], p[1])
		if len(ns) > 63 || !dns.MatchString(ns) {
			t.Errorf("Namespace(%q, %q) = %q: not a DNS-1123 label", p[0], p[1], ns)
		}
		if other, dup := seen[ns]; dup {
			t.Errorf("Namespace collision: %v and %v both give %q", other, p, ns)
		}
		seen[ns] = p
	}
}

func TestIDs(t *testing.T) {
	t.Parallel()
	if !ValidJobID(NewJobID()) || NewJobID() == NewJobID() {
		t.Error("NewJobID: not valid or not random")
	}
	a, b := RequestJobID("u1", "r"), RequestJobID("u1", "r")
	if a != b || !ValidJobID(a) || a == RequestJobID("u2", "r") || a == RequestJobID("u1", "r2") {
		t.Error("RequestJobID: must be stable per user and key, and differ across them")
	}
	for _, s := range []string{"", strings.Repeat("a", 65), "a b", "a.b", "a*", "a>"} {
		if ValidID(s) {
			t.Errorf("ValidID(%q) = true", s)
		}
	}
}

func TestCodes(t *testing.T) {
	t.Parallel()
	seen := map[Code]bool{}
	for _, c := range Codes() {
		if seen[c] || !regexp.MustCompile(`^[a-z_]+$`).MatchString(string(c)) {
			t.Errorf("code %q duplicated or malformed", c)
		}
		seen[c] = true
	}
	for _, cc := range CloseCodes() {
		if cc.Code != 1000 && cc.Code != 1001 && cc.Code != 1009 && (cc.Code < 4000 || cc.Code > 4999) {
			t.Errorf("close code %d outside 4000-4999", cc.Code)
		}
	}
}

// TestGolden pins the wire encoding of every message kind; run with -update to rewrite.
func TestGolden(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	no, yes := false, true
	job := Job{JobID: "0123456789abcdef0123456789abcdef", UserID: "u1", ChatID: "c1", RepoURL: "https://git.example.com/org/app.git",
		CommitHash: "main", Path: "deploy", RequestID: "r-42", SubmittedAt: at}
	cases := map[string]any{
		"queued.json":   Message{Type: TypeProgress, JobID: job.JobID, ChatID: "c1", Seq: 119, Stage: StageQueued, RequestID: "r-42", Message: "queued: waiting for a worker", Time: at},
		"applying.json": Message{Type: TypeProgress, JobID: job.JobID, ChatID: "c1", Seq: 125, Stage: StageApplying, Time: at, Object: &ObjectResult{Kind: "Deployment", Namespace: "im-c1-u1", Name: "web", File: "deploy/web.yaml", Action: ActionConfigured}},
		"success.json": Message{Type: TypeSuccess, JobID: job.JobID, ChatID: "c1", Seq: 131, Time: at, Payload: &Result{
			Commit: strings.Repeat("a", 40), Subject: "Add web", Ref: "main", Namespace: "im-c1-u1", Path: "deploy", CacheHit: true,
			Objects:    []ObjectResult{{Kind: "Deployment", Name: "web", Action: ActionConfigured, Status: "Current"}},
			DurationMs: 4210, StagesMs: map[string]int64{"fetching": 120, "applying": 800}}},
		"error.json":      Message{Type: TypeError, JobID: job.JobID, ChatID: "c1", Seq: 131, Time: at, Code: CodeCommitNotFound, Message: "commit a1b2c3 not found in https://git.example.com/org/app.git", Retryable: &no},
		"refused.json":    ErrorMessage(Errorf(CodeRateLimited, "too many jobs"), "r-43"),
		"status.json":     Message{Type: TypeStatusInfo, ChatID: "c1", Job: &JobStatus{Job: job, State: StateRunning, Published: true, FirstSeq: 119, Attempt: 1, Worker: "w1", StartedAt: at}},
		"subscribed.json": Message{Type: TypeSubscribed, ChatID: "c1", After: 118},
		"job.json":        job,
		"retryable.json":  Message{Type: TypeError, JobID: job.JobID, ChatID: "c1", Code: CodeRepoUnreachable, Message: "x", Retryable: &yes, Time: at},
	}
	for name, v := range cases {
		got, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update)", err)
		}
		if diff := cmp.Diff(strings.TrimSpace(string(want)), string(got)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
}

func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{`{"userId":"u1","chatId":"c1","repoURL":"https://h/r.git","commitHash":"abcd"}`,
		`{"type":"subscribe","chatId":"c1","after":1}`, `{"type":"cancel","jobId":"0123456789abcdef0123456789abcdef"}`,
		`{"chatId":"c","repoURL":"https://h/r","commitHash":"m","path":"a/../b"}`, `[]`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeRequest(data)
		if err != nil {
			if err.Code == "" || err.Message == "" {
				t.Fatalf("error without code or message: %#v", err)
			}
			return
		}
		// Whatever passes must be safe to use as subject tokens and in a namespace name.
		if r.UserID != "" && !ValidID(r.UserID) || r.ChatID != "" && !ValidID(r.ChatID) {
			t.Fatalf("invalid IDs accepted: %+v", r)
		}
		if strings.Contains(CleanPath(r.Path), "..") && strings.HasPrefix(CleanPath(r.Path), "..") {
			t.Fatalf("escaping path accepted: %q", r.Path)
		}
		if r.Type == TypeDeploy && r.UserID != "" {
			if _, err := DecodeJob(mustMarshal(t, NewJob(NewJobID(), r, time.Now()))); err != nil {
				t.Fatalf("valid request makes an invalid job: %v", err)
			}
		}
	})
}

func FuzzDecodeJob(f *testing.F) {
	f.Add([]byte(`{"jobId":"0123456789abcdef0123456789abcdef","userId":"u","chatId":"c","repoURL":"https://h/r","commitHash":"m","submittedAt":"2026-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := DecodeJob(data)
		if err == nil && (!ValidID(j.UserID) || !ValidID(j.ChatID) || !ValidJobID(j.JobID)) {
			t.Fatalf("invalid job accepted: %+v", j)
		}
	})
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
