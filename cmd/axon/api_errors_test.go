package main

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestAPIErrors checks the spec's error codes ("Standard error response",
// "Common error codes", "Other error codes" and the endpoints' OpenAPI
// responses): one subtest per code, each checking the errcode, the HTTP
// status and, after a refused write, that nothing was half-written.
func TestAPIErrors(t *testing.T) {
	runAPICases(t, []apiCase{
		{"NotJSON", apiErrNotJSON},
		{"BadJSON", apiErrBadJSON},
		{"TooLarge", apiErrTooLarge},
		{"EventOverSizeLimit", apiErrEventTooLarge},
		{"MissingToken", apiErrMissingToken},
		{"UnknownToken", apiErrUnknownToken},
		{"Forbidden", apiErrForbidden},
		{"Unrecognized", apiErrUnrecognized},
		{"InvalidParam", apiErrInvalidParam},
		{"UserInUse", apiErrUserInUse},
		{"RoomInUse", apiErrRoomInUse},
		{"FailedCreateRoomFreesAlias", apiErrCreateRoomRollback},
		{"InvalidRoomState", apiErrInvalidRoomState},
		{"UnsupportedRoomVersion", apiErrUnsupportedRoomVersion},
		{"NotFound", apiErrNotFound},
	})
}

// apiNoRooms checks that c is in no room: a refused createRoom must not
// leave one behind.
func apiNoRooms(t *testing.T, c *client) {
	t.Helper()
	if rooms := c.apiJoinedRooms(t); len(rooms) != 0 {
		t.Errorf("%s is in rooms %v after refused requests only", c.UserID, rooms)
	}
}

// apiAliasFree checks that the alias resolves to nothing.
func apiAliasFree(t *testing.T, c *client, alias string) {
	t.Helper()
	r := c.apiCall(t, "GET", "/directory/room/"+apiEsc(alias), nil)
	if r.Status != 404 {
		t.Errorf("alias %s of a refused createRoom resolves: %d %s", alias, r.Status, r.Raw)
	}
}

func apiErrNotJSON(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "enj")
	for _, body := range []string{`{"name": `, `not json at all`, `{"name": "x"} trailing`, "\xff\xfe{}"} {
		r := alice.apiCall(t, "POST", "/createRoom", []byte(body))
		apiWantErr(t, r, 400, "M_NOT_JSON")
	}
	room := alice.apiRoom(t, nil)
	r := alice.apiCall(t, "PUT", "/rooms/"+apiEsc(room)+"/send/m.room.message/"+apiUniq("t"), []byte(`{"body": "unterminated`))
	apiWantErr(t, r, 400, "M_NOT_JSON")
	if rooms := alice.apiJoinedRooms(t); !slices.Equal(rooms, []string{room}) {
		t.Errorf("joined rooms %v after refused createRooms, want only %s", rooms, room)
	}
	if n := len(apiMessagesOf(t, alice, room, "m.room.message")); n != 0 {
		t.Errorf("a refused send left %d messages", n)
	}
}

// apiMessagesOf returns the room's recent events of the type.
func apiMessagesOf(t *testing.T, c *client, roomID, evType string) []apiEvent {
	t.Helper()
	var out []apiEvent
	for _, e := range c.apiMessages(t, roomID, url.Values{"dir": {"b"}, "limit": {"100"}}).Chunk {
		if e.Type == evType {
			out = append(out, e)
		}
	}
	return out
}

func apiErrBadJSON(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "ebj")
	for _, body := range []string{`[1, 2]`, `{"name": 5}`, `{"invite": "not a list"}`, `"a string"`} {
		r := alice.apiCall(t, "POST", "/createRoom", []byte(body))
		apiWantErr(t, r, 400, "M_BAD_JSON")
	}
	apiNoRooms(t, alice)
	room := alice.apiRoom(t, nil)
	for _, body := range []string{`"just a string"`, `[{"body": "in an array"}]`, `42`} {
		r := alice.apiCall(t, "PUT", "/rooms/"+apiEsc(room)+"/send/m.room.message/"+apiUniq("t"), []byte(body))
		apiWantErr(t, r, 400, "M_BAD_JSON")
	}
	r := alice.apiCall(t, "POST", "/rooms/"+apiEsc(room)+"/invite", []byte(`{"user_id": 17}`))
	apiWantErr(t, r, 400, "M_BAD_JSON")
	if n := len(apiMessagesOf(t, alice, room, "m.room.message")); n != 0 {
		t.Errorf("refused sends left %d messages", n)
	}
}

// apiErrTooLarge: a request body over the server's 1 MiB bound is 413
// M_TOO_LARGE (declared length or streamed), and so is event content
// that cannot fit the 65536-byte event limit.
func apiErrTooLarge(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "etl")
	big := []byte(`{"topic": "` + strings.Repeat("a", 1<<20+100) + `"}`)
	r := alice.apiCall(t, "POST", "/createRoom", big)
	apiWantErr(t, r, 413, "M_TOO_LARGE")
	apiNoRooms(t, alice)
	room := alice.apiRoom(t, nil)
	huge := []byte(`{"msgtype": "m.text", "body": "` + strings.Repeat("b", 70000) + `"}`)
	r = alice.apiCall(t, "PUT", "/rooms/"+apiEsc(room)+"/send/m.room.message/"+apiUniq("t"), huge)
	apiWantErr(t, r, 413, "M_TOO_LARGE")
	if n := len(apiMessagesOf(t, alice, room, "m.room.message")); n != 0 {
		t.Errorf("a refused send left %d messages", n)
	}
}

// apiErrEventTooLarge: content that fits the body bound but makes an
// event over 65536 bytes (spec "Size limits": the complete event MUST NOT
// be larger) is refused, and nothing is stored.
func apiErrEventTooLarge(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "eetl")
	room := alice.apiRoom(t, nil)
	content := []byte(`{"msgtype": "m.text", "body": "` + strings.Repeat("c", 65400) + `"}`)
	r := alice.apiCall(t, "PUT", "/rooms/"+apiEsc(room)+"/send/m.room.message/"+apiUniq("t"), content)
	if r.Status < 400 || r.Status >= 500 {
		t.Fatalf("an event over 65536 bytes: %d %s, want a 4xx refusal", r.Status, r.Raw)
	}
	if c := r.Body["errcode"]; c != "M_TOO_LARGE" {
		t.Errorf("an event over 65536 bytes is refused with %v (%d), want M_TOO_LARGE (%s)", c, r.Status, r.Raw)
	}
	if n := len(apiMessagesOf(t, alice, room, "m.room.message")); n != 0 {
		t.Errorf("a refused send left %d messages", n)
	}
}

func apiErrMissingToken(t *testing.T, ts *testServer) {
	for _, p := range []struct{ method, path string }{
		{"GET", "/joined_rooms"}, {"GET", "/sync"}, {"POST", "/createRoom"}, {"GET", "/account/whoami"},
	} {
		var body any
		if p.method == "POST" {
			body = map[string]any{}
		}
		r := apiDo(t, ts, p.method, apiV3+p.path, "", body)
		apiWantErr(t, r, 401, "M_MISSING_TOKEN")
	}
}

// apiErrUnknownToken: an unknown token, and the token of a device that
// logged out, are 401 M_UNKNOWN_TOKEN without soft_logout; the user's
// other devices keep working.
func apiErrUnknownToken(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "eut")
	for _, tok := range []string{"not-a-token", "axa_" + strings.Repeat("A", 43)} {
		r := apiDo(t, ts, "GET", apiV3+"/joined_rooms", tok, nil)
		apiWantErr(t, r, 401, "M_UNKNOWN_TOKEN")
		if r.Body["soft_logout"] == true {
			t.Errorf("unknown token answered soft_logout true: %s", r.Raw)
		}
	}
	second := alice.apiLogin(t, "")
	second.apiOK(t, "POST", "/logout", map[string]any{})
	r := second.apiCall(t, "GET", "/account/whoami", nil)
	apiWantErr(t, r, 401, "M_UNKNOWN_TOKEN")
	if sl, ok := r.Body["soft_logout"]; ok && sl != false {
		t.Errorf("logged-out token answered soft_logout %v, want false", sl)
	}
	if got := alice.apiOK(t, "GET", "/account/whoami", nil)["device_id"]; got != alice.DeviceID {
		t.Errorf("the other device's whoami says device %v, want %s", got, alice.DeviceID)
	}
}

// apiErrForbidden: sending into a room one is not in is 403 M_FORBIDDEN
// with a message that says why, and sends nothing.
func apiErrForbidden(t *testing.T, ts *testServer) {
	alice, bob := apiUser(t, ts, "efA"), apiUser(t, ts, "efB")
	room := alice.apiRoom(t, map[string]any{"preset": "private_chat"})
	r := bob.apiSend(t, room, "m.room.message", apiUniq("t"), map[string]any{"msgtype": "m.text", "body": "intruder"})
	apiWantErr(t, r, 403, "M_FORBIDDEN")
	if msg, _ := r.Body["error"].(string); !strings.Contains(msg, "join") && !strings.Contains(msg, "member") {
		t.Errorf("M_FORBIDDEN message %q does not say that the sender is not in the room", msg)
	}
	r = bob.apiCall(t, "PUT", apiStatePath(room, "m.room.topic", ""), map[string]any{"topic": "intruder"})
	apiWantErr(t, r, 403, "M_FORBIDDEN")
	r = bob.apiCall(t, "POST", "/rooms/"+apiEsc(room)+"/join", map[string]any{})
	apiWantErr(t, r, 403, "M_FORBIDDEN")
	r = bob.apiCall(t, "GET", "/rooms/"+apiEsc(room)+"/messages?dir=b", nil)
	apiWantErr(t, r, 403, "M_FORBIDDEN")
	for _, e := range alice.apiMessages(t, room, url.Values{"dir": {"b"}, "limit": {"100"}}).Chunk {
		if e.Sender == bob.UserID {
			t.Errorf("a refused request of bob's left %v", e)
		}
	}
	if r := alice.apiCall(t, "GET", apiStatePath(room, "m.room.topic", ""), nil); r.Status != 404 {
		t.Errorf("after bob's refused topic, GET topic: %d %s, want 404 (never set)", r.Status, r.Raw)
	}
}

// apiErrUnrecognized: an unknown endpoint is 404 M_UNRECOGNIZED, a known
// one with the wrong method 405 M_UNRECOGNIZED.
func apiErrUnrecognized(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "eun")
	room := alice.apiRoom(t, nil)
	for _, p := range []string{"/no_such_endpoint", "/rooms/" + apiEsc(room) + "/no_such_thing"} {
		apiWantErr(t, alice.apiCall(t, "GET", p, nil), 404, "M_UNRECOGNIZED")
	}
	apiWantErr(t, apiDo(t, ts, "GET", "/_matrix/client/v99/sync", alice.Token, nil), 404, "M_UNRECOGNIZED")
	for _, p := range []struct{ method, path string }{
		{"DELETE", "/createRoom"},
		{"GET", "/createRoom"},
		{"POST", "/joined_rooms"},
		{"GET", "/rooms/" + apiEsc(room) + "/send/m.room.message/" + apiUniq("t")},
	} {
		apiWantErr(t, alice.apiCall(t, p.method, p.path, nil), 405, "M_UNRECOGNIZED")
	}
}

func apiErrInvalidParam(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "eip")
	room := alice.apiRoom(t, nil)
	base := "/rooms/" + apiEsc(room) + "/messages?"
	apiWantErr(t, alice.apiCall(t, "GET", base+"dir=x", nil), 400, "M_INVALID_PARAM")
	apiWantErr(t, alice.apiCall(t, "GET", base+"dir=b&limit=ten", nil), 400, "M_INVALID_PARAM")
	// The spec's own example: an integer expected, a string received.
	apiWantErr(t, alice.apiCall(t, "GET", "/sync?timeout=soon", nil), 400, "M_INVALID_PARAM")
	// dir is required: a missing parameter.
	r := alice.apiCall(t, "GET", base, nil)
	if r.Status != 400 || (r.Body["errcode"] != "M_MISSING_PARAM" && r.Body["errcode"] != "M_INVALID_PARAM") {
		t.Errorf("/messages without dir: %d %s, want 400 M_MISSING_PARAM or M_INVALID_PARAM", r.Status, r.Raw)
	}
}

// apiErrUserInUse: registering a taken name, or asking whether it is
// available, is 400 M_USER_IN_USE.
func apiErrUserInUse(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "euiu")
	lp := alice.apiLocalpart()
	r := apiDo(t, ts, "POST", apiV3+"/register", "", map[string]any{"username": lp, "password": "another-password-1"})
	apiWantErr(t, r, 400, "M_USER_IN_USE")
	r = apiDo(t, ts, "GET", apiV3+"/register/available?username="+url.QueryEscape(lp), "", nil)
	apiWantErr(t, r, 400, "M_USER_IN_USE")
	free := apiUniq("euiufree")
	r = apiDo(t, ts, "GET", apiV3+"/register/available?username="+url.QueryEscape(free), "", nil)
	if r.Status != 200 || r.Body["available"] != true {
		t.Errorf("/register/available for a free name: %d %s", r.Status, r.Raw)
	}
	// The refused registration did not change alice's password.
	alice.apiLogin(t, "")
}

// apiErrRoomInUse: createRoom with a taken room_alias_name is 400
// M_ROOM_IN_USE and creates no room; the alias still names the first room.
func apiErrRoomInUse(t *testing.T, ts *testServer) {
	alice, bob := apiUser(t, ts, "eriuA"), apiUser(t, ts, "eriuB")
	name := apiUniq("taken")
	first := alice.apiRoom(t, map[string]any{"room_alias_name": name})
	r := bob.apiCall(t, "POST", "/createRoom", map[string]any{"room_alias_name": name, "name": "second"})
	apiWantErr(t, r, 400, "M_ROOM_IN_USE")
	apiNoRooms(t, bob)
	alias := "#" + name + ":" + ts.name
	if got := bob.apiOK(t, "GET", "/directory/room/"+apiEsc(alias), nil)["room_id"]; got != first {
		t.Errorf("alias %s now names %v, want the first room %s", alias, got, first)
	}
}

// apiErrCreateRoomRollback: a createRoom refused after its alias was
// reserved (an initial_state entry it cannot send) leaves the alias free
// and no room behind.
func apiErrCreateRoomRollback(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "ecrr")
	name := apiUniq("rollback")
	alias := "#" + name + ":" + ts.name
	r := alice.apiCall(t, "POST", "/createRoom", map[string]any{"room_alias_name": name,
		"initial_state": []any{map[string]any{"type": "m.room.create", "state_key": "", "content": map[string]any{}}}})
	if r.Status != 400 {
		t.Fatalf("createRoom with an m.room.create in initial_state: %d %s, want 400", r.Status, r.Raw)
	}
	apiAliasFree(t, alice, alias)
	apiNoRooms(t, alice)
	room := alice.apiRoom(t, map[string]any{"room_alias_name": name})
	if got := alice.apiOK(t, "GET", "/directory/room/"+apiEsc(alias), nil)["room_id"]; got != room {
		t.Errorf("alias %s names %v, want the room created with it %s", alias, got, room)
	}
}

// apiErrInvalidRoomState: initial state that the creator cannot send
// (power levels that leave them unable to set the name) is 400
// M_INVALID_ROOM_STATE (create_room.yaml), and leaves nothing behind.
func apiErrInvalidRoomState(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "eirs")
	name := apiUniq("badstate")
	r := alice.apiCall(t, "POST", "/createRoom", map[string]any{
		"room_version": "10", "room_alias_name": name, "name": "cannot be set",
		"power_level_content_override": map[string]any{"users": map[string]any{}, "state_default": 100},
	})
	if r.Status == 200 {
		t.Fatalf("createRoom whose creator cannot set the name succeeded: %s", r.Raw)
	}
	apiWantErr(t, r, 400, "M_INVALID_ROOM_STATE")
	apiAliasFree(t, alice, "#"+name+":"+ts.name)
	apiNoRooms(t, alice)
}

func apiErrUnsupportedRoomVersion(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "eurv")
	name := apiUniq("unsupported")
	for _, v := range []string{"999", "0", "org.example.unknown"} {
		r := alice.apiCall(t, "POST", "/createRoom", map[string]any{"room_version": v, "room_alias_name": name})
		apiWantErr(t, r, 400, "M_UNSUPPORTED_ROOM_VERSION")
	}
	apiAliasFree(t, alice, "#"+name+":"+ts.name)
	apiNoRooms(t, alice)
}

func apiErrNotFound(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "enf")
	alias := "#" + apiUniq("nowhere") + ":" + ts.name
	apiWantErr(t, alice.apiCall(t, "GET", "/directory/room/"+apiEsc(alias), nil), 404, "M_NOT_FOUND")
	apiWantErr(t, alice.apiCall(t, "POST", "/join/"+apiEsc(alias), map[string]any{}), 404, "M_NOT_FOUND")
	apiWantErr(t, alice.apiCall(t, "DELETE", "/directory/room/"+apiEsc(alias), nil), 404, "M_NOT_FOUND")
	apiNoRooms(t, alice)
	room := alice.apiRoom(t, nil)
	apiWantErr(t, alice.apiCall(t, "GET", "/rooms/"+apiEsc(room)+"/event/"+apiEsc("$nosuchevent"), nil), 404, "M_NOT_FOUND")
	apiWantErr(t, alice.apiCall(t, "GET", apiStatePath(room, "org.example.unset", ""), nil), 404, "M_NOT_FOUND")
	apiWantErr(t, alice.apiCall(t, "GET", "/user/"+apiEsc(alice.UserID)+"/filter/nosuchfilter", nil), 404, "M_NOT_FOUND")
}
