package main

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/testenv"
)

// TestUnreadCounts checks notification and highlight counts in /sync and
// that a read receipt clears them.
func TestUnreadCounts(t *testing.T) {
	forEachBackend(t, testUnreadCounts)
}

func testUnreadCounts(t *testing.T, b backend) {
	ts := startServer(t, b)
	alice, bob := ts.register("alice_x"), ts.register("bob")
	room := alice.createRoom(map[string]any{"preset": "public_chat"})
	bob.must("POST", "/join/"+apiEsc(room), map[string]any{})
	alice.send(room, "my own message does not count")
	bob.send(room, "hello")
	bob.send(room, "hey alice_x, look") // a plain body: no highlight since v1.17
	last := bob.must("PUT", fmt.Sprintf("/rooms/%s/send/m.room.message/m1", apiEsc(room)), map[string]any{
		"msgtype": "m.text", "body": "for you", "m.mentions": map[string]any{"user_ids": []string{alice.UserID}},
	})["event_id"].(string)

	counts := func(resp map[string]any) (int, int, bool) {
		rooms, _ := resp["rooms"].(map[string]any)
		join, _ := rooms["join"].(map[string]any)
		r, ok := join[room].(map[string]any)
		if !ok {
			return 0, 0, false
		}
		u := r["unread_notifications"].(map[string]any)
		return int(u["notification_count"].(float64)), int(u["highlight_count"].(float64)), true
	}
	var resp map[string]any
	testenv.Eventually(t, 10*time.Second, "the last message reaches alice's sync", func() bool {
		resp = alice.sync(url.Values{})
		ids := timelineIDs(resp, room)
		return len(ids) > 0 && ids[len(ids)-1] == last
	})
	if n, h, _ := counts(resp); n != 3 || h != 1 {
		t.Fatalf("notification_count %d, highlight_count %d; want 3 and 1", n, h)
	}
	// An incremental sync adds what is new to the counts (the server counts
	// the new range from the timeline it reads, not from the start).
	bob.send(room, "more")
	last = bob.must("PUT", fmt.Sprintf("/rooms/%s/send/m.room.message/m2", apiEsc(room)), map[string]any{
		"msgtype": "m.text", "body": "again", "m.mentions": map[string]any{"user_ids": []string{alice.UserID}},
	})["event_id"].(string)
	since := resp["next_batch"].(string)
	for {
		resp = alice.syncUntil(since, func(r map[string]any) bool {
			_, _, present := counts(r)
			return present
		})
		if ids := timelineIDs(resp, room); len(ids) > 0 && ids[len(ids)-1] == last {
			break
		}
		since = resp["next_batch"].(string)
	}
	if n, h, _ := counts(resp); n != 5 || h != 2 {
		t.Fatalf("after two more: notification_count %d, highlight_count %d; want 5 and 2", n, h)
	}
	alice.must("POST", fmt.Sprintf("/rooms/%s/receipt/m.read/%s", apiEsc(room), apiEsc(last)), map[string]any{})
	next := alice.syncUntil(resp["next_batch"].(string), func(r map[string]any) bool {
		_, _, present := counts(r)
		return present
	})
	if n, h, _ := counts(next); n != 0 || h != 0 {
		t.Fatalf("after the receipt: notification_count %d, highlight_count %d; want 0", n, h)
	}
}
