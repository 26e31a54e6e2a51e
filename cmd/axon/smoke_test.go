package main

import (
	"net/url"
	"testing"
)

// syncUntil long-polls from since until pred accepts a response (at most
// 20 rounds), and returns it.
func (c *client) syncUntil(since string, pred func(resp map[string]any) bool) map[string]any {
	c.ts.t.Helper()
	for range 20 {
		resp := c.sync(url.Values{"since": {since}, "timeout": {"5000"}})
		if pred(resp) {
			return resp
		}
		since = resp["next_batch"].(string)
	}
	c.ts.t.Fatalf("%s: sync never showed what the test waited for", c.UserID)
	return nil
}

// timelineIDs lists the event IDs of a joined room's timeline in a sync
// response.
func timelineIDs(resp map[string]any, room string) []string {
	rooms, _ := resp["rooms"].(map[string]any)
	join, _ := rooms["join"].(map[string]any)
	r, _ := join[room].(map[string]any)
	tl, _ := r["timeline"].(map[string]any)
	evs, _ := tl["events"].([]any)
	var ids []string
	for _, e := range evs {
		ids = append(ids, e.(map[string]any)["event_id"].(string))
	}
	return ids
}

func TestSmokeRegisterCreateSendSync(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ts := startServer(t, b)
		alice, bob := ts.register("alice"), ts.register("bob")
		room := alice.createRoom(map[string]any{"preset": "public_chat", "name": "smoke"})
		first := bob.sync(url.Values{})
		bob.must("POST", "/rooms/"+url.PathEscape(room)+"/join", map[string]any{})
		id := alice.send(room, "hello bob")
		bob.syncUntil(first["next_batch"].(string), func(resp map[string]any) bool {
			for _, got := range timelineIDs(resp, room) {
				if got == id {
					return true
				}
			}
			return false
		})
	})
}
