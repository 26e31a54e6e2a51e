package main

import (
	"fmt"
	"net/url"
	"testing"
)

// TestRateLimits checks M_LIMIT_EXCEEDED per user (writes) and per IP,
// with retry_after_ms and Retry-After, and that a refused write sends
// nothing.
func TestRateLimits(t *testing.T) {
	b := backends()[0] // the limits do not depend on the backend
	t.Run("per user", func(t *testing.T) {
		ts := startServer(t, b, "--rate-limit-user", "0.01/3")
		alice := ts.register("alice")
		room := alice.createRoom(map[string]any{}) // takes one token
		var last response
		sent := 0
		for i := range 4 {
			last = alice.do("PUT", fmt.Sprintf("/rooms/%s/send/m.room.message/rl%d", url.PathEscape(room), i),
				map[string]any{"msgtype": "m.text", "body": "x"})
			if last.Status == 200 {
				sent++
			}
		}
		if sent != 2 || last.Status != 429 || last.Body["errcode"] != "M_LIMIT_EXCEEDED" {
			t.Fatalf("sent %d, last answer %d %s", sent, last.Status, last.Raw)
		}
		if ms, _ := last.Body["retry_after_ms"].(float64); ms <= 0 || last.Header.Get("Retry-After") == "" {
			t.Fatalf("no retry hint: %s %v", last.Raw, last.Header)
		}
		// Reads are not limited per user.
		if r := alice.do("GET", "/joined_rooms", nil); r.Status != 200 {
			t.Fatalf("a read was limited: %d", r.Status)
		}
		// Another user has their own budget.
		bob := ts.register("bob")
		bob.createRoom(map[string]any{})
	})
	t.Run("per IP", func(t *testing.T) {
		ts := startServer(t, b, "--rate-limit-ip", "0.01/3")
		var last response
		for range 4 {
			last = ts.do("GET", "/_matrix/client/versions", "", nil)
		}
		if last.Status != 429 || last.Body["errcode"] != "M_LIMIT_EXCEEDED" || last.Header.Get("Retry-After") == "" {
			t.Fatalf("4th request: %d %s", last.Status, last.Raw)
		}
	})
}
