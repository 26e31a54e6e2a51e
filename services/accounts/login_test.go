package accounts

import (
	"net/http/httptest"
	"testing"
	"time"
)

func TestLoginFlows(t *testing.T) {
	h := newHarness(t, engines()[0], nil)
	r := h.do("GET", v3+"/login", "", nil)
	h.expect(r, 200, "")
	flows := r.body["flows"].([]any)
	if len(flows) != 2 || flows[0].(map[string]any)["type"] != loginPassword ||
		flows[1].(map[string]any)["type"] != loginToken || flows[1].(map[string]any)["get_login_token"] != true {
		t.Fatalf("flows %v", flows)
	}
	h.expect(h.do("PATCH", v3+"/login", "", nil), 405, "M_UNRECOGNIZED")
}

func TestLoginIdentifiers(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		h := newHarness(t, e, nil)
		h.register("alice", "pw")
		id := func(typ, user string) map[string]any { return map[string]any{"type": typ, "user": user} }
		for _, tc := range []struct {
			name    string
			body    map[string]any
			status  int
			errcode string
		}{
			{"localpart", map[string]any{"identifier": id("m.id.user", "alice"), "password": "pw"}, 200, ""},
			{"user ID", map[string]any{"identifier": id("m.id.user", "@alice:test.example"), "password": "pw"}, 200, ""},
			{"capitalised", map[string]any{"identifier": id("m.id.user", "Alice"), "password": "pw"}, 200, ""},
			{"deprecated user", map[string]any{"user": "alice", "password": "pw"}, 200, ""},
			{"deprecated user ID", map[string]any{"user": "@alice:test.example", "password": "pw"}, 200, ""},
			{"wrong password", map[string]any{"identifier": id("m.id.user", "alice"), "password": "nope"}, 403, "M_FORBIDDEN"},
			{"unknown user", map[string]any{"identifier": id("m.id.user", "bob"), "password": "pw"}, 403, "M_FORBIDDEN"},
			{"other server", map[string]any{"identifier": id("m.id.user", "@alice:elsewhere.example"), "password": "pw"}, 403, "M_FORBIDDEN"},
			{"bad user ID", map[string]any{"identifier": id("m.id.user", "@alice"), "password": "pw"}, 403, "M_FORBIDDEN"},
			{"third party", map[string]any{"identifier": map[string]any{"type": "m.id.thirdparty", "medium": "email", "address": "a@b.c"}, "password": "pw"}, 403, "M_FORBIDDEN"},
			{"phone", map[string]any{"identifier": map[string]any{"type": "m.id.phone", "country": "GB", "phone": "123"}, "password": "pw"}, 403, "M_FORBIDDEN"},
			{"deprecated medium", map[string]any{"medium": "email", "address": "a@b.c", "password": "pw"}, 403, "M_FORBIDDEN"},
			{"unknown identifier type", map[string]any{"identifier": id("m.id.weird", "alice"), "password": "pw"}, 400, "M_INVALID_PARAM"},
			{"identifier without user", map[string]any{"identifier": map[string]any{"type": "m.id.user"}, "password": "pw"}, 400, "M_MISSING_PARAM"},
			{"identifier not object", map[string]any{"identifier": "alice", "password": "pw"}, 400, "M_BAD_JSON"},
			{"no identifier", map[string]any{"password": "pw"}, 400, "M_MISSING_PARAM"},
			{"no password", map[string]any{"identifier": id("m.id.user", "alice")}, 400, "M_MISSING_PARAM"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				body := map[string]any{"type": "m.login.password"}
				for k, v := range tc.body {
					body[k] = v
				}
				r := h.do("POST", v3+"/login", "", body)
				h.expect(r, tc.status, tc.errcode)
				if tc.status == 200 && (r.str("user_id") != "@alice:test.example" || r.str("access_token") == "" || r.str("device_id") == "") {
					t.Fatalf("login response %v", r.body)
				}
			})
		}
		h.expect(h.do("POST", v3+"/login", "", map[string]any{"type": "m.login.sso"}), 400, "M_UNKNOWN")
		h.expect(h.do("POST", v3+"/login", "", map[string]any{}), 400, "M_MISSING_PARAM")
		h.expect(h.do("POST", v3+"/login", "", ""), 400, "M_NOT_JSON")
	})
}

func TestLoginDeviceReuse(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		h := newHarness(t, e, nil)
		h.register("alice", "pw")
		first := h.loginOK("alice", "pw", map[string]any{"device_id": "MYDEVICE", "initial_device_display_name": "Laptop"})
		if first.deviceID != "MYDEVICE" {
			t.Fatalf("device ID %q", first.deviceID)
		}
		h.expect(h.whoami(first.token), 200, "")
		second := h.loginOK("alice", "pw", map[string]any{"device_id": "MYDEVICE", "initial_device_display_name": "Ignored"})
		if second.deviceID != "MYDEVICE" || second.token == first.token {
			t.Fatalf("second login %+v", second)
		}
		r := h.whoami(first.token)
		h.expect(r, 401, "M_UNKNOWN_TOKEN")
		if r.body["soft_logout"] != false {
			t.Fatalf("replaced token: %v", r.body)
		}
		d := h.do("GET", v3+"/devices/MYDEVICE", second.token, nil)
		if d.str("display_name") != "Laptop" {
			t.Fatalf("device %v", d.body)
		}
		if n := len(h.do("GET", v3+"/devices", second.token, nil).body["devices"].([]any)); n != 2 {
			t.Fatalf("%d devices, want 2 (registration and MYDEVICE)", n)
		}
	})
}

func TestAccessTokenErrors(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		h := newHarness(t, e, nil)
		a := h.register("alice", "pw")
		for _, tc := range []struct {
			name    string
			header  string
			query   string
			status  int
			errcode string
		}{
			{"none", "", "", 401, "M_MISSING_TOKEN"},
			{"not bearer", "Basic abc", "", 401, "M_MISSING_TOKEN"},
			{"empty bearer", "Bearer ", "", 401, "M_MISSING_TOKEN"},
			{"garbage", "Bearer garbage", "", 401, "M_UNKNOWN_TOKEN"},
			{"unknown", "Bearer axa_unknown", "", 401, "M_UNKNOWN_TOKEN"},
			{"valid", "Bearer " + a.token, "", 200, ""},
			{"lower-case scheme", "bearer " + a.token, "", 200, ""},
			{"query", "", "?access_token=" + a.token, 200, ""},
			{"unknown query", "", "?access_token=axa_x", 401, "M_UNKNOWN_TOKEN"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				req := httptest.NewRequest("GET", v3+"/account/whoami"+tc.query, nil)
				if tc.header != "" {
					req.Header.Set("Authorization", tc.header)
				}
				d, err := h.svc.Authenticate(req)
				r := h.do("GET", v3+"/account/whoami"+tc.query, "", nil)
				if tc.header != "" {
					r = h.doHeader("GET", v3+"/account/whoami"+tc.query, tc.header)
				}
				h.expect(r, tc.status, tc.errcode)
				if tc.status == 200 {
					if err != nil || d.UserID != a.userID || d.DeviceID != a.deviceID || d.IsGuest || d.IsAdmin {
						t.Fatalf("Authenticate = %+v, %v", d, err)
					}
				} else if r.body["soft_logout"] == true {
					t.Fatalf("soft_logout for %s: %v", tc.name, r.body)
				}
			})
		}
	})
}

func TestRefreshTokens(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		h := newHarness(t, e, func(c *Config) { c.AccessTokenLifetime = time.Minute })
		h.register("alice", "pw")
		r := h.login("alice", "pw", map[string]any{"refresh_token": true})
		h.expect(r, 200, "")
		if r.body["expires_in_ms"] != float64(60000) || r.str("refresh_token") == "" {
			t.Fatalf("login %v", r.body)
		}
		at0, rt0 := r.str("access_token"), r.str("refresh_token")
		h.expect(h.whoami(at0), 200, "")

		// Expiry: soft logout, so that the client refreshes.
		h.clock.Advance(61 * time.Second)
		w := h.whoami(at0)
		h.expect(w, 401, "M_UNKNOWN_TOKEN")
		if w.body["soft_logout"] != true {
			t.Fatalf("expired token: %v", w.body)
		}
		refresh := func(tok string) resp {
			return h.do("POST", v3+"/refresh", "", map[string]any{"refresh_token": tok})
		}
		r1 := refresh(rt0)
		h.expect(r1, 200, "")
		if r1.body["expires_in_ms"] != float64(60000) || r1.str("refresh_token") == rt0 {
			t.Fatalf("refresh %v", r1.body)
		}
		// The response was lost: refreshing again with rt0 works and
		// revokes the first attempt's pair.
		r2 := refresh(rt0)
		h.expect(r2, 200, "")
		h.expect(h.whoami(r1.str("access_token")), 401, "M_UNKNOWN_TOKEN")
		h.expect(refresh(r1.str("refresh_token")), 401, "M_UNKNOWN_TOKEN")
		// Using the new access token revokes rt0.
		w = h.whoami(r2.str("access_token"))
		h.expect(w, 200, "")
		if w.str("device_id") == "" {
			t.Fatalf("whoami %v", w.body)
		}
		u := refresh(rt0)
		h.expect(u, 401, "M_UNKNOWN_TOKEN")
		if u.body["soft_logout"] != false {
			t.Fatalf("revoked refresh token: %v", u.body)
		}
		// Using a new refresh token directly also revokes its parent.
		r3 := refresh(r2.str("refresh_token"))
		h.expect(r3, 200, "")
		r4 := refresh(r3.str("refresh_token"))
		h.expect(r4, 200, "")
		h.expect(refresh(r2.str("refresh_token")), 401, "M_UNKNOWN_TOKEN")
		h.expect(h.whoami(r4.str("access_token")), 200, "")
		h.expect(h.whoami(r3.str("access_token")), 401, "M_UNKNOWN_TOKEN")
		h.expect(refresh(r3.str("refresh_token")), 401, "M_UNKNOWN_TOKEN")

		h.expect(refresh("axr_unknown"), 401, "M_UNKNOWN_TOKEN")
		h.expect(refresh("nonsense"), 401, "M_UNKNOWN_TOKEN")
		h.expect(h.do("POST", v3+"/refresh", "", map[string]any{}), 400, "M_MISSING_PARAM")

		// Logging out ends the refresh token too.
		h.expect(h.do("POST", v3+"/logout", r4.str("access_token"), nil), 200, "")
		h.expect(refresh(r4.str("refresh_token")), 401, "M_UNKNOWN_TOKEN")
	})
}

func TestLogout(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		h := newHarness(t, e, func(c *Config) { c.AccessTokenLifetime = time.Minute })
		a := h.register("alice", "pw")
		b := h.loginOK("alice", "pw", nil)
		c := h.loginOK("alice", "pw", map[string]any{"refresh_token": true})

		h.expect(h.do("POST", v3+"/logout", b.token, nil), 200, "")
		h.expect(h.whoami(b.token), 401, "M_UNKNOWN_TOKEN")
		h.expect(h.do("GET", v3+"/devices/"+b.deviceID, a.token, nil), 404, "M_NOT_FOUND")
		h.expect(h.do("POST", v3+"/logout", b.token, nil), 401, "M_UNKNOWN_TOKEN")
		h.expect(h.do("POST", v3+"/logout", "", nil), 401, "M_MISSING_TOKEN")

		// An expired token can still log out.
		h.clock.Advance(2 * time.Minute)
		h.expect(h.whoami(c.token), 401, "M_UNKNOWN_TOKEN")
		h.expect(h.do("POST", "/_matrix/client/r0/logout", c.token, nil), 200, "")

		d := h.loginOK("alice", "pw", nil)
		h.expect(h.do("POST", v3+"/logout/all", d.token, nil), 200, "")
		for _, tok := range []string{a.token, d.token} {
			h.expect(h.whoami(tok), 401, "M_UNKNOWN_TOKEN")
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if got := len(h.devicesDeleted[a.userID]); got != 4 {
			t.Fatalf("OnDevicesDeleted got %v, want 4 devices", h.devicesDeleted[a.userID])
		}
	})
}

func TestGetLoginToken(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		h := newHarness(t, e, nil)
		a := h.register("alice", "pw")
		const path = "/_matrix/client/v1/login/get_token"
		h.expect(h.do("POST", path, "", map[string]any{}), 401, "M_MISSING_TOKEN")
		r := h.withPassword("POST", path, a, nil)
		h.expect(r, 200, "")
		tok := r.str("login_token")
		if r.body["expires_in_ms"] != float64(120000) || tok == "" {
			t.Fatalf("get_token %v", r.body)
		}
		// Every token needs its own authentication.
		h.expect(h.do("POST", path, a.token, map[string]any{}), 401, "")

		loginTok := func(tok string) resp {
			return h.do("POST", v3+"/login", "", map[string]any{"type": "m.login.token", "token": tok})
		}
		l := loginTok(tok)
		h.expect(l, 200, "")
		if l.str("user_id") != string(a.userID) || l.str("device_id") == a.deviceID {
			t.Fatalf("token login %v", l.body)
		}
		h.expect(loginTok(tok), 403, "M_FORBIDDEN")
		h.expect(loginTok("axl_unknown"), 403, "M_FORBIDDEN")
		h.expect(loginTok("garbage"), 403, "M_FORBIDDEN")
		h.expect(h.do("POST", v3+"/login", "", map[string]any{"type": "m.login.token"}), 400, "M_MISSING_PARAM")

		r = h.withPassword("POST", path, a, nil)
		h.expect(r, 200, "")
		h.clock.Advance(121 * time.Second)
		h.expect(loginTok(r.str("login_token")), 403, "M_FORBIDDEN")

		// A wrong password in the stage is a 401 that may be retried.
		r = h.do("POST", path, a.token, map[string]any{})
		r = h.do("POST", path, a.token, map[string]any{"auth": map[string]any{"type": stagePassword, "session": r.str("session"),
			"identifier": map[string]any{"type": "m.id.user", "user": "alice"}, "password": "wrong"}})
		h.expect(r, 401, "M_FORBIDDEN")
		if len(flowsOf(r)) != 1 || r.str("session") == "" {
			t.Fatalf("failed stage answer %v", r.body)
		}
	})
}

// doHeader sends a request with a raw Authorization header.
func (h *harness) doHeader(method, path, authz string) resp {
	h.t.Helper()
	req := httptest.NewRequest(method, h.srv.URL+path, nil)
	req.RequestURI = ""
	req.Header.Set("Authorization", authz)
	res, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	return decodeResp(h.t, res)
}
