package userdata

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/testenv"
)

func presencePath(user string) string {
	return v3 + "/presence/" + url.PathEscape(user) + "/status"
}

func TestPresenceEndpoints(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		cases := []struct {
			name, method, path, as string
			body                   any
			status                 int
			code                   string
			want                   any
		}{
			{"never set", "GET", presencePath(alice), alice, nil, 200, "", map[string]any{"presence": "offline"}},
			{"set", "PUT", presencePath(alice), alice, map[string]any{"presence": "online", "status_msg": "here"}, 200, "", map[string]any{}},
			{"get own", "GET", presencePath(alice), alice, nil, 200, "",
				map[string]any{"presence": "online", "status_msg": "here", "last_active_ago": 0, "currently_active": true}},
			{"get of a room mate", "GET", presencePath(alice), bob, nil, 200, "",
				map[string]any{"presence": "online", "status_msg": "here", "last_active_ago": 0, "currently_active": true}},
			{"get of a stranger", "GET", presencePath(bob), carol, nil, 403, "M_FORBIDDEN", nil},
			{"set another user's", "PUT", presencePath(bob), alice, map[string]any{"presence": "online"}, 403, "M_FORBIDDEN", nil},
			{"unknown state", "PUT", presencePath(alice), alice, map[string]any{"presence": "busy"}, 400, "M_INVALID_PARAM", nil},
			{"state missing", "PUT", presencePath(alice), alice, map[string]any{"status_msg": "x"}, 400, "M_BAD_JSON", nil},
			{"status too long", "PUT", presencePath(alice), alice, map[string]any{"presence": "online", "status_msg": strings.Repeat("x", 1025)}, 400, "M_INVALID_PARAM", nil},
			{"bad user ID", "GET", presencePath("alice"), alice, nil, 400, "M_INVALID_PARAM", nil},
		}
		for _, c := range cases {
			status, code, body := h.do(c.method, c.path, c.as, c.body)
			if status != c.status || code != c.code {
				t.Fatalf("%s: got %d %s (%s), want %d %s", c.name, status, code, body, c.status, c.code)
			}
			if c.want != nil && !jsonEqual(t, body, c.want) {
				t.Fatalf("%s: body %s, want %v", c.name, body, c.want)
			}
		}
		// Idle users turn unavailable, then offline.
		for _, c := range []struct {
			after time.Duration
			want  string
		}{{4 * time.Minute, "online"}, {2 * time.Minute, "unavailable"}, {25 * time.Minute, "offline"}} {
			h.clock.Advance(c.after)
			body := h.mustDo("GET", presencePath(alice), bob, nil)
			if !strings.Contains(string(body), `"presence":"`+c.want+`"`) {
				t.Fatalf("after %v more: %s, want %s", c.after, body, c.want)
			}
		}
	})
}

func presenceOfEvents(t *testing.T, d *SyncData) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, ev := range decode(t, d.Presence) {
		if ev["type"] != "m.presence" {
			t.Fatalf("presence event %v", ev)
		}
		out[ev["sender"].(string)] = ev["content"].(map[string]any)["presence"].(string)
	}
	return out
}

func TestPresenceSync(t *testing.T) {
	for _, withRooms := range []bool{true, false} {
		name := "Rooms"
		if !withRooms {
			name = "RoomMembers"
		}
		t.Run(name, func(t *testing.T) {
			testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
				h := newHarness(t, e, func(c *Config) {
					if !withRooms {
						c.Rooms = nil
					}
				})
				h.mustDo("PUT", presencePath(alice), alice, map[string]any{"presence": "online"})
				h.mustDo("PUT", presencePath(carol), carol, map[string]any{"presence": "unavailable"})
				h.mustDo("PUT", presencePath("@dan:test.example"), "@dan:test.example", map[string]any{"presence": "online"})
				db, _ := h.world.takeWakes()
				if withRooms {
					if len(db) != 3 || !equalWakes(db[:1], []wakeCall{{[]string{alice}, []string{room1, room2}}}) {
						t.Fatalf("presence wakes %v", db)
					}
				}
				// Bob shares room1 with Alice only.
				d := h.sync(SyncQuery{UserID: bob, DeviceID: "DEV", Initial: true})
				if got := presenceOfEvents(t, d); len(got) != 1 || got[alice] != "online" {
					t.Fatalf("bob's initial presence %v", got)
				}
				from := h.pos()
				h.mustDo("PUT", presencePath(carol), carol, map[string]any{"presence": "online"})
				h.mustDo("PUT", presencePath(bob), bob, map[string]any{"presence": "online"})
				// Alice shares rooms with both; Bob sees only himself.
				d = h.sync(SyncQuery{UserID: alice, DeviceID: "DEV", From: from})
				if got := presenceOfEvents(t, d); len(got) != 2 || got[carol] != "online" || got[bob] != "online" {
					t.Fatalf("alice's incremental presence %v", got)
				}
				d = h.sync(SyncQuery{UserID: bob, DeviceID: "DEV", From: from})
				if got := presenceOfEvents(t, d); len(got) != 1 || got[bob] != "online" {
					t.Fatalf("bob's incremental presence %v", got)
				}
				// Joining room2, Bob gets the presence of its members
				// (himself included).
				h.world.mu.Lock()
				h.world.rooms[room2] = append(h.world.rooms[room2], bob)
				h.world.mu.Unlock()
				d = h.sync(SyncQuery{UserID: bob, DeviceID: "DEV", From: h.pos(), NewlyJoinedRooms: []string{room2}})
				if got := presenceOfEvents(t, d); len(got) != 3 || got[carol] != "online" || got[alice] != "online" {
					t.Fatalf("bob's presence after joining room2 %v", got)
				}
			})
		})
	}
}

func TestSyncPresence(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		ctx := context.Background()
		get := func() *presenceRow {
			p, err := h.svc.presenceOf(ctx, alice)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		steps := []struct {
			name     string
			advance  time.Duration
			set      string
			wantPos  int64
			want     string
			activeAt time.Duration // last active, from the start
		}{
			{"offline changes nothing", 0, "offline", 0, "", 0},
			{"default is online", 0, "", 1, "online", 0},
			{"again within a minute: nothing", 30 * time.Second, "online", 1, "online", 0},
			{"after a minute: last active only", time.Minute, "online", 1, "online", 90 * time.Second},
			{"unavailable is a change", 0, "unavailable", 2, "unavailable", 90 * time.Second},
			{"online again", 0, "", 3, "online", 90 * time.Second},
			{"idle, then active again: a change", 10 * time.Minute, "", 4, "online", 690 * time.Second},
		}
		start := h.clock.Now()
		for _, s := range steps {
			h.clock.Advance(s.advance)
			if err := h.svc.SyncPresence(ctx, alice, s.set); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			if p := h.pos(); p != s.wantPos {
				t.Fatalf("%s: position %d, want %d", s.name, p, s.wantPos)
			}
			p := get()
			if s.want == "" {
				if p != nil {
					t.Fatalf("%s: presence %+v", s.name, p)
				}
				continue
			}
			if p.presence != s.want || p.lastActive != start.Add(s.activeAt).UnixMilli() {
				t.Fatalf("%s: %s active at %d, want %s at %d", s.name, p.presence, p.lastActive, s.want, start.Add(s.activeAt).UnixMilli())
			}
		}
		if err := h.svc.SyncPresence(ctx, alice, "busy"); err == nil {
			t.Fatal("set_presence=busy accepted")
		}
	})
}
