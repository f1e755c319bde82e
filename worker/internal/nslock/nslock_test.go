package nslock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/proto/layout"
	"github.com/backendim/brain/testkit/natstest"
	"github.com/backendim/brain/worker/internal/nslock"
)

const (
	jobA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	jobB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	ns   = "im-c1-u1"
)

func bucket(t *testing.T, ttl time.Duration) jetstream.KeyValue {
	t.Helper()
	_, js := natstest.Start(t).Connect(t)
	c := layout.Defaults()
	c.LockTTL = ttl
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	kv, err := layout.Locks(ctx, js, c)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func holder(t *testing.T, kv jetstream.KeyValue) string {
	t.Helper()
	e, err := kv.Get(t.Context(), proto.LockKey(ns))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(e.Value())
}

func acquireAsync(ctx context.Context, l *nslock.Locker, job string) (chan string, chan *nslock.Lock, chan error) {
	blocked, got, errs := make(chan string, 10), make(chan *nslock.Lock, 1), make(chan error, 1)
	go func() {
		lk, err := l.Acquire(ctx, ns, job, func(h string) { blocked <- h })
		if err != nil {
			errs <- err
			return
		}
		got <- lk
	}()
	return blocked, got, errs
}

func TestSecondJobWaitsForRelease(t *testing.T) {
	t.Parallel()
	kv := bucket(t, 30*time.Second)
	l := nslock.New(kv, nslock.Options{TTL: 30 * time.Second, Retry: time.Minute})
	a, err := l.Acquire(t.Context(), ns, jobA, nil)
	if err != nil {
		t.Fatal(err)
	}
	if h := holder(t, kv); h != jobA {
		t.Fatalf("holder = %q, want %s", h, jobA)
	}
	blocked, got, errs := acquireAsync(t.Context(), l, jobB)
	select {
	case h := <-blocked:
		if h != jobA {
			t.Fatalf("blocked by %q, want %s", h, jobA)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no blocked callback")
	}
	select {
	case <-got:
		t.Fatal("second job got the lock while the first held it")
	default:
	}
	if err := a.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Retry is a minute, so only the watch can wake the waiter this fast.
	select {
	case b := <-got:
		if h := holder(t, kv); h != jobB {
			t.Errorf("holder = %q, want %s", h, jobB)
		}
		if err := b.Release(t.Context()); err != nil {
			t.Fatal(err)
		}
		if h := holder(t, kv); h != "" {
			t.Errorf("holder after release = %q", h)
		}
	case err := <-errs:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("second job did not get the lock after release")
	}
	if err := a.Release(t.Context()); err != nil {
		t.Errorf("second Release: %v", err)
	}
}

func TestDeadHoldersLockExpires(t *testing.T) {
	t.Parallel()
	kv := bucket(t, time.Second)
	if _, err := kv.Create(t.Context(), proto.LockKey(ns), []byte(jobA)); err != nil {
		t.Fatal(err) // a holder that never refreshes
	}
	l := nslock.New(kv, nslock.Options{TTL: time.Second, Retry: 100 * time.Millisecond})
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	start := time.Now()
	var seen []string
	lk, err := l.Acquire(ctx, ns, jobB, func(h string) { seen = append(seen, h) })
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Release(t.Context())
	if len(seen) != 1 || seen[0] != jobA {
		t.Errorf("blocked calls = %q, want [%s]", seen, jobA)
	}
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("acquired after %s, before the dead holder's key could expire", d)
	}
}

func TestHolderRefreshesPastTTL(t *testing.T) {
	t.Parallel()
	kv := bucket(t, time.Second)
	l := nslock.New(kv, nslock.Options{TTL: time.Second, Retry: 100 * time.Millisecond})
	a, err := l.Acquire(t.Context(), ns, jobA, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release(t.Context())
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	_, err = l.Acquire(ctx, ns, jobB, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Acquire = %v, want the deadline to pass while the holder refreshes", err)
	}
	select {
	case <-a.Lost():
		t.Fatal("holder lost its lock")
	default:
	}
}

func TestSameJobTakesOverItsOwnLock(t *testing.T) {
	t.Parallel()
	kv := bucket(t, 30*time.Second)
	if _, err := kv.Create(t.Context(), proto.LockKey(ns), []byte(jobA)); err != nil {
		t.Fatal(err) // left by an earlier delivery of jobA
	}
	l := nslock.New(kv, nslock.Options{TTL: 30 * time.Second})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	lk, err := l.Acquire(ctx, ns, jobA, func(h string) { t.Errorf("blocked by %s", h) })
	if err != nil {
		t.Fatal(err)
	}
	if err := lk.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestLostLock(t *testing.T) {
	t.Parallel()
	kv := bucket(t, time.Second)
	l := nslock.New(kv, nslock.Options{TTL: time.Second})
	a, err := l.Acquire(t.Context(), ns, jobA, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), proto.LockKey(ns), []byte(jobB)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("Lost not closed after another job took the key")
	}
	if err := a.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if h := holder(t, kv); h != jobB {
		t.Errorf("holder = %q: releasing a lost lock must not delete the new holder's key", h)
	}
}

func TestAcquireEndsWithContext(t *testing.T) {
	t.Parallel()
	kv := bucket(t, 30*time.Second)
	l := nslock.New(kv, nslock.Options{TTL: 30 * time.Second})
	a, err := l.Acquire(t.Context(), ns, jobA, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release(t.Context())
	stop := errors.New("job cancelled")
	ctx, cancel := context.WithCancelCause(t.Context())
	blocked, _, errs := acquireAsync(ctx, l, jobB)
	<-blocked
	cancel(stop)
	select {
	case err := <-errs:
		if !errors.Is(err, stop) {
			t.Errorf("Acquire = %v, want the context's cause", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Acquire did not return after cancel")
	}
}
