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

// TestPushRuleCounts checks that the counts follow push rules: the
// server-default rules (notices, edits and stickers do not count, a room
// mention highlights only when the sender may notify the room) and the
// user's own rules (a keyword that highlights, a muted room).
func TestPushRuleCounts(t *testing.T) {
	forEachBackend(t, testPushRuleCounts)
}

func testPushRuleCounts(t *testing.T, b backend) {
	ts := startServer(t, b)
	alice, bob, carol, dave := ts.register("p_alice"), ts.register("p_bob"), ts.register("p_carol"), ts.register("p_dave")
	room := alice.createRoom(map[string]any{"preset": "public_chat"})
	muted := alice.createRoom(map[string]any{"preset": "public_chat"})
	for _, c := range []*client{bob, carol, dave} {
		c.must("POST", "/join/"+apiEsc(room), map[string]any{})
	}
	bob.must("POST", "/join/"+apiEsc(muted), map[string]any{})
	// dave keeps the defaults; bob highlights a keyword and mutes a room.
	bob.must("PUT", "/pushrules/global/content/fruit", map[string]any{
		"pattern": "pineapple", "actions": []any{"notify", map[string]any{"set_tweak": "highlight"}}})
	bob.must("PUT", "/pushrules/global/room/"+apiEsc(muted), map[string]any{"actions": []any{}})

	n := 0
	send := func(c *client, roomID, typ string, content map[string]any) string {
		n++
		return c.must("PUT", fmt.Sprintf("/rooms/%s/send/%s/pc%d", apiEsc(roomID), typ, n), content)["event_id"].(string)
	}
	text := func(body string) map[string]any { return map[string]any{"msgtype": "m.text", "body": body} }
	send(alice, room, "m.room.message", text("plain"))                                        // notifies
	send(alice, room, "m.room.message", map[string]any{"msgtype": "m.notice", "body": "bot"}) // suppressed notice
	send(alice, room, "m.room.message", map[string]any{"msgtype": "m.text", "body": "* fixed",
		"m.new_content": text("fixed"), "m.relates_to": map[string]any{"rel_type": "m.replace", "event_id": "$x"}}) // edit: suppressed
	send(alice, room, "m.sticker", map[string]any{"body": "sticker", "url": "mxc://x/y", "info": map[string]any{}}) // no rule
	send(alice, room, "m.room.message", map[string]any{"msgtype": "m.text", "body": "@room hi",
		"m.mentions": map[string]any{"room": true}}) // the creator may notify the room: highlight
	send(carol, room, "m.room.message", map[string]any{"msgtype": "m.text", "body": "@room me too",
		"m.mentions": map[string]any{"room": true}}) // carol (level 0) may not: a plain notification
	last := send(carol, room, "m.room.message", text("I like PINEAPPLE")) // bob's keyword
	lastMuted := send(alice, muted, "m.room.message", text("shh"))

	counts := func(c *client, roomID, lastID string) (int, int) {
		var n, h int
		testenv.Eventually(t, 10*time.Second, c.UserID+" sees "+lastID, func() bool {
			resp := c.sync(url.Values{})
			ids := timelineIDs(resp, roomID)
			if len(ids) == 0 || ids[len(ids)-1] != lastID {
				return false
			}
			r := resp["rooms"].(map[string]any)["join"].(map[string]any)[roomID].(map[string]any)
			u := r["unread_notifications"].(map[string]any)
			n, h = int(u["notification_count"].(float64)), int(u["highlight_count"].(float64))
			return true
		})
		return n, h
	}
	if n, h := counts(dave, room, last); n != 4 || h != 1 {
		t.Errorf("default rules: notification_count %d, highlight_count %d; want 4 (plain, two @room, pineapple) and 1 (the creator's @room)", n, h)
	}
	if n, h := counts(bob, room, last); n != 4 || h != 2 {
		t.Errorf("bob's keyword rule: notification_count %d, highlight_count %d; want 4 and 2 (the creator's @room, pineapple)", n, h)
	}
	if n, h := counts(bob, muted, lastMuted); n != 0 || h != 0 {
		t.Errorf("bob's muted room: notification_count %d, highlight_count %d; want 0 and 0", n, h)
	}
}
