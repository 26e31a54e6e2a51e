package syncapi

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/keys"
	"github.com/axon-hs/axon/matrix/roomversion"
	"github.com/axon-hs/axon/services/roomserver"
)

// TestRemoteKnocked: the knock_state of a knock on a room of another
// server shows the identifying state it shared and the user's own knock,
// and nothing else: no other member, no other type, no event of another
// room, nothing that does not parse in the room's version.
func TestRemoteKnocked(t *testing.T) {
	v := roomversion.MustLookup("10")
	key, _ := keys.Generate("k1", nil)
	const room, bob = "!r:remote.test", "@bob:our.test"
	mk := func(room, typ, sender, stateKey string, content map[string]any) json.RawMessage {
		t.Helper()
		raw, _ := json.Marshal(content)
		c, err := cjson.Parse(raw, cjson.Lenient)
		if err != nil {
			t.Fatal(err)
		}
		p := cjson.ObjectValue(
			cjson.Member{Key: "type", Value: cjson.StringValue(typ)},
			cjson.Member{Key: "room_id", Value: cjson.StringValue(room)},
			cjson.Member{Key: "sender", Value: cjson.StringValue(sender)},
			cjson.Member{Key: "content", Value: c},
			cjson.Member{Key: "origin_server_ts", Value: cjson.IntValue(1_700_000_000_000)},
			cjson.Member{Key: "depth", Value: cjson.IntValue(2)},
			cjson.Member{Key: "prev_events", Value: cjson.StringArray([]string{"$" + strings.Repeat("A", 43)})},
			cjson.Member{Key: "auth_events", Value: cjson.StringArray(nil)},
		)
		if stateKey != "-" {
			p = p.With("state_key", cjson.StringValue(stateKey))
		}
		ev, err := event.Build(v, p, "remote.test", key)
		if err != nil {
			t.Fatal(err)
		}
		return ev.Canonical()
	}
	const alice = "@alice:remote.test"
	k := &roomserver.RemoteInvite{RoomID: room, UserID: bob, RoomVersion: "10", Sender: bob, Membership: "knock", Via: "remote.test",
		Event: mk(room, "m.room.member", bob, bob, map[string]any{"membership": "knock", "reason": "hi"}),
		RoomState: []json.RawMessage{
			mk(room, "m.room.create", alice, "", map[string]any{"creator": alice}),
			mk(room, "m.room.join_rules", alice, "", map[string]any{"join_rule": "knock"}),
			mk(room, "m.room.name", alice, "", map[string]any{"name": "Door"}),
			mk(room, "m.room.power_levels", alice, "", map[string]any{}),                  // not identifying
			mk(room, "m.room.member", alice, alice, map[string]any{"membership": "join"}), // someone else
			mk("!other:remote.test", "m.room.topic", alice, "", map[string]any{"topic": "elsewhere"}),
			mk(room, "m.room.message", alice, "-", map[string]any{"body": "not state"}),
			json.RawMessage(`{"type":"m.room.topic","state_key":"","content":{}}`), // not a PDU
		}}
	var got []string
	for _, e := range remoteStripped(k) {
		got = append(got, e.Type+"/"+e.StateKey)
		if e.Type == "m.room.member" && e.Content.Get("membership").StrOr("") != "knock" {
			t.Errorf("the knock's content: %s", e.Content)
		}
	}
	want := []string{"m.room.create/", "m.room.join_rules/", "m.room.name/", "m.room.member/" + bob}
	if !slices.Equal(got, want) {
		t.Errorf("knock_state %v; want %v", got, want)
	}
	k.RoomVersion = "99"
	if evs := remoteStripped(k); len(evs) != 0 {
		t.Errorf("a room of an unknown version shows %d events", len(evs))
	}
}
