// Package nslock is the per-namespace lock of jobs, kept in the key-value bucket brain_locks: the
// key ns.<namespace> holds the ID of the job deploying into that namespace. The holder refreshes
// the key every TTL/3; the bucket's TTL removes the key of a holder that died.
package nslock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/backendim/brain/proto"
)

// Defaults of Options.
const (
	DefaultRetry          = time.Second      // a waiter tries again at least this often
	DefaultRequestTimeout = 10 * time.Second // bounds every key-value request
)

// Options configure a Locker.
type Options struct {
	// TTL is the bucket's TTL (LOCK_TTL); the holder refreshes its key every TTL/3.
	TTL time.Duration
	// Retry is how often a waiter tries again when it has seen no change; default DefaultRetry.
	Retry time.Duration
	// Logger gets refresh failures; default discards them.
	Logger *slog.Logger
}

// Locker takes namespace locks in one bucket.
type Locker struct {
	kv   jetstream.KeyValue
	opts Options
}

// New returns a Locker using the bucket kv (layout.Locks).
func New(kv jetstream.KeyValue, opts Options) *Locker {
	if opts.Retry <= 0 {
		opts.Retry = DefaultRetry
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Locker{kv: kv, opts: opts}
}

// Acquire waits until the lock of namespace is held for jobID and returns it. While another job
// holds it, blocked (if not nil) is called with that job's ID, once each time the holder changes.
// Acquire retries on every change of the key and at least every Options.Retry. A key that already
// names jobID (an earlier delivery of the same job that did not release it) is taken over.
func (l *Locker) Acquire(ctx context.Context, namespace, jobID string, blocked func(holder string)) (*Lock, error) {
	key := proto.LockKey(namespace)
	var (
		w      jetstream.KeyWatcher
		holder string
	)
	defer func() {
		if w != nil {
			_ = w.Stop()
		}
	}()
	for {
		rev, cur, err := l.try(ctx, key, jobID)
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", namespace, causeOr(ctx, err))
		}
		if rev != 0 {
			return l.hold(key, jobID, rev), nil
		}
		if cur != "" && cur != holder {
			holder = cur
			if blocked != nil {
				blocked(holder)
			}
		}
		if w == nil {
			// Watch, then try again at once: a release between the try and the watch would
			// otherwise go unnoticed until the next Retry.
			if w, err = l.kv.Watch(ctx, key, jetstream.UpdatesOnly()); err != nil {
				return nil, fmt.Errorf("lock %s: watch: %w", namespace, causeOr(ctx, err))
			}
			continue
		}
		if err := l.wait(ctx, w); err != nil {
			return nil, fmt.Errorf("lock %s: %w", namespace, err)
		}
	}
}

// causeOr returns ctx's cause when ctx has ended (the reason the caller gave), else err.
func causeOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
}

// try takes the key if it is free or already names jobID. It returns the revision written, or
// 0 and the current holder.
func (l *Locker) try(ctx context.Context, key, jobID string) (uint64, string, error) {
	ctx, cancel := context.WithTimeout(ctx, DefaultRequestTimeout)
	defer cancel()
	rev, err := l.kv.Create(ctx, key, []byte(jobID))
	if err == nil {
		return rev, "", nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return 0, "", err
	}
	e, err := l.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, "", nil // released or expired in between; try again
	}
	if err != nil {
		return 0, "", err
	}
	if cur := string(e.Value()); cur != jobID {
		return 0, cur, nil
	}
	rev, err = l.kv.Update(ctx, key, []byte(jobID), e.Revision())
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, "", nil // changed in between; try again
	}
	return rev, "", err
}

// wait returns after a change of the watched key, Retry, or ctx's end.
func (l *Locker) wait(ctx context.Context, w jetstream.KeyWatcher) error {
	t := time.NewTimer(l.opts.Retry)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-w.Updates():
	case <-t.C:
	}
	return nil
}

func (l *Locker) hold(key, jobID string, rev uint64) *Lock {
	lk := &Lock{l: l, key: key, jobID: jobID, rev: rev, lost: make(chan struct{}),
		stop: make(chan struct{}), done: make(chan struct{})}
	go lk.refresh()
	return lk
}

// Lock is a held namespace lock.
type Lock struct {
	l     *Locker
	key   string
	jobID string
	lost  chan struct{}
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
	// rev and gone belong to the refresh goroutine until done is closed.
	rev  uint64
	gone bool
}

// Lost is closed when a refresh finds that the key no longer names this job: it expired (the
// holder could not refresh it for TTL) and another job took it.
func (lk *Lock) Lost() <-chan struct{} { return lk.lost }

func (lk *Lock) refresh() {
	defer close(lk.done)
	t := time.NewTicker(max(lk.l.opts.TTL/3, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-lk.stop:
			return
		case <-t.C:
		}
		if !lk.refreshOnce() {
			lk.gone = true
			close(lk.lost)
			return
		}
	}
}

// refreshOnce rewrites the key; it reports false when another job holds it now. A key that
// expired while nobody took it is taken again.
func (lk *Lock) refreshOnce() bool {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultRequestTimeout)
	defer cancel()
	rev, err := lk.l.kv.Update(ctx, lk.key, []byte(lk.jobID), lk.rev)
	if errors.Is(err, jetstream.ErrKeyExists) {
		var holder string
		rev, holder, err = lk.l.try(ctx, lk.key, lk.jobID)
		if err == nil && rev == 0 {
			lk.l.opts.Logger.Warn("namespace lock lost", "key", lk.key, "job", lk.jobID, "holder", holder)
			return false
		}
	}
	if err != nil {
		lk.l.opts.Logger.Warn("refresh namespace lock", "key", lk.key, "job", lk.jobID, "err", err)
		return true // try again at the next tick; the TTL is three ticks away
	}
	lk.rev = rev
	return true
}

// Release stops refreshing and deletes the key if it still names this job. It is idempotent; a
// failed delete is harmless (the key expires after the TTL) but is returned for the log.
func (lk *Lock) Release(ctx context.Context) error {
	var err error
	lk.once.Do(func() {
		close(lk.stop)
		<-lk.done
		if lk.gone {
			return
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultRequestTimeout)
		defer cancel()
		err = lk.l.kv.Delete(ctx, lk.key, jetstream.LastRevision(lk.rev))
		if errors.Is(err, jetstream.ErrKeyExists) {
			err = nil // no longer ours
		}
		if err != nil {
			err = fmt.Errorf("release %s: %w", lk.key, err)
		}
	})
	return err
}
