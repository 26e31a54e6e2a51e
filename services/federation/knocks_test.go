package federation

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/axon-hs/axon/internal/testenv"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/keys"
	"github.com/axon-hs/axon/matrix/roomversion"
	"github.com/axon-hs/axon/services/roomserver"
)

// createVersion is rooms.create with a room version of choice.
func (rs *rooms) createVersion(version string, evs ...roomserver.Template) string {
	rs.t.Helper()
	v := roomversion.MustLookup(version)
	content := cjson.ObjectValue(cjson.Member{Key: "room_version", Value: cjson.StringValue(version)},
		cjson.Member{Key: "creator", Value: cjson.StringValue(alice)})
	create, roomID, err := roomserver.NewCreateEvent(v, alice, content, "our.test", rs.key, rs.clock.Now(), nil)
	if err != nil {
		rs.t.Fatal(err)
	}
	all := append([]roomserver.Template{
		state("m.room.member", alice, map[string]any{"membership": "join"}),
		state("m.room.power_levels", "", map[string]any{"users": map[string]any{alice: 100}}),
	}, evs...)
	rs.submit(&roomserver.Input{RoomID: roomID, RoomVersion: version, Create: create.Canonical(), Events: all})
	return roomID
}

// newKnockFixture is the API of our.test over a real room role, so that
// make_knock and send_knock work on real rooms.
func newKnockFixture(t *testing.T, rs *rooms) *fixture {
	t.Helper()
	rd := roomserver.NewReader(rs.db)
	f, _ := newFixtureWith(t, func(c *Config) {
		c.Reader = rd
		c.ServerACL = nil
		c.RoomVersion = func(ctx context.Context, roomID string) (*roomversion.Version, error) {
			info, err := rd.Room(ctx, roomID)
			if errors.Is(err, roomserver.ErrNotFound) {
				return nil, nil
			}
			return info.Version, err
		}
		c.Submit = rs.sub.Submit
	})
	return f
}

const knocker = "@bob:remote.test"

func allVersions() string {
	q := url.Values{}
	for _, v := range roomversion.IDs() {
		q.Add("ver", v)
	}
	return "?" + q.Encode()
}

func makeKnockURI(room, user, query string) string {
	return "/_matrix/federation/v1/make_knock/" + url.PathEscape(room) + "/" + url.PathEscape(user) + query
}

func sendKnockURI(room, eventID string) string {
	return "/_matrix/federation/v1/send_knock/" + url.PathEscape(room) + "/" + url.PathEscape(eventID)
}

// TestMakeKnock: the template of a knock for a room that takes knocks, and
// the spec's errors for everything else.
func TestMakeKnock(t *testing.T) { testenv.ForEachEngine(t, testMakeKnock) }

func testMakeKnock(t *testing.T, e testenv.Engine) {
	rs := newRooms(t, e)
	knock := rs.create("", joinRule("knock"), name("Door"))
	knockRestricted := rs.create("", joinRule("knock_restricted", map[string]any{"type": "m.room_membership", "room_id": knock}))
	public := rs.create("", joinRule("public"))
	private := rs.create("")
	banned := rs.create("", joinRule("knock"), state("m.room.member", knocker, map[string]any{"membership": "ban"}))
	invited := rs.create("", joinRule("knock"), state("m.room.member", knocker, map[string]any{"membership": "invite"}))
	old := rs.createVersion("6", joinRule("knock"))
	f := newKnockFixture(t, rs)

	status, v := f.do(t, "GET", makeKnockURI(knock, knocker, allVersions()), nil, signed)
	if status != 200 {
		t.Fatalf("make_knock: %d %s", status, v)
	}
	ev := v.Get("event")
	if v.Get("room_version").StrOr("") != "10" || ev.Get("type").StrOr("") != "m.room.member" || ev.Get("room_id").StrOr("") != knock ||
		ev.Get("sender").StrOr("") != knocker || ev.Get("state_key").StrOr("") != knocker ||
		ev.Get("content").Get("membership").StrOr("") != "knock" || ev.Get("prev_events").Len() != 1 || ev.Get("auth_events").Len() < 3 {
		t.Errorf("template: %s", v)
	}
	if status, v := f.do(t, "GET", makeKnockURI(knockRestricted, knocker, "?ver=10"), nil, signed); status != 200 {
		t.Errorf("make_knock on a knock_restricted room: %d %s", status, v)
	}
	for _, c := range []struct {
		name, uri string
		status    int
		code      string
	}{
		{"no ver", makeKnockURI(knock, knocker, ""), 400, "M_INCOMPATIBLE_ROOM_VERSION"},
		{"version not supported", makeKnockURI(knock, knocker, "?ver=7&ver=9"), 400, "M_INCOMPATIBLE_ROOM_VERSION"},
		{"version without knocking", makeKnockURI(old, knocker, allVersions()), 400, "M_INCOMPATIBLE_ROOM_VERSION"},
		{"public room", makeKnockURI(public, knocker, allVersions()), 403, "M_FORBIDDEN"},
		{"invite-only room", makeKnockURI(private, knocker, allVersions()), 403, "M_FORBIDDEN"},
		{"banned", makeKnockURI(banned, knocker, allVersions()), 403, "M_FORBIDDEN"},
		{"invited", makeKnockURI(invited, knocker, allVersions()), 403, "M_FORBIDDEN"},
		{"user of this server", makeKnockURI(knock, alice, allVersions()), 403, "M_FORBIDDEN"},
		{"user of another server", makeKnockURI(knock, "@eve:third.test", allVersions()), 403, "M_FORBIDDEN"},
		{"not a user ID", makeKnockURI(knock, "bob", allVersions()), 400, "M_INVALID_PARAM"},
		{"unknown room", makeKnockURI("!nowhere:our.test", knocker, allVersions()), 404, "M_NOT_FOUND"},
	} {
		status, v := f.do(t, "GET", c.uri, nil, signed)
		if status != c.status || v.Get("errcode").StrOr("") != c.code {
			t.Errorf("%s: %d %s; want %d %s", c.name, status, v, c.status, c.code)
		}
		if c.code == "M_INCOMPATIBLE_ROOM_VERSION" && !v.Get("room_version").Exists() {
			t.Errorf("%s: no room_version in %s", c.name, v)
		}
	}
}

// TestSendKnock: a knock of remote.test's user, built on make_knock's
// template and signed by remote.test, is accepted into the room and
// answered with the room's identifying state as full PDUs; knocks that are
// not knocks of their sender, or badly signed, are M_INVALID_PARAM; one
// the auth rules refuse is M_FORBIDDEN. Nothing refused reaches the room.
func TestSendKnock(t *testing.T) { testenv.ForEachEngine(t, testSendKnock) }

func testSendKnock(t *testing.T, e testenv.Engine) {
	rs := newRooms(t, e)
	room := rs.create("", joinRule("knock"), name("Door"), state("m.room.topic", "", map[string]any{"topic": "knock first"}))
	public := rs.create("", joinRule("public"))
	f := newKnockFixture(t, rs)
	rd := roomserver.NewReader(rs.db)
	v := roomversion.MustLookup("10")
	ctx := context.Background()

	// build signs a knock-like event of sender on room's template, with
	// the content's membership changed to membership.
	build := func(room, sender, membership string, key *keys.SigningKey) *event.Event {
		t.Helper()
		content := cjson.ObjectValue(cjson.Member{Key: "membership", Value: cjson.StringValue(membership)},
			cjson.Member{Key: "reason", Value: cjson.StringValue("let me in")})
		tmpl, _, err := memberTemplate(ctx, rd, v, room, sender, sender, content, rs.clock.Now().UnixMilli(), "our.test")
		if err != nil {
			t.Fatal(err)
		}
		ev, err := event.Build(v, tmpl, "remote.test", key)
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	other, _ := keys.Generate("r1", nil) // remote.test's key ID, not its key
	for _, c := range []struct {
		name   string
		ev     *event.Event
		uri    string
		status int
		code   string
	}{
		{"not a knock", build(room, knocker, "join", f.remoteKey), "", 400, "M_INVALID_PARAM"},
		{"sender of another server", build(room, "@eve:third.test", "knock", f.remoteKey), "", 400, "M_INVALID_PARAM"},
		{"forged signature", build(room, knocker, "knock", other), "", 400, "M_INVALID_PARAM"},
		{"path names another event", build(room, knocker, "knock", f.remoteKey), sendKnockURI(room, "$other"), 400, "M_INVALID_PARAM"},
		{"path names another room", build(room, knocker, "knock", f.remoteKey), "", 400, "M_INVALID_PARAM"},
		{"room refuses knocks", build(public, knocker, "knock", f.remoteKey), "", 403, "M_FORBIDDEN"},
		{"unknown room", build(room, knocker, "knock", f.remoteKey), "", 404, "M_NOT_FOUND"},
	} {
		uri := c.uri
		switch {
		case uri != "":
		case c.name == "path names another room":
			uri = sendKnockURI(public, c.ev.ID())
		case c.name == "unknown room":
			uri = sendKnockURI("!nowhere:our.test", c.ev.ID())
		default:
			uri = sendKnockURI(c.ev.RoomID(), c.ev.ID())
		}
		status, ans := f.do(t, "PUT", uri, c.ev.Canonical(), signed)
		if status != c.status || ans.Get("errcode").StrOr("") != c.code {
			t.Errorf("%s: %d %s; want %d %s", c.name, status, ans, c.status, c.code)
		}
	}
	for _, r := range []string{room, public} {
		if m, err := rd.MembershipOf(ctx, r, knocker); err != nil || m.Membership != "" {
			t.Fatalf("a refused knock reached %s: %+v, %v", r, m, err)
		}
	}

	knock := build(room, knocker, "knock", f.remoteKey)
	status, ans := f.do(t, "PUT", sendKnockURI(room, knock.ID()), knock.Canonical(), signed)
	if status != 200 {
		t.Fatalf("send_knock: %d %s", status, ans)
	}
	if m, err := rd.MembershipOf(ctx, room, knocker); err != nil || m.Membership != "knock" || m.EventID != knock.ID() {
		t.Errorf("bob's membership after send_knock: %+v, %v", m, err)
	}
	var body struct {
		KnockRoomState []json.RawMessage `json:"knock_room_state"`
	}
	if err := json.Unmarshal([]byte(ans.Canonical()), &body); err != nil {
		t.Fatal(err)
	}
	types := map[string]bool{}
	for _, raw := range body.KnockRoomState {
		ev, err := event.Parse(v, raw)
		if err != nil || ev.RoomID() != room || !ev.HasSignatureFrom("our.test") {
			t.Errorf("knock_room_state holds %s (%v)", raw, err)
			continue
		}
		types[ev.Type()] = true
	}
	for _, typ := range []string{"m.room.create", "m.room.join_rules", "m.room.name", "m.room.topic"} {
		if !types[typ] {
			t.Errorf("knock_room_state lacks %s: %v", typ, types)
		}
	}
	if types["m.room.power_levels"] || types["m.room.member"] {
		t.Errorf("knock_room_state holds more than identifying state: %v", types)
	}
}

// TestKnockTemplate: the checks on a make_knock answer that the spec asks
// of the knocking server.
func TestKnockTemplate(t *testing.T) {
	v := roomversion.MustLookup("12")
	const room, user = "!r:remote.test", "@bob:our.test"
	good := map[string]any{"type": "m.room.member", "room_id": room, "sender": user, "state_key": user,
		"content": map[string]any{"membership": "knock"}, "origin_server_ts": 1, "depth": 2,
		"prev_events": []string{"$" + strings.Repeat("A", 43)}, "auth_events": []string{}}
	with := func(k string, val any) json.RawMessage {
		m := map[string]any{}
		for k, v := range good {
			m[k] = v
		}
		if val == nil {
			delete(m, k)
		} else {
			m[k] = val
		}
		raw, _ := json.Marshal(m)
		return raw
	}
	if _, err := checkTemplate(v, with("depth", 2), room, user, "knock"); err != nil {
		t.Errorf("a good template: %v", err)
	}
	for name, raw := range map[string]json.RawMessage{
		"another type":       with("type", "m.room.message"),
		"another room":       with("room_id", "!other:remote.test"),
		"another sender":     with("sender", "@eve:our.test"),
		"another state key":  with("state_key", "@eve:our.test"),
		"a join":             with("content", map[string]any{"membership": "join"}),
		"no content":         with("content", nil),
		"content not object": with("content", "knock"),
		"not an object":      json.RawMessage(`["knock"]`),
		"not JSON":           json.RawMessage(`{`),
	} {
		if _, err := checkTemplate(v, raw, room, user, "knock"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
