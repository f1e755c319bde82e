package gitserver_test

import (
	"context"
	"errors"
	"io"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"
	"github.com/google/go-cmp/cmp"

	"github.com/backendim/brain/testkit/gitserver"
)

func listRefs(t *testing.T, url string, auth transport.AuthMethod) (map[string]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{url}})
	refs, err := rem.ListContext(ctx, &git.ListOptions{Auth: auth})
	if err != nil {
		return nil, err
	}
	got := map[string]string{}
	for _, r := range refs {
		if r.Type() == plumbing.HashReference {
			got[r.Name().String()] = r.Hash().String()
		} else {
			got[r.Name().String()] = "-> " + r.Target().String()
		}
	}
	return got, nil
}

func TestServerServesRefsAndObjects(t *testing.T) {
	t.Parallel()
	srv := gitserver.New(t)
	repo := srv.Repo(t, "app")
	first := repo.Commit(t, "first", map[string]string{"README": "hi\n", "deploy/app.yaml": "kind: ConfigMap\n"})
	second := repo.Commit(t, "second", map[string]string{"deploy/app.yaml": "kind: Secret\n"})
	repo.Branch(t, "release", first)
	repo.Tag(t, "v1", first)
	tagObj := repo.AnnotatedTag(t, "v2", second, "version two")

	got, err := listRefs(t, srv.URL("app"), nil)
	if err != nil {
		t.Fatalf("list refs: %v", err)
	}
	want := map[string]string{
		"HEAD":               "-> refs/heads/main",
		"refs/heads/main":    second,
		"refs/heads/release": first,
		"refs/tags/v1":       first,
		"refs/tags/v2":       tagObj,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("refs (-want +got):\n%s", diff)
	}
	if repo.Head(t) != second {
		t.Errorf("Head = %s, want %s", repo.Head(t), second)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clone, err := git.CloneContext(ctx, memory.NewStorage(), nil, &git.CloneOptions{URL: srv.URL("app")})
	if err != nil {
		t.Fatalf("clone: %v", err)
	}
	c, err := clone.CommitObject(plumbing.NewHash(second))
	if err != nil {
		t.Fatalf("commit %s: %v", second, err)
	}
	if c.Message != "second\n" || len(c.ParentHashes) != 1 || c.ParentHashes[0].String() != first {
		t.Errorf("commit = %q with parents %v, want \"second\\n\" with parent %s", c.Message, c.ParentHashes, first)
	}
	files := treeFiles(t, c)
	if diff := cmp.Diff(map[string]string{"deploy/app.yaml": "kind: Secret\n"}, files); diff != "" {
		t.Errorf("tree of second commit (-want +got):\n%s", diff)
	}
	tag, err := clone.TagObject(plumbing.NewHash(tagObj))
	if err != nil {
		t.Fatalf("tag object %s: %v", tagObj, err)
	}
	if tag.Target.String() != second || tag.Name != "v2" {
		t.Errorf("tag = %s -> %s, want v2 -> %s", tag.Name, tag.Target, second)
	}
	if srv.Requests() < 3 {
		t.Errorf("Requests() = %d after a ls-remote and a clone, want at least 3", srv.Requests())
	}
}

func treeFiles(t *testing.T, c *object.Commit) map[string]string {
	t.Helper()
	tree, err := c.Tree()
	if err != nil {
		t.Fatalf("tree: %v", err)
	}
	files := map[string]string{}
	err = tree.Files().ForEach(func(f *object.File) error {
		r, err := f.Reader()
		if err != nil {
			return err
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		files[f.Name] = string(b)
		return err
	})
	if err != nil {
		t.Fatalf("read tree: %v", err)
	}
	return files
}

func TestRequireAuth(t *testing.T) {
	t.Parallel()
	srv := gitserver.New(t)
	repo := srv.Repo(t, "private")
	sha := repo.Commit(t, "only", map[string]string{"a": "b"})
	srv.RequireAuth("deployer", "s3cret")

	tests := []struct {
		name    string
		auth    transport.AuthMethod
		wantErr error
	}{
		{"no credentials", nil, transport.ErrAuthenticationRequired},
		{"wrong password", &githttp.BasicAuth{Username: "deployer", Password: "nope"}, transport.ErrAuthenticationRequired},
		{"right credentials", &githttp.BasicAuth{Username: "deployer", Password: "s3cret"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			refs, err := listRefs(t, repo.URL(), tt.auth)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("list refs error = %v, want %v", err, tt.wantErr)
			}
			if err == nil && refs["refs/heads/main"] != sha {
				t.Errorf("main = %s, want %s", refs["refs/heads/main"], sha)
			}
		})
	}
}

func TestUnknownRepoIsNotFound(t *testing.T) {
	t.Parallel()
	srv := gitserver.New(t)
	_, err := listRefs(t, srv.URL("missing"), nil)
	if !errors.Is(err, transport.ErrRepositoryNotFound) {
		t.Fatalf("list refs of a missing repo: error = %v, want %v", err, transport.ErrRepositoryNotFound)
	}
}

func TestCommitsSharingPrefix(t *testing.T) {
	t.Parallel()
	srv := gitserver.New(t)
	repo := srv.Repo(t, "prefix")
	prefix, a, b := repo.CommitsSharingPrefix(t, 4)
	if a == b || !strings.HasPrefix(a, prefix) || !strings.HasPrefix(b, prefix) || len(prefix) != 4 {
		t.Fatalf("CommitsSharingPrefix = %q, %s, %s: want two different SHAs starting with a 4-digit prefix", prefix, a, b)
	}
	// Both commits are on main, so a client fetching main gets them.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clone, err := git.CloneContext(ctx, memory.NewStorage(), nil, &git.CloneOptions{URL: repo.URL()})
	if err != nil {
		t.Fatalf("clone: %v", err)
	}
	var got []string
	for _, sha := range []string{a, b} {
		if _, err := clone.CommitObject(plumbing.NewHash(sha)); err == nil {
			got = append(got, sha)
		}
	}
	want := []string{a, b}
	sort.Strings(want)
	sort.Strings(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("commits reachable from main (-want +got):\n%s", diff)
	}
}
