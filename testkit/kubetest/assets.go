package kubetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// buildTimeout bounds scripts/kube-test-bins.sh: a cold build of all five binaries took 14 minutes
// on 2 busy cores.
const buildTimeout = 45 * time.Minute

// Assets returns the directory holding the etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler and kwok binaries: KUBEBUILDER_ASSETS
// when set, otherwise the output of <repo>/scripts/kube-test-bins.sh, which builds them on first
// use (its progress goes to stderr) and caches them. The repository root is found by walking up from
// the working directory to go.work.
func Assets() (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, checkAssets(dir, "KUBEBUILDER_ASSETS")
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	script := filepath.Join(root, "scripts", "kube-test-bins.sh")
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	var stdout bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Dir = root
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build kube-apiserver and etcd with %s (or set KUBEBUILDER_ASSETS): %w", script, err)
	}
	dir := strings.TrimSpace(stdout.String())
	return dir, checkAssets(dir, script)
}

func checkAssets(dir, from string) error {
	for _, name := range []string{"kube-apiserver", "etcd"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("%s from %s: %w", name, from, err)
		}
		if fi.IsDir() || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("%s from %s: %s is not an executable file", name, from, filepath.Join(dir, name))
		}
	}
	return nil
}

// RepoRoot returns the nearest directory at or above the working directory that holds go.work.
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		_, err := os.Stat(filepath.Join(dir, "go.work"))
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("find repository root: %w", err)
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("find repository root: no go.work at or above %s (set KUBEBUILDER_ASSETS)", wd)
		}
	}
}

// tailBuffer keeps the last bytes written to it; etcd and kube-apiserver write to it concurrently.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
