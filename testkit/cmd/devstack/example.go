package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/backendim/brain/testkit/gitserver"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// serveExample commits the example directory into a bare repository (a new commit only when the
// files changed) and serves it with git http-backend. It returns the clone URL and the commit.
func serveExample(ctx context.Context, s settings, say func(string, ...any)) (string, string, error) {
	root, err := filepath.Abs(filepath.Join(s.data, "git"))
	if err != nil {
		return "", "", err
	}
	sha, err := commitDir(filepath.Join(root, "hello.git"), s.example)
	if err != nil {
		return "", "", fmt.Errorf("example repository: %w", err)
	}
	h, err := gitserver.Backend(root, filepath.Dir(root))
	if err != nil {
		return "", "", err
	}
	ln, err := net.Listen("tcp", s.gitAddr)
	if err != nil {
		return "", "", fmt.Errorf("serve example repository: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	context.AfterFunc(ctx, func() { _ = srv.Close() })
	url := "http://" + s.gitAddr + "/hello.git"
	say("serving the example repository %s (from %s) at %s", url, s.example, sha[:12])
	return url, sha, nil
}

// commitDir makes the tree of dir the content of main in the bare repository at repoDir.
func commitDir(repoDir, dir string) (string, error) {
	repo, err := git.PlainOpen(repoDir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.PlainInit(repoDir, true)
		if err == nil {
			err = repo.Storer.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, "refs/heads/main"))
		}
	}
	if err != nil {
		return "", err
	}
	treeHash, err := writeTree(repo, dir)
	if err != nil {
		return "", err
	}
	var parents []plumbing.Hash
	if ref, err := repo.Reference("refs/heads/main", true); err == nil {
		head, err := repo.CommitObject(ref.Hash())
		if err != nil {
			return "", err
		}
		if head.TreeHash == treeHash {
			return head.Hash.String(), nil
		}
		parents = []plumbing.Hash{head.Hash}
	}
	sig := object.Signature{Name: "Brain example", Email: "example@brain.invalid", When: time.Now()}
	c := &object.Commit{Author: sig, Committer: sig, Message: "Example app for make run", TreeHash: treeHash, ParentHashes: parents}
	obj := repo.Storer.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return "", err
	}
	h, err := repo.Storer.SetEncodedObject(obj)
	if err != nil {
		return "", err
	}
	return h.String(), repo.Storer.SetReference(plumbing.NewHashReference("refs/heads/main", h))
}

// writeTree stores dir's files and subdirectories as tree objects and returns the root tree.
func writeTree(repo *git.Repository, dir string) (plumbing.Hash, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	var tree object.Tree
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		var h plumbing.Hash
		mode := filemode.Regular
		if e.IsDir() {
			mode = filemode.Dir
			h, err = writeTree(repo, path)
		} else if e.Type().IsRegular() {
			h, err = writeBlob(repo, path)
		} else {
			continue
		}
		if err != nil {
			return plumbing.ZeroHash, err
		}
		tree.Entries = append(tree.Entries, object.TreeEntry{Name: e.Name(), Mode: mode, Hash: h})
	}
	obj := repo.Storer.NewEncodedObject()
	if err := tree.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return repo.Storer.SetEncodedObject(obj)
}

func writeBlob(repo *git.Repository, path string) (plumbing.Hash, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	obj := repo.Storer.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := w.Write(b); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	return repo.Storer.SetEncodedObject(obj)
}
