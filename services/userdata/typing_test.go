package userdata

import (
	"fmt"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/testenv"
)

func typingPath(room, user string) string {
	return v3 + "/rooms/" + url.PathEscape(room) + "/typing/" + url.PathEscape(user)
}

// typingIn returns the m.typing user list of a room in d, and whether
// there was one.
func typingIn(t *testing.T, d *SyncData, room string) ([]string, bool) {
	t.Helper()
	for _, ev := range decode(t, d.Ephemeral[room]) {
		if ev["type"] != "m.typing" {
			continue
		}
		users := []string{}
		for _, u := range ev["content"].(map[string]any)["user_ids"].([]any) {
			users = append(users, u.(string))
		}
		return users, true
	}
	return nil, false
}

func TestTypingEndpoint(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		cases := []struct {
			name, path, as string
			body           any
			status         int
			code           string
		}{
			{"start", typingPath(room1, alice), alice, map[string]any{"typing": true, "timeout": 20000}, 200, ""},
			{"start without timeout", typingPath(room1, bob), bob, map[string]any{"typing": true}, 200, ""},
			{"stop", typingPath(room1, bob), bob, map[string]any{"typing": false}, 200, ""},
			{"another user", typingPath(room1, bob), alice, map[string]any{"typing": true, "timeout": 1000}, 403, "M_FORBIDDEN"},
			{"not joined", typingPath(room2, bob), bob, map[string]any{"typing": true, "timeout": 1000}, 403, "M_FORBIDDEN"},
			{"typing missing", typingPath(room1, alice), alice, map[string]any{"timeout": 1000}, 400, "M_BAD_JSON"},
			{"typing not a bool", typingPath(room1, alice), alice, map[string]any{"typing": "yes"}, 400, "M_BAD_JSON"},
			{"negative timeout", typingPath(room1, alice), alice, map[string]any{"typing": true, "timeout": -5}, 400, "M_INVALID_PARAM"},
			{"bad room", typingPath("room1", alice), alice, map[string]any{"typing": true}, 400, "M_INVALID_PARAM"},
			{"no body", typingPath(room1, alice), alice, nil, 400, "M_NOT_JSON"},
		}
		for _, c := range cases {
			status, code, body := h.do("PUT", c.path, c.as, c.body)
			if status != c.status || code != c.code {
				t.Errorf("%s: got %d %s (%s), want %d %s", c.name, status, code, body, c.status, c.code)
			}
		}
	})
}

func TestTypingSyncAndExpiry(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		start := h.svc.TypingPosition()
		h.mustDo("PUT", typingPath(room1, alice), alice, map[string]any{"typing": true, "timeout": 10_000})
		_, local := h.world.takeWakes()
		if want := []wakeCall{{[]string{alice, bob}, []string{room1}}}; !equalWakes(local, want) {
			t.Fatalf("local wakes %v, want %v", local, want)
		}
		if h.svc.TypingPosition() <= start {
			t.Fatal("typing position did not move")
		}
		// Bob's incremental sync sees Alice typing in room1.
		d := h.sync(SyncQuery{UserID: bob, DeviceID: "DEV", From: h.pos(), FromTyping: start})
		if users, ok := typingIn(t, d, room1); !ok || !slices.Equal(users, []string{alice}) {
			t.Fatalf("typing %v %v", users, ok)
		}
		seen := h.svc.TypingPosition()
		// A refresh changes nothing that clients see: no position, no wake.
		h.clock.Advance(5 * time.Second)
		h.mustDo("PUT", typingPath(room1, alice), alice, map[string]any{"typing": true, "timeout": 10_000})
		if h.svc.TypingPosition() != seen {
			t.Fatal("a typing refresh moved the position")
		}
		if _, local := h.world.takeWakes(); len(local) != 0 {
			t.Fatalf("a refresh woke %v", local)
		}
		d = h.sync(SyncQuery{UserID: bob, DeviceID: "DEV", From: h.pos(), FromTyping: seen})
		if _, ok := typingIn(t, d, room1); ok {
			t.Fatal("typing sent again without a change")
		}
		// The refresh counts from its own time: not expired 9s later...
		h.clock.Advance(9 * time.Second)
		h.svc.ExpireTyping()
		if h.svc.TypingPosition() != seen {
			t.Fatal("expired too early")
		}
		// ... but 11s later, with a wake-up and an empty list.
		h.clock.Advance(2 * time.Second)
		h.svc.ExpireTyping()
		_, local = h.world.takeWakes()
		if want := []wakeCall{{[]string{alice, bob}, []string{room1}}}; !equalWakes(local, want) {
			t.Fatalf("expiry wakes %v, want %v", local, want)
		}
		d = h.sync(SyncQuery{UserID: bob, DeviceID: "DEV", From: h.pos(), FromTyping: seen})
		if users, ok := typingIn(t, d, room1); !ok || len(users) != 0 {
			t.Fatalf("after expiry: %v %v", users, ok)
		}
		// An initial sync shows only rooms where someone types.
		d = h.sync(SyncQuery{UserID: bob, DeviceID: "DEV", Initial: true})
		if _, ok := typingIn(t, d, room1); ok {
			t.Fatal("initial sync shows an empty typing list")
		}
	})
}

func TestTypingTimeoutBounded(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		h.mustDo("PUT", typingPath(room1, alice), alice, map[string]any{"typing": true, "timeout": 3_600_000})
		h.clock.Advance(31 * time.Second)
		d := h.sync(SyncQuery{UserID: bob, DeviceID: "DEV", Initial: true})
		if _, ok := typingIn(t, d, room1); ok {
			t.Fatal("a one-hour typing timeout was not capped at 30s")
		}
	})
}

// TestTypingAcrossProcesses wires two services over one database the way
// NATS would: each one's PublishTyping feeds the other's ReceiveTyping,
// and its own (core NATS echoes a subscriber's own messages).
func TestTypingAcrossProcesses(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		db := openDB(t, e)
		var mu sync.Mutex
		var procs []*Service
		publish := func(data []byte) error {
			mu.Lock()
			ps := slices.Clone(procs)
			mu.Unlock()
			for _, p := range ps {
				p.ReceiveTyping(data)
			}
			return nil
		}
		wa, wb := newWorld(), newWorld()
		a := newHarnessOn(t, db, wa, func(c *Config) { c.PublishTyping = publish })
		b := newHarnessOn(t, db, wb, func(c *Config) { c.PublishTyping = publish })
		mu.Lock()
		procs = []*Service{a.svc, b.svc}
		mu.Unlock()

		startA, startB := a.svc.TypingPosition(), b.svc.TypingPosition()
		a.mustDo("PUT", typingPath(room1, alice), alice, map[string]any{"typing": true, "timeout": 10_000})
		if a.svc.TypingPosition() != startA+1 {
			t.Fatalf("the echo of a's own update moved a's position: %d → %d", startA, a.svc.TypingPosition())
		}
		_, localB := wb.takeWakes()
		if want := []wakeCall{{[]string{alice, bob}, []string{room1}}}; !equalWakes(localB, want) {
			t.Fatalf("b's wakes %v, want %v", localB, want)
		}
		d := b.sync(SyncQuery{UserID: bob, DeviceID: "DEV", From: b.pos(), FromTyping: startB})
		if users, ok := typingIn(t, d, room1); !ok || !slices.Equal(users, []string{alice}) {
			t.Fatalf("b: typing %v %v", users, ok)
		}
		if d.Empty() {
			t.Fatal("a typing change is not news")
		}
		// A token of process a presented to process b is foreign: b sends
		// its whole current state (rooms with recent changes included).
		d = b.sync(SyncQuery{UserID: bob, DeviceID: "DEV", From: b.pos(), FromTyping: a.svc.TypingPosition()})
		if users, ok := typingIn(t, d, room1); !ok || !slices.Equal(users, []string{alice}) {
			t.Fatalf("b with a's token: %v %v", users, ok)
		}
		// That state is no news: a long-poll waits (so that clients
		// bouncing between workers do not spin).
		if !d.Empty() {
			t.Fatal("typing sent again for a foreign token counts as news")
		}
		// Stopping reaches b too.
		a.mustDo("PUT", typingPath(room1, alice), alice, map[string]any{"typing": false})
		seenB := b.svc.TypingPosition()
		d = b.sync(SyncQuery{UserID: bob, DeviceID: "DEV", From: b.pos(), FromTyping: startB + 1})
		if users, ok := typingIn(t, d, room1); !ok || len(users) != 0 {
			t.Fatalf("b after stop: %v %v", users, ok)
		}
		// A position b never reached is foreign too.
		d = b.sync(SyncQuery{UserID: bob, DeviceID: "DEV", From: b.pos(), FromTyping: seenB + 100})
		if _, ok := typingIn(t, d, room1); !ok {
			t.Fatal("a future position was not treated as foreign")
		}
		// Garbage on the subject is ignored.
		b.svc.ReceiveTyping([]byte("{"))
		b.svc.ReceiveTyping([]byte(`{"origin":"x","room_id":"bad","user_id":"@u:x","typing":true}`))
		if b.svc.TypingPosition() != seenB {
			t.Fatal("a malformed update changed b's state")
		}
	})
}

func TestTypingBounds(t *testing.T) {
	ts := newTypingState()
	now := time.Unix(1000, 0)
	for i := range maxTypersPerRoom {
		if _, dropped := ts.set(now, room1, fmt.Sprintf("@u%d:x", i), true, now.Add(time.Minute)); dropped {
			t.Fatalf("dropped user %d", i)
		}
	}
	if changed, dropped := ts.set(now, room1, "@one.more:x", true, now.Add(time.Minute)); changed || !dropped {
		t.Fatalf("over the per-room bound: changed %v dropped %v", changed, dropped)
	}
	// Expired rooms are forgotten after the retention.
	ts.expire(now.Add(2*time.Minute), time.Minute)
	if len(ts.rooms) != 1 {
		t.Fatalf("rooms %d after expiry", len(ts.rooms))
	}
	ts.expire(now.Add(4*time.Minute), time.Minute)
	if len(ts.rooms) != 0 {
		t.Fatalf("rooms %d after retention", len(ts.rooms))
	}
	// Positions of another epoch are foreign.
	other := newTypingState()
	if ts.own(other.pos()) && ts.epoch != other.epoch {
		t.Fatal("a position of another epoch counted as own")
	}
	if !ts.own(ts.pos()) || ts.own(ts.pos()+1) || ts.own(0) {
		t.Fatal("own() is wrong")
	}
}
