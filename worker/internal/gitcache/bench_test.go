package gitcache_test

import (
	"context"
	"fmt"
	"io/fs"
	"testing"

	"github.com/backendim/brain/testkit/gitserver"
)

// BenchmarkCheckoutWarm measures a checkout of a full SHA that is already cached (no network),
// plus reading the commit's manifests, as a worker does for an unchanged repository.
func BenchmarkCheckoutWarm(b *testing.B) {
	srv := gitserver.New(b)
	repo := srv.Repo(b, "app")
	files := map[string]string{}
	for i := range 20 {
		files[fmt.Sprintf("deploy/obj%02d.yaml", i)] = fmt.Sprintf("kind: ConfigMap\nmetadata:\n  name: cm%d\n", i)
	}
	sha := repo.Commit(b, "manifests", files)
	c, _ := newCache(b, nil)
	checkout(b, c, repo.URL(), sha)
	before := srv.Requests()
	ctx := context.Background()

	b.ReportAllocs()
	for b.Loop() {
		commit, err := c.Checkout(ctx, repo.URL(), sha, nil)
		if err != nil {
			b.Fatal(err)
		}
		entries, err := fs.ReadDir(commit.FS, "deploy")
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range entries {
			if _, err := fs.ReadFile(commit.FS, "deploy/"+e.Name()); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	if srv.Requests() != before {
		b.Fatalf("warm checkouts made %d HTTP requests", srv.Requests()-before)
	}
}
