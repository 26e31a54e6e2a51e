package accounts

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func openIDPath(userID string) string {
	return v3 + "/user/" + url.PathEscape(userID) + "/openid/request_token"
}

func TestOpenIDTokens(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		h := newHarness(t, e, nil)
		ctx := h.ctx()
		a := h.register("alice", "pw")
		b := h.register("bob", "pw")

		r := h.do("POST", openIDPath(string(a.userID)), a.token, map[string]any{})
		h.expect(r, 200, "")
		tok := r.str("access_token")
		if !strings.HasPrefix(tok, openIDTokenPrefix) || r.str("token_type") != "Bearer" ||
			r.str("matrix_server_name") != string(testServer) || r.body["expires_in"] != float64(3600) {
			t.Fatalf("request_token answered %v", r.body)
		}
		// The r0 path works too.
		h.expect(h.do("POST", "/_matrix/client/r0/user/"+url.PathEscape(string(a.userID))+"/openid/request_token", a.token, map[string]any{}), 200, "")

		if u, err := h.svc.OpenIDUser(ctx, tok); err != nil || u != a.userID {
			t.Fatalf("OpenIDUser = %q, %v", u, err)
		}
		// The token is for OpenID only: it is no access token …
		h.expect(h.whoami(tok), 401, "M_UNKNOWN_TOKEN")
		// … and an access token is no OpenID token.
		if u, err := h.svc.OpenIDUser(ctx, a.token); err != nil || u != "" {
			t.Fatalf("an access token as OpenID token: %q, %v", u, err)
		}
		for _, bad := range []string{"", "axo_nope", tok + "x"} {
			if u, err := h.svc.OpenIDUser(ctx, bad); err != nil || u != "" {
				t.Errorf("OpenIDUser(%q) = %q, %v", bad, u, err)
			}
		}
		// Only the hash is stored.
		var n int
		if err := h.db.QueryRow(ctx, `SELECT COUNT(*) FROM accounts_openid_tokens WHERE user_id = $1`, string(a.userID)).Scan(&n); err != nil || n != 2 {
			t.Fatalf("%d rows, %v", n, err)
		}
		rows, err := h.db.Query(ctx, `SELECT token_hash FROM accounts_openid_tokens`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var hash []byte
			if err := rows.Scan(&hash); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(hash), tok) || len(hash) != 32 {
				t.Errorf("stored token hash %q", hash)
			}
		}
		rows.Close()

		// Bad requests.
		for _, c := range []struct {
			path, token string
			body        any
			status      int
			code        string
		}{
			{openIDPath(string(b.userID)), a.token, map[string]any{}, 403, "M_FORBIDDEN"},
			{openIDPath(string(a.userID)), "", map[string]any{}, 401, "M_MISSING_TOKEN"},
			{openIDPath(string(a.userID)), "axa_nope", map[string]any{}, 401, "M_UNKNOWN_TOKEN"},
			{openIDPath(string(a.userID)), a.token, nil, 400, "M_NOT_JSON"},
			{openIDPath(string(a.userID)), a.token, "{", 400, "M_NOT_JSON"},
			{openIDPath(string(a.userID)), a.token, "[]", 400, "M_BAD_JSON"},
			{openIDPath(string(a.userID)), a.token, "null", 400, "M_BAD_JSON"},
		} {
			r := h.do("POST", c.path, c.token, c.body)
			if r.status != c.status || r.errcode() != c.code {
				t.Errorf("%s %v: %d %v, want %d %s", c.path, c.body, r.status, r.body, c.status, c.code)
			}
		}

		// A guest cannot have one.
		g := h.do("POST", v3+"/register?kind=guest", "", map[string]any{})
		h.expect(g, 200, "")
		h.expect(h.do("POST", openIDPath(g.str("user_id")), g.str("access_token"), map[string]any{}), 403, "M_GUEST_ACCESS_FORBIDDEN")

		// Tokens expire after an hour …
		bob := h.do("POST", openIDPath(string(b.userID)), b.token, map[string]any{}).str("access_token")
		h.clock.Advance(OpenIDTokenLifetime - time.Second)
		if u, _ := h.svc.OpenIDUser(ctx, tok); u != a.userID {
			t.Fatal("the token expired early")
		}
		h.clock.Advance(time.Second)
		if u, err := h.svc.OpenIDUser(ctx, tok); err != nil || u != "" {
			t.Fatalf("an expired token: %q, %v", u, err)
		}
		// … and the janitor deletes the expired ones.
		fresh := h.do("POST", openIDPath(string(b.userID)), b.token, map[string]any{}).str("access_token")
		if _, err := h.svc.Cleanup(ctx); err != nil {
			t.Fatal(err)
		}
		if err := h.db.QueryRow(ctx, `SELECT COUNT(*) FROM accounts_openid_tokens`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("after the cleanup %d rows, %v", n, err)
		}
		if u, _ := h.svc.OpenIDUser(ctx, fresh); u != b.userID {
			t.Fatalf("fresh token: %q", u)
		}
		if u, _ := h.svc.OpenIDUser(ctx, bob); u != "" {
			t.Fatal("bob's expired token still works")
		}

		// A deactivated account's tokens stop working.
		h.expect(h.withPassword("POST", v3+"/account/deactivate", b, nil), 200, "")
		if u, err := h.svc.OpenIDUser(ctx, fresh); err != nil || u != "" {
			t.Fatalf("a deactivated user's token: %q, %v", u, err)
		}
	})
}

func TestDeviceList(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		h := newHarness(t, e, nil)
		ctx := h.ctx()
		a := h.register("alice", "pw")
		h.loginOK("alice", "pw", map[string]any{"device_id": "BBB", "initial_device_display_name": "Tablet"})

		list, s1, err := h.svc.DeviceList(ctx, string(a.userID))
		if err != nil || len(list) != 2 || s1 != 2 {
			t.Fatalf("DeviceList = %v, %d, %v; want 2 devices at stream ID 2", list, s1, err)
		}
		byID := map[string]string{}
		for _, d := range list {
			byID[d.DeviceID] = d.DisplayName
		}
		if name, ok := byID["BBB"]; !ok || name != "Tablet" {
			t.Errorf("devices %v", list)
		}
		if _, ok := byID[a.deviceID]; !ok {
			t.Errorf("devices %v lack %s", list, a.deviceID)
		}
		// The stream ID counts changes: it stays without one, and every
		// rename, new device and deletion adds one, even back to an
		// earlier list.
		if _, again, _ := h.svc.DeviceList(ctx, string(a.userID)); again != s1 {
			t.Errorf("stream ID changed without a change: %d, %d", s1, again)
		}
		h.expect(h.do("PUT", v3+"/devices/BBB", a.token, map[string]any{"display_name": "Old tablet"}), 200, "")
		if _, s2, _ := h.svc.DeviceList(ctx, string(a.userID)); s2 != 3 {
			t.Errorf("stream ID %d after a rename, want 3", s2)
		}
		h.expect(h.do("PUT", v3+"/devices/BBB", a.token, map[string]any{"display_name": "Tablet"}), 200, "")
		c := h.loginOK("alice", "pw", map[string]any{"device_id": "CCC"})
		if _, s3, _ := h.svc.DeviceList(ctx, string(a.userID)); s3 != 5 {
			t.Errorf("stream ID %d after a rename back and a new device, want 5", s3)
		}
		h.expect(h.do("POST", v3+"/logout", c.token, map[string]any{}), 200, "")
		if l4, s4, _ := h.svc.DeviceList(ctx, string(a.userID)); s4 != 6 || len(l4) != 2 {
			t.Errorf("back to the first list: %v, stream ID %d, want 6", l4, s4)
		}

		for _, u := range []string{"@nobody:test.example", "@alice:elsewhere.example"} {
			if list, s, err := h.svc.DeviceList(ctx, u); err != nil || len(list) != 0 || s != 0 {
				t.Errorf("DeviceList(%s) = %v, %d, %v", u, list, s, err)
			}
		}
	})
}
