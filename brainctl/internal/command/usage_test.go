package command_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backendim/brain/brainctl/internal/command"
)

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	deploy := []string{"deploy", "--chat", "c1", "--repo", "https://git.example.com/app.git", "--commit", "main"}
	with := func(base []string, extra ...string) []string { return append(append([]string(nil), base...), extra...) }
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no command", nil, ""},
		{"unknown command", []string{"deplyo"}, `unknown command "deplyo"`},
		{"deploy without chat", []string{"deploy", "--repo", "https://x.example/a.git", "--commit", "main"}, "--chat is required"},
		{"deploy without repo", []string{"deploy", "--chat", "c1", "--commit", "main"}, "--repo is required"},
		{"deploy without commit", []string{"deploy", "--chat", "c1", "--repo", "https://x.example/a.git"}, "--commit is required"},
		{"unknown flag", with(deploy, "--commmit", "x"), "flag provided but not defined: -commmit"},
		{"stray argument", with(deploy, "now"), `unexpected argument "now"`},
		{"bad chat ID", with(deploy, "--chat", "a.b"), "chatId must be 1 to 64 characters"},
		{"bad repo scheme", with(deploy, "--repo", "ftp://x.example/a.git"), `repoURL scheme "ftp" is not supported`},
		{"bad ref", with(deploy, "--commit", "a..b"), "commitHash must be a commit SHA"},
		{"path outside repo", with(deploy, "--path", "../etc"), "path must be a directory inside the repository"},
		{"bad request ID", with(deploy, "--request-id", "a b"), "requestId must be 1 to 128 characters"},
		{"zero timeout", with(deploy, "--timeout", "0s"), "--timeout must be positive"},
		{"bad timeout", with(deploy, "--timeout", "soon"), `invalid value "soon" for flag -timeout`},
		{"bad url", with(deploy, "--url", "127.0.0.1:8080"), `--url "127.0.0.1:8080"`},
		{"ftp url", with(deploy, "--url", "ftp://127.0.0.1/ws"), "use a ws:// or wss:// address"},
		{"watch without chat", []string{"watch"}, "--chat is required"},
		{"watch negative after", []string{"watch", "--chat", "c1", "--after", "-1"}, `invalid value "-1" for flag -after`},
		{"status without chat", []string{"status"}, "--chat is required"},
		{"status bad user", []string{"status", "--chat", "c1", "--user", "u/1"}, "userId must be 1 to 64 characters"},
		{"cancel without job", []string{"cancel"}, "--job is required"},
		{"cancel bad job", []string{"cancel", "--job", "xyz"}, "jobId must be the 32 hex digits"},
		{"token without secret", []string{"token", "--user", "dev"}, "exactly one of --secret and --secret-file"},
		{"token with both secrets", []string{"token", "--user", "dev", "--secret", strings.Repeat("s", 32), "--secret-file", secretFile}, "exactly one of"},
		{"token without user", []string{"token", "--secret", strings.Repeat("s", 32)}, "--user is required"},
		{"token short secret", []string{"token", "--user", "dev", "--secret-file", secretFile}, "secret is 5 bytes: the gateway needs at least 32"},
		{"token missing file", []string{"token", "--user", "dev", "--secret-file", secretFile + ".nope"}, "read --secret-file"},
		{"token bad user", []string{"token", "--user", "d e v", "--secret", strings.Repeat("s", 32)}, `user "d e v"`},
		{"token zero ttl", []string{"token", "--user", "dev", "--secret", strings.Repeat("s", 32), "--ttl", "0s"}, "ttl must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, nil, tt.args...)
			if r.code != command.ExitUsage {
				t.Fatalf("want exit %d; got %s", command.ExitUsage, r)
			}
			if tt.wantErr != "" && (r.err == nil || !strings.Contains(r.err.Error(), tt.wantErr)) {
				t.Errorf("error = %v, want it to contain %q", r.err, tt.wantErr)
			}
			if r.stdout != "" {
				t.Errorf("a usage error wrote to stdout:\n%s", r.stdout)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"Usage:\n  brainctl <command> [flags]", "deploy", "watch", "status", "cancel", "token", "BRAIN_URL"}},
		{[]string{"help"}, []string{"Commands:"}},
		{[]string{"deploy", "--help"}, []string{"Usage: brainctl deploy", "-chat", "-repo", "-commit", "-path", "-dry-run", "-request-id", "-timeout", "-json", "env BRAIN_URL", "env BRAIN_TOKEN", "env BRAIN_USER"}},
		{[]string{"watch", "-h"}, []string{"Usage: brainctl watch", "-chat", "-after"}},
		{[]string{"status", "--help"}, []string{"Usage: brainctl status", "-chat"}},
		{[]string{"cancel", "--help"}, []string{"Usage: brainctl cancel", "-job", "-wait"}},
		{[]string{"token", "--help"}, []string{"Usage: brainctl token", "-secret", "-secret-file", "-user", "-ttl"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			r := run(t, nil, tt.args...)
			if r.code != 0 || r.err != nil {
				t.Fatalf("want exit 0; got %s", r)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("help lacks %q:\n%s", w, r.stdout)
				}
			}
		})
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"version", "--version"} {
		var out, errOut strings.Builder
		if err := command.Run(t.Context(), []string{arg}, func(string) string { return "" }, &out, &errOut); err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		if !strings.HasPrefix(out.String(), "brainctl ") || !strings.Contains(out.String(), "go1.") {
			t.Errorf("%s printed %q, want brainctl's version and Go's", arg, out.String())
		}
	}
}
