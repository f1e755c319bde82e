package gitcache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// repoLocks serializes work on one cache entry: a channel per key within the process (so a waiter
// can give up when its context ends), then an exclusive flock on <key>.lock so worker processes
// sharing the cache directory take turns too.
type repoLocks struct {
	mu   sync.Mutex
	sems map[string]chan struct{}
}

func (l *repoLocks) sem(key string) chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sems == nil {
		l.sems = map[string]chan struct{}{}
	}
	s, ok := l.sems[key]
	if !ok {
		s = make(chan struct{}, 1)
		l.sems[key] = s
	}
	return s
}

// lock waits, until ctx ends, for the entry key whose lock file is lockPath, and returns the
// function that releases it.
func (l *repoLocks) lock(ctx context.Context, key, lockPath string) (unlock func(), err error) {
	sem := l.sem(key)
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for cache entry %s: %w", key, ctx.Err())
	}
	f, err := flock(ctx, lockPath)
	if err != nil {
		<-sem
		return nil, err
	}
	return func() {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		_ = f.Close()
		<-sem
	}, nil
}

// flock opens path and takes an exclusive lock on it, polling (a blocking flock cannot be
// interrupted) until ctx ends. The lock goes away with the file descriptor, so a crashed holder
// never leaves it behind.
func flock(ctx context.Context, path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	wait := 5 * time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			_ = f.Close()
			return nil, fmt.Errorf("wait for lock %s held by another process: %w", path, ctx.Err())
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}
