package roomserver

import (
	"fmt"
	"testing"

	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// visEvent is a stored event of type typ (state when sk is not nil) at
// room_seq seq.
func visEvent(t *testing.T, seq int64, typ string, sk *string) *StoredEvent {
	t.Helper()
	state := ""
	if sk != nil {
		state = fmt.Sprintf(`"state_key":%q,`, *sk)
	}
	raw := fmt.Sprintf(`{"auth_events":[],"content":{},"depth":1,"event_id":"$e%d:x","hashes":{"sha256":"x"},"origin":"x","origin_server_ts":1,
		"prev_events":[],"room_id":"!r:x","sender":"@a:x",%s"signatures":{},"type":%q}`, seq, state, typ)
	ev, err := event.Parse(roomversion.MustLookup("1"), []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return &StoredEvent{Event: ev, RoomSeq: seq}
}

// The rules, on a state history written by hand: the visibility was
// world_readable up to 10, joined from 10, shared from 20; the user was
// invited at 15, joined at 17, left at 25.
func TestVisibilityRules(t *testing.T) {
	vis := &Visibility{userID: "@u:x",
		hv:       []stateSpan{{from: 1, to: 10, value: "world_readable"}, {from: 10, to: 20, value: "joined"}, {from: 20, value: "shared"}},
		member:   []stateSpan{{from: 15, to: 17, value: "invite"}, {from: 17, to: 25, value: "join"}, {from: 25, value: "leave"}},
		lastJoin: 17,
	}
	empty, user := "", "@u:x"
	cases := []struct {
		name string
		ev   *StoredEvent
		want bool
	}{
		{"world-readable message", visEvent(t, 5, "m.room.message", nil), true},
		{"the change away from world_readable (visible before it)", visEvent(t, 10, "m.room.history_visibility", &empty), true},
		{"joined, not a member", visEvent(t, 12, "m.room.message", nil), false},
		{"joined, invited", visEvent(t, 16, "m.room.message", nil), false},
		{"the user's own join (visible after it)", visEvent(t, 17, "m.room.member", &user), true},
		{"joined, joined", visEvent(t, 18, "m.room.message", nil), true},
		{"the change to shared (joined)", visEvent(t, 20, "m.room.history_visibility", &empty), true},
		{"shared, joined", visEvent(t, 22, "m.room.message", nil), true},
		{"the user's own leave (visible before it)", visEvent(t, 25, "m.room.member", &user), true},
		{"shared, after the leave, no join since", visEvent(t, 26, "m.room.message", nil), false},
		{"history from other servers", visEvent(t, -3, "m.room.message", nil), true},
	}
	for _, c := range cases {
		if got := vis.Visible(c.ev); got != c.want {
			t.Errorf("%s: visible %v, want %v", c.name, got, c.want)
		}
	}
	// Under "shared", a later join shows earlier events; "invited" shows
	// them to the invited only; an unknown value counts as shared.
	vis = &Visibility{userID: "@u:x", hv: []stateSpan{{from: 1, value: "invited"}}, lastJoin: 40}
	if vis.Visible(visEvent(t, 30, "m.room.message", nil)) {
		t.Error("invited: visible to a user who was not invited then")
	}
	vis.hv[0].value = "something new"
	if !vis.Visible(visEvent(t, 30, "m.room.message", nil)) {
		t.Error("an unknown visibility is not treated as shared")
	}
	// Events older than the changes loaded are not shown.
	vis.floor = 35
	if vis.Visible(visEvent(t, 30, "m.room.message", nil)) {
		t.Error("an event before the loaded changes was shown")
	}
}
