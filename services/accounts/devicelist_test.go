package accounts

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/axon-hs/axon/matrix/id"
)

// listCall is one OnDeviceListChange call, with what DeviceList answered
// from inside the hook: the hook runs after the commit, so the changes
// are already visible to any other reader.
type listCall struct {
	user    id.UserID
	changes []DeviceChange
	stream  int64    // DeviceList's stream ID, read in the hook
	devices []string // DeviceList's devices, read in the hook
}

type listRecorder struct {
	mu    sync.Mutex
	h     *harness
	calls []listCall
}

func (r *listRecorder) hook(ctx context.Context, u id.UserID, changes []DeviceChange) error {
	devs, stream, err := r.h.svc.DeviceList(ctx, string(u))
	if err != nil {
		return err
	}
	var ids []string
	for _, d := range devs {
		ids = append(ids, d.DeviceID)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, listCall{u, slices.Clone(changes), stream, ids})
	return nil
}

// take returns and forgets the calls so far.
func (r *listRecorder) take() []listCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

func newListHarness(t *testing.T, e engine) (*harness, *listRecorder) {
	rec := &listRecorder{}
	h := newHarness(t, e, func(c *Config) { c.OnDeviceListChange = rec.hook })
	rec.h = h
	return h, rec
}

func (c DeviceChange) String() string {
	s := fmt.Sprintf("%s %d←%d", c.DeviceID, c.StreamID, c.PrevID)
	if c.Deleted {
		s += " deleted"
	}
	if c.DisplayName != "" {
		s += " " + c.DisplayName
	}
	return s
}

// Every device added, deleted or renamed takes the user's next stream ID
// in its transaction; one transaction's changes get consecutive IDs, each
// chained on the one before; the hook runs after the commit with all of
// them, and not for a request that was refused or changed nothing;
// DeviceList answers the counter.
func TestDeviceListStream(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		h, rec := newListHarness(t, e)
		step := 0
		// expect checks the hook calls since the last step: want is one
		// string per call, its changes joined with "; " (none: no call).
		expect := func(want ...string) {
			t.Helper()
			step++
			calls := rec.take()
			var got []string
			for _, c := range calls {
				var cs []string
				for _, ch := range c.changes {
					cs = append(cs, ch.String())
				}
				got = append(got, strings.Join(cs, "; "))
				last := c.changes[len(c.changes)-1]
				if c.stream != last.StreamID {
					t.Errorf("step %d: in the hook DeviceList has stream ID %d, want the last change's %d", step, c.stream, last.StreamID)
				}
				for _, ch := range c.changes {
					if slices.Contains(c.devices, ch.DeviceID) == ch.Deleted {
						t.Errorf("step %d: in the hook DeviceList has %v: change %v not committed", step, c.devices, ch)
					}
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("step %d: hook calls\n%q\nwant\n%q", step, got, want)
			}
		}
		stream := func(u id.UserID) int64 {
			t.Helper()
			_, s, err := h.svc.DeviceList(h.ctx(), string(u))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}

		if s := stream("@alice:test.example"); s != 0 {
			t.Fatalf("stream ID of an unknown user: %d", s)
		}
		a := h.register("alice", "pw")
		expect(a.deviceID + " 1←0")
		h.loginOK("alice", "pw", map[string]any{"device_id": "BBB", "initial_device_display_name": "Tablet"})
		expect("BBB 2←1 Tablet")

		// Nothing changes: the same device logging in again, a refused
		// login, an unknown device, the same name again, no name.
		h.loginOK("alice", "pw", map[string]any{"device_id": "BBB"})
		h.expect(h.login("alice", "wrong", map[string]any{"device_id": "XXX"}), 403, "M_FORBIDDEN")
		h.expect(h.do("PUT", v3+"/devices/NOPE", a.token, map[string]any{"display_name": "x"}), 404, "M_NOT_FOUND")
		h.expect(h.do("PUT", v3+"/devices/BBB", a.token, map[string]any{"display_name": "Tablet"}), 200, "")
		h.expect(h.do("PUT", v3+"/devices/BBB", a.token, map[string]any{}), 200, "")
		expect()
		if s := stream(a.userID); s != 2 {
			t.Fatalf("stream ID %d, want 2", s)
		}

		h.expect(h.do("PUT", v3+"/devices/BBB", a.token, map[string]any{"display_name": "Old tablet"}), 200, "")
		expect("BBB 3←2 Old tablet")
		h.loginOK("alice", "pw", map[string]any{"device_id": "CCC"})
		h.loginOK("alice", "pw", map[string]any{"device_id": "DDD"})
		expect("CCC 4←3", "DDD 5←4")

		// A deletion refused (wrong password) changes nothing.
		r := h.do("DELETE", v3+"/devices/BBB", a.token, nil)
		h.expect(r, 401, "")
		h.expect(h.do("DELETE", v3+"/devices/BBB", a.token, map[string]any{"auth": map[string]any{"type": stagePassword,
			"session": r.str("session"), "password": "wrong"}}), 401, "M_FORBIDDEN")
		h.expect(h.withPassword("POST", v3+"/delete_devices", a, map[string]any{"devices": []string{"NONE"}}), 200, "")
		expect()

		// One request deleting several devices: one call, consecutive IDs.
		h.expect(h.withPassword("POST", v3+"/delete_devices", a, map[string]any{"devices": []string{"DDD", "NONE", "CCC"}}), 200, "")
		expect("CCC 6←5 deleted; DDD 7←6 deleted")
		h.expect(h.withPassword("DELETE", v3+"/devices/BBB", a, nil), 200, "")
		expect("BBB 8←7 deleted")

		h.expect(h.do("POST", v3+"/logout", a.token, nil), 200, "")
		expect(a.deviceID + " 9←8 deleted")
		if devs, s, err := h.svc.DeviceList(h.ctx(), string(a.userID)); err != nil || len(devs) != 0 || s != 9 {
			t.Fatalf("DeviceList after the last logout: %v, %d, %v", devs, s, err)
		}

		e1 := h.loginOK("alice", "pw", map[string]any{"device_id": "EEE", "initial_device_display_name": "E"})
		h.loginOK("alice", "pw", map[string]any{"device_id": "FFF"})
		expect("EEE 10←9 E", "FFF 11←10")
		h.expect(h.do("POST", v3+"/logout/all", e1.token, nil), 200, "")
		expect("EEE 12←11 deleted; FFF 13←12 deleted")

		// A password change logs out the other devices; deactivation the
		// rest.
		g := h.loginOK("alice", "pw", map[string]any{"device_id": "GGG"})
		h.loginOK("alice", "pw", map[string]any{"device_id": "HHH"})
		h.loginOK("alice", "pw", map[string]any{"device_id": "III"})
		expect("GGG 14←13", "HHH 15←14", "III 16←15")
		h.expect(h.withPassword("POST", v3+"/account/password", g, map[string]any{"new_password": "pw2"}), 200, "")
		expect("HHH 17←16 deleted; III 18←17 deleted")
		g.password = "pw2"
		h.expect(h.withPassword("POST", v3+"/account/deactivate", g, map[string]any{}), 200, "")
		expect("GGG 19←18 deleted")
		if s := stream(a.userID); s != 19 {
			t.Fatalf("stream ID %d after deactivation, want 19", s)
		}

		// Each user has a sequence of their own.
		b := h.register("bob", "pw")
		expect(b.deviceID + " 1←0")
		if s := stream(a.userID); s != 19 {
			t.Fatalf("alice's stream ID %d after bob's change, want 19", s)
		}
	})
}

// Logins racing on two workers for one user get distinct, consecutive
// stream IDs (the counter row is the point of conflict, and SERIALIZABLE
// retries the loser).
func TestDeviceListStreamConcurrent(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		h, rec := newListHarness(t, e)
		rec2 := &listRecorder{}
		h2 := newHarnessOn(t, h.db, h.clock, func(c *Config) { c.OnDeviceListChange = rec2.hook })
		rec2.h = h2
		h.register("race", "pw")
		rec.take()
		const n = 8
		got := parallel(t, n, func(i int) (int, string, error) {
			w := h
			if i%2 == 1 {
				w = h2
			}
			return w.post(v3+"/login", "", map[string]any{"type": "m.login.password", "password": "pw",
				"identifier": map[string]any{"type": "m.id.user", "user": "race"}, "device_id": fmt.Sprint("DEV", i)})
		})
		if got["200 "] != n {
			t.Fatalf("racing logins: %v", got)
		}
		var ids []int64
		for _, c := range append(rec.take(), rec2.take()...) {
			for _, ch := range c.changes {
				if ch.PrevID != ch.StreamID-1 {
					t.Errorf("change %v", ch)
				}
				ids = append(ids, ch.StreamID)
			}
		}
		slices.Sort(ids)
		want := []int64{2, 3, 4, 5, 6, 7, 8, 9}
		if !slices.Equal(ids, want) {
			t.Errorf("stream IDs %v, want %v", ids, want)
		}
		if devs, s, err := h.svc.DeviceList(h.ctx(), "@race:test.example"); err != nil || s != n+1 || len(devs) != n+1 {
			t.Errorf("DeviceList: %d devices, stream ID %d, %v", len(devs), s, err)
		}
	})
}
