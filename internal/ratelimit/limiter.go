package ratelimit

import (
	"hash/maphash"
	"math"
	"time"
)

// DefaultMaxKeys is the number of tracked keys when Config.MaxKeys is not
// positive. A bucket costs about 100 bytes plus its key.
const DefaultMaxKeys = 100_000

// maxShards bounds the shard count; minKeysPerShard keeps every shard's
// LRU meaningful when MaxKeys is small.
const (
	maxShards       = 64
	minKeysPerShard = 32
)

// Config configures a [Limiter].
type Config struct {
	// Rate is the sustained rate, in requests per second, that a key may
	// make. Zero, negative or NaN disables limiting: Allow always succeeds.
	Rate float64
	// Burst is how many requests a key may make at once after being idle
	// (the bucket's size). Values below 1 mean 1.
	Burst int
	// MaxKeys bounds how many keys are tracked; the least recently used are
	// forgotten first. Zero or negative means DefaultMaxKeys.
	MaxKeys int
	// Now is the clock; nil means time.Now. Time is measured as the
	// difference from the Limiter's creation, so with time.Now it is
	// monotonic and wall-clock jumps do not refill or drain buckets.
	Now func() time.Time
}

// Limiter is a set of per-key token buckets. It is safe for concurrent use.
// A nil *Limiter allows everything.
type Limiter struct {
	now  func() time.Time
	base time.Time // Now() at creation; times are nanoseconds since base

	interval  int64 // nanoseconds per token (1/Rate)
	tolerance int64 // Burst*interval: how far ahead of now a key's TAT may run

	seed   maphash.Seed
	mask   uint64
	shards []shard
}

// New returns a Limiter for cfg.
func New(cfg Config) *Limiter {
	l := &Limiter{now: cfg.Now}
	if l.now == nil {
		l.now = time.Now
	}
	if !(cfg.Rate > 0) {
		return l // disabled: no shards
	}
	l.base = l.now()

	// Clamp so that tat arithmetic cannot overflow int64: interval is at
	// most a year, tolerance at most ~36 years.
	interval := math.Ceil(float64(time.Second) / cfg.Rate)
	interval = min(max(interval, 1), float64(365*24*time.Hour))
	burst := max(cfg.Burst, 1)
	l.interval = int64(interval)
	l.tolerance = int64(min(float64(burst)*interval, 1<<60))

	maxKeys := cfg.MaxKeys
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	n := maxShards
	for n > 1 && maxKeys/n < minKeysPerShard {
		n /= 2
	}
	l.seed = maphash.MakeSeed()
	l.mask = uint64(n - 1)
	l.shards = make([]shard, n)
	for i := range l.shards {
		// Spread MaxKeys exactly: the first maxKeys%n shards take one more.
		c := maxKeys / n
		if i < maxKeys%n {
			c++
		}
		l.shards[i].init(c)
	}
	return l
}

// Enabled reports whether l limits anything.
func (l *Limiter) Enabled() bool { return l != nil && l.shards != nil }

// Allow takes one token from key's bucket. If there is none it returns
// false and how long until there will be one; it never blocks. A refused
// request does not consume anything, so a client that keeps retrying does
// not push its own retry time further out.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	if !l.Enabled() {
		return true, 0
	}
	now := int64(l.now().Sub(l.base))
	s := &l.shards[maphash.String(l.seed, key)&l.mask]
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.get(key, now)
	// GCRA: the key's theoretical arrival time moves one interval per
	// admitted request and is never behind now; a request is admitted if
	// the new TAT is at most tolerance (a full bucket) ahead of now.
	tat := max(e.tat, now)
	next := tat + l.interval
	if allowAt := next - l.tolerance; now < allowAt {
		return false, time.Duration(allowAt - now)
	}
	e.tat = next
	return true, 0
}

// Len returns the number of keys currently tracked (at most MaxKeys).
func (l *Limiter) Len() int {
	if !l.Enabled() {
		return 0
	}
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.entries)
		s.mu.Unlock()
	}
	return n
}
