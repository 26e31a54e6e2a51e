package userdata

import (
	"context"
	"slices"
	"testing"

	"github.com/axon-hs/axon/internal/testenv"
)

// A local user's device list change is listed in device_lists.changed of
// the incremental /sync of every local user sharing a room with them and
// of their own, not of anyone else's; it wakes them; the same change
// again, or an older one, takes no position.
func TestLocalDeviceListChanged(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		ctx := context.Background()
		const dave = "@dave:test.example" // in no room
		changed := func(user string, from int64) []string {
			t.Helper()
			d := h.sync(SyncQuery{UserID: user, From: from})
			if len(d.DeviceListsChanged) > 0 && d.Empty() {
				t.Errorf("%s's sync lists device list changes %v but is empty", user, d.DeviceListsChanged)
			}
			return sorted(d.DeviceListsChanged)
		}

		pos := h.pos()
		h.world.takeWakes()
		if err := h.svc.LocalDeviceListChanged(ctx, alice, 1); err != nil {
			t.Fatal(err)
		}
		if db, _ := h.world.takeWakes(); len(db) != 1 || !slices.Equal(db[0].users, []string{alice}) ||
			!slices.Equal(db[0].rooms, []string{room1, room2}) {
			t.Errorf("wakes of a device list change: %v", db)
		}
		for user, want := range map[string][]string{
			bob:   {alice}, // shares room1
			carol: {alice}, // shares room2
			alice: {alice}, // her own other devices
			dave:  nil,
		} {
			if got := changed(user, pos); !slices.Equal(got, want) {
				t.Errorf("%s's device_lists.changed: %v, want %v", user, got, want)
			}
		}
		if d := h.sync(SyncQuery{UserID: bob, Initial: true}); len(d.DeviceListsChanged) != 0 {
			t.Errorf("an initial sync's device_lists.changed: %v", d.DeviceListsChanged)
		}
		if got := changed(bob, h.pos()); len(got) != 0 {
			t.Errorf("bob's device_lists.changed since the change: %v", got)
		}

		// The same change again, or an older one, takes no position.
		p := h.pos()
		for _, s := range []int64{1, 0} {
			if err := h.svc.LocalDeviceListChanged(ctx, alice, s); err != nil || h.pos() != p {
				t.Errorf("stream ID %d again: %v, position %d → %d", s, err, p, h.pos())
			}
		}
		if db, _ := h.world.takeWakes(); len(db) != 0 {
			t.Errorf("wakes without a change: %v", db)
		}

		// Bob's change reaches alice, not carol; both changes since pos
		// reach alice.
		p = h.pos()
		if err := h.svc.LocalDeviceListChanged(ctx, bob, 7); err != nil {
			t.Fatal(err)
		}
		if got := changed(alice, p); !slices.Equal(got, []string{bob}) {
			t.Errorf("alice's device_lists.changed: %v", got)
		}
		if got := changed(carol, p); len(got) != 0 {
			t.Errorf("carol's device_lists.changed: %v", got)
		}
		if got := changed(alice, pos); !slices.Equal(got, []string{alice, bob}) {
			t.Errorf("alice's device_lists.changed since the start: %v", got)
		}

		// Only this server's users.
		for _, u := range []string{"@rita:remote.example", "alice", ""} {
			if err := h.svc.LocalDeviceListChanged(ctx, u, 9); err == nil {
				t.Errorf("LocalDeviceListChanged(%q) succeeded", u)
			}
		}
	})
}
