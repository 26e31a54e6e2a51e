package main

import (
	"fmt"
	"net/url"
	"testing"
	"time"
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

// TestMaxLongPolls checks that --max-long-polls bounds the /sync requests
// served at once: with a bound of 1, a second /sync while one long-polls
// is refused at once with 503 M_LIMIT_EXCEEDED and Retry-After, and other
// requests are still served (they have their own bound).
func TestMaxLongPolls(t *testing.T) {
	ts := startServer(t, backends()[0], "--max-long-polls", "1", "--max-requests", "8")
	alice := ts.register("alice")
	// set_presence=offline: a presence change would end the long-poll early.
	since := alice.sync(url.Values{"set_presence": {"offline"}})["next_batch"].(string)
	done := make(chan response, 1)
	go func() {
		// The probes below may take the slot first: try again until the
		// long-poll holds it.
		for {
			r := alice.do("GET", "/sync?"+url.Values{"since": {since}, "timeout": {"3000"}, "set_presence": {"offline"}}.Encode(), nil)
			if r.Status != 503 {
				done <- r
				return
			}
		}
	}()
	var second response
	for range 100 {
		second = alice.do("GET", "/sync?"+url.Values{"since": {since}, "timeout": {"0"}, "set_presence": {"offline"}}.Encode(), nil)
		if second.Status == 503 {
			break
		}
		time.Sleep(10 * time.Millisecond) // the long-poll has not started yet
	}
	if second.Status != 503 || second.Body["errcode"] != "M_LIMIT_EXCEEDED" || second.Header.Get("Retry-After") == "" {
		t.Fatalf("second /sync: %d %s", second.Status, second.Raw)
	}
	if r := alice.do("GET", "/joined_rooms", nil); r.Status != 200 {
		t.Fatalf("another request was refused too: %d", r.Status)
	}
	if first := <-done; first.Status != 200 {
		t.Fatalf("the long-poll: %d %s", first.Status, first.Raw)
	}
}
