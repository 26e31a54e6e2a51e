package accounts

import (
	"slices"
	"testing"

	"github.com/axon-hs/axon/matrix/id"
)

func TestPasswordChange(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		h := newHarness(t, e, nil)
		a := h.register("alice", "old")
		b := h.loginOK("alice", "old", nil)

		h.expect(h.do("POST", v3+"/account/password", a.token, map[string]any{}), 400, "M_MISSING_PARAM")
		h.expect(h.do("POST", v3+"/account/password", "axa_bad", map[string]any{"new_password": "x"}), 401, "M_UNKNOWN_TOKEN")
		h.expect(h.withPassword("POST", v3+"/account/password", a, map[string]any{"new_password": "new"}), 200, "")
		h.expect(h.whoami(a.token), 200, "") // the requesting device stays
		h.expect(h.whoami(b.token), 401, "M_UNKNOWN_TOKEN")
		h.expect(h.login("alice", "old", nil), 403, "M_FORBIDDEN")
		c := h.loginOK("alice", "new", nil)

		// logout_devices: false keeps the other devices.
		a.password = "new"
		h.expect(h.withPassword("POST", "/_matrix/client/r0/account/password", a, map[string]any{"new_password": "newer", "logout_devices": false}), 200, "")
		h.expect(h.whoami(c.token), 200, "")
		h.loginOK("alice", "newer", nil)
	})
}

func TestPasswordChangeWithoutToken(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		h := newHarness(t, e, nil)
		a := h.register("alice", "old")
		r := h.do("POST", v3+"/account/password", "", map[string]any{"new_password": "new"})
		h.expect(r, 401, "")
		auth := map[string]any{"type": stagePassword, "session": r.str("session"), "password": "old"}
		// Without an access token the stage must name the user.
		h.expect(h.do("POST", v3+"/account/password", "", map[string]any{"new_password": "new", "auth": auth}), 401, "M_MISSING_PARAM")
		auth["identifier"] = map[string]any{"type": "m.id.user", "user": "alice"}
		h.expect(h.do("POST", v3+"/account/password", "", map[string]any{"new_password": "new", "auth": auth}), 200, "")
		h.expect(h.whoami(a.token), 401, "M_UNKNOWN_TOKEN")
		h.loginOK("alice", "new", nil)
	})
}

func TestDeactivate(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		h := newHarness(t, e, nil)
		a := h.register("alice", "pw")
		b := h.loginOK("alice", "pw", nil)
		h.expect(h.do("PUT", v3+"/profile/@alice:test.example/com.example.x", a.token, map[string]any{"com.example.x": 1}), 200, "")
		r := h.withPassword("POST", v3+"/account/deactivate", a, map[string]any{"erase": true})
		h.expect(r, 200, "")
		if r.str("id_server_unbind_result") != "success" {
			t.Fatalf("deactivate %v", r.body)
		}
		for _, tok := range []string{a.token, b.token} {
			w := h.whoami(tok)
			h.expect(w, 401, "M_UNKNOWN_TOKEN")
			if w.body["soft_logout"] != false {
				t.Fatalf("deactivated token: %v", w.body)
			}
		}
		h.expect(h.login("alice", "pw", nil), 403, "M_USER_DEACTIVATED")
		h.expect(h.login("alice", "wrong", nil), 403, "M_FORBIDDEN")
		h.expect(h.do("GET", v3+"/register/available?username=alice", "", nil), 400, "M_USER_IN_USE")
		p := h.do("GET", v3+"/profile/@alice:test.example", "", nil)
		h.expect(p, 200, "")
		if len(p.body) != 0 {
			t.Fatalf("erased profile %v", p.body)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if !slices.Equal(h.deactivated, []id.UserID{a.userID}) || len(h.devicesDeleted[a.userID]) != 2 {
			t.Fatalf("hooks: deactivated %v, devices %v", h.deactivated, h.devicesDeleted)
		}
	})
}

func TestDeactivateWithoutErase(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		h := newHarness(t, e, nil)
		a := h.register("alice", "pw")
		// The session of an authenticated request cannot be finished by an
		// unauthenticated one naming another user.
		h.register("bob", "pw2")
		r := h.do("POST", v3+"/account/deactivate", a.token, map[string]any{})
		h.expect(r, 401, "")
		auth := map[string]any{"type": stagePassword, "session": r.str("session"),
			"identifier": map[string]any{"type": "m.id.user", "user": "bob"}, "password": "pw2"}
		h.expect(h.do("POST", v3+"/account/deactivate", "", map[string]any{"auth": auth}), 401, "M_FORBIDDEN")
		h.expect(h.withPassword("POST", v3+"/account/deactivate", a, map[string]any{}), 200, "")
		if p := h.do("GET", v3+"/profile/@alice:test.example/displayname", "", nil); p.str("displayname") != "alice" {
			t.Fatalf("profile without erase %v", p.body)
		}
		h.loginOK("bob", "pw2", nil)
		if err := h.svc.DeactivateUser(h.ctx(), "@bob:test.example", false); err != nil {
			t.Fatal(err)
		}
		h.expect(h.login("bob", "pw2", nil), 403, "M_USER_DEACTIVATED")
		if err := h.svc.DeactivateUser(h.ctx(), "@bob:test.example", false); err == nil {
			t.Fatal("deactivating twice succeeded")
		}
	})
}

func TestThreePIDs(t *testing.T) {
	h := newHarness(t, engines()[0], nil)
	a := h.register("alice", "pw")
	r := h.do("GET", v3+"/account/3pid", a.token, nil)
	h.expect(r, 200, "")
	if l, ok := r.body["threepids"].([]any); !ok || len(l) != 0 {
		t.Fatalf("3pids %v", r.body)
	}
}
