package wsapi

import (
	"sync"
	"time"
)

// bucket is a token bucket: rate tokens per second, at most burst saved up.
type bucket struct {
	tokens float64
	last   time.Time
}

func (b *bucket) allow(now time.Time, rate float64, burst int) bool {
	if b.last.IsZero() {
		b.tokens = float64(burst)
	} else {
		b.tokens = min(float64(burst), b.tokens+now.Sub(b.last).Seconds()*rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// userLimiter keeps one bucket per user; buckets idle long enough to be full again are dropped.
type userLimiter struct {
	rate  float64
	burst int

	mu      sync.Mutex
	buckets map[string]*bucket
	calls   int
}

func newUserLimiter(rate float64, burst int) *userLimiter {
	return &userLimiter{rate: rate, burst: burst, buckets: map[string]*bucket{}}
}

// allow takes a token of user's bucket and reports whether there was one, and if not, how long
// until there is.
func (l *userLimiter) allow(user string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.calls++; l.calls%1024 == 0 {
		l.sweep(now)
	}
	b := l.buckets[user]
	if b == nil {
		b = &bucket{}
		l.buckets[user] = b
	}
	if b.allow(now, l.rate, l.burst) {
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

func (l *userLimiter) sweep(now time.Time) {
	full := time.Duration(float64(l.burst) / l.rate * float64(time.Second))
	for u, b := range l.buckets {
		if now.Sub(b.last) > full {
			delete(l.buckets, u)
		}
	}
}
