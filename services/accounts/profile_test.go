package accounts

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/matrix/id"
)

func TestProfile(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		h := newHarness(t, e, nil)
		a := h.register("alice", "pw")
		bob := h.register("bob", "pw")
		const me = v3 + "/profile/@alice:test.example"
		put := func(key string, body any) resp { return h.do("PUT", me+"/"+key, a.token, body) }

		h.expect(put("displayname", map[string]any{"displayname": "Alice"}), 200, "")
		h.expect(put("avatar_url", map[string]any{"avatar_url": "mxc://test.example/abc_DEF-1"}), 200, "")
		h.expect(put("m.tz", map[string]any{"m.tz": "Europe/Paris"}), 200, "")
		h.expect(put("com.example.pets", map[string]any{"com.example.pets": []any{"cat", map[string]any{"dog": 1}}, "ignored": true}), 200, "")

		r := h.do("GET", me, "", nil)
		h.expect(r, 200, "")
		if r.str("displayname") != "Alice" || r.str("avatar_url") != "mxc://test.example/abc_DEF-1" || r.str("m.tz") != "Europe/Paris" ||
			len(r.body["com.example.pets"].([]any)) != 2 {
			t.Fatalf("profile %v", r.body)
		}
		if f := h.do("GET", "/_matrix/client/r0/profile/@alice:test.example/displayname", "", nil); len(f.body) != 1 || f.str("displayname") != "Alice" {
			t.Fatalf("displayname field %v", f.body)
		}

		// Each change of displayname or avatar_url is reported once.
		h.expect(put("displayname", map[string]any{"displayname": "Alice"}), 200, "") // unchanged
		h.expect(h.do("DELETE", me+"/displayname", a.token, nil), 200, "")
		h.expect(h.do("GET", me+"/displayname", "", nil), 404, "M_NOT_FOUND")
		h.expect(put("avatar_url", map[string]any{"avatar_url": ""}), 200, "") // empty clears
		h.mu.Lock()
		calls := append([]profileCall(nil), h.profileCalls...)
		h.mu.Unlock()
		want := []profileCall{
			{a.userID, "Alice", ""},
			{a.userID, "Alice", "mxc://test.example/abc_DEF-1"},
			{a.userID, "", "mxc://test.example/abc_DEF-1"},
			{a.userID, "", ""},
		}
		if len(calls) != len(want) {
			t.Fatalf("OnProfileChange calls %v, want %v", calls, want)
		}
		for i := range want {
			if calls[i] != want[i] {
				t.Fatalf("OnProfileChange call %d = %v, want %v", i, calls[i], want[i])
			}
		}
		h.expect(h.do("DELETE", me+"/com.example.pets", a.token, nil), 200, "")
		h.expect(h.do("DELETE", me+"/com.example.pets", a.token, nil), 200, "") // already gone
		h.expect(h.do("GET", me+"/com.example.pets", "", nil), 404, "M_NOT_FOUND")

		bigValue := strings.Repeat("x", 40*1024)
		for _, tc := range []struct {
			name, method, path, token string
			body                      any
			status                    int
			errcode                   string
		}{
			{"other's profile", "PUT", v3 + "/profile/@bob:test.example/displayname", a.token, map[string]any{"displayname": "x"}, 403, "M_FORBIDDEN"},
			{"other's field", "DELETE", v3 + "/profile/@bob:test.example/displayname", a.token, nil, 403, "M_FORBIDDEN"},
			{"no token", "PUT", me + "/displayname", "", map[string]any{"displayname": "x"}, 401, "M_MISSING_TOKEN"},
			{"missing key", "PUT", me + "/displayname", a.token, map[string]any{"avatar_url": "x"}, 400, "M_MISSING_PARAM"},
			{"null displayname", "PUT", me + "/displayname", a.token, map[string]any{"displayname": nil}, 400, "M_BAD_JSON"},
			{"number displayname", "PUT", me + "/displayname", a.token, map[string]any{"displayname": 5}, 400, "M_BAD_JSON"},
			{"long displayname", "PUT", me + "/displayname", a.token, map[string]any{"displayname": strings.Repeat("é", 257)}, 400, "M_INVALID_PARAM"},
			{"http avatar", "PUT", me + "/avatar_url", a.token, map[string]any{"avatar_url": "https://x.org/a.png"}, 400, "M_INVALID_PARAM"},
			{"bad mxc", "PUT", me + "/avatar_url", a.token, map[string]any{"avatar_url": "mxc://x.org/a/b"}, 400, "M_INVALID_PARAM"},
			{"mxc no media", "PUT", me + "/avatar_url", a.token, map[string]any{"avatar_url": "mxc://x.org/"}, 400, "M_INVALID_PARAM"},
			{"bad key", "PUT", me + "/Nope", a.token, map[string]any{"Nope": 1}, 400, "M_INVALID_PARAM"},
			{"unnamespaced key", "PUT", me + "/pets", a.token, map[string]any{"pets": 1}, 400, "M_INVALID_PARAM"},
			{"long key", "PUT", me + "/com.example." + strings.Repeat("a", 250), a.token, map[string]any{}, 400, "M_KEY_TOO_LARGE"},
			{"body not object", "PUT", me + "/displayname", a.token, `"x"`, 400, "M_BAD_JSON"},
			{"bad user ID", "GET", v3 + "/profile/alice", "", nil, 400, "M_INVALID_PARAM"},
			{"unknown user", "GET", v3 + "/profile/@nobody:test.example", "", nil, 404, "M_NOT_FOUND"},
			{"unknown user field", "GET", v3 + "/profile/@nobody:test.example/displayname", "", nil, 404, "M_NOT_FOUND"},
			{"remote user", "GET", v3 + "/profile/@alice:elsewhere.example", "", nil, 404, "M_NOT_FOUND"},
			{"bad key get", "GET", me + "/Nope", "", nil, 400, "M_INVALID_PARAM"},
			{"first big field", "PUT", me + "/com.example.a", a.token, map[string]any{"com.example.a": bigValue}, 200, ""},
			{"profile too large", "PUT", me + "/com.example.b", a.token, map[string]any{"com.example.b": bigValue}, 400, "M_PROFILE_TOO_LARGE"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				h.expect(h.do(tc.method, tc.path, tc.token, tc.body), tc.status, tc.errcode)
			})
		}
		if p := h.do("GET", v3+"/profile/@bob:test.example", "", nil); p.str("displayname") != "bob" {
			t.Fatalf("bob's profile changed: %v", p.body)
		}
		_ = bob

		dn, av, err := h.svc.Profile(h.ctx(), "@bob:test.example")
		if err != nil || dn != "bob" || av != "" {
			t.Fatalf("Profile = %q, %q, %v", dn, av, err)
		}
		_, _, err = h.svc.Profile(h.ctx(), "@nobody:test.example")
		if !errors.Is(err, ErrUnknownUser) || httpx.CodeOf(err) != httpx.CodeNotFound {
			t.Fatalf("Profile of an unknown user: %v", err)
		}
	})
}

func TestRemoteProfile(t *testing.T) {
	h := newHarness(t, engines()[0], func(c *Config) {
		c.RemoteProfile = func(_ context.Context, u id.UserID) (map[string]any, error) {
			if u == "@carol:elsewhere.example" {
				return map[string]any{"displayname": "Carol"}, nil
			}
			return nil, httpx.NotFound("Profile not found")
		}
	})
	if r := h.do("GET", v3+"/profile/@carol:elsewhere.example/displayname", "", nil); r.str("displayname") != "Carol" {
		t.Fatalf("remote profile %v", r.body)
	}
	h.expect(h.do("GET", v3+"/profile/@dave:elsewhere.example", "", nil), 404, "M_NOT_FOUND")
	a := h.register("alice", "pw")
	h.expect(h.do("PUT", v3+"/profile/@carol:elsewhere.example/displayname", a.token, map[string]any{"displayname": "x"}), 403, "M_FORBIDDEN")
}
