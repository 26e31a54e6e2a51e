package main

import (
	"net/url"
	"sync"
	"testing"
)

// TestAPITransactionIDs checks the spec's "Transaction identifiers": a
// retransmission (same device, same endpoint path, same txnId) answers
// the original event ID and sends nothing new; the scope of a transaction
// ID is one device and one endpoint, so another device, another user or
// another path is a new request.
func TestAPITransactionIDs(t *testing.T) {
	runAPICases(t, []apiCase{
		{"SameDeviceRetransmission", apiTxnSameDevice},
		{"OtherDeviceAndOtherUser", apiTxnOtherDeviceAndUser},
		{"OtherRoomIsAnotherPath", apiTxnOtherRoom},
		{"OtherEventTypeIsAnotherPath", apiTxnOtherEventType},
		{"RedactAndSendAreSeparateEndpoints", apiTxnRedact},
		{"ConcurrentRetransmissions", apiTxnConcurrent},
	})
}

// apiCountBodies counts the room's events (the last 100) whose content
// body is body.
func apiCountBodies(t *testing.T, c *client, roomID, body string) int {
	t.Helper()
	n := 0
	for _, e := range c.apiMessages(t, roomID, url.Values{"dir": {"b"}, "limit": {"100"}}).Chunk {
		if e.Content["body"] == body {
			n++
		}
	}
	return n
}

func apiMustSend(t *testing.T, c *client, roomID, evType, txn string, content map[string]any) string {
	t.Helper()
	r := c.apiSend(t, roomID, evType, txn, content)
	if r.Status != 200 {
		t.Fatalf("send %s txn %s as %s/%s: %d %s", evType, txn, c.UserID, c.DeviceID, r.Status, r.Raw)
	}
	return r.Body["event_id"].(string)
}

func apiTxnSameDevice(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "tsame")
	room := alice.apiRoom(t, nil)
	txn := apiUniq("txn")
	msg := map[string]any{"msgtype": "m.text", "body": "only once"}
	first := apiMustSend(t, alice, room, "m.room.message", txn, msg)
	again := apiMustSend(t, alice, room, "m.room.message", txn, msg)
	if again != first {
		t.Errorf("retransmission answered %s, the original was %s", again, first)
	}
	// A retransmission is recognised by device, path and txnId; a
	// changed body does not make it a new request.
	changed := apiMustSend(t, alice, room, "m.room.message", txn, map[string]any{"msgtype": "m.text", "body": "changed"})
	if changed != first {
		t.Errorf("retransmission with another body answered %s, the original was %s", changed, first)
	}
	if n := apiCountBodies(t, alice, room, "only once"); n != 1 {
		t.Errorf("the room has %d copies of the message, want 1", n)
	}
	if n := apiCountBodies(t, alice, room, "changed"); n != 0 {
		t.Errorf("the retransmission with another body was sent (%d events)", n)
	}
}

func apiTxnOtherDeviceAndUser(t *testing.T, ts *testServer) {
	alice, bob := apiUser(t, ts, "tdevA"), apiUser(t, ts, "tdevB")
	alice2 := alice.apiLogin(t, "")
	room := alice.apiRoom(t, map[string]any{"preset": "public_chat"})
	bob.apiJoin(t, room)
	txn := apiUniq("shared")
	msg := map[string]any{"msgtype": "m.text", "body": "same txn everywhere"}
	a1 := apiMustSend(t, alice, room, "m.room.message", txn, msg)
	a2 := apiMustSend(t, alice2, room, "m.room.message", txn, msg)
	b1 := apiMustSend(t, bob, room, "m.room.message", txn, msg)
	if a1 == a2 {
		t.Errorf("two devices of one user with the same txnId got the same event %s", a1)
	}
	if b1 == a1 || b1 == a2 {
		t.Errorf("another user with the same txnId got alice's event %s", b1)
	}
	// Each device's retransmission still maps to its own event.
	if got := apiMustSend(t, alice2, room, "m.room.message", txn, msg); got != a2 {
		t.Errorf("second device's retransmission answered %s, want %s", got, a2)
	}
	if got := apiMustSend(t, alice, room, "m.room.message", txn, msg); got != a1 {
		t.Errorf("first device's retransmission answered %s, want %s", got, a1)
	}
	if n := apiCountBodies(t, alice, room, "same txn everywhere"); n != 3 {
		t.Errorf("the room has %d copies, want 3 (one per device)", n)
	}
}

// apiTxnOtherRoom: the same txnId on the same device to another room is
// another HTTP path, so it is a new request, and its event goes to that
// room.
func apiTxnOtherRoom(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "troom")
	r1, r2 := alice.apiRoom(t, nil), alice.apiRoom(t, nil)
	txn := apiUniq("txn")
	e1 := apiMustSend(t, alice, r1, "m.room.message", txn, map[string]any{"msgtype": "m.text", "body": "to room one"})
	e2 := apiMustSend(t, alice, r2, "m.room.message", txn, map[string]any{"msgtype": "m.text", "body": "to room two"})
	if e1 == e2 {
		t.Errorf("sending to another room with the same txnId answered the first room's event %s", e1)
	}
	if n := apiCountBodies(t, alice, r2, "to room two"); n != 1 {
		t.Errorf("room two has %d copies of its message, want 1", n)
	}
}

// apiTxnOtherEventType: likewise for another event type in the same room.
func apiTxnOtherEventType(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "ttype")
	room := alice.apiRoom(t, nil)
	txn := apiUniq("txn")
	e1 := apiMustSend(t, alice, room, "m.room.message", txn, map[string]any{"msgtype": "m.text", "body": "a message"})
	e2 := apiMustSend(t, alice, room, "org.example.custom", txn, map[string]any{"body": "a custom event"})
	if e1 == e2 {
		t.Errorf("another event type with the same txnId answered the first event %s", e1)
	}
	if n := apiCountBodies(t, alice, room, "a custom event"); n != 1 {
		t.Errorf("the custom event was sent %d times, want 1", n)
	}
}

// apiTxnRedact: /redact and /send are separate endpoints, so one txnId may
// be used on both; a retransmitted redaction answers the same redaction.
func apiTxnRedact(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "tred")
	room := alice.apiRoom(t, nil)
	txn := apiUniq("txn")
	msg := apiMustSend(t, alice, room, "m.room.message", txn, map[string]any{"msgtype": "m.text", "body": "to redact"})
	path := "/rooms/" + apiEsc(room) + "/redact/" + apiEsc(msg) + "/" + apiEsc(txn)
	red := alice.apiOK(t, "PUT", path, map[string]any{"reason": "r"})["event_id"].(string)
	if red == msg {
		t.Fatalf("the redaction with the message's txnId answered the message's event ID")
	}
	if again := alice.apiOK(t, "PUT", path, map[string]any{"reason": "r"})["event_id"].(string); again != red {
		t.Errorf("retransmitted redaction answered %s, want %s", again, red)
	}
	n := 0
	for _, e := range alice.apiMessages(t, room, url.Values{"dir": {"b"}, "limit": {"100"}}).Chunk {
		if e.Type == "m.room.redaction" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the room has %d redactions, want 1", n)
	}
}

// apiTxnConcurrent: retransmissions racing each other still make one
// event.
func apiTxnConcurrent(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "tconc")
	room := alice.apiRoom(t, nil)
	txn := apiUniq("txn")
	const n = 8
	ids := make([]string, n)
	errs := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r, err := apiRaw("PUT", ts.base+apiV3+"/rooms/"+apiEsc(room)+"/send/m.room.message/"+apiEsc(txn), alice.Token,
				map[string]any{"msgtype": "m.text", "body": "raced"})
			switch {
			case err != nil:
				errs[i] = err.Error()
			case r.Status != 200:
				errs[i] = string(r.Raw)
			default:
				ids[i], _ = r.Body["event_id"].(string)
			}
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != "" {
			t.Errorf("request %d: %s", i, errs[i])
		} else if ids[i] != ids[0] {
			t.Errorf("request %d answered %s, request 0 %s", i, ids[i], ids[0])
		}
	}
	if c := apiCountBodies(t, alice, room, "raced"); c != 1 {
		t.Errorf("%d racing retransmissions made %d events, want 1", n, c)
	}
}
