package ratelimit

import (
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a concurrency-safe manual clock.
type fakeClock struct{ ns atomic.Int64 }

var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func (c *fakeClock) Now() time.Time          { return epoch.Add(time.Duration(c.ns.Load())) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func newTestLimiter(rate float64, burst, maxKeys int) (*Limiter, *fakeClock) {
	c := &fakeClock{}
	return New(Config{Rate: rate, Burst: burst, MaxKeys: maxKeys, Now: c.Now}), c
}

func TestAllowBurstAndRefill(t *testing.T) {
	type step struct {
		advance time.Duration
		ok      bool
		retry   time.Duration // checked when !ok
	}
	tests := []struct {
		name  string
		rate  float64
		burst int
		steps []step
	}{
		{"burst then refused", 1, 3, []step{
			{0, true, 0}, {0, true, 0}, {0, true, 0}, {0, false, time.Second},
		}},
		{"one token per interval", 10, 1, []step{
			{0, true, 0}, {0, false, 100 * time.Millisecond},
			{50 * time.Millisecond, false, 50 * time.Millisecond},
			{50 * time.Millisecond, true, 0}, {0, false, 100 * time.Millisecond},
		}},
		{"refill is capped at burst", 1, 2, []step{
			{0, true, 0}, {0, true, 0},
			{time.Hour, true, 0}, {0, true, 0}, {0, false, time.Second},
		}},
		{"partial refill", 2, 4, []step{
			{0, true, 0}, {0, true, 0}, {0, true, 0}, {0, true, 0}, {0, false, 500 * time.Millisecond},
			{time.Second, true, 0}, {0, true, 0}, {0, false, 500 * time.Millisecond},
		}},
		{"refusals do not consume", 1, 1, []step{
			{0, true, 0}, {0, false, time.Second},
			{400 * time.Millisecond, false, 600 * time.Millisecond},
			{400 * time.Millisecond, false, 200 * time.Millisecond},
			{200 * time.Millisecond, true, 0},
		}},
		{"burst below one means one", 1, 0, []step{
			{0, true, 0}, {0, false, time.Second}, {time.Second, true, 0},
		}},
		{"slow rate", 1.0 / 60, 1, []step{
			{0, true, 0}, {0, false, time.Minute}, {time.Minute, true, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, clock := newTestLimiter(tt.rate, tt.burst, 0)
			for i, s := range tt.steps {
				clock.Advance(s.advance)
				ok, retry := l.Allow("@alice:example.org")
				if ok != s.ok {
					t.Fatalf("step %d: ok = %v, want %v", i, ok, s.ok)
				}
				if ok && retry != 0 {
					t.Fatalf("step %d: allowed with retryAfter %v", i, retry)
				}
				if !ok && retry != s.retry {
					t.Fatalf("step %d: retryAfter = %v, want %v", i, retry, s.retry)
				}
			}
		})
	}
}

// TestRetryAfterExact: waiting exactly retryAfter is enough, a nanosecond
// less is not, for rates whose interval is not a whole number of ns.
func TestRetryAfterExact(t *testing.T) {
	for _, rate := range []float64{3, 7, 0.3, 1000, 1e6, 123.456} {
		for _, burst := range []int{1, 5} {
			t.Run(strconv.FormatFloat(rate, 'g', -1, 64)+"/"+strconv.Itoa(burst), func(t *testing.T) {
				l, clock := newTestLimiter(rate, burst, 0)
				for range burst {
					if ok, _ := l.Allow("k"); !ok {
						t.Fatal("burst refused")
					}
				}
				for range 20 {
					ok, retry := l.Allow("k")
					if ok || retry <= 0 {
						t.Fatalf("ok=%v retry=%v after draining", ok, retry)
					}
					want := time.Duration(math.Ceil(1e9 / rate))
					if retry > want {
						t.Fatalf("retry = %v, more than one interval %v", retry, want)
					}
					clock.Advance(retry - 1)
					if ok, r := l.Allow("k"); ok || r != 1 {
						t.Fatalf("1ns early: ok=%v retry=%v", ok, r)
					}
					clock.Advance(1)
					if ok, _ := l.Allow("k"); !ok {
						t.Fatal("refused at retryAfter")
					}
				}
			})
		}
	}
}

func TestKeysAreIndependent(t *testing.T) {
	l, _ := newTestLimiter(1, 1, 0)
	for _, k := range []string{"a", "b", "c"} {
		if ok, _ := l.Allow(k); !ok {
			t.Fatalf("%s refused", k)
		}
		if ok, _ := l.Allow(k); ok {
			t.Fatalf("%s allowed twice", k)
		}
	}
}

func TestDisabled(t *testing.T) {
	var nilLimiter *Limiter
	tests := []struct {
		name string
		l    *Limiter
	}{
		{"zero rate", New(Config{Burst: 1})},
		{"negative rate", New(Config{Rate: -1, Burst: 1})},
		{"NaN rate", New(Config{Rate: math.NaN(), Burst: 1})},
		{"nil limiter", nilLimiter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.l.Enabled() {
				t.Fatal("Enabled() = true")
			}
			for i := range 1000 {
				if ok, retry := tt.l.Allow("k" + strconv.Itoa(i%3)); !ok || retry != 0 {
					t.Fatalf("Allow = %v, %v", ok, retry)
				}
			}
			if n := tt.l.Len(); n != 0 {
				t.Fatalf("Len = %d", n)
			}
		})
	}
}

func TestEvictionBound(t *testing.T) {
	for _, maxKeys := range []int{1, 10, 31, 100, 1000, 5000} {
		t.Run(strconv.Itoa(maxKeys), func(t *testing.T) {
			l, clock := newTestLimiter(1, 1, maxKeys)
			for i := range 10 * maxKeys {
				l.Allow("key-" + strconv.Itoa(i))
				clock.Advance(time.Millisecond)
				if n := l.Len(); n > maxKeys {
					t.Fatalf("after %d keys Len = %d > MaxKeys %d", i+1, n, maxKeys)
				}
			}
			if n := l.Len(); n < maxKeys/2 {
				t.Fatalf("Len = %d, want close to MaxKeys %d", n, maxKeys)
			}
		})
	}
}

func TestDefaultMaxKeys(t *testing.T) {
	l, _ := newTestLimiter(1, 1, 0)
	total := 0
	for i := range l.shards {
		total += l.shards[i].cap
	}
	if total != DefaultMaxKeys {
		t.Fatalf("capacity = %d, want %d", total, DefaultMaxKeys)
	}
}

// TestEvictsLeastRecentlyUsed uses a MaxKeys small enough for one shard.
func TestEvictsLeastRecentlyUsed(t *testing.T) {
	l, _ := newTestLimiter(1, 1, 3)
	if len(l.shards) != 1 {
		t.Fatalf("%d shards", len(l.shards))
	}
	for _, k := range []string{"a", "b", "c"} {
		l.Allow(k) // drain each bucket
	}
	l.Allow("a") // a is now the most recently used; b the least
	l.Allow("d") // evicts b
	if n := l.Len(); n != 3 {
		t.Fatalf("Len = %d", n)
	}
	for _, k := range []string{"a", "c", "d"} {
		if ok, _ := l.Allow(k); ok {
			t.Fatalf("%s was forgotten", k)
		}
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("b was not evicted")
	}
}

// TestConcurrentExactCount: with the clock stopped, exactly Burst of many
// concurrent requests for one key succeed.
func TestConcurrentExactCount(t *testing.T) {
	const burst, goroutines, each = 1000, 32, 100
	l, _ := newTestLimiter(1, burst, 0)
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				if ok, _ := l.Allow("@bob:example.org"); ok {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); n != burst {
		t.Fatalf("allowed %d, want %d", n, burst)
	}
}

// TestConcurrentManyKeys exercises eviction and the clock under -race.
func TestConcurrentManyKeys(t *testing.T) {
	l, clock := newTestLimiter(100, 10, 200)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 2000 {
				l.Allow(strconv.Itoa((g*7919 + i) % 1000))
				if i%100 == 0 {
					clock.Advance(time.Millisecond)
				}
			}
		})
	}
	wg.Go(func() {
		for range 100 {
			if n := l.Len(); n > 200 {
				t.Errorf("Len = %d", n)
			}
		}
	})
	wg.Wait()
}

func TestClockNeverSeenBeforeCreation(t *testing.T) {
	// A clock behind the creation time must not panic or admit extra.
	clock := &fakeClock{}
	clock.Advance(time.Hour)
	l := New(Config{Rate: 1, Burst: 1, Now: clock.Now})
	clock.Advance(-2 * time.Hour)
	if ok, _ := l.Allow("k"); !ok {
		t.Fatal("first request refused")
	}
	if ok, retry := l.Allow("k"); ok || retry != time.Second {
		t.Fatalf("ok=%v retry=%v", ok, retry)
	}
}

func TestExtremeRates(t *testing.T) {
	for _, rate := range []float64{math.Inf(1), 1e12, 1e-12, math.SmallestNonzeroFloat64} {
		l, clock := newTestLimiter(rate, math.MaxInt32, 0)
		for range 3 {
			if ok, _ := l.Allow("k"); !ok {
				t.Fatalf("rate %g: refused within burst", rate)
			}
			clock.Advance(time.Hour)
		}
	}
}

func BenchmarkAllowParallel(b *testing.B) {
	keys := make([]string, 4096)
	for i := range keys {
		keys[i] = "@user" + strconv.Itoa(i) + ":example.org"
	}
	l := New(Config{Rate: 1e6, Burst: 1000, MaxKeys: 100_000})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			l.Allow(keys[i&(len(keys)-1)])
			i++
		}
	})
}

func BenchmarkAllowParallelOneKey(b *testing.B) {
	l := New(Config{Rate: 1e6, Burst: 1000})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Allow("203.0.113.7")
		}
	})
}
