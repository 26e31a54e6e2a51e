package federation

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/keys"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// remoteEvent builds an event of room, sent by sender and signed by
// remote.test with key.
func remoteEvent(t *testing.T, key *keys.SigningKey, room, typ, sender, stateKey string, content cjson.Value) *event.Event {
	t.Helper()
	p := cjson.ObjectValue(
		cjson.Member{Key: "type", Value: cjson.StringValue(typ)},
		cjson.Member{Key: "room_id", Value: cjson.StringValue(room)},
		cjson.Member{Key: "sender", Value: cjson.StringValue(sender)},
		cjson.Member{Key: "state_key", Value: cjson.StringValue(stateKey)},
		cjson.Member{Key: "content", Value: content},
		cjson.Member{Key: "origin_server_ts", Value: cjson.IntValue(1_700_000_000_000)},
		cjson.Member{Key: "depth", Value: cjson.IntValue(3)},
		cjson.Member{Key: "prev_events", Value: cjson.StringArray([]string{"$" + strings.Repeat("A", 43)})},
		cjson.Member{Key: "auth_events", Value: cjson.StringArray([]string{"$" + strings.Repeat("B", 42) + "A"})},
	)
	ev, err := event.Build(roomversion.MustLookup("10"), p, "remote.test", key)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func membershipContent(m string) cjson.Value {
	return cjson.ObjectValue(cjson.Member{Key: "membership", Value: cjson.StringValue(m)})
}

// TestInvite: an invite of a local user from another server is
// countersigned and kept for a room this server is not in, after the
// checks the spec asks for; every failed check is M_INVALID_PARAM (or
// M_INCOMPATIBLE_ROOM_VERSION) and keeps nothing.
func TestInvite(t *testing.T) {
	f := newFixture(t)
	const room = "!elsewhere:remote.test"
	other, _ := keys.Generate("r1", nil) // remote.test's key ID, not its key
	create := remoteEvent(t, f.remoteKey, room, "m.room.create", "@alice:remote.test", "", cjson.ObjectValue())
	invite := func(key *keys.SigningKey, room, sender, target, membership string) *event.Event {
		return remoteEvent(t, key, room, "m.room.member", sender, target, membershipContent(membership))
	}
	good := invite(f.remoteKey, room, "@alice:remote.test", "@bob:our.test", "invite")
	body := func(version string, ev *event.Event, state ...*event.Event) []byte {
		list := make([]json.RawMessage, len(state))
		for i, s := range state {
			list[i] = s.Canonical()
		}
		b, _ := json.Marshal(map[string]any{"room_version": version, "event": json.RawMessage(ev.Canonical()), "invite_room_state": list})
		return b
	}
	uri := func(room, eventID string) string {
		return "/_matrix/federation/v2/invite/" + url.PathEscape(room) + "/" + url.PathEscape(eventID)
	}
	for _, c := range []struct {
		name, uri string
		body      []byte
		status    int
		code      string
	}{
		{"unsupported version", uri(room, good.ID()), body("99", good, create), 400, "M_INCOMPATIBLE_ROOM_VERSION"},
		{"not an invite", uri(room, good.ID()), func() []byte {
			ev := invite(f.remoteKey, room, "@alice:remote.test", "@bob:our.test", "join")
			return body("10", ev, create)
		}(), 400, "M_INVALID_PARAM"},
		{"sender of another server", "", nil, 400, "M_INVALID_PARAM"},
		{"invitee of another server", "", nil, 400, "M_INVALID_PARAM"},
		{"no create event", uri(room, good.ID()), body("10", good), 400, "M_INVALID_PARAM"},
		{"create of another room", uri(room, good.ID()), body("10", good,
			remoteEvent(t, f.remoteKey, "!other:remote.test", "m.room.create", "@alice:remote.test", "", cjson.ObjectValue())), 400, "M_INVALID_PARAM"},
		{"forged signature", "", nil, 400, "M_INVALID_PARAM"},
		{"forged state", uri(room, good.ID()), body("10", good,
			remoteEvent(t, other, room, "m.room.create", "@alice:remote.test", "", cjson.ObjectValue())), 400, "M_INVALID_PARAM"},
		{"path names another event", uri(room, create.ID()), body("10", good, create), 400, "M_INVALID_PARAM"},
		{"room denied by its ACL", "", nil, 403, "M_FORBIDDEN"},
	} {
		switch c.name {
		case "sender of another server":
			ev := invite(f.remoteKey, room, "@eve:third.test", "@bob:our.test", "invite")
			c.uri, c.body = uri(room, ev.ID()), body("10", ev, create)
		case "invitee of another server":
			ev := invite(f.remoteKey, room, "@alice:remote.test", "@bob:third.test", "invite")
			c.uri, c.body = uri(room, ev.ID()), body("10", ev, create)
		case "forged signature":
			ev := invite(other, room, "@alice:remote.test", "@bob:our.test", "invite")
			c.uri, c.body = uri(room, ev.ID()), body("10", ev, create)
		case "room denied by its ACL":
			dc := remoteEvent(t, f.remoteKey, deniedRoom, "m.room.create", "@alice:remote.test", "", cjson.ObjectValue())
			ev := invite(f.remoteKey, deniedRoom, "@alice:remote.test", "@bob:our.test", "invite")
			c.uri, c.body = uri(deniedRoom, ev.ID()), body("10", ev, dc)
		}
		status, v := f.do(t, "PUT", c.uri, c.body, signed)
		if status != c.status || v.Get("errcode").StrOr("") != c.code {
			t.Errorf("%s: %d %s; want %d %s", c.name, status, v, c.status, c.code)
		}
	}
	if len(f.invites) != 0 {
		t.Fatalf("refused invites were kept: %d", len(f.invites))
	}

	status, v := f.do(t, "PUT", uri(room, good.ID()), body("10", good, create), signed)
	if status != 200 {
		t.Fatalf("a good invite: %d %s", status, v)
	}
	ev, err := event.Parse(roomversion.MustLookup("10"), v.Get("event").Canonical())
	if err != nil || ev.ID() != good.ID() {
		t.Fatalf("the answer is not the invite: %v %s", err, v)
	}
	if !ev.HasSignatureFrom("our.test") || !ev.HasSignatureFrom("remote.test") {
		t.Errorf("the answered invite lacks a signature: %s", ev.Signatures())
	}
	lookup := func(signer string, kid keys.KeyID) (keys.VerifyKey, bool) {
		k := map[string]*keys.SigningKey{"our.test": f.ourKey, "remote.test": f.remoteKey}[signer]
		if k == nil || k.ID != kid {
			return keys.VerifyKey{}, false
		}
		return keys.VerifyKey{Key: k.Public()}, true
	}
	redacted := event.Redact(ev.Version().Redact, ev.JSON())
	for _, server := range []string{"our.test", "remote.test"} {
		if err := keys.VerifyJSON(redacted, server, lookup, keys.VerifyOptions{}); err != nil {
			t.Errorf("the countersigned invite's signature by %s does not verify: %v", server, err)
		}
	}
	if len(f.invites) != 1 {
		t.Fatalf("%d invites kept; want 1", len(f.invites))
	}
	inv := f.invites[0]
	if inv.RoomID != room || inv.UserID != "@bob:our.test" || inv.Sender != "@alice:remote.test" || inv.EventID != good.ID() ||
		inv.RoomVersion != "10" || len(inv.RoomState) != 1 || string(inv.Event) != string(ev.Canonical()) {
		t.Errorf("kept invite: %+v", inv)
	}
}
