package sender

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/axon-hs/axon/internal/testenv"
)

// deviceListKeys returns the queued device list updates as "destination
// key" strings, in the order they would be sent.
func (e *eduEnv) deviceListKeys(t *testing.T) []string {
	t.Helper()
	rows, err := e.db.Query(context.Background(), `SELECT destination, edu_key FROM sender_edus
		WHERE edu_key >= $1 AND edu_key < $2 ORDER BY destination, queued_ns, edu_key`, keyDeviceList, keyRangeEnd(keyDeviceList))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var d, k string
		if err := rows.Scan(&d, &k); err != nil {
			t.Fatal(err)
		}
		out = append(out, d+" "+k)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Each change is its own EDU, for every server sharing a room with the
// user, with the spec's content; nothing is coalesced, the same change
// twice is queued once, and they are sent in order.
func TestDeviceListUpdateQueue(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, engine testenv.Engine) {
		e := newEDUEnv(t, engine)
		ctx := context.Background()
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		first := DeviceListChange{DeviceID: "AAA", DisplayName: "Phone", StreamID: 1}
		must(e.q.DeviceListUpdate(ctx, alice, first))
		must(e.q.DeviceListUpdate(ctx, alice,
			DeviceListChange{DeviceID: "AAA", Deleted: true, StreamID: 2, PrevID: 1},
			DeviceListChange{DeviceID: "BBB", StreamID: 3, PrevID: 2}))
		must(e.q.DeviceListUpdate(ctx, alice, first)) // again
		must(e.q.DeviceListUpdate(ctx, alice))        // nothing
		must(e.q.DeviceListUpdate(ctx, "@nobody:us.test", DeviceListChange{DeviceID: "N", StreamID: 1}))

		var want []string
		for _, d := range []string{"far.test", "other.test", "them.test"} {
			for _, s := range []string{"1", "2", "3"} {
				want = append(want, d+" l|@alice:us.test|"+s)
			}
		}
		if got := e.deviceListKeys(t); !slices.Equal(got, want) {
			t.Errorf("queued:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		for _, d := range []string{"them.test", "other.test", "far.test"} {
			if !slices.Contains(e.pokes, d) {
				t.Errorf("%s was not poked", d)
			}
		}
		if slices.Contains(e.pokes, "us.test") || slices.Contains(e.pokes, "gone.test") {
			t.Errorf("pokes %v include this server or one with no joined user", e.pokes)
		}

		e.drainAll(t, "them.test")
		txns := e.tr.sent("them.test")
		if len(txns) != 1 {
			t.Fatalf("%d transactions to them.test, want 1", len(txns))
		}
		wantContent := []map[string]any{
			{"user_id": alice, "device_id": "AAA", "stream_id": 1, "prev_id": []int{}, "deleted": false, "device_display_name": "Phone"},
			{"user_id": alice, "device_id": "AAA", "stream_id": 2, "prev_id": []int{1}, "deleted": true},
			{"user_id": alice, "device_id": "BBB", "stream_id": 3, "prev_id": []int{2}, "deleted": false},
		}
		if len(txns[0].EDUs) != len(wantContent) {
			t.Fatalf("%d EDUs sent, want %d", len(txns[0].EDUs), len(wantContent))
		}
		for i, edu := range txns[0].EDUs {
			w, _ := json.Marshal(wantContent[i])
			if edu.Type != EDUDeviceListUpdate || !sameJSON(t, edu.Content, w) {
				t.Errorf("EDU %d: %s %s, want %s %s", i, edu.Type, edu.Content, EDUDeviceListUpdate, w)
			}
		}
		if got := e.deviceListKeys(t); len(got) != 6 || slices.ContainsFunc(got, func(k string) bool { return strings.HasPrefix(k, "them.test") }) {
			t.Errorf("left queued after them.test's transaction: %v", got)
		}
	})
}

// A destination keeps at most the bound of device list updates, of all
// users together: the oldest go, the newest stay, and other EDUs are not
// touched. DeviceListUpdate's bound is maxDeviceListQueue.
func TestDeviceListUpdateBound(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, engine testenv.Engine) {
		e := newEDUEnv(t, engine)
		ctx := context.Background()
		const zed = "@zed:us.test" // shares only ourRoom: not with far.test
		if _, err := e.db.Exec(ctx, `INSERT INTO memberships (user_id, room_id, membership, event_id, room_seq) VALUES ($1, $2, 'join', '$z', 1)`,
			zed, ourRoom); err != nil {
			t.Fatal(err)
		}
		msgs := map[string]map[string]json.RawMessage{"@bob:them.test": {"DEV": json.RawMessage(`{}`)}}
		if err := e.q.ToDevice(ctx, "them.test", alice, "m.test", "m1", msgs); err != nil {
			t.Fatal(err)
		}
		change := func(s int64) DeviceListChange {
			return DeviceListChange{DeviceID: fmt.Sprint("D", s), StreamID: s, PrevID: s - 1}
		}
		for s := range int64(4) {
			if err := e.q.deviceListUpdate(ctx, alice, []DeviceListChange{change(s + 1)}, 3); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.q.deviceListUpdate(ctx, zed, []DeviceListChange{change(1)}, 3); err != nil {
			t.Fatal(err)
		}
		want := []string{
			"far.test l|@alice:us.test|2", "far.test l|@alice:us.test|3", "far.test l|@alice:us.test|4",
			"other.test l|@alice:us.test|3", "other.test l|@alice:us.test|4", "other.test l|@zed:us.test|1",
			"them.test l|@alice:us.test|3", "them.test l|@alice:us.test|4", "them.test l|@zed:us.test|1",
		}
		if got := e.deviceListKeys(t); !slices.Equal(got, want) {
			t.Errorf("queued:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		// More changes in one call than the bound: the newest.
		var many []DeviceListChange
		for s := int64(5); s <= 9; s++ {
			many = append(many, change(s))
		}
		if err := e.q.deviceListUpdate(ctx, alice, many, 3); err != nil {
			t.Fatal(err)
		}
		want = nil
		for _, d := range []string{"far.test", "other.test", "them.test"} {
			for _, s := range []string{"7", "8", "9"} {
				want = append(want, d+" l|@alice:us.test|"+s)
			}
		}
		if got := e.deviceListKeys(t); !slices.Equal(got, want) {
			t.Errorf("queued:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if got := e.queued(t); !slices.Contains(got, "them.test d|@alice:us.test|m1") {
			t.Errorf("the send-to-device EDU went too: %v", got)
		}

		// The exported method's bound.
		many = nil
		for s := int64(10); s < 10+maxDeviceListQueue+5; s++ {
			many = append(many, change(s))
		}
		if err := e.q.DeviceListUpdate(ctx, alice, many...); err != nil {
			t.Fatal(err)
		}
		got := e.deviceListKeys(t)
		if len(got) != 3*maxDeviceListQueue || got[0] != "far.test l|@alice:us.test|15" ||
			got[len(got)-1] != fmt.Sprintf("them.test l|@alice:us.test|%d", 10+maxDeviceListQueue+4) {
			t.Errorf("%d queued, from %q to %q", len(got), got[0], got[len(got)-1])
		}
	})
}

// sameJSON compares two JSON documents by value.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}
