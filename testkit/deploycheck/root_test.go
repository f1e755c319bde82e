// Package deploycheck checks Brain's deployment files — Dockerfiles, docker-compose files, Traefik
// configuration and Kubernetes manifests — with the tools that read them in production: BuildKit's
// Dockerfile parser, compose-go, kustomize, a real kube-apiserver and a real Traefik.
package deploycheck

import (
	"os"
	"path/filepath"
	"testing"
)

// repoRoot is the workspace root (the directory holding go.work).
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.work above the working directory")
		}
		dir = parent
	}
}

// readFile returns a file of the repository, by its slash-separated path from the root.
func readFile(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
