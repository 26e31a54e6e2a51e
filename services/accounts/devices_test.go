package accounts

import (
	"slices"
	"testing"
	"time"
)

func deviceIDs(t *testing.T, r resp) []string {
	t.Helper()
	var ids []string
	for _, d := range r.body["devices"].([]any) {
		ids = append(ids, d.(map[string]any)["device_id"].(string))
	}
	return ids
}

func TestDevices(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		h := newHarness(t, e, nil)
		a := h.register("alice", "pw")
		b := h.loginOK("alice", "pw", map[string]any{"device_id": "BBB", "initial_device_display_name": "Tablet"})
		c := h.loginOK("alice", "pw", map[string]any{"device_id": "CCC"})
		d := h.loginOK("alice", "pw", map[string]any{"device_id": "DDD"})
		other := h.register("bob", "pw")

		r := h.do("GET", v3+"/devices", a.token, nil)
		h.expect(r, 200, "")
		want := []string{a.deviceID, "BBB", "CCC", "DDD"}
		slices.Sort(want)
		if got := deviceIDs(t, r); !slices.Equal(got, want) {
			t.Fatalf("devices %v, want %v", got, want)
		}
		if got := deviceIDs(t, h.do("GET", "/_matrix/client/r0/devices", other.token, nil)); !slices.Equal(got, []string{other.deviceID}) {
			t.Fatalf("bob's devices %v", got)
		}

		// GET and PUT one device; another user's is not found.
		g := h.do("GET", v3+"/devices/BBB", a.token, nil)
		if g.str("device_id") != "BBB" || g.str("display_name") != "Tablet" {
			t.Fatalf("device %v", g.body)
		}
		if _, ok := h.do("GET", v3+"/devices/CCC", a.token, nil).body["display_name"]; ok {
			t.Fatal("a device without a name shows one")
		}
		h.expect(h.do("GET", v3+"/devices/"+other.deviceID, a.token, nil), 404, "M_NOT_FOUND")
		h.expect(h.do("PUT", v3+"/devices/BBB", a.token, map[string]any{"display_name": "Old tablet"}), 200, "")
		h.expect(h.do("PUT", v3+"/devices/BBB", a.token, map[string]any{}), 200, "")
		if g := h.do("GET", v3+"/devices/BBB", a.token, nil); g.str("display_name") != "Old tablet" {
			t.Fatalf("renamed device %v", g.body)
		}
		h.expect(h.do("PUT", v3+"/devices/NOPE", a.token, map[string]any{"display_name": "x"}), 404, "M_NOT_FOUND")
		h.expect(h.do("PUT", v3+"/devices/"+other.deviceID, a.token, map[string]any{"display_name": "x"}), 404, "M_NOT_FOUND")
		h.expect(h.do("PUT", v3+"/devices/BBB", a.token, map[string]any{"display_name": 5}), 400, "M_BAD_JSON")

		// DELETE needs the password.
		r = h.do("DELETE", v3+"/devices/BBB", a.token, nil)
		h.expect(r, 401, "")
		bad := map[string]any{"auth": map[string]any{"type": stagePassword, "session": r.str("session"),
			"identifier": map[string]any{"type": "m.id.user", "user": "alice"}, "password": "wrong"}}
		h.expect(h.do("DELETE", v3+"/devices/BBB", a.token, bad), 401, "M_FORBIDDEN")
		// Bob's password does not do for Alice.
		bobs := map[string]any{"auth": map[string]any{"type": stagePassword, "session": r.str("session"),
			"identifier": map[string]any{"type": "m.id.user", "user": "bob"}, "password": "pw"}}
		h.expect(h.do("DELETE", v3+"/devices/BBB", a.token, bobs), 401, "M_FORBIDDEN")
		h.expect(h.whoami(b.token), 200, "")
		// The identifier may be left out when the request is authenticated.
		ok := map[string]any{"auth": map[string]any{"type": stagePassword, "session": r.str("session"), "password": "pw"}}
		h.expect(h.do("DELETE", v3+"/devices/BBB", a.token, ok), 200, "")
		h.expect(h.whoami(b.token), 401, "M_UNKNOWN_TOKEN")
		h.expect(h.do("GET", v3+"/devices/BBB", a.token, nil), 404, "M_NOT_FOUND")

		// Deleting a device that is gone succeeds.
		h.expect(h.withPassword("DELETE", v3+"/devices/BBB", a, nil), 200, "")

		// POST /delete_devices.
		h.expect(h.do("POST", v3+"/delete_devices", a.token, map[string]any{}), 400, "M_MISSING_PARAM")
		h.expect(h.do("POST", v3+"/delete_devices", a.token, map[string]any{"devices": "CCC"}), 400, "M_BAD_JSON")
		h.expect(h.withPassword("POST", v3+"/delete_devices", a, map[string]any{"devices": []string{"CCC", "DDD", "CCC", "NONE", other.deviceID}}), 200, "")
		for _, tok := range []string{c.token, d.token} {
			h.expect(h.whoami(tok), 401, "M_UNKNOWN_TOKEN")
		}
		h.expect(h.whoami(other.token), 200, "")
		if got := deviceIDs(t, h.do("GET", v3+"/devices", a.token, nil)); !slices.Equal(got, []string{a.deviceID}) {
			t.Fatalf("devices left %v", got)
		}
		h.mu.Lock()
		got := slices.Sorted(slices.Values(h.devicesDeleted[a.userID]))
		h.mu.Unlock()
		if !slices.Equal(got, []string{"BBB", "CCC", "DDD"}) {
			t.Fatalf("OnDevicesDeleted got %v", got)
		}

		// One's own current device can be deleted too.
		h.expect(h.withPassword("DELETE", v3+"/devices/"+a.deviceID, a, map[string]any{}), 200, "")
		h.expect(h.whoami(a.token), 401, "M_UNKNOWN_TOKEN")
	})
}

func TestDeviceLastSeen(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		h := newHarness(t, e, nil)
		a := h.register("alice", "pw")
		lastSeen := func() (float64, string) {
			var ts float64
			var ip string
			err := h.db.QueryRow(h.ctx(), `SELECT COALESCE(last_seen_ts, 0), COALESCE(last_seen_ip, '') FROM accounts_devices WHERE device_id = $1`,
				a.deviceID).Scan(&ts, &ip)
			if err != nil {
				t.Fatal(err)
			}
			return ts, ip
		}
		start := float64(h.clock.Now().UnixMilli())
		h.expect(h.whoami(a.token), 200, "")
		ts, ip := lastSeen()
		if ts != start || ip != "127.0.0.1" {
			t.Fatalf("last seen %v from %q", ts, ip)
		}
		h.clock.Advance(30 * time.Second)
		h.expect(h.whoami(a.token), 200, "")
		if ts, _ := lastSeen(); ts != start {
			t.Fatalf("last seen written again after 30 s: %v", ts)
		}
		h.clock.Advance(31 * time.Second)
		h.expect(h.whoami(a.token), 200, "")
		if ts, _ := lastSeen(); ts != start+61000 {
			t.Fatalf("last seen %v after a minute, want %v", ts, start+61000)
		}
		dev := h.do("GET", v3+"/devices/"+a.deviceID, a.token, nil)
		if dev.body["last_seen_ts"] != start+61000 || dev.str("last_seen_ip") != "127.0.0.1" {
			t.Fatalf("device %v", dev.body)
		}
	})
}
