package main

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"testing"
)

// TestAPIRooms checks room creation, membership and reading endpoints
// (spec: client-server-api "Rooms", create_room.yaml, the membership,
// rooms, event_context and list_public_rooms OpenAPI).
func TestAPIRooms(t *testing.T) {
	runAPICases(t, []apiCase{
		{"EveryRoomVersion", apiRoomVersions},
		{"Presets", apiRoomPresets},
		{"TrustedPrivateChat", apiRoomTrustedPrivate},
		{"PowerLevelContentOverride", apiRoomPLOverride},
		{"InitialStateNameTopic", apiRoomInitialState},
		{"StateEndpoints", apiRoomState},
		{"JoinByAlias", apiRoomJoinByAlias},
		{"KickBanUnban", apiRoomKickBanUnban},
		{"Forget", apiRoomForget},
		{"Context", apiRoomContext},
		{"ContextFilter", apiRoomContextFilter},
		{"Members", apiRoomMembers},
		{"MembersAt", apiRoomMembersAt},
		{"PublicRoomDirectory", apiRoomDirectory},
		{"PublicRoomDirectoryRoomTypes", apiRoomDirectoryTypes},
		{"R0Aliases", apiRoomR0},
	})
}

// apiRoomVersions: a room of each version 1–12 can be created, sent to
// and read back; its create event names the version, with creator in
// versions 1–10 only.
func apiRoomVersions(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "ver")
	caps := alice.apiOK(t, "GET", "/capabilities", nil)["capabilities"].(map[string]any)["m.room_versions"].(map[string]any)
	if caps["default"] != "12" {
		t.Errorf("m.room_versions default = %v, want 12", caps["default"])
	}
	for v := 1; v <= 12; v++ {
		vs := strconv.Itoa(v)
		t.Run("v"+vs, func(t *testing.T) {
			if caps["available"].(map[string]any)[vs] != "stable" {
				t.Errorf("capabilities do not list version %s as stable: %v", vs, caps["available"])
			}
			room := alice.apiRoom(t, map[string]any{"room_version": vs, "name": "version " + vs})
			create := alice.apiState(t, room, "m.room.create", "")
			if create["room_version"] != vs {
				t.Errorf("create event room_version = %v", create["room_version"])
			}
			if _, has := create["creator"]; has != (v <= 10) {
				t.Errorf("create event creator = %v in version %s (present in versions 1–10 only)", create["creator"], vs)
			}
			body := "hello in version " + vs
			id := alice.apiText(t, room, body)
			m := alice.apiMessages(t, room, url.Values{"dir": {"b"}, "limit": {"1"}})
			if len(m.Chunk) != 1 || m.Chunk[0].EventID != id || m.Chunk[0].Content["body"] != body || m.Chunk[0].RoomID != room {
				t.Errorf("/messages in version %s: %v, want the message %s", vs, m.Chunk, id)
			}
			if e := alice.apiGetEvent(t, room, id); e.Content["body"] != body || e.Sender != alice.UserID {
				t.Errorf("/event in version %s: %v", vs, e)
			}
		})
	}
}

// apiRoomPresets: the preset table of create_room.yaml, and the preset
// chosen from visibility when none is given.
func apiRoomPresets(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "preset")
	for _, tc := range []struct {
		body              map[string]any
		join, hist, guest string
	}{
		{map[string]any{"preset": "private_chat"}, "invite", "shared", "can_join"},
		{map[string]any{"preset": "trusted_private_chat"}, "invite", "shared", "can_join"},
		{map[string]any{"preset": "public_chat"}, "public", "shared", "forbidden"},
		{map[string]any{"visibility": "public"}, "public", "shared", "forbidden"},
		{map[string]any{"visibility": "private"}, "invite", "shared", "can_join"},
		{map[string]any{}, "invite", "shared", "can_join"},
	} {
		room := alice.apiRoom(t, tc.body)
		jr := alice.apiState(t, room, "m.room.join_rules", "")["join_rule"]
		hv := alice.apiState(t, room, "m.room.history_visibility", "")["history_visibility"]
		ga := alice.apiState(t, room, "m.room.guest_access", "")["guest_access"]
		if jr != tc.join || hv != tc.hist || ga != tc.guest {
			t.Errorf("createRoom %v: join_rule %v, history_visibility %v, guest_access %v; want %s, %s, %s",
				tc.body, jr, hv, ga, tc.join, tc.hist, tc.guest)
		}
	}
}

// apiRoomTrustedPrivate: trusted_private_chat gives invitees the creator's
// power: in version 12 as additional creators, before as power level 100.
// is_direct marks the invites.
func apiRoomTrustedPrivate(t *testing.T, ts *testServer) {
	alice, bob := apiUser(t, ts, "tpcA"), apiUser(t, ts, "tpcB")
	r12 := alice.apiRoom(t, map[string]any{"preset": "trusted_private_chat", "invite": []string{bob.UserID}, "is_direct": true})
	extra, _ := alice.apiState(t, r12, "m.room.create", "")["additional_creators"].([]any)
	if !slices.Contains(extra, any(bob.UserID)) {
		t.Errorf("v12 trusted_private_chat: additional_creators = %v, want %s", extra, bob.UserID)
	}
	pl := alice.apiState(t, r12, "m.room.power_levels", "")
	users, _ := pl["users"].(map[string]any)
	if _, ok := users[alice.UserID]; ok {
		t.Errorf("v12 power levels list the creator %s (creators cannot be listed): %v", alice.UserID, users)
	}
	if tomb, _ := pl["events"].(map[string]any)["m.room.tombstone"].(float64); tomb <= pl["state_default"].(float64) {
		t.Errorf("v12 m.room.tombstone level %v is not above state_default %v", tomb, pl["state_default"])
	}
	inv := alice.apiState(t, r12, "m.room.member", bob.UserID)
	if inv["membership"] != "invite" || inv["is_direct"] != true {
		t.Errorf("bob's invite = %v, want membership invite with is_direct", inv)
	}

	r10 := alice.apiRoom(t, map[string]any{"preset": "trusted_private_chat", "invite": []string{bob.UserID}, "room_version": "10"})
	users, _ = alice.apiState(t, r10, "m.room.power_levels", "")["users"].(map[string]any)
	if users[bob.UserID] != float64(100) || users[alice.UserID] != float64(100) {
		t.Errorf("v10 trusted_private_chat power levels users = %v, want creator and invitee at 100", users)
	}
}

// apiRoomPLOverride: power_level_content_override is applied on top of
// the default power levels, and the room enforces it.
func apiRoomPLOverride(t *testing.T, ts *testServer) {
	alice, bob := apiUser(t, ts, "plA"), apiUser(t, ts, "plB")
	room := alice.apiRoom(t, map[string]any{"preset": "public_chat",
		"power_level_content_override": map[string]any{"events_default": 50, "users": map[string]any{bob.UserID: 10}}})
	pl := alice.apiState(t, room, "m.room.power_levels", "")
	if pl["events_default"] != float64(50) || pl["users"].(map[string]any)[bob.UserID] != float64(10) {
		t.Errorf("power levels = %v, want events_default 50 and bob at 10", pl)
	}
	if pl["state_default"] != float64(50) || pl["ban"] != float64(50) {
		t.Errorf("the override dropped default keys: %v", pl)
	}
	bob.apiJoin(t, room)
	r := bob.apiSend(t, room, "m.room.message", apiUniq("t"), map[string]any{"msgtype": "m.text", "body": "too low"})
	apiWantErr(t, r, 403, "M_FORBIDDEN")
	alice.apiText(t, room, "creator may")
}

// apiRoomInitialState: initial_state overrides the preset; name and topic
// override initial_state; the order of create_room.yaml is kept.
func apiRoomInitialState(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "init")
	room := alice.apiRoom(t, map[string]any{
		"preset": "private_chat", "name": "from name", "topic": "from topic",
		"initial_state": []any{
			map[string]any{"type": "m.room.join_rules", "content": map[string]any{"join_rule": "public"}},
			map[string]any{"type": "m.room.name", "content": map[string]any{"name": "from initial_state"}},
			map[string]any{"type": "m.room.topic", "content": map[string]any{"topic": "from initial_state"}},
			map[string]any{"type": "org.example.keyed", "state_key": "k1", "content": map[string]any{"v": 1}},
		},
	})
	if jr := alice.apiState(t, room, "m.room.join_rules", "")["join_rule"]; jr != "public" {
		t.Errorf("initial_state join_rule did not override the preset: %v", jr)
	}
	if n := alice.apiState(t, room, "m.room.name", "")["name"]; n != "from name" {
		t.Errorf("name = %v, want the name parameter to win", n)
	}
	if tp := alice.apiState(t, room, "m.room.topic", "")["topic"]; tp != "from topic" {
		t.Errorf("topic = %v, want the topic parameter to win", tp)
	}
	if v := alice.apiState(t, room, "org.example.keyed", "k1")["v"]; v != float64(1) {
		t.Errorf("keyed initial_state = %v", v)
	}
	// Order: create, creator's join, power levels, preset, initial_state,
	// name, topic.
	m := alice.apiMessages(t, room, url.Values{"dir": {"f"}, "limit": {"50"}})
	var order []string
	for _, e := range m.Chunk {
		order = append(order, e.Type)
	}
	first := func(typ string) int { return slices.Index(order, typ) }
	last := func(typ string) int {
		for i := len(order) - 1; i >= 0; i-- {
			if order[i] == typ {
				return i
			}
		}
		return -1
	}
	if first("m.room.create") != 0 || first("m.room.member") != 1 || first("m.room.power_levels") != 2 ||
		!(first("m.room.join_rules") < first("m.room.history_visibility") && first("m.room.history_visibility") < first("m.room.guest_access")) ||
		first("m.room.guest_access") > first("org.example.keyed") || first("org.example.keyed") > last("m.room.name") ||
		last("m.room.name") > last("m.room.topic") {
		t.Errorf("createRoom event order = %v; want create, member, power levels, preset, initial_state, name, topic", order)
	}
}

// apiRoomState: PUT and GET state, with and without a state key (also the
// trailing-slash form clients send for the empty key), format=event, and
// the full state list.
func apiRoomState(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "state")
	room := alice.apiRoom(t, nil)
	id := alice.apiPutState(t, room, "org.example.pref", "", map[string]any{"colour": "red"})
	if c := alice.apiState(t, room, "org.example.pref", "")["colour"]; c != "red" {
		t.Errorf("GET state = %v", c)
	}
	alice.apiPutState(t, room, "org.example.pref", "", map[string]any{"colour": "yellow"})
	if c := alice.apiState(t, room, "org.example.pref", "")["colour"]; c != "yellow" {
		t.Errorf("GET state after replacing it = %v, want yellow", c)
	}
	alice.apiPutState(t, room, "org.example.pref", alice.UserID, map[string]any{"colour": "green"})
	if c := alice.apiState(t, room, "org.example.pref", alice.UserID)["colour"]; c != "green" {
		t.Errorf("state with the user ID as key = %v", c)
	}
	ev := alice.apiOK(t, "GET", apiStatePath(room, "org.example.pref", alice.UserID)+"?format=event", nil)
	if ev["type"] != "org.example.pref" || ev["state_key"] != alice.UserID || ev["sender"] != alice.UserID || ev["event_id"] == nil {
		t.Errorf("format=event = %v", ev)
	}
	all := alice.apiFullState(t, room)
	n := 0
	for _, e := range all {
		if e.Type == "org.example.pref" {
			n++
			if e.EventID == id {
				t.Errorf("full state still has the replaced event %s", id)
			}
		}
	}
	if n != 2 {
		t.Errorf("full state has %d org.example.pref events, want 2", n)
	}
	// "When an empty string, the trailing slash on this endpoint is
	// optional" (room_state.yaml, rooms.yaml).
	slash := "/rooms/" + apiEsc(room) + "/state/org.example.pref/"
	if r := alice.apiCall(t, "PUT", slash, map[string]any{"colour": "blue"}); r.Status != 200 {
		t.Errorf("PUT state with a trailing slash (empty state key): %d %s", r.Status, r.Raw)
	}
	if r := alice.apiCall(t, "GET", slash, nil); r.Status != 200 {
		t.Errorf("GET state with a trailing slash (empty state key): %d %s", r.Status, r.Raw)
	}
	if c := alice.apiState(t, room, "org.example.pref", "")["colour"]; c != "blue" {
		t.Errorf("after PUT with a trailing slash the empty-key state is %v, want blue", c)
	}
}

// apiRoomJoinByAlias: room_alias_name makes #name:server, resolvable and
// joinable, and the room's canonical alias.
func apiRoomJoinByAlias(t *testing.T, ts *testServer) {
	alice, bob := apiUser(t, ts, "aliasA"), apiUser(t, ts, "aliasB")
	name := apiUniq("lobby")
	alias := "#" + name + ":" + ts.name
	room := alice.apiRoom(t, map[string]any{"preset": "public_chat", "room_alias_name": name})
	d := bob.apiOK(t, "GET", "/directory/room/"+apiEsc(alias), nil)
	if d["room_id"] != room || !slices.Contains(d["servers"].([]any), any(ts.name)) {
		t.Errorf("alias resolves to %v", d)
	}
	if ca := alice.apiState(t, room, "m.room.canonical_alias", "")["alias"]; ca != alias {
		t.Errorf("canonical alias = %v, want %s", ca, alias)
	}
	if got := bob.apiJoin(t, alias); got != room {
		t.Errorf("join by alias answered room %s, want %s", got, room)
	}
	if !slices.Contains(bob.apiJoinedRooms(t), room) {
		t.Errorf("room not in bob's joined_rooms after joining by alias")
	}
	if al := bob.apiOK(t, "GET", "/rooms/"+apiEsc(room)+"/aliases", nil)["aliases"].([]any); !slices.Contains(al, any(alias)) {
		t.Errorf("/aliases = %v, want %s", al, alias)
	}
	// A second alias, put by a member, resolves and joins too.
	alias2 := "#" + apiUniq("side") + ":" + ts.name
	bob.apiOK(t, "PUT", "/directory/room/"+apiEsc(alias2), map[string]any{"room_id": room})
	carol := apiUser(t, ts, "aliasC")
	if got := carol.apiJoin(t, alias2); got != room {
		t.Errorf("join by the second alias answered %s", got)
	}
	bob.apiOK(t, "DELETE", "/directory/room/"+apiEsc(alias2), nil)
	apiWantErr(t, carol.apiCall(t, "GET", "/directory/room/"+apiEsc(alias2), nil), 404, "M_NOT_FOUND")
}

// apiMember returns the current member event of user in room (format=event).
func apiMember(t *testing.T, c *client, room, user string) map[string]any {
	t.Helper()
	return c.apiOK(t, "GET", apiStatePath(room, "m.room.member", user)+"?format=event", nil)
}

// apiRoomKickBanUnban: kick, ban and unban need power, carry their reason
// into the member event, and govern rejoining.
func apiRoomKickBanUnban(t *testing.T, ts *testServer) {
	alice, bob, carol := apiUser(t, ts, "kbA"), apiUser(t, ts, "kbB"), apiUser(t, ts, "kbC")
	room := alice.apiRoom(t, map[string]any{"preset": "public_chat"})
	bob.apiJoin(t, room)
	carol.apiJoin(t, room)
	path := func(action string) string { return "/rooms/" + apiEsc(room) + "/" + action }
	check := func(what, membership, reason string) {
		t.Helper()
		ev := apiMember(t, alice, room, bob.UserID)
		c := ev["content"].(map[string]any)
		if c["membership"] != membership || c["reason"] != reason || ev["sender"] != alice.UserID {
			t.Errorf("after %s bob's member event = %v, want %s by alice with reason %q", what, ev, membership, reason)
		}
	}

	apiWantErr(t, carol.apiCall(t, "POST", path("kick"), map[string]any{"user_id": bob.UserID}), 403, "M_FORBIDDEN")
	if m := alice.apiState(t, room, "m.room.member", bob.UserID)["membership"]; m != "join" {
		t.Errorf("a refused kick changed bob's membership to %v", m)
	}

	alice.apiOK(t, "POST", path("kick"), map[string]any{"user_id": bob.UserID, "reason": "too loud"})
	check("kick", "leave", "too loud")
	if slices.Contains(bob.apiJoinedRooms(t), room) {
		t.Errorf("kicked bob still has the room in joined_rooms")
	}
	bob.apiJoin(t, room) // a kicked user may rejoin a public room

	apiWantErr(t, carol.apiCall(t, "POST", path("ban"), map[string]any{"user_id": bob.UserID}), 403, "M_FORBIDDEN")
	alice.apiOK(t, "POST", path("ban"), map[string]any{"user_id": bob.UserID, "reason": "spam"})
	check("ban", "ban", "spam")
	apiWantErr(t, bob.apiCall(t, "POST", path("join"), map[string]any{}), 403, "M_FORBIDDEN")
	apiWantErr(t, alice.apiCall(t, "POST", path("invite"), map[string]any{"user_id": bob.UserID}), 403, "M_FORBIDDEN")
	r := bob.apiSend(t, room, "m.room.message", apiUniq("t"), map[string]any{"msgtype": "m.text", "body": "banned"})
	apiWantErr(t, r, 403, "M_FORBIDDEN")

	apiWantErr(t, carol.apiCall(t, "POST", path("unban"), map[string]any{"user_id": bob.UserID}), 403, "M_FORBIDDEN")
	alice.apiOK(t, "POST", path("unban"), map[string]any{"user_id": bob.UserID, "reason": "forgiven"})
	check("unban", "leave", "forgiven")
	bob.apiJoin(t, room)
	if m := alice.apiState(t, room, "m.room.member", bob.UserID)["membership"]; m != "join" {
		t.Errorf("unbanned bob could not rejoin: %v", m)
	}

	// The membership changes show in the room's history with their
	// reasons.
	var seen []string
	for _, e := range alice.apiMessages(t, room, url.Values{"dir": {"f"}, "limit": {"100"}}).Chunk {
		if e.isState("m.room.member", bob.UserID) {
			seen = append(seen, fmt.Sprintf("%v/%v", e.Content["membership"], e.Content["reason"]))
		}
	}
	want := []string{"join/<nil>", "leave/too loud", "join/<nil>", "ban/spam", "leave/forgiven", "join/<nil>"}
	if !slices.Equal(seen, want) {
		t.Errorf("bob's membership history = %v, want %v", seen, want)
	}
}

// apiRoomForget: forget needs the user to have left (400 otherwise); a
// left room's history stays readable until forgotten; a forgotten room
// never appears in /sync (not even with include_leave) and its history is
// no longer served; rejoining brings it back.
func apiRoomForget(t *testing.T, ts *testServer) {
	alice, bob := apiUser(t, ts, "fgA"), apiUser(t, ts, "fgB")
	room := alice.apiRoom(t, map[string]any{"preset": "public_chat"})
	bob.apiJoin(t, room)
	hist := alice.apiText(t, room, "history")
	forget := "/rooms/" + apiEsc(room) + "/forget"
	if r := bob.apiCall(t, "POST", forget, map[string]any{}); r.Status != 400 {
		t.Errorf("forget while joined: %d %s, want 400", r.Status, r.Raw)
	}
	bob.apiOK(t, "POST", "/rooms/"+apiEsc(room)+"/leave", map[string]any{})
	if m := bob.apiMessages(t, room, url.Values{"dir": {"b"}, "limit": {"20"}}); apiIndexOf(m.Chunk, hist) < 0 {
		t.Errorf("after leaving (not forgetting), bob cannot read the history he saw: %v", m.Chunk)
	}
	withLeave := url.Values{"filter": {apiFilter(map[string]any{"room": map[string]any{"include_leave": true}})}}
	bob.apiSyncUntil(t, withLeave, "left room with include_leave", func(s *apiSyncResp) bool {
		_, ok := s.Rooms.Leave[room]
		return ok
	})

	bob.apiOK(t, "POST", forget, map[string]any{})
	s := bob.apiSync(t, withLeave)
	if _, ok := s.Rooms.Leave[room]; ok {
		t.Errorf("forgotten room appears in rooms.leave of an include_leave sync")
	}
	if r := bob.apiCall(t, "GET", "/rooms/"+apiEsc(room)+"/messages?dir=b", nil); r.Status == 200 {
		t.Errorf("bob still reads the history of a room he forgot: %s", r.Raw)
	}
	bob.apiJoin(t, room)
	again := alice.apiText(t, room, "welcome back")
	bob.apiSyncUntilEvent(t, nil, room, again)
}

// apiRoomContext: /context returns the event, up to limit events around
// it split before (reverse-chronological) and after (chronological), the
// state, and tokens that /messages continues from.
func apiRoomContext(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "ctx")
	room := alice.apiRoom(t, nil)
	var m []string
	for i := 1; i <= 6; i++ {
		m = append(m, alice.apiText(t, room, fmt.Sprintf("context %d", i)))
	}
	c := alice.apiOK(t, "GET", "/rooms/"+apiEsc(room)+"/context/"+apiEsc(m[2])+"?limit=4", nil)
	ids := func(k string) []string {
		var out []string
		for _, e := range c[k].([]any) {
			out = append(out, e.(map[string]any)["event_id"].(string))
		}
		return out
	}
	if c["event"].(map[string]any)["event_id"] != m[2] {
		t.Errorf("context event = %v, want %s", c["event"], m[2])
	}
	if got := ids("events_before"); !slices.Equal(got, []string{m[1], m[0]}) {
		t.Errorf("events_before = %v, want [%s %s] (reverse-chronological)", got, m[1], m[0])
	}
	if got := ids("events_after"); !slices.Equal(got, []string{m[3], m[4]}) {
		t.Errorf("events_after = %v, want [%s %s]", got, m[3], m[4])
	}
	state := c["state"].([]any)
	hasCreate := slices.ContainsFunc(state, func(e any) bool { return e.(map[string]any)["type"] == "m.room.create" })
	if !hasCreate {
		t.Errorf("context state lacks m.room.create")
	}
	start, _ := c["start"].(string)
	end, _ := c["end"].(string)
	after := alice.apiMessages(t, room, url.Values{"dir": {"f"}, "from": {end}, "limit": {"10"}})
	if got := apiIDs(after.Chunk); !slices.Equal(got, []string{m[5]}) {
		t.Errorf("/messages forwards from context end = %v, want [%s]", got, m[5])
	}
	before := alice.apiMessages(t, room, url.Values{"dir": {"b"}, "from": {start}, "limit": {"50"}})
	if len(before.Chunk) == 0 || before.Chunk[len(before.Chunk)-1].Type != "m.room.create" {
		t.Errorf("/messages back from context start does not reach the create event: %v", before.Chunk)
	}
	for _, id := range m {
		if apiIndexOf(before.Chunk, id) >= 0 {
			t.Errorf("/messages back from context start repeats %s", id)
		}
	}
	c0 := alice.apiOK(t, "GET", "/rooms/"+apiEsc(room)+"/context/"+apiEsc(m[2])+"?limit=0", nil)
	if c0["event"].(map[string]any)["event_id"] != m[2] || len(c0["events_before"].([]any))+len(c0["events_after"].([]any)) != 0 {
		t.Errorf("context with limit=0: %v", c0)
	}
	apiWantErr(t, alice.apiCall(t, "GET", "/rooms/"+apiEsc(room)+"/context/"+apiEsc("$nope"), nil), 404, "M_NOT_FOUND")
}

// apiRoomContextFilter: /context applies its RoomEventFilter to
// events_before and events_after.
func apiRoomContextFilter(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "ctxf")
	room := alice.apiRoom(t, nil)
	alice.apiText(t, room, "one")
	alice.apiPutState(t, room, "m.room.topic", "", map[string]any{"topic": "t1"})
	target := alice.apiText(t, room, "target")
	alice.apiPutState(t, room, "m.room.topic", "", map[string]any{"topic": "t2"})
	alice.apiText(t, room, "three")
	f := apiFilter(map[string]any{"types": []string{"m.room.message"}})
	c := alice.apiOK(t, "GET", "/rooms/"+apiEsc(room)+"/context/"+apiEsc(target)+"?limit=4&filter="+url.QueryEscape(f), nil)
	for _, k := range []string{"events_before", "events_after"} {
		for _, e := range c[k].([]any) {
			if typ := e.(map[string]any)["type"]; typ != "m.room.message" {
				t.Errorf("%s has a %v event although the filter allows m.room.message only", k, typ)
			}
		}
	}
}

// apiRoomMembers: /members lists member events, filtered by membership
// and not_membership (together: an "or"); /joined_members maps the joined
// users to their profile.
func apiRoomMembers(t *testing.T, ts *testServer) {
	alice, bob, carol, dave := apiUser(t, ts, "memA"), apiUser(t, ts, "memB"), apiUser(t, ts, "memC"), apiUser(t, ts, "memD")
	room := alice.apiRoom(t, map[string]any{"preset": "public_chat", "invite": []string{carol.UserID}})
	bob.apiJoin(t, room)
	dave.apiJoin(t, room)
	dave.apiOK(t, "POST", "/rooms/"+apiEsc(room)+"/leave", map[string]any{})
	members := func(q string) []string {
		t.Helper()
		var out []string
		for _, e := range alice.apiOK(t, "GET", "/rooms/"+apiEsc(room)+"/members?"+q, nil)["chunk"].([]any) {
			ev := e.(map[string]any)
			if ev["type"] != "m.room.member" {
				t.Errorf("/members chunk has a %v event", ev["type"])
			}
			out = append(out, ev["state_key"].(string))
		}
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct {
		q    string
		want []string
	}{
		{"", apiSorted(alice.UserID, bob.UserID, carol.UserID, dave.UserID)},
		{"membership=join", apiSorted(alice.UserID, bob.UserID)},
		{"membership=invite", []string{carol.UserID}},
		{"membership=leave", []string{dave.UserID}},
		{"not_membership=join", apiSorted(carol.UserID, dave.UserID)},
		{"not_membership=leave", apiSorted(alice.UserID, bob.UserID, carol.UserID)},
		// "When specified alongside not_membership, the two parameters
		// create an 'or' condition".
		{"membership=leave&not_membership=join", apiSorted(carol.UserID, dave.UserID)},
		{"membership=join&not_membership=invite", apiSorted(alice.UserID, bob.UserID, dave.UserID)},
	} {
		if got := members(tc.q); !slices.Equal(got, tc.want) {
			t.Errorf("/members?%s = %v, want %v", tc.q, got, tc.want)
		}
	}
	jm := alice.apiOK(t, "GET", "/rooms/"+apiEsc(room)+"/joined_members", nil)["joined"].(map[string]any)
	var keys []string
	for k := range jm {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, apiSorted(alice.UserID, bob.UserID)) {
		t.Errorf("/joined_members = %v, want alice and bob", jm)
	}
	if dn := jm[bob.UserID].(map[string]any)["display_name"]; dn != bob.apiLocalpart() {
		t.Errorf("bob's display_name = %v, want %s", dn, bob.apiLocalpart())
	}
	// A user outside the room cannot list it.
	eve := apiUser(t, ts, "memE")
	apiWantErr(t, eve.apiCall(t, "GET", "/rooms/"+apiEsc(room)+"/members", nil), 403, "M_FORBIDDEN")
}

// apiRoomMembersAt: /members?at=<prev_batch of a sync> answers the
// membership at that point (the lazy-loading pattern of the spec's
// "Lazy-loading room members").
func apiRoomMembersAt(t *testing.T, ts *testServer) {
	alice, bob := apiUser(t, ts, "matA"), apiUser(t, ts, "matB")
	room := alice.apiRoom(t, map[string]any{"preset": "public_chat"})
	first := alice.apiText(t, room, "before bob")
	s0 := alice.apiSyncUntilEvent(t, nil, room, first)
	bob.apiJoin(t, room)
	s1 := alice.apiSyncUntil(t, url.Values{"since": {s0.NextBatch}}, "bob's join", func(s *apiSyncResp) bool {
		j, ok := s.Rooms.Join[room]
		return ok && slices.ContainsFunc(j.Timeline.Events, func(e apiEvent) bool { return e.isState("m.room.member", bob.UserID) })
	})
	prev := s1.Rooms.Join[room].Timeline.PrevBatch
	if prev == "" {
		t.Fatalf("timeline with bob's join has no prev_batch")
	}
	r := alice.apiOK(t, "GET", "/rooms/"+apiEsc(room)+"/members?at="+url.QueryEscape(prev), nil)
	for _, e := range r["chunk"].([]any) {
		if e.(map[string]any)["state_key"] == bob.UserID {
			t.Errorf("/members at the prev_batch before bob joined lists bob: %v", e)
		}
	}
	now := alice.apiOK(t, "GET", "/rooms/"+apiEsc(room)+"/members", nil)["chunk"].([]any)
	if !slices.ContainsFunc(now, func(e any) bool { return e.(map[string]any)["state_key"] == bob.UserID }) {
		t.Errorf("/members without at does not list bob")
	}
}

// apiRoomDirectory: publishing with visibility or PUT
// /directory/list/room, listing with a search term, pagination with
// next_batch/prev_batch, and unpublishing.
func apiRoomDirectory(t *testing.T, ts *testServer) {
	alice, bob := apiUser(t, ts, "dirA"), apiUser(t, ts, "dirB")
	tag := apiUniq("dirtag")
	rooms := map[string]string{}
	for _, n := range []string{"apple", "banana", "cherry"} {
		rooms[n] = alice.apiRoom(t, map[string]any{"visibility": "public", "name": tag + " " + n, "topic": "about " + n})
	}
	hidden := alice.apiRoom(t, map[string]any{"preset": "public_chat", "name": tag + " hidden"})
	vis := func(room string) any {
		return alice.apiOK(t, "GET", "/directory/list/room/"+apiEsc(room), nil)["visibility"]
	}
	// GET /directory/list/room/{roomId} needs no access token (it has no
	// security requirement in list_public_rooms.yaml).
	if r := apiDo(t, ts, "GET", apiV3+"/directory/list/room/"+apiEsc(rooms["apple"]), "", nil); r.Status != 200 || r.Body["visibility"] != "public" {
		t.Errorf("GET /directory/list/room without a token: %d %s, want 200 public", r.Status, r.Raw)
	}
	if v := vis(rooms["apple"]); v != "public" {
		t.Errorf("visibility of a room created public = %v", v)
	}
	if v := vis(hidden); v != "private" {
		t.Errorf("visibility of a room created without it = %v", v)
	}
	search := func(term string, limit int, since string) map[string]any {
		t.Helper()
		body := map[string]any{"filter": map[string]any{"generic_search_term": term}}
		if limit > 0 {
			body["limit"] = limit
		}
		if since != "" {
			body["since"] = since
		}
		return alice.apiOK(t, "POST", "/publicRooms", body)
	}
	idsOf := func(resp map[string]any) []string {
		var out []string
		for _, e := range resp["chunk"].([]any) {
			out = append(out, e.(map[string]any)["room_id"].(string))
		}
		slices.Sort(out)
		return out
	}
	all := apiSorted(rooms["apple"], rooms["banana"], rooms["cherry"])
	if got := idsOf(search(tag, 0, "")); !slices.Equal(got, all) {
		t.Errorf("search %q = %v, want the three published rooms %v", tag, got, all)
	}
	one := search(tag+" banana", 0, "")
	if got := idsOf(one); !slices.Equal(got, []string{rooms["banana"]}) {
		t.Fatalf("search for banana = %v", got)
	}
	e := one["chunk"].([]any)[0].(map[string]any)
	if e["name"] != tag+" banana" || e["topic"] != "about banana" || e["num_joined_members"] != float64(1) ||
		e["world_readable"] != false || e["guest_can_join"] != false || e["join_rule"] != "public" {
		t.Errorf("directory entry = %v", e)
	}
	// Pages of one.
	var paged []string
	since := ""
	for page := 0; page < 5; page++ {
		resp := search(tag, 1, since)
		ch := idsOf(resp)
		if len(ch) > 1 {
			t.Errorf("page of limit 1 has %d rooms", len(ch))
		}
		paged = append(paged, ch...)
		if page > 0 && resp["prev_batch"] == nil {
			t.Errorf("page %d has no prev_batch", page)
		}
		if page == 0 && resp["prev_batch"] != nil {
			t.Errorf("first page has prev_batch %v", resp["prev_batch"])
		}
		nb, _ := resp["next_batch"].(string)
		if nb == "" {
			break
		}
		since = nb
	}
	slices.Sort(paged)
	if !slices.Equal(paged, all) {
		t.Errorf("paging by one gave %v, want %v", paged, all)
	}
	// GET works without a token and paginates too.
	g := apiDo(t, ts, "GET", apiV3+"/publicRooms?limit=1", "", nil)
	if g.Status != 200 || len(g.Body["chunk"].([]any)) != 1 || g.Body["next_batch"] == nil {
		t.Errorf("GET /publicRooms?limit=1: %d %s", g.Status, g.Raw)
	}

	// Unpublish and publish.
	apiWantErr(t, bob.apiCall(t, "PUT", "/directory/list/room/"+apiEsc(hidden), map[string]any{"visibility": "public"}), 403, "M_FORBIDDEN")
	alice.apiOK(t, "PUT", "/directory/list/room/"+apiEsc(rooms["banana"]), map[string]any{"visibility": "private"})
	alice.apiOK(t, "PUT", "/directory/list/room/"+apiEsc(hidden), map[string]any{"visibility": "public"})
	want := apiSorted(rooms["apple"], rooms["cherry"], hidden)
	if got := idsOf(search(tag, 0, "")); !slices.Equal(got, want) {
		t.Errorf("after unpublishing banana and publishing hidden: %v, want %v", got, want)
	}
	if v := vis(rooms["banana"]); v != "private" {
		t.Errorf("visibility after unpublishing = %v", v)
	}
	apiWantErr(t, alice.apiCall(t, "GET", "/directory/list/room/"+apiEsc("!unknown:"+ts.name), nil), 404, "M_NOT_FOUND")
}

// apiRoomDirectoryTypes: the room_types filter of POST /publicRooms
// (v1.4): a type, or null for rooms without one.
func apiRoomDirectoryTypes(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "dirT")
	tag := apiUniq("typetag")
	space := alice.apiRoom(t, map[string]any{"visibility": "public", "name": tag + " space", "creation_content": map[string]any{"type": "m.space"}})
	plain := alice.apiRoom(t, map[string]any{"visibility": "public", "name": tag + " plain"})
	list := func(types []any) []string {
		resp := alice.apiOK(t, "POST", "/publicRooms", map[string]any{"filter": map[string]any{"generic_search_term": tag, "room_types": types}})
		var out []string
		for _, e := range resp["chunk"].([]any) {
			out = append(out, e.(map[string]any)["room_id"].(string))
		}
		return out
	}
	if got := list([]any{"m.space"}); !slices.Equal(got, []string{space}) {
		t.Errorf("room_types [m.space] = %v, want only the space %s", got, space)
	}
	if got := list([]any{nil}); !slices.Equal(got, []string{plain}) {
		t.Errorf("room_types [null] = %v, want only the untyped room %s", got, plain)
	}
}

// apiRoomR0: the r0 paths answer as the v3 ones.
func apiRoomR0(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "rzero")
	r0 := func(method, path string, body any) response {
		return apiDo(t, ts, method, "/_matrix/client/r0"+path, alice.Token, body)
	}
	room := alice.apiRoom(t, nil)
	for _, p := range []string{"/account/whoami", "/joined_rooms", "/rooms/" + apiEsc(room) + "/joined_members",
		"/rooms/" + apiEsc(room) + "/state/m.room.create", "/capabilities"} {
		a, b := alice.apiCall(t, "GET", p, nil), r0("GET", p, nil)
		if a.Status != 200 || b.Status != 200 || string(a.Raw) != string(b.Raw) {
			t.Errorf("GET %s: v3 %d %s, r0 %d %s", p, a.Status, a.Raw, b.Status, b.Raw)
		}
	}
	r := r0("POST", "/createRoom", map[string]any{"name": "via r0"})
	if r.Status != 200 {
		t.Fatalf("r0 createRoom: %d %s", r.Status, r.Raw)
	}
	room2 := r.Body["room_id"].(string)
	r = r0("PUT", "/rooms/"+apiEsc(room2)+"/send/m.room.message/"+apiUniq("t"), map[string]any{"msgtype": "m.text", "body": "via r0"})
	if r.Status != 200 {
		t.Fatalf("r0 send: %d %s", r.Status, r.Raw)
	}
	id := r.Body["event_id"].(string)
	if e := alice.apiGetEvent(t, room2, id); e.Content["body"] != "via r0" {
		t.Errorf("event sent via r0 reads back as %v", e)
	}
	r = r0("GET", "/sync", nil)
	if r.Status != 200 || r.Body["next_batch"] == nil {
		t.Errorf("r0 sync: %d %s", r.Status, r.Raw)
	}
	r = r0("GET", "/rooms/"+apiEsc(room2)+"/messages?dir=b&limit=1", nil)
	if r.Status != 200 {
		t.Errorf("r0 messages: %d %s", r.Status, r.Raw)
	}
	apiWantErr(t, apiDo(t, ts, "GET", "/_matrix/client/r0/joined_rooms", "", nil), 401, "M_MISSING_TOKEN")
}
