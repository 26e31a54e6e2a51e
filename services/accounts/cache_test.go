package accounts

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/axon-hs/axon/matrix/id"
)

func TestTokenCache(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	c := newTokenCache(4, 30*time.Second)
	key := func(i int) tokenHash { return sha256.Sum256([]byte(fmt.Sprint(i))) }
	entry := func(user id.UserID, dev string) cachedToken {
		return cachedToken{dev: Device{UserID: user, DeviceID: dev}, loadedAt: now}
	}
	c.put(key(1), entry("@a:x", "A1"))
	c.put(key(2), entry("@a:x", "A2"))
	c.put(key(3), entry("@b:x", "B1"))
	if e, ok := c.get(key(1), now.Add(29*time.Second)); !ok || e.dev.DeviceID != "A1" {
		t.Fatalf("get = %+v, %v", e, ok)
	}
	if _, ok := c.get(key(1), now.Add(30*time.Second)); ok {
		t.Fatal("an entry outlived its TTL")
	}
	if _, ok := c.get(key(2), now.Add(-time.Second)); ok {
		t.Fatal("an entry from the future (clock went back) was trusted")
	}
	c.put(key(1), entry("@a:x", "A1"))
	c.put(key(2), entry("@a:x", "A2"))
	c.invalidateUser("@a:x", "A2")
	if _, ok := c.get(key(2), now); ok {
		t.Fatal("invalidateUser(device) kept the device")
	}
	if _, ok := c.get(key(1), now); !ok {
		t.Fatal("invalidateUser(device) dropped another device")
	}
	c.invalidateUser("@a:x")
	if _, ok := c.get(key(1), now); ok {
		t.Fatal("invalidateUser kept an entry")
	}
	if _, ok := c.get(key(3), now); !ok {
		t.Fatal("invalidateUser dropped another user's entry")
	}
	// The size bound holds, and the index stays consistent.
	for i := range 100 {
		c.put(key(i), entry(id.UserID(fmt.Sprintf("@u%d:x", i%7)), "D"))
		if c.len() > 4 {
			t.Fatalf("cache grew to %d entries", c.len())
		}
	}
	c.mu.Lock()
	n := 0
	for _, hs := range c.byUser {
		n += len(hs)
	}
	c.mu.Unlock()
	if n != c.len() {
		t.Fatalf("index has %d entries, map %d", n, c.len())
	}
	c.invalidate(key(99))
	if _, ok := c.get(key(99), now); ok {
		t.Fatal("invalidate kept the entry")
	}
}

// TestLogoutOnAnotherWorker checks the documented bound: a token revoked
// through one worker stops working on another within the cache TTL.
func TestLogoutOnAnotherWorker(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		h1 := newHarness(t, e, nil)
		h2 := newHarnessOn(t, h1.db, h1.clock, nil)
		a := h1.register("alice", "pw")
		h2.expect(h2.whoami(a.token), 200, "") // cached on worker 2
		h1.expect(h1.do("POST", v3+"/logout", a.token, nil), 200, "")
		h1.expect(h1.whoami(a.token), 401, "M_UNKNOWN_TOKEN") // at once on worker 1
		h2.expect(h2.whoami(a.token), 200, "")                // still cached on worker 2
		h1.clock.Advance(DefaultTokenCacheTTL)
		h2.expect(h2.whoami(a.token), 401, "M_UNKNOWN_TOKEN")
	})
}

func TestNewConfig(t *testing.T) {
	db := openDB(t, engines()[0])
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"minimal", Config{ServerName: "x.org"}, true},
		{"no server name", Config{}, false},
		{"bad server name", Config{ServerName: "x.org:99999"}, false},
		{"bad mode", Config{ServerName: "x.org", Registration: "maybe"}, false},
		{"bcrypt too cheap", Config{ServerName: "x.org", BcryptCost: 2}, false},
		{"negative lifetime", Config{ServerName: "x.org", AccessTokenLifetime: -1}, false},
	} {
		s, err := New(db, tc.cfg)
		if (err == nil) != tc.ok {
			t.Errorf("%s: New = %v", tc.name, err)
		}
		if err == nil && (s.cfg.Registration != RegistrationClosed || s.cfg.BcryptCost != DefaultBcryptCost) {
			t.Errorf("%s: defaults %+v", tc.name, s.cfg)
		}
	}
	if _, err := New(nil, Config{ServerName: "x.org"}); err == nil {
		t.Error("New(nil) succeeded")
	}
}

func TestCleanup(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		h := newHarness(t, e, func(c *Config) { c.SharedSecret = "x" })
		for range 3 {
			h.expect(h.do("POST", v3+"/register", "", map[string]any{}), 401, "")
			h.expect(h.do("GET", adminPath, "", nil), 200, "")
		}
		ctx := h.ctx()
		if n, err := h.svc.Cleanup(ctx); err != nil || n != 0 {
			t.Fatalf("Cleanup before expiry = %d, %v", n, err)
		}
		h.clock.Advance(uiaSessionLifetime)
		if n, err := h.svc.Cleanup(ctx); err != nil || n != 6 {
			t.Fatalf("Cleanup = %d, %v; want 6", n, err)
		}
		// RunJanitor returns when its context ends.
		jctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { h.svc.RunJanitor(jctx, time.Millisecond); close(done) }()
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("RunJanitor did not return")
		}
	})
}

func TestCapabilities(t *testing.T) {
	h := newHarness(t, engines()[0], nil)
	full := h.svc.Capabilities(&Device{UserID: "@a:x"})
	guest := h.svc.Capabilities(&Device{UserID: "@g:x", IsGuest: true})
	for _, k := range []string{"m.change_password", "m.get_login_token", "m.set_avatar_url"} {
		if full[k].(map[string]any)["enabled"] != true || guest[k].(map[string]any)["enabled"] != false {
			t.Errorf("%s: full %v, guest %v", k, full[k], guest[k])
		}
	}
	if full["m.3pid_changes"].(map[string]any)["enabled"] != false {
		t.Errorf("m.3pid_changes %v", full["m.3pid_changes"])
	}
	if fmt.Sprint(guest["m.profile_fields"]) != "map[allowed:[displayname] enabled:true]" {
		t.Errorf("guest m.profile_fields %v", guest["m.profile_fields"])
	}
}

func TestRandomString(t *testing.T) {
	h := newHarness(t, engines()[0], func(c *Config) { c.Rand = strings.NewReader(strings.Repeat("\xff\x00\x01", 100)) })
	// 0xff is rejected for a 3-letter alphabet (256 % 3 == 1), so that
	// every letter is equally likely.
	s, err := h.svc.randomString(4, "abc")
	if err != nil || s != "abab" {
		t.Fatalf("randomString = %q, %v", s, err)
	}
}
