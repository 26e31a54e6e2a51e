package userdata

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/axon-hs/axon/internal/testenv"
)

const v3 = "/_matrix/client/v3"

func adPath(user, typ string) string {
	return v3 + "/user/" + url.PathEscape(user) + "/account_data/" + url.PathEscape(typ)
}

func roomADPath(user, room, typ string) string {
	return v3 + "/user/" + url.PathEscape(user) + "/rooms/" + url.PathEscape(room) + "/account_data/" + url.PathEscape(typ)
}

func TestAccountDataEndpoints(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		h.mustDo("PUT", adPath(alice, "org.example.cfg"), alice, map[string]any{"a": 1})
		h.mustDo("PUT", roomADPath(alice, room1, "org.example.room"), alice, map[string]any{"r": true})

		cases := []struct {
			name, method, path, as string
			body                   any
			status                 int
			code                   string
			want                   any // JSON body on success
		}{
			{"get global", "GET", adPath(alice, "org.example.cfg"), alice, nil, 200, "", map[string]any{"a": 1}},
			{"get global via r0", "GET", strings.Replace(adPath(alice, "org.example.cfg"), "v3", "r0", 1), alice, nil, 200, "", map[string]any{"a": 1}},
			{"get room", "GET", roomADPath(alice, room1, "org.example.room"), alice, nil, 200, "", map[string]any{"r": true}},
			{"room data is not global", "GET", adPath(alice, "org.example.room"), alice, nil, 404, "M_NOT_FOUND", nil},
			{"global data is not in a room", "GET", roomADPath(alice, room1, "org.example.cfg"), alice, nil, 404, "M_NOT_FOUND", nil},
			{"missing", "GET", adPath(alice, "org.example.none"), alice, nil, 404, "M_NOT_FOUND", nil},
			{"read another user's", "GET", adPath(alice, "org.example.cfg"), bob, nil, 403, "M_FORBIDDEN", nil},
			{"write another user's", "PUT", adPath(alice, "org.example.x"), bob, map[string]any{}, 403, "M_FORBIDDEN", nil},
			{"write another user's room data", "PUT", roomADPath(alice, room1, "x"), bob, map[string]any{}, 403, "M_FORBIDDEN", nil},
			{"no token", "GET", adPath(alice, "org.example.cfg"), "", nil, 401, "M_MISSING_TOKEN", nil},
			{"not JSON", "PUT", adPath(alice, "x"), alice, "{nope", 400, "M_NOT_JSON", nil},
			{"not an object", "PUT", adPath(alice, "x"), alice, "[1]", 400, "M_BAD_JSON", nil},
			{"empty body", "PUT", adPath(alice, "x"), alice, "", 400, "M_NOT_JSON", nil},
			{"m.fully_read is server-managed", "PUT", adPath(alice, "m.fully_read"), alice, map[string]any{"event_id": evA}, 405, "M_BAD_JSON", nil},
			{"m.push_rules is server-managed", "PUT", adPath(alice, "m.push_rules"), alice, map[string]any{}, 405, "M_BAD_JSON", nil},
			{"room m.fully_read is server-managed", "PUT", roomADPath(alice, room1, "m.fully_read"), alice, map[string]any{"event_id": evA}, 405, "M_BAD_JSON", nil},
			{"room m.push_rules is server-managed", "PUT", roomADPath(alice, room1, "m.push_rules"), alice, map[string]any{}, 405, "M_BAD_JSON", nil},
			{"bad room ID on PUT", "PUT", roomADPath(alice, "@notaroom:test.example", "x"), alice, map[string]any{}, 400, "M_INVALID_PARAM", nil},
			{"bad room ID on GET", "GET", roomADPath(alice, "@notaroom:test.example", "x"), alice, nil, 400, "M_INVALID_PARAM", nil},
			{"room not joined", "PUT", roomADPath(alice, "!elsewhere:test.example", "x"), alice, map[string]any{}, 403, "M_FORBIDDEN", nil},
			{"type too long", "PUT", adPath(alice, strings.Repeat("t", 256)), alice, map[string]any{}, 400, "M_INVALID_PARAM", nil},
			{"unknown method", "POST", adPath(alice, "x"), alice, map[string]any{}, 405, "M_UNRECOGNIZED", nil},
			{"overwrite", "PUT", adPath(alice, "org.example.cfg"), alice, map[string]any{"a": 2}, 200, "", map[string]any{}},
			{"overwritten", "GET", adPath(alice, "org.example.cfg"), alice, nil, 200, "", map[string]any{"a": 2}},
			{"type with a slash", "PUT", adPath(alice, "org.example/slash"), alice, map[string]any{"s": 1}, 200, "", map[string]any{}},
			{"read type with a slash", "GET", adPath(alice, "org.example/slash"), alice, nil, 200, "", map[string]any{"s": 1}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				status, code, body := h.do(c.method, c.path, c.as, c.body)
				if status != c.status || code != c.code {
					t.Fatalf("got %d %s (%s), want %d %s", status, code, body, c.status, c.code)
				}
				if c.want != nil && !jsonEqual(t, body, c.want) {
					t.Fatalf("body %s, want %v", body, c.want)
				}
			})
		}
	})
}

func TestAccountDataPositionsAndWakes(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		if p := h.pos(); p != 0 {
			t.Fatalf("initial position %d", p)
		}
		h.mustDo("PUT", adPath(alice, "a"), alice, map[string]any{"v": 1})
		if p := h.pos(); p != 1 {
			t.Fatalf("position after a write %d, want 1", p)
		}
		// The same content again changes nothing: no position, no wake.
		h.mustDo("PUT", adPath(alice, "a"), alice, map[string]any{"v": 1})
		if p := h.pos(); p != 1 {
			t.Fatalf("position after an identical write %d, want 1", p)
		}
		h.mustDo("PUT", roomADPath(alice, room1, "b"), alice, map[string]any{"v": 2})
		if p := h.pos(); p != 2 {
			t.Fatalf("position %d, want 2", p)
		}
		db, local := h.world.takeWakes()
		want := []wakeCall{{[]string{alice}, nil}, {[]string{alice}, nil}}
		if len(db) != 2 || !equalWakes(db, want) || len(local) != 0 {
			t.Fatalf("wakes %v local %v, want %v", db, local, want)
		}
	})
}

func equalWakes(a, b []wakeCall) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if strings.Join(a[i].users, ",") != strings.Join(b[i].users, ",") || strings.Join(a[i].rooms, ",") != strings.Join(b[i].rooms, ",") {
			return false
		}
	}
	return true
}

func TestAccountDataLimits(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		for i := range maxRoomTypes {
			h.mustDo("PUT", roomADPath(alice, room1, "t"+strconv.Itoa(i)), alice, map[string]any{})
		}
		if status, code, _ := h.do("PUT", roomADPath(alice, room1, "one.more"), alice, map[string]any{}); status != http.StatusRequestEntityTooLarge || code != "M_TOO_LARGE" {
			t.Fatalf("101st room type: %d %s", status, code)
		}
		// Existing types can still be rewritten, and other rooms are apart.
		h.mustDo("PUT", roomADPath(alice, room1, "t0"), alice, map[string]any{"x": 1})
		h.mustDo("PUT", roomADPath(alice, room2, "one.more"), alice, map[string]any{})
		big := map[string]any{"b": strings.Repeat("x", maxRoomAccountData)}
		if status, code, _ := h.do("PUT", roomADPath(alice, room1, "t1"), alice, big); status != 413 || code != "M_TOO_LARGE" {
			t.Fatalf("oversized room item: %d %s", status, code)
		}
	})
}

func tagsPath(user, room string) string {
	return v3 + "/user/" + url.PathEscape(user) + "/rooms/" + url.PathEscape(room) + "/tags"
}

func TestTags(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		steps := []struct {
			name, method, path, as string
			body                   any
			status                 int
			code                   string
			want                   any
		}{
			{"no tags yet", "GET", tagsPath(alice, room1), alice, nil, 200, "", map[string]any{"tags": map[string]any{}}},
			{"add favourite", "PUT", tagsPath(alice, room1) + "/m.favourite", alice, map[string]any{"order": 0.25}, 200, "", map[string]any{}},
			{"add user tag", "PUT", tagsPath(alice, room1) + "/u.Work", alice, map[string]any{}, 200, "", map[string]any{}},
			{"list", "GET", tagsPath(alice, room1), alice, nil, 200, "", map[string]any{"tags": map[string]any{"m.favourite": map[string]any{"order": 0.25}, "u.Work": map[string]any{}}}},
			{"as m.tag account data", "GET", roomADPath(alice, room1, "m.tag"), alice, nil, 200, "", map[string]any{"tags": map[string]any{"m.favourite": map[string]any{"order": 0.25}, "u.Work": map[string]any{}}}},
			{"remove", "DELETE", tagsPath(alice, room1) + "/u.Work", alice, nil, 200, "", map[string]any{}},
			{"remove again", "DELETE", tagsPath(alice, room1) + "/u.Work", alice, nil, 200, "", map[string]any{}},
			{"listed after removal", "GET", tagsPath(alice, room1), alice, nil, 200, "", map[string]any{"tags": map[string]any{"m.favourite": map[string]any{"order": 0.25}}}},
			{"order not a number", "PUT", tagsPath(alice, room1) + "/u.x", alice, map[string]any{"order": "high"}, 400, "M_BAD_JSON", nil},
			{"tag too long", "PUT", tagsPath(alice, room1) + "/" + strings.Repeat("t", 256), alice, map[string]any{}, 400, "M_INVALID_PARAM", nil},
			{"another user's tags", "GET", tagsPath(alice, room1), bob, nil, 403, "M_FORBIDDEN", nil},
			{"tag another user's room", "PUT", tagsPath(alice, room1) + "/u.x", bob, map[string]any{}, 403, "M_FORBIDDEN", nil},
			{"room not joined", "PUT", tagsPath(bob, room2) + "/u.x", bob, map[string]any{}, 403, "M_FORBIDDEN", nil},
			{"bad room", "GET", tagsPath(alice, "room"), alice, nil, 400, "M_INVALID_PARAM", nil},
		}
		for _, c := range steps {
			status, code, body := h.do(c.method, c.path, c.as, c.body)
			if status != c.status || code != c.code {
				t.Fatalf("%s: got %d %s (%s), want %d %s", c.name, status, code, body, c.status, c.code)
			}
			if c.want != nil && !jsonEqual(t, body, c.want) {
				t.Fatalf("%s: body %s, want %v", c.name, body, c.want)
			}
		}
		// Tags come down /sync as the room's m.tag account data.
		d := h.sync(SyncQuery{UserID: alice, DeviceID: "DEV", Initial: true})
		got := decode(t, d.RoomAccountData[room1])
		if len(got) != 1 || got[0]["type"] != "m.tag" {
			t.Fatalf("room account data %v", got)
		}
	})
}
