package accounts

import (
	"reflect"
	"regexp"
	"testing"
	"time"
)

func TestRegisterUIADance(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		h := newHarness(t, e, nil)
		body := map[string]any{"username": "alice", "password": "secret", "initial_device_display_name": "Phone"}
		r := h.do("POST", v3+"/register", "", body)
		h.expect(r, 401, "")
		if got := flowsOf(r); !reflect.DeepEqual(got, [][]string{{stageDummy}}) {
			t.Fatalf("flows = %v", got)
		}
		if r.str("session") == "" || r.body["params"] == nil {
			t.Fatalf("challenge without session or params: %v", r.body)
		}
		// A stage that is not in any flow keeps the session and says so.
		body["auth"] = map[string]any{"type": stagePassword, "session": r.str("session")}
		r2 := h.do("POST", v3+"/register", "", body)
		h.expect(r2, 401, "M_FORBIDDEN")
		if r2.str("session") != r.str("session") {
			t.Fatalf("session changed: %v", r2.body)
		}
		body["auth"] = map[string]any{"type": stageDummy, "session": r.str("session")}
		r = h.do("POST", v3+"/register", "", body)
		h.expect(r, 200, "")
		if r.str("user_id") != "@alice:test.example" || r.str("access_token") == "" || r.str("device_id") == "" || r.str("home_server") != "test.example" {
			t.Fatalf("register response %v", r.body)
		}
		if _, ok := r.body["expires_in_ms"]; ok {
			t.Fatalf("token without refresh support expires: %v", r.body)
		}
		w := h.whoami(r.str("access_token"))
		h.expect(w, 200, "")
		if w.str("user_id") != "@alice:test.example" || w.str("device_id") != r.str("device_id") || w.body["is_guest"] != false {
			t.Fatalf("whoami %v", w.body)
		}
		// The localpart is the default displayname; the device got its name.
		p := h.do("GET", v3+"/profile/@alice:test.example", "", nil)
		if p.str("displayname") != "alice" {
			t.Fatalf("profile %v", p.body)
		}
		d := h.do("GET", v3+"/devices/"+r.str("device_id"), r.str("access_token"), nil)
		if d.str("display_name") != "Phone" {
			t.Fatalf("device %v", d.body)
		}
		// The session was consumed: replaying it starts a new one.
		r = h.do("POST", v3+"/register", "", map[string]any{"username": "alice2", "password": "x", "auth": map[string]any{"session": body["auth"].(map[string]any)["session"]}})
		h.expect(r, 401, "")
		if r.str("session") == body["auth"].(map[string]any)["session"] {
			t.Fatal("a consumed session was reused")
		}
	})
}

func TestRegisterOneShotDummy(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		h := newHarness(t, e, nil)
		r := h.do("POST", "/_matrix/client/r0/register", "", map[string]any{
			"username": "bot", "password": "pw", "auth": map[string]any{"type": stageDummy}, "refresh_token": true,
		})
		h.expect(r, 200, "")
		if r.str("refresh_token") == "" || r.body["expires_in_ms"] != float64(DefaultAccessTokenLifetime.Milliseconds()) {
			t.Fatalf("register with refresh_token: %v", r.body)
		}
	})
}

func TestRegisterRejects(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		h := newHarness(t, e, nil)
		h.register("taken", "pw")
		long := make([]byte, 300)
		for i := range long {
			long[i] = 'a'
		}
		dummy := map[string]any{"type": stageDummy}
		for _, tc := range []struct {
			name    string
			query   string
			body    any
			status  int
			errcode string
		}{
			{"upper case", "", map[string]any{"username": "Alice", "password": "pw"}, 400, "M_INVALID_USERNAME"},
			{"bad character", "", map[string]any{"username": "al ice", "password": "pw"}, 400, "M_INVALID_USERNAME"},
			{"empty username", "", map[string]any{"username": "", "password": "pw"}, 400, "M_INVALID_USERNAME"},
			{"too long", "", map[string]any{"username": string(long), "password": "pw"}, 400, "M_INVALID_USERNAME"},
			{"taken", "", map[string]any{"username": "taken", "password": "pw"}, 400, "M_USER_IN_USE"},
			{"taken after auth", "", map[string]any{"username": "taken", "password": "pw", "auth": dummy}, 400, "M_USER_IN_USE"},
			{"bad kind", "?kind=admin", map[string]any{}, 400, "M_INVALID_PARAM"},
			{"not json", "", "{nope", 400, "M_NOT_JSON"},
			{"wrong type", "", map[string]any{"username": 5}, 400, "M_BAD_JSON"},
			{"auth not object", "", map[string]any{"auth": "dummy"}, 400, "M_BAD_JSON"},
			{"no password", "", map[string]any{"username": "nopw", "auth": dummy}, 400, "M_MISSING_PARAM"},
			{"bad device id", "", map[string]any{"username": "dev", "password": "pw", "device_id": ""}, 400, "M_INVALID_PARAM"},
			{"long password", "", map[string]any{"username": "lpw", "password": string(make([]byte, 2000))}, 400, "M_INVALID_PARAM"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				h.expect(h.do("POST", v3+"/register"+tc.query, "", tc.body), tc.status, tc.errcode)
			})
		}
		// Nothing of the rejected registrations exists.
		for _, u := range []string{"nopw", "dev", "lpw"} {
			h.expect(h.do("GET", v3+"/register/available?username="+u, "", nil), 200, "")
		}
	})
}

func TestRegisterAvailable(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		h := newHarness(t, e, nil)
		h.register("bob", "pw")
		for _, tc := range []struct {
			query   string
			status  int
			errcode string
		}{
			{"?username=carol", 200, ""},
			{"?username=bob", 400, "M_USER_IN_USE"},
			{"?username=Bob", 400, "M_INVALID_USERNAME"},
			{"?username=", 400, "M_INVALID_USERNAME"},
			{"", 400, "M_MISSING_PARAM"},
		} {
			r := h.do("GET", v3+"/register/available"+tc.query, "", nil)
			h.expect(r, tc.status, tc.errcode)
			if tc.status == 200 && r.body["available"] != true {
				t.Fatalf("%s: %v", tc.query, r.body)
			}
		}
	})
}

func TestRegisterClosed(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		h := newHarness(t, e, func(c *Config) { c.Registration = RegistrationClosed })
		h.expect(h.do("POST", v3+"/register", "", map[string]any{"username": "a", "password": "b"}), 403, "M_FORBIDDEN")
		h.expect(h.do("POST", v3+"/register?kind=guest", "", map[string]any{}), 403, "M_FORBIDDEN")
		h.expect(h.do("GET", "/_matrix/client/v1/register/m.login.registration_token/validity?token=abc", "", nil), 403, "M_FORBIDDEN")
		// The CLI still creates accounts.
		if _, err := h.svc.CreateUser(h.ctx(), "admin", "pw", true); err != nil {
			t.Fatal(err)
		}
		h.loginOK("admin", "pw", nil)
	})
}

func TestRegisterWithoutUsername(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		h := newHarness(t, e, nil)
		r := h.do("POST", v3+"/register", "", map[string]any{"password": "pw", "auth": map[string]any{"type": stageDummy}})
		h.expect(r, 200, "")
		if !regexp.MustCompile(`^@[a-z0-9]{12}:test\.example$`).MatchString(r.str("user_id")) {
			t.Fatalf("generated user ID %q", r.str("user_id"))
		}
	})
}

func TestRegisterInhibitLogin(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		h := newHarness(t, e, nil)
		r := h.do("POST", v3+"/register", "", map[string]any{
			"username": "quiet", "password": "pw", "inhibit_login": true, "refresh_token": true,
			"auth": map[string]any{"type": stageDummy},
		})
		h.expect(r, 200, "")
		for _, k := range []string{"access_token", "device_id", "refresh_token", "expires_in_ms"} {
			if _, ok := r.body[k]; ok {
				t.Fatalf("inhibit_login response has %s: %v", k, r.body)
			}
		}
		if r.str("user_id") != "@quiet:test.example" {
			t.Fatalf("response %v", r.body)
		}
		a := h.loginOK("quiet", "pw", nil)
		d := h.do("GET", v3+"/devices", a.token, nil)
		if n := len(d.body["devices"].([]any)); n != 1 {
			t.Fatalf("%d devices after inhibited registration and one login", n)
		}
	})
}

func TestRegistrationTokens(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		h := newHarness(t, e, func(c *Config) { c.Registration = RegistrationByToken })
		ctx := h.ctx()
		one := 1
		if err := h.svc.CreateRegistrationToken(ctx, "tok-1", &one, nil); err != nil {
			t.Fatal(err)
		}
		if err := h.svc.CreateRegistrationToken(ctx, "tok-1", nil, nil); err != ErrRegistrationTokenExists {
			t.Fatalf("duplicate token: %v", err)
		}
		if err := h.svc.CreateRegistrationToken(ctx, "bad token", nil, nil); err == nil {
			t.Fatal("a token outside the grammar was accepted")
		}
		past := h.clock.Now().Add(-time.Minute)
		if err := h.svc.CreateRegistrationToken(ctx, "old", nil, &past); err != nil {
			t.Fatal(err)
		}
		validity := func(tok string) any {
			r := h.do("GET", "/_matrix/client/v1/register/m.login.registration_token/validity?token="+tok, "", nil)
			h.expect(r, 200, "")
			return r.body["valid"]
		}
		for tok, want := range map[string]bool{"tok-1": true, "old": false, "nope": false, "bad%20token": false} {
			if got := validity(tok); got != want {
				t.Errorf("validity(%s) = %v, want %v", tok, got, want)
			}
		}
		h.expect(h.do("GET", "/_matrix/client/v1/register/m.login.registration_token/validity", "", nil), 400, "M_MISSING_PARAM")

		// Guests need open registration.
		h.expect(h.do("POST", v3+"/register?kind=guest", "", map[string]any{}), 403, "M_FORBIDDEN")

		start := func(username string) string {
			r := h.do("POST", v3+"/register", "", map[string]any{"username": username, "password": "pw"})
			h.expect(r, 401, "")
			if got := flowsOf(r); !reflect.DeepEqual(got, [][]string{{stageRegistrationToken}}) {
				t.Fatalf("flows = %v", got)
			}
			return r.str("session")
		}
		stage := func(username, session, tok string) resp {
			return h.do("POST", v3+"/register", "", map[string]any{"username": username, "password": "pw",
				"auth": map[string]any{"type": stageRegistrationToken, "session": session, "token": tok}})
		}
		// Dummy auth is not a flow here.
		s1 := start("u1")
		r := h.do("POST", v3+"/register", "", map[string]any{"username": "u1", "password": "pw", "auth": map[string]any{"type": stageDummy, "session": s1}})
		h.expect(r, 401, "M_FORBIDDEN")
		h.expect(stage("u1", s1, "old"), 401, "M_FORBIDDEN")
		h.expect(stage("u1", s1, "nope"), 401, "M_FORBIDDEN")

		// Two sessions pass the stage of a one-use token; only the first
		// registration gets to use it.
		s2 := start("u2")
		h.expect(stage("u1", s1, "tok-1"), 200, "")
		h.expectBool(validity("tok-1").(bool), false)
		h.expect(h.do("POST", v3+"/register", "", map[string]any{"username": "u2", "password": "pw",
			"auth": map[string]any{"type": stageRegistrationToken, "session": s2, "token": "tok-1"}}), 401, "M_FORBIDDEN")

		// Sessions that both passed the stage of a one-use token: the first
		// registration uses it up, the second fails at the commit and leaves
		// nothing behind.
		if err := h.svc.CreateRegistrationToken(ctx, "tok-2", &one, nil); err != nil {
			t.Fatal(err)
		}
		s3, s4 := start("u3"), start("u4")
		body := func(u, s string) map[string]any {
			return map[string]any{"username": u, "auth": map[string]any{"type": stageRegistrationToken, "session": s, "token": "tok-2"}}
		}
		h.expect(h.do("POST", v3+"/register", "", body("u3", s3)), 400, "M_MISSING_PARAM") // stage passed, no password yet
		h.expect(h.do("POST", v3+"/register", "", body("u4", s4)), 400, "M_MISSING_PARAM")
		finish := func(u, s string) resp {
			return h.do("POST", v3+"/register", "", map[string]any{"username": u, "password": "pw", "auth": map[string]any{"session": s}})
		}
		h.expect(finish("u3", s3), 200, "")
		h.expect(finish("u4", s4), 403, "M_FORBIDDEN")
		h.expect(h.do("GET", v3+"/register/available?username=u4", "", nil), 200, "")

		toks, err := h.svc.RegistrationTokens(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(toks) != 3 || toks[1].Token != "tok-1" || toks[1].Completed != 1 || *toks[1].UsesAllowed != 1 ||
			toks[0].ExpiresAt == nil || toks[0].UsesAllowed != nil || toks[2].Completed != 1 {
			t.Fatalf("tokens %+v", toks)
		}
	})
}

// expectBool fails the test unless got is want.
func (h *harness) expectBool(got, want bool) {
	h.t.Helper()
	if got != want {
		h.t.Fatalf("got %v, want %v", got, want)
	}
}

func TestRegisterGuestAndUpgrade(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		h := newHarness(t, e, nil)
		r := h.do("POST", v3+"/register?kind=guest", "", map[string]any{
			"username": "ignored", "device_id": "IGNORED", "initial_device_display_name": "Guest phone", "refresh_token": true,
		})
		h.expect(r, 200, "")
		guest, tok := r.str("user_id"), r.str("access_token")
		if guest == "@ignored:test.example" || r.str("device_id") == "IGNORED" || r.str("refresh_token") != "" {
			t.Fatalf("guest registration used ignored parameters: %v", r.body)
		}
		w := h.whoami(tok)
		if w.body["is_guest"] != true {
			t.Fatalf("whoami %v", w.body)
		}
		// Guests may set their displayname, and little else.
		h.expect(h.do("PUT", v3+"/profile/"+guest+"/displayname", tok, map[string]any{"displayname": "Visitor"}), 200, "")
		h.expect(h.do("PUT", v3+"/profile/"+guest+"/avatar_url", tok, map[string]any{"avatar_url": "mxc://a.b/c"}), 403, "M_GUEST_ACCESS_FORBIDDEN")
		h.expect(h.do("DELETE", v3+"/devices/"+r.str("device_id"), tok, map[string]any{}), 403, "M_GUEST_ACCESS_FORBIDDEN")
		h.expect(h.do("POST", v3+"/account/password", tok, map[string]any{"new_password": "x"}), 403, "M_GUEST_ACCESS_FORBIDDEN")
		h.expect(h.do("POST", "/_matrix/client/v1/login/get_token", tok, map[string]any{}), 403, "M_GUEST_ACCESS_FORBIDDEN")
		h.expect(h.do("GET", v3+"/devices", tok, nil), 200, "")

		// Upgrade: the username must be the guest's localpart.
		h.expect(h.do("POST", v3+"/register", "", map[string]any{"guest_access_token": tok, "username": "other", "password": "pw"}), 400, "M_INVALID_USERNAME")
		h.expect(h.do("POST", v3+"/register", "", map[string]any{"guest_access_token": "axa_bogus", "password": "pw"}), 403, "M_FORBIDDEN")
		r = h.do("POST", v3+"/register", "", map[string]any{
			"guest_access_token": tok, "password": "pw", "device_id": r.str("device_id"), "auth": map[string]any{"type": stageDummy},
		})
		h.expect(r, 200, "")
		if r.str("user_id") != guest {
			t.Fatalf("upgrade changed the user ID: %v", r.body)
		}
		w = h.whoami(r.str("access_token"))
		if w.body["is_guest"] != false {
			t.Fatalf("whoami after upgrade %v", w.body)
		}
		h.expect(h.whoami(tok), 401, "M_UNKNOWN_TOKEN") // the device's old token was replaced
		if p := h.do("GET", v3+"/profile/"+guest+"/displayname", "", nil); p.str("displayname") != "Visitor" {
			t.Fatalf("profile after upgrade %v", p.body)
		}
		h.loginOK(guest, "pw", nil)
	})
}

func TestUIASessionBoundToRequest(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		h := newHarness(t, e, nil)
		a := h.register("alice", "pw")
		b := h.loginOK("alice", "pw", nil)
		c := h.loginOK("alice", "pw", nil)
		r := h.do("DELETE", v3+"/devices/"+b.deviceID, a.token, map[string]any{})
		h.expect(r, 401, "")
		auth := map[string]any{"type": stagePassword, "session": r.str("session"),
			"identifier": map[string]any{"type": "m.id.user", "user": "alice"}, "password": "pw"}
		// The session was started to delete b, not c; nor to change the password.
		h.expect(h.do("DELETE", v3+"/devices/"+c.deviceID, a.token, map[string]any{"auth": auth}), 403, "M_FORBIDDEN")
		h.expect(h.do("POST", v3+"/account/password", a.token, map[string]any{"new_password": "x", "auth": auth}), 403, "M_FORBIDDEN")
		// Another user cannot use it either.
		mallory := h.register("mallory", "pw2")
		h.expect(h.do("DELETE", v3+"/devices/"+b.deviceID, mallory.token, map[string]any{"auth": auth}), 403, "M_FORBIDDEN")
		h.expect(h.do("DELETE", v3+"/devices/"+b.deviceID, a.token, map[string]any{"auth": auth}), 200, "")
		h.expect(h.whoami(c.token), 200, "")
	})
}
