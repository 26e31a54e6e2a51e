package accounts

import (
	"slices"
	"sync"
	"time"

	"github.com/axon-hs/axon/matrix/id"
)

// tokenHash is the SHA-256 of an access token: the cache key and the
// database key.
type tokenHash [32]byte

// cachedToken is what a worker remembers about an access token.
type cachedToken struct {
	dev       Device
	expiresAt int64     // ms; 0 = never
	lastSeen  int64     // ms; when this worker last wrote the device's last_seen_ts (or the DB value)
	loadedAt  time.Time // when it was read from the database
}

// tokenCache is a bounded map from access token hash to what the database
// said about it, trusted for ttl. It makes Authenticate a map lookup on the
// hot path. Entries are dropped early by logout and device deletion on this
// worker (invalidate*); on other workers they live until ttl passes, which
// bounds how long a revoked token keeps working there.
//
// When the map is full, expired entries are swept, then, if still full,
// about an eighth of the entries are dropped (Go's map order is random, so
// this is a cheap random eviction).
type tokenCache struct {
	mu     sync.Mutex
	ttl    time.Duration
	max    int
	m      map[tokenHash]*cachedToken
	byUser map[id.UserID]map[tokenHash]struct{}
}

func newTokenCache(size int, ttl time.Duration) *tokenCache {
	return &tokenCache{
		ttl:    ttl,
		max:    size,
		m:      make(map[tokenHash]*cachedToken),
		byUser: make(map[id.UserID]map[tokenHash]struct{}),
	}
}

// get returns a copy of the fresh entry for h.
func (c *tokenCache) get(h tokenHash, now time.Time) (cachedToken, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[h]
	if !ok {
		return cachedToken{}, false
	}
	if now.Sub(e.loadedAt) >= c.ttl || now.Before(e.loadedAt) {
		c.removeLocked(h)
		return cachedToken{}, false
	}
	return *e, true
}

func (c *tokenCache) put(h tokenHash, e cachedToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[h]; !ok && len(c.m) >= c.max {
		c.evictLocked(e.loadedAt)
	}
	c.removeLocked(h)
	c.m[h] = &e
	u := c.byUser[e.dev.UserID]
	if u == nil {
		u = make(map[tokenHash]struct{})
		c.byUser[e.dev.UserID] = u
	}
	u[h] = struct{}{}
}

// touch records that the device's last_seen_ts was written at ms, and
// reports whether it was older than minInterval, in which case the caller
// writes it. Only one caller per interval gets true.
func (c *tokenCache) touch(h tokenHash, ms, minInterval int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[h]
	if !ok || ms-e.lastSeen < minInterval {
		return false
	}
	e.lastSeen = ms
	return true
}

func (c *tokenCache) invalidate(hs ...tokenHash) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range hs {
		c.removeLocked(h)
	}
}

// invalidateUser drops every entry of the user, or only those of the given
// devices when any are named.
func (c *tokenCache) invalidateUser(userID id.UserID, deviceIDs ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for h := range c.byUser[userID] {
		if len(deviceIDs) > 0 && !slices.Contains(deviceIDs, c.m[h].dev.DeviceID) {
			continue
		}
		c.removeLocked(h)
	}
}

func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

func (c *tokenCache) removeLocked(h tokenHash) {
	e, ok := c.m[h]
	if !ok {
		return
	}
	delete(c.m, h)
	if u := c.byUser[e.dev.UserID]; u != nil {
		delete(u, h)
		if len(u) == 0 {
			delete(c.byUser, e.dev.UserID)
		}
	}
}

func (c *tokenCache) evictLocked(now time.Time) {
	for h, e := range c.m {
		if now.Sub(e.loadedAt) >= c.ttl {
			c.removeLocked(h)
		}
	}
	drop := len(c.m) - c.max + 1
	if drop <= 0 {
		return
	}
	drop = max(drop, c.max/8)
	for h := range c.m {
		if drop == 0 {
			break
		}
		c.removeLocked(h)
		drop--
	}
}
