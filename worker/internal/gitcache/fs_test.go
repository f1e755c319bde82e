package gitcache_test

import (
	"errors"
	"io/fs"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/backendim/brain/testkit/gitserver"
	"github.com/backendim/brain/worker/internal/gitcache"
)

func readFile(c *gitcache.Commit, name string) (string, error) {
	b, err := fs.ReadFile(c.FS, name)
	return string(b), err
}

func TestCommitFS(t *testing.T) {
	t.Parallel()
	srv := gitserver.New(t)
	repo := srv.Repo(t, "app")
	files := map[string]string{
		"README.md":                  "# app\n",
		"deploy/kustomization.yaml":  "resources:\n- web.yaml\n",
		"deploy/web.yaml":            "kind: Deployment\nmetadata:\n  name: web\n",
		"deploy/extra/config.json":   `{"kind":"ConfigMap","metadata":{"name":"cfg"}}`,
		"deploy/extra/empty.yaml":    "",
		"src/main.go":                "package main\n",
		"a-file-sorted-before-b.txt": "a\n",
	}
	sha := repo.Commit(t, "layout", files)
	c, _ := newCache(t, nil)
	commit := checkout(t, c, repo.URL(), sha)

	// The standard checker for fs.FS implementations: Open, ReadDir, ReadFile, Stat, Sub, Glob.
	if err := fstest.TestFS(commit.FS, "README.md", "deploy/web.yaml", "deploy/extra/config.json", "deploy/extra/empty.yaml"); err != nil {
		t.Fatal(err)
	}

	var walked []string
	err := fs.WalkDir(commit.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			walked = append(walked, p+"/")
		} else {
			walked = append(walked, p)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk: %v", err)
	}
	wantWalk := []string{"./", "README.md", "a-file-sorted-before-b.txt", "deploy/", "deploy/extra/",
		"deploy/extra/config.json", "deploy/extra/empty.yaml", "deploy/kustomization.yaml", "deploy/web.yaml",
		"src/", "src/main.go"}
	if diff := cmp.Diff(wantWalk, walked); diff != "" {
		t.Errorf("WalkDir (-want +got):\n%s", diff)
	}

	for name, want := range files {
		got, err := readFile(commit, name)
		if err != nil || got != want {
			t.Errorf("ReadFile(%s) = %q, %v; want %q", name, got, err, want)
		}
		info, err := fs.Stat(commit.FS, name)
		if err != nil || info.Size() != int64(len(want)) || info.Mode() != 0o644 {
			t.Errorf("Stat(%s) = %v, %v; want a 0644 file of %d bytes", name, info, err, len(want))
		}
	}

	tests := []struct {
		name string
		want error
	}{
		{"missing.yaml", fs.ErrNotExist},
		{"deploy/missing/x.yaml", fs.ErrNotExist},
		{"README.md/x", fs.ErrNotExist},
		{"../etc/passwd", fs.ErrInvalid},
		{"/deploy/web.yaml", fs.ErrInvalid},
		{"deploy/./web.yaml", fs.ErrInvalid},
	}
	for _, tt := range tests {
		if _, err := commit.FS.Open(tt.name); !errors.Is(err, tt.want) {
			t.Errorf("Open(%q) error = %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := fs.ReadFile(commit.FS, "deploy"); err == nil {
		t.Error("ReadFile of a directory succeeded")
	}
}
