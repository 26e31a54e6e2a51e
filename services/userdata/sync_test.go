package userdata

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/axon-hs/axon/internal/testenv"
)

func typesOf(t *testing.T, d *SyncData, room string) []string {
	t.Helper()
	evs := d.AccountData
	if room != "" {
		evs = d.RoomAccountData[room]
	}
	var out []string
	for _, ev := range decode(t, evs) {
		out = append(out, ev["type"].(string))
	}
	return out
}

func TestSyncAccountData(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		h.mustDo("PUT", adPath(alice, "g.one"), alice, map[string]any{"v": 1})
		h.mustDo("PUT", adPath(alice, "g.two"), alice, map[string]any{"v": 2})
		h.mustDo("PUT", roomADPath(alice, room1, "r.one"), alice, map[string]any{"v": 3})
		h.mustDo("PUT", roomADPath(alice, room2, "r.two"), alice, map[string]any{"v": 4})
		h.mustDo("PUT", adPath(bob, "g.bob"), bob, map[string]any{"v": 5})
		mid := h.pos()
		h.mustDo("PUT", adPath(alice, "g.one"), alice, map[string]any{"v": 6})
		h.mustDo("POST", markersPath(room1), alice, map[string]any{"m.fully_read": evA})

		cases := []struct {
			name    string
			q       SyncQuery
			global  []string
			room1   []string
			room2   []string
			noRoom2 bool
		}{
			{"initial", SyncQuery{UserID: alice, Initial: true}, []string{"g.one", "g.two"}, []string{"m.fully_read", "r.one"}, []string{"r.two"}, false},
			{"initial ignores From", SyncQuery{UserID: alice, Initial: true, From: mid}, []string{"g.one", "g.two"}, []string{"m.fully_read", "r.one"}, []string{"r.two"}, false},
			{"initial up to a position", SyncQuery{UserID: alice, Initial: true, To: mid}, []string{"g.two"}, []string{"r.one"}, []string{"r.two"}, false},
			{"incremental", SyncQuery{UserID: alice, From: mid}, []string{"g.one"}, []string{"m.fully_read"}, nil, true},
			{"left room's data is not sent", SyncQuery{UserID: alice, JoinedRooms: []string{room1}, Initial: true}, []string{"g.one", "g.two"}, []string{"m.fully_read", "r.one"}, nil, true},
			{"newly joined room gets all", SyncQuery{UserID: alice, From: mid, NewlyJoinedRooms: []string{room2}}, []string{"g.one"}, []string{"m.fully_read"}, []string{"r.two"}, false},
			{"newly joined must be joined", SyncQuery{UserID: alice, From: mid, JoinedRooms: []string{room1}, NewlyJoinedRooms: []string{room2}}, []string{"g.one"}, []string{"m.fully_read"}, nil, true},
			{"from beyond to", SyncQuery{UserID: alice, From: 1 << 40}, nil, nil, nil, true},
			{"other user", SyncQuery{UserID: bob, Initial: true}, []string{"g.bob"}, nil, nil, true},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				d := h.sync(c.q)
				if got := typesOf(t, d, ""); fmt.Sprint(got) != fmt.Sprint(c.global) {
					t.Errorf("global %v, want %v", got, c.global)
				}
				if got := typesOf(t, d, room1); fmt.Sprint(got) != fmt.Sprint(c.room1) {
					t.Errorf("room1 %v, want %v", got, c.room1)
				}
				if got := typesOf(t, d, room2); fmt.Sprint(got) != fmt.Sprint(c.room2) {
					t.Errorf("room2 %v, want %v", got, c.room2)
				}
				if _, ok := d.RoomAccountData[room2]; ok == c.noRoom2 {
					t.Errorf("room2 present %v", ok)
				}
			})
		}
		d := h.sync(SyncQuery{UserID: alice, Initial: true})
		if ev := decode(t, d.AccountData)[0]; fmt.Sprint(ev["content"]) != "map[v:6]" {
			t.Fatalf("g.one content %v", ev)
		}
	})
}

// TestConcurrentWritesPositions checks that concurrent writers get
// distinct positions with no gaps and that, whenever the position is P,
// everything at or below P is visible.
func TestConcurrentWritesPositions(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		const writers, each = 8, 10
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					_, err := h.svc.updateAccountData(context.Background(), alice, "", fmt.Sprintf("t.%d.%d", w, i), replaceWith([]byte(`{}`)))
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		stop := make(chan struct{})
		checked := make(chan error, 1)
		go func() {
			// A reader that must never see a position whose rows are not
			// all visible.
			for {
				select {
				case <-stop:
					checked <- nil
					return
				default:
				}
				p, err := h.svc.Position(context.Background())
				if err != nil {
					checked <- err
					return
				}
				var n int64
				if err := h.db.QueryRow(context.Background(), `SELECT count(*) FROM userdata_account_data WHERE pos <= $1`, p).Scan(&n); err != nil {
					checked <- err
					return
				}
				if n != p {
					checked <- fmt.Errorf("position %d but %d rows at or below it", p, n)
					return
				}
			}
		}()
		wg.Wait()
		close(stop)
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if err := <-checked; err != nil {
			t.Fatal(err)
		}
		if p := h.pos(); p != writers*each {
			t.Fatalf("position %d, want %d", p, writers*each)
		}
	})
}

func TestIgnoredUsers(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		h.mustDo("PUT", adPath(alice, "m.ignored_user_list"), alice, map[string]any{"ignored_users": map[string]any{bob: map[string]any{}}})
		h.mustDo("PUT", typingPath(room1, bob), bob, map[string]any{"typing": true})
		h.mustDo("PUT", typingPath(room1, alice), alice, map[string]any{"typing": true})
		h.mustDo("POST", receiptPath(room1, "m.read", evA), bob, nil)
		h.mustDo("PUT", presencePath(bob), bob, map[string]any{"presence": "online"})
		h.mustDo("PUT", toDevicePath("m.test", "i1"), bob+"|BDEV", msgs(map[string]map[string]any{alice: {"ADEV1": map[string]any{"n": 1}}}))
		h.mustDo("PUT", toDevicePath("m.test", "i2"), carol+"|CDEV", msgs(map[string]map[string]any{alice: {"ADEV1": map[string]any{"n": 2}}}))

		d := h.sync(SyncQuery{UserID: alice, DeviceID: "ADEV1", Initial: true})
		if users, _ := typingIn(t, d, room1); fmt.Sprint(users) != fmt.Sprint([]string{alice}) {
			t.Errorf("typing %v", users)
		}
		if got := receiptContents(t, d.Ephemeral[room1]); len(got) != 0 {
			t.Errorf("receipts %v", got)
		}
		if got := presenceOfEvents(t, d); got[bob] != "" {
			t.Errorf("presence %v", got)
		}
		if evs := decode(t, d.ToDevice); len(evs) != 1 || evs[0]["sender"] != carol {
			t.Errorf("to-device %v", evs)
		}
		// Bob still sees his own things.
		d = h.sync(SyncQuery{UserID: bob, DeviceID: "BDEV", Initial: true})
		if users, _ := typingIn(t, d, room1); len(users) != 2 {
			t.Errorf("bob's typing %v", users)
		}
	})
}
