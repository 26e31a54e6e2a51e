package userdata

import (
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/testenv"
)

func receiptPath(room, typ, event string) string {
	return v3 + "/rooms/" + url.PathEscape(room) + "/receipt/" + url.PathEscape(typ) + "/" + url.PathEscape(event)
}

func markersPath(room string) string {
	return v3 + "/rooms/" + url.PathEscape(room) + "/read_markers"
}

func TestReceiptEndpoints(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		cases := []struct {
			name, method, path, as string
			body                   any
			status                 int
			code                   string
		}{
			{"m.read", "POST", receiptPath(room1, "m.read", evA), alice, map[string]any{}, 200, ""},
			{"no body at all", "POST", receiptPath(room1, "m.read", evA), alice, nil, 200, ""},
			{"private", "POST", receiptPath(room1, "m.read.private", evA), alice, map[string]any{}, 200, ""},
			{"threaded main", "POST", receiptPath(room1, "m.read", evA), alice, map[string]any{"thread_id": "main"}, 200, ""},
			{"threaded root", "POST", receiptPath(room1, "m.read", evB), alice, map[string]any{"thread_id": evA}, 200, ""},
			{"fully read", "POST", receiptPath(room1, "m.fully_read", evB), alice, map[string]any{}, 200, ""},
			{"unknown type", "POST", receiptPath(room1, "m.seen", evA), alice, map[string]any{}, 400, "M_INVALID_PARAM"},
			{"bad event ID", "POST", receiptPath(room1, "m.read", "notanevent"), alice, map[string]any{}, 400, "M_INVALID_PARAM"},
			{"bad room ID", "POST", receiptPath("room", "m.read", evA), alice, map[string]any{}, 400, "M_INVALID_PARAM"},
			{"thread_id not a string", "POST", receiptPath(room1, "m.read", evA), alice, map[string]any{"thread_id": 1}, 400, "M_INVALID_PARAM"},
			{"thread_id empty", "POST", receiptPath(room1, "m.read", evA), alice, map[string]any{"thread_id": ""}, 400, "M_INVALID_PARAM"},
			{"thread_id not an event", "POST", receiptPath(room1, "m.read", evA), alice, map[string]any{"thread_id": "side"}, 400, "M_INVALID_PARAM"},
			{"thread_id on fully read", "POST", receiptPath(room1, "m.fully_read", evA), alice, map[string]any{"thread_id": "main"}, 400, "M_INVALID_PARAM"},
			{"body not JSON", "POST", receiptPath(room1, "m.read", evA), alice, "{", 400, "M_NOT_JSON"},
			{"not joined", "POST", receiptPath(room2, "m.read", evA), bob, map[string]any{}, 403, "M_FORBIDDEN"},
			{"markers", "POST", markersPath(room1), alice, map[string]any{"m.fully_read": evA, "m.read": evA, "m.read.private": evB}, 200, ""},
			{"markers empty", "POST", markersPath(room1), alice, map[string]any{}, 200, ""},
			{"markers bad event", "POST", markersPath(room1), alice, map[string]any{"m.read": "x"}, 400, "M_INVALID_PARAM"},
			{"markers wrong type", "POST", markersPath(room1), alice, map[string]any{"m.read": 5}, 400, "M_BAD_JSON"},
			{"markers not joined", "POST", markersPath(room2), bob, map[string]any{"m.read": evA}, 403, "M_FORBIDDEN"},
			{"markers bad room", "POST", markersPath("!"), alice, map[string]any{}, 400, "M_INVALID_PARAM"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				status, code, body := h.do(c.method, c.path, c.as, c.body)
				if status != c.status || code != c.code {
					t.Fatalf("got %d %s (%s), want %d %s", status, code, body, c.status, c.code)
				}
			})
		}
		// The fully read marker is room account data that clients may read
		// but not write.
		body := h.mustDo("GET", roomADPath(alice, room1, "m.fully_read"), alice, nil)
		if !jsonEqual(t, body, map[string]any{"event_id": evA}) {
			t.Fatalf("m.fully_read = %s", body)
		}
	})
}

// receiptContent returns the merged content of a room's m.receipt events.
func receiptContents(t *testing.T, evs []json.RawMessage) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, ev := range decode(t, evs) {
		if ev["type"] == "m.receipt" {
			out = append(out, ev["content"].(map[string]any))
		}
	}
	return out
}

func TestReceiptsInSync(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		h.mustDo("POST", receiptPath(room1, "m.read", evA), bob, nil)
		h.mustDo("POST", receiptPath(room1, "m.read.private", evB), bob, nil)
		h.mustDo("POST", receiptPath(room1, "m.read", evA), alice, map[string]any{"thread_id": "main"})
		h.mustDo("POST", receiptPath(room1, "m.read", evA), alice, nil) // same event, unthreaded: a second event
		h.mustDo("POST", receiptPath(room1, "m.read.private", evB), alice, nil)
		ts := h.clock.Now().UnixMilli()

		// Alice sees Bob's public receipt and her own receipts, private
		// one included; never Bob's private one.
		d := h.sync(SyncQuery{UserID: alice, DeviceID: "DEV", Initial: true})
		got := receiptContents(t, d.Ephemeral[room1])
		want := []map[string]any{
			{
				evA: map[string]any{"m.read": map[string]any{
					bob:   map[string]any{"ts": ts},
					alice: map[string]any{"ts": ts, "thread_id": "main"},
				}},
				evB: map[string]any{"m.read.private": map[string]any{alice: map[string]any{"ts": ts}}},
			},
			{evA: map[string]any{"m.read": map[string]any{alice: map[string]any{"ts": ts}}}},
		}
		gb, _ := json.Marshal(got)
		if !jsonEqual(t, gb, want) {
			t.Fatalf("alice's receipts\n got %s\nwant %v", gb, want)
		}
		if _, ok := d.Ephemeral[room2]; ok {
			t.Fatalf("receipts in room2: %s", d.Ephemeral[room2])
		}
		// Bob sees his private receipt, not Alice's.
		db := h.sync(SyncQuery{UserID: bob, DeviceID: "DEV", Initial: true})
		for _, c := range receiptContents(t, db.Ephemeral[room1]) {
			if r, ok := c[evB].(map[string]any); ok {
				priv := r["m.read.private"].(map[string]any)
				if _, ok := priv[alice]; ok {
					t.Fatalf("bob sees alice's private receipt: %v", c)
				}
				if _, ok := priv[bob]; !ok {
					t.Fatalf("bob does not see his private receipt: %v", c)
				}
			}
		}

		// Incremental: only what moved, and the same receipt twice is no
		// change at all.
		from := h.pos()
		h.mustDo("POST", receiptPath(room1, "m.read", evA), bob, nil)
		if h.pos() != from {
			t.Fatal("an unchanged receipt took a position")
		}
		h.clock.Advance(time.Second)
		h.mustDo("POST", receiptPath(room1, "m.read", evB), bob, nil)
		d = h.sync(SyncQuery{UserID: alice, DeviceID: "DEV", From: from})
		got = receiptContents(t, d.Ephemeral[room1])
		gb, _ = json.Marshal(got)
		if !jsonEqual(t, gb, []map[string]any{{evB: map[string]any{"m.read": map[string]any{bob: map[string]any{"ts": ts + 1000}}}}}) {
			t.Fatalf("incremental receipts %s", gb)
		}
		// Nothing new: nothing at all.
		d = h.sync(SyncQuery{UserID: alice, DeviceID: "DEV", From: h.pos()})
		if !d.Empty() {
			t.Fatalf("empty incremental sync has %+v", d)
		}
	})
}

func TestReceiptWakes(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		cases := []struct {
			name string
			do   func()
			want []wakeCall
		}{
			{"public receipt wakes the room", func() { h.mustDo("POST", receiptPath(room1, "m.read", evA), alice, nil) },
				[]wakeCall{{[]string{alice, bob}, []string{room1}}}},
			{"private receipt wakes the user", func() { h.mustDo("POST", receiptPath(room1, "m.read.private", evA), alice, nil) },
				[]wakeCall{{[]string{alice}, nil}}},
			{"fully read wakes the user", func() { h.mustDo("POST", markersPath(room1), alice, map[string]any{"m.fully_read": evA}) },
				[]wakeCall{{[]string{alice}, nil}}},
			{"unchanged wakes nobody", func() {
				h.mustDo("POST", markersPath(room1), alice, map[string]any{"m.fully_read": evA, "m.read": evA})
			}, nil},
			{"markers with a public receipt wake the room once", func() {
				h.mustDo("POST", markersPath(room1), alice, map[string]any{"m.fully_read": evB, "m.read": evB})
			}, []wakeCall{{[]string{alice, bob}, []string{room1}}}},
		}
		for _, c := range cases {
			h.world.takeWakes()
			c.do()
			got, _ := h.world.takeWakes()
			if !equalWakes(got, c.want) {
				t.Errorf("%s: wakes %v, want %v", c.name, got, c.want)
			}
		}
	})
}
