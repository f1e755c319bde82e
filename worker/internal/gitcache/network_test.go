package gitcache_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/testkit/gitserver"
	"github.com/backendim/brain/worker/internal/gitcache"
)

func TestUnreachable(t *testing.T) {
	t.Parallel()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL + "/app.git"
	closed.Close()

	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	}))
	t.Cleanup(failing.Close)

	hanging := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // until the client gives up
	}))
	t.Cleanup(hanging.Close)

	tests := []struct {
		name    string
		url     string
		mention []string
	}{
		{"connection refused", closedURL, []string{"cannot fetch", closedURL}},
		{"server error", failing.URL + "/app.git", []string{"HTTP 503"}},
		{"timeout", hanging.URL + "/app.git", []string{"took longer than 300ms"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := newCache(t, func(o *gitcache.Options) { o.FetchTimeout = 300 * time.Millisecond })
			pe := checkoutErr(t, c, tt.url, "main", proto.CodeRepoUnreachable)
			mustContain(t, "message", pe.Message, tt.mention...)
			if !pe.Code.Retryable() {
				t.Errorf("%s is not retryable", pe.Code)
			}
		})
	}
}

// A redirect is checked against the policy like the URL itself: here the allowed host 127.0.0.1
// redirects to "localhost", which the allowlist does not contain.
func TestRedirectRecheckedAgainstPolicy(t *testing.T) {
	t.Parallel()
	srv := gitserver.New(t)
	repo := srv.Repo(t, "app")
	repo.Commit(t, "only", map[string]string{"a.yaml": "a: 1\n"})
	port := srv.BaseURL()[strings.LastIndexByte(srv.BaseURL(), ':')+1:]
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://localhost:"+port+r.URL.RequestURI(), http.StatusFound)
	}))
	t.Cleanup(redirector.Close)

	policy := loopback
	policy.AllowedHosts = []string{"127.0.0.1"}
	c, _ := newCache(t, func(o *gitcache.Options) { o.Policy = policy })
	pe := checkoutErr(t, c, redirector.URL+"/app.git", "main", proto.CodeURLRefused)
	mustContain(t, "message", pe.Message, "redirected", "GIT_ALLOWED_HOSTS")
	if n := srv.Requests(); n != 0 {
		t.Errorf("the refused redirect target got %d requests, want 0", n)
	}

	// Without the allowlist the same redirect is followed.
	open, _ := newCache(t, nil)
	checkout(t, open, redirector.URL+"/app.git", "main")
}

func TestConcurrentCheckouts(t *testing.T) {
	t.Parallel()
	srv := gitserver.New(t)
	repo := srv.Repo(t, "app")
	files := map[string]string{}
	for i := range 50 {
		files["deploy/f"+string(rune('a'+i%26))+string(rune('a'+i/26))+".yaml"] = strings.Repeat("x: y\n", i+1)
	}
	sha := repo.Commit(t, "many files", files)
	dir := t.TempDir()
	// Two caches on one directory stand for two worker processes: they share the flock.
	caches := make([]*gitcache.Cache, 2)
	for i := range caches {
		caches[i], _ = newCache(t, func(o *gitcache.Options) { o.Dir = dir })
	}

	const workers = 8
	var wg sync.WaitGroup
	results := make([]string, workers)
	errs := make([]error, workers)
	for i := range workers {
		wg.Go(func() {
			ref := "main"
			if i%2 == 1 {
				ref = sha[:8]
			}
			commit, err := caches[i%2].Checkout(t.Context(), repo.URL(), ref, nil)
			if err != nil {
				errs[i] = err
				return
			}
			data, err := readFile(commit, "deploy/faa.yaml")
			if err != nil || data != "x: y\n" {
				errs[i] = fmt.Errorf("deploy/faa.yaml = %q, %v", data, err)
			}
			results[i] = commit.Hash
		})
	}
	wg.Wait()
	for i := range workers {
		if errs[i] != nil {
			t.Errorf("checkout %d: %v", i, errs[i])
		} else if results[i] != sha {
			t.Errorf("checkout %d = %s, want %s", i, results[i], sha)
		}
	}
}
