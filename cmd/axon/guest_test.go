package main

import (
	"testing"
)

// TestGuestsJoinOnlyRoomsThatAllowThem checks guest registration and the
// m.room.guest_access rule on joins.
func TestGuestsJoinOnlyRoomsThatAllowThem(t *testing.T) {
	ts := startServer(t, backends()[0])
	alice := ts.register("alice")
	closed := alice.createRoom(map[string]any{"preset": "public_chat"}) // guest_access forbidden
	open := alice.createRoom(map[string]any{"preset": "public_chat", "initial_state": []any{
		map[string]any{"type": "m.room.guest_access", "content": map[string]any{"guest_access": "can_join"}},
	}})
	r := ts.do("POST", "/_matrix/client/v3/register?kind=guest", "", map[string]any{})
	if r.Status != 200 {
		t.Fatalf("guest registration: %d %s", r.Status, r.Raw)
	}
	guest := &client{ts: ts, UserID: r.Body["user_id"].(string), Token: r.Body["access_token"].(string)}
	if r := guest.do("POST", "/join/"+apiEsc(closed), map[string]any{}); r.Status != 403 || r.Body["errcode"] != "M_GUEST_ACCESS_FORBIDDEN" {
		t.Fatalf("guest joined a room without guest access: %d %s", r.Status, r.Raw)
	}
	guest.must("POST", "/join/"+apiEsc(open), map[string]any{})
	if r := guest.do("POST", "/createRoom", map[string]any{}); r.Status != 403 || r.Body["errcode"] != "M_GUEST_ACCESS_FORBIDDEN" {
		t.Fatalf("a guest created a room: %d %s", r.Status, r.Raw)
	}
}
