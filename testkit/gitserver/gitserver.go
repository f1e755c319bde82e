// Package gitserver runs a real git server for tests: `git http-backend` (smart HTTP, protocol v0)
// behind net/http/cgi inside an httptest.Server on 127.0.0.1. Fixture repositories are bare
// repositories in t.TempDir(), written with go-git by the test itself; the git binary only serves them.
//
// Use:
//
//	srv := gitserver.New(t)                    // stopped by t.Cleanup
//	repo := srv.Repo(t, "app")                 // empty bare repo, HEAD -> refs/heads/main
//	sha := repo.Commit(t, "first", map[string]string{"deploy/app.yaml": "kind: ConfigMap\n"})
//	repo.Branch(t, "release", sha)
//	repo.Tag(t, "v1", sha)                     // lightweight
//	repo.AnnotatedTag(t, "v1.0.0", sha, "msg") // annotated: returns the tag object's SHA
//	url := srv.URL("app")                      // http://127.0.0.1:PORT/app.git
//	n := srv.Requests()                        // HTTP requests served so far (proves cache hits)
//	srv.RequireAuth("user", "token")           // basic auth from now on, for every repo
//
// The server enables http.uploadpack and uploadpack.allowReachableSHA1InWant, so a client may ask
// for a commit by SHA. Commits get deterministic timestamps (one second apart, starting at
// 2026-01-01T00:00:00Z), so the same fixture produces the same SHAs on every run.
//
// The git binary must be installed (Debian: apt-get install git); New fails the test otherwise.
package gitserver

import (
	"crypto/subtle"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Server is a running git smart-HTTP server.
type Server struct {
	root     string
	http     *httptest.Server
	requests atomic.Int64

	mu         sync.Mutex
	user, pass string
}

// New starts a server on 127.0.0.1 serving the repositories made with Repo. It is closed when the
// test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{root: t.TempDir()}
	backend, err := Backend(s.root, t.TempDir())
	if err != nil {
		t.Fatalf("gitserver: %v", err)
	}
	s.http = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="gitserver"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(s.http.Close)
	return s
}

// URL returns the clone URL of the repository made by Repo(t, repo): http://127.0.0.1:PORT/<repo>.git.
func (s *Server) URL(repo string) string {
	return s.http.URL + "/" + repo + ".git"
}

// BaseURL returns http://127.0.0.1:PORT, for tests that build URLs of their own.
func (s *Server) BaseURL() string { return s.http.URL }

// Requests returns how many HTTP requests the server has received, including refused ones.
func (s *Server) Requests() int64 { return s.requests.Load() }

// RequireAuth makes every later request need HTTP basic auth with user and pass; a request
// without them, or with others, gets 401. An empty user turns the requirement off again.
func (s *Server) RequireAuth(user, pass string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.user, s.pass = user, pass
}

func (s *Server) authorized(r *http.Request) bool {
	s.mu.Lock()
	wantUser, wantPass := s.user, s.pass
	s.mu.Unlock()
	if wantUser == "" {
		return true
	}
	user, pass, ok := r.BasicAuth()
	return ok && subtle.ConstantTimeCompare([]byte(user), []byte(wantUser)) == 1 &&
		subtle.ConstantTimeCompare([]byte(pass), []byte(wantPass)) == 1
}

// Repo creates an empty bare repository <name>.git whose HEAD points at refs/heads/main.
func (s *Server) Repo(t testing.TB, name string) *Repo {
	t.Helper()
	dir := filepath.Join(s.root, name+".git")
	return initRepo(t, dir, s.URL(name))
}

// testLog passes git's stderr ("not our ref", "Not a git repository") to t.Log until the test ends.
type testLog struct {
	t       testing.TB
	mu      sync.Mutex
	stopped bool
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.t.Logf("git http-backend: %s", strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (l *testLog) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
}
