package main

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/testenv"
)

// knockRoomBody is a createRoom body for a room of the default version
// whose join rule is knock.
func knockRoomBody(name string) map[string]any {
	return map[string]any{"preset": "private_chat", "name": name, "initial_state": []any{
		map[string]any{"type": "m.room.join_rules", "content": map[string]any{"join_rule": "knock"}},
	}}
}

// memberOf is user's membership of room as c's server has it ("" for
// none), with the member event's content.
func memberOf(c *client, room, user string) (string, map[string]any) {
	c.ts.t.Helper()
	r := c.do("GET", "/rooms/"+apiEsc(room)+"/state/m.room.member/"+apiEsc(user), nil)
	if r.Status != 200 {
		return "", nil
	}
	m, _ := r.Body["membership"].(string)
	return m, r.Body
}

// syncRooms is the part of a /sync response for one kind of membership
// ("join", "invite", "leave", "knock").
func syncRooms(s map[string]any, kind string) map[string]any {
	rooms, _ := s["rooms"].(map[string]any)
	m, _ := rooms[kind].(map[string]any)
	return m
}

// knockState returns the room name and the user's own membership that a
// /sync's rooms.knock entry for room shows ("" when absent).
func knockState(s map[string]any, room, user string) (name, membership string, ok bool) {
	kr, ok := syncRooms(s, "knock")[room].(map[string]any)
	if !ok {
		return "", "", false
	}
	ks, _ := kr["knock_state"].(map[string]any)
	evs, _ := ks["events"].([]any)
	for _, e := range evs {
		ev, _ := e.(map[string]any)
		content, _ := ev["content"].(map[string]any)
		switch ev["type"] {
		case "m.room.name":
			name, _ = content["name"].(string)
		case "m.room.member":
			if ev["state_key"] == user {
				membership, _ = content["membership"].(string)
			}
		}
	}
	return name, membership, true
}

// syncUntil polls c's /sync from since until cond holds, and returns the
// response that satisfied it.
func syncUntil(t *testing.T, c *client, since, what string, cond func(s map[string]any) bool) map[string]any {
	t.Helper()
	var s map[string]any
	testenv.Eventually(t, 10*time.Second, what, func() bool {
		q := url.Values{"timeout": {"0"}}
		if since != "" {
			q.Set("since", since)
		}
		s = c.sync(q)
		return cond(s)
	})
	return s
}

// Knocking across servers: bob of b knocks on alice's room of a through
// make_knock and send_knock, a's room has his knock, and his /sync shows
// the room under rooms.knock with the state a answered. A knock that is
// rescinded leaves through a (make_leave, send_leave). Alice accepts bob's
// knock by inviting him, which replaces the knock on b, and he joins. Once
// b is in the room, a knock of another user of b is an ordinary event that
// reaches a through b's sender. Rooms that are public or invite-only
// refuse knocks with 403.
func TestFederationKnocks(t *testing.T) {
	w := newFedWorld(t)
	a := w.start(backends()[0], "a.fed.test")
	b := w.start(backends()[0], "b.fed.test")
	alice := a.register("alice")
	bob := b.register("bob")
	carol := b.register("carol")
	room := alice.createRoom(knockRoomBody("Knock knock"))

	// No server to ask: the room is unknown on b.
	if r := bob.do("POST", "/knock/"+apiEsc(room), map[string]any{}); r.Status != 404 || r.Body["errcode"] != "M_NOT_FOUND" {
		t.Fatalf("a knock without a server to ask: %d %s", r.Status, r.Raw)
	}
	r := bob.must("POST", "/knock/"+apiEsc(room)+"?server_name=a.fed.test", map[string]any{"reason": "let me in"})
	if r["room_id"] != room {
		t.Errorf("the knock answered %v; want room_id %s", r, room)
	}
	// send_knock returns once a has persisted the knock.
	if m, content := memberOf(alice, room, bob.UserID); m != "knock" || content["reason"] != "let me in" {
		t.Fatalf("alice's server has bob's membership %q (%v); want knock with the reason", m, content)
	}
	s := syncUntil(t, bob, "", "bob's /sync shows the knock", func(s map[string]any) bool {
		_, _, ok := knockState(s, room, bob.UserID)
		return ok
	})
	if name, mine, _ := knockState(s, room, bob.UserID); name != "Knock knock" || mine != "knock" {
		t.Errorf("knock_state: name %q, bob's membership %q: %v", name, mine, syncRooms(s, "knock")[room])
	}

	// Carol knocks too, then thinks better of it: the leave goes through a.
	carol.must("POST", "/knock/"+apiEsc(room)+"?via=a.fed.test", map[string]any{})
	if m, _ := memberOf(alice, room, carol.UserID); m != "knock" {
		t.Fatalf("alice's server has carol's membership %q; want knock", m)
	}
	cs := syncUntil(t, carol, "", "carol's /sync shows her knock", func(s map[string]any) bool {
		_, _, ok := knockState(s, room, carol.UserID)
		return ok
	})
	carol.must("POST", "/rooms/"+apiEsc(room)+"/leave", map[string]any{"reason": "never mind"})
	if m, _ := memberOf(alice, room, carol.UserID); m != "leave" {
		t.Errorf("after carol rescinded her knock, alice's server has %q; want leave", m)
	}
	syncUntil(t, carol, cs["next_batch"].(string), "carol's /sync shows the room left", func(s map[string]any) bool {
		_, left := syncRooms(s, "leave")[room]
		return left
	})

	// Alice accepts bob's knock: the invite replaces it on b.
	alice.must("POST", "/rooms/"+apiEsc(room)+"/invite", map[string]any{"user_id": bob.UserID})
	s = syncUntil(t, bob, s["next_batch"].(string), "bob's /sync shows the invite", func(s map[string]any) bool {
		_, ok := syncRooms(s, "invite")[room]
		return ok
	})
	if _, _, ok := knockState(s, room, bob.UserID); ok {
		t.Errorf("the room is still shown as knocked on next to the invite")
	}
	// The invite names the server to join through.
	bob.must("POST", "/join/"+apiEsc(room), map[string]any{})
	if m, _ := memberOf(alice, room, bob.UserID); m != "join" {
		t.Fatalf("alice's server has bob's membership %q; want join", m)
	}
	syncUntil(t, bob, s["next_batch"].(string), "bob's /sync shows the room joined", func(s map[string]any) bool {
		_, ok := syncRooms(s, "join")[room]
		return ok
	})

	// b is in the room now: dave's knock is sent there and reaches a.
	dave := b.register("dave")
	dave.must("POST", "/knock/"+apiEsc(room), map[string]any{"reason": "me too"})
	testenv.Eventually(t, 10*time.Second, "alice's server gets dave's knock", func() bool {
		m, _ := memberOf(alice, room, dave.UserID)
		return m == "knock"
	})

	// Rooms that do not take knocks refuse them.
	public := alice.createRoom(map[string]any{"preset": "public_chat"})
	private := alice.createRoom(map[string]any{"preset": "private_chat"})
	erin := b.register("erin")
	for _, c := range []struct{ name, room string }{{"public", public}, {"invite-only", private}} {
		r := erin.do("POST", "/knock/"+apiEsc(c.room)+"?server_name=a.fed.test", map[string]any{})
		if r.Status != 403 || r.Body["errcode"] != "M_FORBIDDEN" {
			t.Errorf("a knock on the %s room: %d %s", c.name, r.Status, r.Raw)
		}
		if m, _ := memberOf(alice, c.room, erin.UserID); m != "" {
			t.Errorf("the %s room has erin's membership %q", c.name, m)
		}
	}
}

// Knocking on a room of the same server: the knock is a member event of
// the room, /sync shows it with the room's state, and it is rescinded by
// leaving and accepted by an invite. Guests, members, the invited and
// rooms that do not take knocks are refused.
func TestKnockLocal(t *testing.T) {
	ts := startServer(t, backends()[0])
	alice := ts.register("alice")
	bob := ts.register("bob")
	room := alice.createRoom(knockRoomBody("Front door"))
	server := alice.UserID[strings.IndexByte(alice.UserID, ':')+1:]

	bob.must("POST", "/knock/"+apiEsc(room), map[string]any{"reason": "hello"})
	if m, content := memberOf(alice, room, bob.UserID); m != "knock" || content["reason"] != "hello" {
		t.Fatalf("bob's membership %q (%v); want knock with the reason", m, content)
	}
	s := syncUntil(t, bob, "", "bob's /sync shows the knock", func(s map[string]any) bool {
		_, _, ok := knockState(s, room, bob.UserID)
		return ok
	})
	if name, mine, _ := knockState(s, room, bob.UserID); name != "Front door" || mine != "knock" {
		t.Errorf("knock_state: name %q, bob's membership %q: %v", name, mine, syncRooms(s, "knock")[room])
	}
	if _, joined := syncRooms(s, "join")[room]; joined {
		t.Errorf("the knocked room is shown joined")
	}

	// Rescinded by leaving.
	bob.must("POST", "/rooms/"+apiEsc(room)+"/leave", map[string]any{})
	if m, _ := memberOf(alice, room, bob.UserID); m != "leave" {
		t.Errorf("after bob rescinded, his membership is %q; want leave", m)
	}
	s = syncUntil(t, bob, s["next_batch"].(string), "bob's /sync shows the room left", func(s map[string]any) bool {
		_, left := syncRooms(s, "leave")[room]
		return left
	})

	// Knocked again and accepted with an invite; then invited, he cannot
	// knock; he joins, and a member cannot knock either.
	bob.must("POST", "/knock/"+apiEsc(room), map[string]any{})
	alice.must("POST", "/rooms/"+apiEsc(room)+"/invite", map[string]any{"user_id": bob.UserID})
	if r := bob.do("POST", "/knock/"+apiEsc(room), map[string]any{}); r.Status != 403 || r.Body["errcode"] != "M_FORBIDDEN" {
		t.Errorf("a knock while invited: %d %s", r.Status, r.Raw)
	}
	syncUntil(t, bob, s["next_batch"].(string), "bob's /sync shows the invite", func(s map[string]any) bool {
		_, ok := syncRooms(s, "invite")[room]
		return ok
	})
	bob.must("POST", "/rooms/"+apiEsc(room)+"/join", map[string]any{})
	if r := bob.do("POST", "/knock/"+apiEsc(room), map[string]any{}); r.Status != 403 || r.Body["errcode"] != "M_FORBIDDEN" {
		t.Errorf("a knock by a member: %d %s", r.Status, r.Raw)
	}

	// By alias.
	aliased := alice.createRoom(map[string]any{"preset": "private_chat", "room_alias_name": "side",
		"initial_state": []any{map[string]any{"type": "m.room.join_rules", "content": map[string]any{"join_rule": "knock"}}}})
	aliasOf := alice.must("GET", "/rooms/"+apiEsc(aliased)+"/aliases", nil)["aliases"].([]any)
	if len(aliasOf) != 1 {
		t.Fatalf("aliases of the aliased room: %v", aliasOf)
	}
	if r := bob.must("POST", "/knock/"+apiEsc(aliasOf[0].(string)), map[string]any{}); r["room_id"] != aliased {
		t.Errorf("a knock by alias answered %v; want room_id %s", r, aliased)
	}
	if m, _ := memberOf(alice, aliased, bob.UserID); m != "knock" {
		t.Errorf("after a knock by alias, bob's membership is %q", m)
	}

	// Refusals.
	carol := ts.register("carol")
	public := alice.createRoom(map[string]any{"preset": "public_chat"})
	private := alice.createRoom(map[string]any{"preset": "private_chat"})
	old := alice.createRoom(map[string]any{"preset": "private_chat", "room_version": "6", "initial_state": []any{
		map[string]any{"type": "m.room.join_rules", "content": map[string]any{"join_rule": "knock"}}}})
	alice.must("POST", "/rooms/"+apiEsc(room)+"/ban", map[string]any{"user_id": carol.UserID})
	g := ts.do("POST", "/_matrix/client/v3/register?kind=guest", "", map[string]any{})
	if g.Status != 200 {
		t.Fatalf("guest registration: %d %s", g.Status, g.Raw)
	}
	guest := &client{ts: ts, UserID: g.Body["user_id"].(string), Token: g.Body["access_token"].(string)}
	for _, c := range []struct {
		name   string
		who    *client
		target string
		status int
		code   string
	}{
		{"public room", carol, public, 403, "M_FORBIDDEN"},
		{"invite-only room", carol, private, 403, "M_FORBIDDEN"},
		{"room version without knocking", carol, old, 403, "M_FORBIDDEN"},
		{"banned", carol, room, 403, "M_FORBIDDEN"},
		{"guest", guest, room, 403, "M_GUEST_ACCESS_FORBIDDEN"},
		{"unknown room", carol, "!" + strings.Repeat("A", 43), 404, "M_NOT_FOUND"},
		{"unknown alias", carol, "#nope:" + server, 404, "M_NOT_FOUND"},
		{"not a room", carol, "nowhere", 400, "M_INVALID_PARAM"},
	} {
		r := c.who.do("POST", "/knock/"+apiEsc(c.target), map[string]any{})
		if r.Status != c.status || r.Body["errcode"] != c.code {
			t.Errorf("%s: %d %s; want %d %s", c.name, r.Status, r.Raw, c.status, c.code)
		}
	}
	if m, _ := memberOf(alice, public, carol.UserID); m != "" {
		t.Errorf("a refused knock left carol's membership %q", m)
	}
}
