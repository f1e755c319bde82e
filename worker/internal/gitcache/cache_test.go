package gitcache_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/testkit/gitserver"
	"github.com/backendim/brain/worker/internal/gitcache"
	"github.com/backendim/brain/worker/internal/urlpolicy"
)

// loopback is the policy for the test server on 127.0.0.1.
var loopback = urlpolicy.Policy{AllowHTTP: true, AllowPrivateNetworks: true}

// logBuffer collects a cache's log output so tests can search it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newCache opens a cache in a fresh directory; change adjusts the options first.
func newCache(t testing.TB, change func(*gitcache.Options)) (*gitcache.Cache, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	opts := gitcache.Options{
		Dir:    t.TempDir(),
		Policy: loopback,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if change != nil {
		change(&opts)
	}
	c, err := gitcache.Open(opts)
	if err != nil {
		t.Fatalf("open cache: %v", err)
	}
	return c, logs
}

func checkout(t testing.TB, c *gitcache.Cache, url, ref string) *gitcache.Commit {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	commit, err := c.Checkout(ctx, url, ref, nil)
	if err != nil {
		t.Fatalf("Checkout(%s, %q): %v", url, ref, err)
	}
	return commit
}

// checkoutErr runs a checkout that must fail with a *proto.Error of code want and returns it.
func checkoutErr(t *testing.T, c *gitcache.Cache, url, ref string, want proto.Code) *proto.Error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	commit, err := c.Checkout(ctx, url, ref, nil)
	if err == nil {
		t.Fatalf("Checkout(%s, %q) = %s, want error %s", url, ref, commit.Hash, want)
	}
	var pe *proto.Error
	if !errors.As(err, &pe) {
		t.Fatalf("Checkout(%s, %q) error %v (%T) is not a *proto.Error", url, ref, err, err)
	}
	if pe.Code != want {
		t.Fatalf("Checkout(%s, %q) error code = %s (%s), want %s", url, ref, pe.Code, pe.Message, want)
	}
	return pe
}

func mustContain(t *testing.T, what, s string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(s, p) {
			t.Errorf("%s %q does not contain %q", what, s, p)
		}
	}
}

// got is what the table tests compare.
type got struct {
	Hash, Subject string
}

func TestCheckoutResolvesRefs(t *testing.T) {
	t.Parallel()
	srv := gitserver.New(t)
	repo := srv.Repo(t, "app")
	first := repo.Commit(t, "first commit", map[string]string{"deploy/app.yaml": "kind: ConfigMap\n"})
	second := repo.Commit(t, "second commit\n\nwith a body", map[string]string{"deploy/app.yaml": "kind: Secret\n"})
	repo.Branch(t, "release", first)
	repo.Tag(t, "v1", first)
	repo.AnnotatedTag(t, "v2", second, "version two")
	repo.AnnotatedTag(t, "v1-annotated", first, "version one")

	tests := []struct {
		name, ref string
		want      got
	}{
		{"full SHA", first, got{first, "first commit"}},
		{"full SHA upper-case", strings.ToUpper(second), got{second, "second commit"}},
		{"short SHA", first[:7], got{first, "first commit"}},
		{"4-digit SHA", second[:4], got{second, "second commit"}},
		{"branch", "main", got{second, "second commit"}},
		{"other branch", "release", got{first, "first commit"}},
		{"full branch name", "refs/heads/release", got{first, "first commit"}},
		{"HEAD", "HEAD", got{second, "second commit"}},
		{"lightweight tag", "v1", got{first, "first commit"}},
		{"annotated tag", "v2", got{second, "second commit"}},
		{"annotated tag of an older commit", "v1-annotated", got{first, "first commit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := newCache(t, nil)
			commit := checkout(t, c, repo.URL(), tt.ref)
			if diff := cmp.Diff(tt.want, got{commit.Hash, commit.Subject}); diff != "" {
				t.Errorf("Checkout(%q) (-want +got):\n%s", tt.ref, diff)
			}
			if commit.CacheHit {
				t.Errorf("Checkout(%q) into an empty cache reports a cache hit", tt.ref)
			}
		})
	}
}

func TestFullSHACachedNeedsNoNetwork(t *testing.T) {
	t.Parallel()
	srv := gitserver.New(t)
	repo := srv.Repo(t, "app")
	sha := repo.Commit(t, "only", map[string]string{"a.yaml": "a: 1\n"})
	c, _ := newCache(t, nil)

	if first := checkout(t, c, repo.URL(), sha); first.CacheHit {
		t.Fatalf("first checkout of %s reports a cache hit", sha)
	}
	before := srv.Requests()
	if before == 0 {
		t.Fatal("the first checkout made no HTTP request")
	}
	second := checkout(t, c, repo.URL(), sha)
	if !second.CacheHit || second.Hash != sha {
		t.Errorf("second checkout = %s (cache hit %v), want %s from the cache", second.Hash, second.CacheHit, sha)
	}
	// Another spelling of the URL names the same cache entry.
	third := checkout(t, c, strings.Replace(repo.URL(), ".git", ".git/", 1), sha)
	if !third.CacheHit {
		t.Errorf("checkout through %s/ missed the cache", repo.URL())
	}
	if after := srv.Requests(); after != before {
		t.Errorf("cached checkouts made %d HTTP requests, want 0", after-before)
	}
}

func TestBranchMovedFetchesNewCommit(t *testing.T) {
	t.Parallel()
	srv := gitserver.New(t)
	repo := srv.Repo(t, "app")
	first := repo.Commit(t, "first", map[string]string{"a.yaml": "a: 1\n"})
	c, _ := newCache(t, nil)

	if got := checkout(t, c, repo.URL(), "main"); got.Hash != first {
		t.Fatalf("main = %s, want %s", got.Hash, first)
	}
	second := repo.Commit(t, "second", map[string]string{"a.yaml": "a: 2\n"})
	moved := checkout(t, c, repo.URL(), "main")
	if moved.Hash != second || moved.CacheHit {
		t.Errorf("main after push = %s (cache hit %v), want %s downloaded", moved.Hash, moved.CacheHit, second)
	}
	data, err := readFile(moved, "a.yaml")
	if err != nil || data != "a: 2\n" {
		t.Errorf("a.yaml = %q, %v; want \"a: 2\\n\"", data, err)
	}
	before := srv.Requests()
	again := checkout(t, c, repo.URL(), "main")
	if again.Hash != second || !again.CacheHit {
		t.Errorf("unchanged main = %s (cache hit %v), want %s with nothing downloaded", again.Hash, again.CacheHit, second)
	}
	if srv.Requests() == before {
		t.Error("a branch checkout made no request; branches must be checked against the server")
	}
}

func TestAmbiguousPrefix(t *testing.T) {
	t.Parallel()
	srv := gitserver.New(t)
	repo := srv.Repo(t, "many")
	prefix, a, b := repo.CommitsSharingPrefix(t, 4)
	c, _ := newCache(t, nil)

	pe := checkoutErr(t, c, repo.URL(), prefix, proto.CodeAmbiguousCommit)
	mustContain(t, "ambiguous message", pe.Message, prefix, a[:12], b[:12], repo.URL(), "more hex digits")

	if got := checkout(t, c, repo.URL(), a[:12]); got.Hash != a {
		t.Errorf("Checkout(%s) = %s, want %s", a[:12], got.Hash, a)
	}
}

func TestCheckoutFailures(t *testing.T) {
	t.Parallel()
	srv := gitserver.New(t)
	repo := srv.Repo(t, "app")
	repo.Commit(t, "only", map[string]string{"a.yaml": "a: 1\n"})
	srv.Repo(t, "empty")

	tests := []struct {
		name, url, ref string
		code           proto.Code
		mention        []string
	}{
		{"unknown branch", repo.URL(), "no-such-branch", proto.CodeCommitNotFound, []string{`"no-such-branch"`, repo.URL()}},
		{"unknown full SHA", repo.URL(), strings.Repeat("0", 40), proto.CodeCommitNotFound, []string{strings.Repeat("0", 40), repo.URL()}},
		{"unknown short SHA", repo.URL(), "0000000", proto.CodeCommitNotFound, []string{"0000000"}},
		{"too short to be a SHA", repo.URL(), "abc", proto.CodeCommitNotFound, []string{`"abc"`}},
		{"repository not found", srv.URL("missing"), "main", proto.CodeRepoNotFound, []string{srv.URL("missing")}},
		{"empty repository", srv.URL("empty"), "main", proto.CodeCommitNotFound, []string{"empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := newCache(t, nil)
			pe := checkoutErr(t, c, tt.url, tt.ref, tt.code)
			mustContain(t, "message", pe.Message, tt.mention...)
		})
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	srv := gitserver.New(t)
	repo := srv.Repo(t, "private")
	sha := repo.Commit(t, "secret stuff", map[string]string{"a.yaml": "a: 1\n"})
	const token = "tok-9f8e7d6c5b4a"
	srv.RequireAuth("deployer", token)
	host := strings.TrimPrefix(srv.BaseURL(), "http://")

	tests := []struct {
		name    string
		creds   string
		code    proto.Code // "" for success
		mention []string
		secret  string
	}{
		{name: "no credentials", code: proto.CodeRepoAuthFailed,
			mention: []string{"none are configured", "http://" + host, "GIT_CREDENTIALS_FILE"}},
		{name: "credentials for another host", creds: "https://deployer:" + token + "@git.example.com\n", code: proto.CodeRepoAuthFailed,
			mention: []string{"none are configured"}, secret: token},
		{name: "wrong token", creds: "http://deployer:wrong-SECRET-123@" + host + "\n", code: proto.CodeRepoAuthFailed,
			mention: []string{"refused the credentials", "http://" + host}, secret: "wrong-SECRET-123"},
		{name: "right token", creds: "# deploy key\n\nhttp://deployer:" + token + "@" + host + "/\n", secret: token},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			creds, err := gitcache.ParseCredentials([]byte(tt.creds))
			if err != nil {
				t.Fatalf("parse credentials: %v", err)
			}
			c, logs := newCache(t, func(o *gitcache.Options) { o.Credentials = creds })
			if tt.code == "" {
				if got := checkout(t, c, repo.URL(), "main"); got.Hash != sha {
					t.Errorf("main = %s, want %s", got.Hash, sha)
				}
			} else {
				pe := checkoutErr(t, c, repo.URL(), "main", tt.code)
				mustContain(t, "message", pe.Message, tt.mention...)
				if tt.secret != "" && strings.Contains(pe.Error(), tt.secret) {
					t.Errorf("error %q contains the token", pe.Error())
				}
			}
			if tt.secret != "" && strings.Contains(logs.String(), tt.secret) {
				t.Errorf("logs contain the token:\n%s", logs.String())
			}
		})
	}
}

func TestSizeLimit(t *testing.T) {
	t.Parallel()
	srv := gitserver.New(t)
	repo := srv.Repo(t, "big")
	noise := make([]byte, 1<<20) // incompressible, so the pack is about as big
	r := rand.NewChaCha8([32]byte{1})
	_, _ = r.Read(noise)
	repo.Commit(t, "big file", map[string]string{"blob.bin": string(noise)})

	dir := t.TempDir()
	c, _ := newCache(t, func(o *gitcache.Options) { o.MaxFetchBytes = 64 << 10; o.Dir = dir })
	pe := checkoutErr(t, c, repo.URL(), "main", proto.CodeRepoTooLarge)
	mustContain(t, "message", pe.Message, "64 KiB", repo.URL())
	if partial, _ := filepath.Glob(filepath.Join(dir, "*", "objects", "pack", "*")); len(partial) != 0 {
		t.Errorf("the failed fetch left %v behind", partial)
	}

	roomy, _ := newCache(t, func(o *gitcache.Options) { o.MaxFetchBytes = 4 << 20 })
	checkout(t, roomy, repo.URL(), "main")
}

func TestPolicyRefusals(t *testing.T) {
	t.Parallel()
	srv := gitserver.New(t)
	repo := srv.Repo(t, "app")
	repo.Commit(t, "only", map[string]string{"a.yaml": "a: 1\n"})

	tests := []struct {
		name    string
		policy  urlpolicy.Policy
		url     string
		mention []string
	}{
		{"default policy refuses http", urlpolicy.Policy{}, repo.URL(), []string{"GIT_ALLOW_HTTP"}},
		{"loopback refused", urlpolicy.Policy{AllowHTTP: true}, repo.URL(), []string{"loopback", "GIT_ALLOW_PRIVATE_NETWORKS"}},
		{"host not listed", urlpolicy.Policy{AllowHTTP: true, AllowPrivateNetworks: true, AllowedHosts: []string{"git.example.com"}},
			repo.URL(), []string{"GIT_ALLOWED_HOSTS"}},
		{"ssh without a key", urlpolicy.Policy{AllowSSH: true}, "ssh://git@github.com/org/app.git", []string{"no SSH key"}},
		{"file not fetched", urlpolicy.Policy{AllowPrivateNetworks: true}, "file:///srv/app.git", []string{"https only"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := newCache(t, func(o *gitcache.Options) { o.Policy = tt.policy })
			pe := checkoutErr(t, c, tt.url, "main", proto.CodeURLRefused)
			mustContain(t, "message", pe.Message, tt.mention...)
		})
	}
	if n := srv.Requests(); n != 0 {
		t.Errorf("refused checkouts made %d HTTP requests to the server, want 0", n)
	}
}

func TestCheckoutHonoursContext(t *testing.T) {
	t.Parallel()
	srv := gitserver.New(t)
	repo := srv.Repo(t, "app")
	repo.Commit(t, "only", map[string]string{"a.yaml": "a: 1\n"})
	c, _ := newCache(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Checkout(ctx, repo.URL(), "main", nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Checkout with a cancelled context: error = %v, want context.Canceled", err)
	}
	var pe *proto.Error
	if errors.As(err, &pe) {
		t.Errorf("a cancelled checkout returned the client error %v; cancellation is the caller's to report", pe)
	}
}

func TestProgressLinesFromServer(t *testing.T) {
	t.Parallel()
	srv := gitserver.New(t)
	repo := srv.Repo(t, "app")
	repo.Commit(t, "only", map[string]string{"a.yaml": "a: 1\n", "b/c.yaml": "c: 1\n"})
	c, _ := newCache(t, nil)
	var (
		mu    sync.Mutex
		lines []string
	)
	_, err := c.Checkout(t.Context(), repo.URL(), "main", func(s string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, s)
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	all := strings.Join(lines, "\n")
	mustContain(t, "progress", all, "Counting objects", "done.", "Total")
}
