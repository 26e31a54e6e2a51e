package main

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/testenv"
)

// eduEvents returns the events of a top-level section of a /sync
// response ("presence", "to_device").
func (s *apiSyncResp) eduEvents(section string) []apiEvent {
	sec, _ := s.raw[section].(map[string]any)
	raw, _ := json.Marshal(sec["events"])
	var evs []apiEvent
	_ = json.Unmarshal(raw, &evs)
	return evs
}

// typing returns the users typing in room per the response (nil when it
// has no m.typing for the room).
func (s *apiSyncResp) typing(room string) []string {
	for _, e := range s.Rooms.Join[room].Ephemeral.Events {
		if e.Type == "m.typing" {
			users := []string{}
			for _, u := range e.Content["user_ids"].([]any) {
				users = append(users, u.(string))
			}
			return users
		}
	}
	return nil
}

// readReceipt reports whether the response has user's m.read receipt on
// eventID in room.
func (s *apiSyncResp) readReceipt(room, eventID, user string) bool {
	for _, e := range s.Rooms.Join[room].Ephemeral.Events {
		if e.Type != "m.receipt" {
			continue
		}
		byType, _ := e.Content[eventID].(map[string]any)
		byUser, _ := byType["m.read"].(map[string]any)
		if _, ok := byUser[user]; ok {
			return true
		}
	}
	return false
}

// presenceOf returns user's presence content in the response, nil if none.
func (s *apiSyncResp) presenceOf(user string) map[string]any {
	for _, e := range s.eduEvents("presence") {
		if e.Sender == user {
			return e.Content
		}
	}
	return nil
}

// toDevice returns the send-to-device messages of the given type.
func (s *apiSyncResp) toDevice(typ string) []apiEvent {
	return slices.DeleteFunc(s.eduEvents("to_device"), func(e apiEvent) bool { return e.Type != typ })
}

func (s *apiSyncResp) deviceListsChanged() []string {
	dl, _ := s.raw["device_lists"].(map[string]any)
	var out []string
	for _, u := range dl["changed"].([]any) {
		out = append(out, u.(string))
	}
	return out
}

func since(token string) url.Values { return url.Values{"since": {token}} }

// waitJoined waits until c's server sees user joined to room.
func waitJoined(t *testing.T, c *client, room, user string) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, c.ts.name+" sees "+user+" joined", func() bool {
		r := c.do("GET", "/rooms/"+apiEsc(room)+"/state/m.room.member/"+apiEsc(user), nil)
		return r.Status == 200 && r.Body["membership"] == "join"
	})
}

// Typing, a read receipt, presence and a send-to-device message of a
// user of one server reach a user of the other in /sync, both ways.
func TestFederationEDUsBothWays(t *testing.T) {
	alice, bob, room := sharedRoom(t)
	waitJoined(t, alice, room, bob.UserID)
	ev := alice.send(room, "read me")
	bob.apiSyncUntilEvent(t, nil, room, ev)
	bobSince := bob.apiSync(t, nil).NextBatch
	aliceSince := alice.apiSync(t, nil).NextBatch

	// a → b.
	alice.must("PUT", "/rooms/"+apiEsc(room)+"/typing/"+apiEsc(alice.UserID), map[string]any{"typing": true, "timeout": 20000})
	bob.apiSyncUntil(t, since(bobSince), "alice is typing", func(s *apiSyncResp) bool {
		return slices.Contains(s.typing(room), alice.UserID)
	})
	alice.must("POST", "/rooms/"+apiEsc(room)+"/receipt/m.read/"+apiEsc(ev), map[string]any{})
	bob.apiSyncUntil(t, since(bobSince), "alice's read receipt", func(s *apiSyncResp) bool {
		return s.readReceipt(room, ev, alice.UserID)
	})
	alice.must("PUT", "/presence/"+apiEsc(alice.UserID)+"/status", map[string]any{"presence": "unavailable", "status_msg": "at lunch"})
	bob.apiSyncUntil(t, since(bobSince), "alice's presence", func(s *apiSyncResp) bool {
		p := s.presenceOf(alice.UserID)
		return p != nil && p["status_msg"] == "at lunch" && p["presence"] == "unavailable"
	})
	msg := map[string]any{"messages": map[string]any{bob.UserID: map[string]any{bob.DeviceID: map[string]any{"hello": "bob"}}}}
	alice.must("PUT", "/sendToDevice/m.test.hello/td1", msg)
	alice.must("PUT", "/sendToDevice/m.test.hello/td1", msg) // a retransmission: once
	got := bob.apiSyncUntil(t, since(bobSince), "alice's send-to-device message", func(s *apiSyncResp) bool {
		return len(s.toDevice("m.test.hello")) > 0
	})
	if tds := got.toDevice("m.test.hello"); len(tds) != 1 || tds[0].Sender != alice.UserID || tds[0].Content["hello"] != "bob" {
		t.Errorf("bob's send-to-device messages: %v", tds)
	}
	// Alice stops typing: bob sees nobody typing.
	alice.must("PUT", "/rooms/"+apiEsc(room)+"/typing/"+apiEsc(alice.UserID), map[string]any{"typing": false})
	bob.apiSyncUntil(t, since(bobSince), "alice stopped typing", func(s *apiSyncResp) bool {
		users := s.typing(room)
		return users != nil && !slices.Contains(users, alice.UserID)
	})

	// b → a.
	bob.must("PUT", "/rooms/"+apiEsc(room)+"/typing/"+apiEsc(bob.UserID), map[string]any{"typing": true, "timeout": 20000})
	alice.apiSyncUntil(t, since(aliceSince), "bob is typing", func(s *apiSyncResp) bool {
		return slices.Contains(s.typing(room), bob.UserID)
	})
	bob.must("PUT", "/sendToDevice/m.test.back/tb1", map[string]any{"messages": map[string]any{alice.UserID: map[string]any{"*": map[string]any{"to": "every device"}}}})
	alice.apiSyncUntil(t, since(aliceSince), "bob's send-to-device message to all of alice's devices", func(s *apiSyncResp) bool {
		tds := s.toDevice("m.test.back")
		return len(tds) == 1 && tds[0].Sender == bob.UserID && tds[0].Content["to"] == "every device"
	})
	bob.must("POST", "/rooms/"+apiEsc(room)+"/receipt/m.read/"+apiEsc(ev), map[string]any{})
	alice.apiSyncUntil(t, since(aliceSince), "bob's read receipt", func(s *apiSyncResp) bool {
		return s.readReceipt(room, ev, bob.UserID)
	})

	// Bob logs in on a new device: his server counts the change and sends
	// an m.device_list_update, so alice's next /sync lists him in
	// device_lists.changed, and so does the /sync of his own first device.
	bobSince = bob.apiSync(t, nil).NextBatch
	phone := bob.apiLogin(t, "PHONE")
	alice.apiSyncUntil(t, since(aliceSince), "bob in device_lists.changed", func(s *apiSyncResp) bool {
		return slices.Contains(s.deviceListsChanged(), bob.UserID)
	})
	bob.apiSyncUntil(t, since(bobSince), "bob's own new device in device_lists.changed", func(s *apiSyncResp) bool {
		return slices.Contains(s.deviceListsChanged(), bob.UserID)
	})
	// His server's /user/devices names the new device at the stream ID of
	// the change.
	var devs struct {
		StreamID int64 `json:"stream_id"`
		Devices  []struct {
			DeviceID string `json:"device_id"`
		} `json:"devices"`
	}
	if err := alice.ts.srv.fedClient.GetJSON(context.Background(), "b.fed.test", "/_matrix/federation/v1/user/devices/"+apiEsc(bob.UserID), &devs); err != nil {
		t.Fatal(err)
	}
	if devs.StreamID < 1 || !slices.ContainsFunc(devs.Devices, func(d struct {
		DeviceID string `json:"device_id"`
	}) bool {
		return d.DeviceID == phone.DeviceID
	}) {
		t.Errorf("bob's devices as his server lists them: %+v", devs)
	}
}

// EDUs that break the rules are dropped, the others of the same
// transaction applied: a receipt of a user of another server than the
// origin, and, once the room's server ACL denies the origin, its receipts.
func TestFederationEDUsDropped(t *testing.T) {
	alice, bob, room := sharedRoom(t)
	waitJoined(t, alice, room, bob.UserID)
	ev1 := alice.send(room, "one")
	ev2 := alice.send(room, "two")
	bob.apiSyncUntilEvent(t, nil, room, ev2)
	aliceSince := alice.apiSync(t, nil).NextBatch

	receipt := func(user, eventID string) map[string]any {
		return map[string]any{"edu_type": "m.receipt", "content": map[string]any{room: map[string]any{"m.read": map[string]any{
			user: map[string]any{"event_ids": []string{eventID}, "data": map[string]any{"ts": time.Now().UnixMilli()}}}}}}
	}
	txn := map[string]any{"origin": "b.fed.test", "origin_server_ts": time.Now().UnixMilli(), "pdus": []any{},
		"edus": []any{
			receipt(alice.UserID, ev1),          // a user of a.fed.test, from b.fed.test
			receipt("@mallory:c.fed.test", ev1), // a user of a third server
			map[string]any{"edu_type": "m.typing", "content": "not an object"},
			receipt(bob.UserID, ev2), // fine
		}}
	var resp map[string]any
	if err := bob.ts.srv.fedClient.SendJSON(context.Background(), "a.fed.test", "PUT", "/_matrix/federation/v1/send/forged1", txn, &resp); err != nil {
		t.Fatalf("a transaction with bad EDUs: %v", err)
	}
	s := alice.apiSyncUntil(t, since(aliceSince), "bob's receipt", func(s *apiSyncResp) bool {
		return s.readReceipt(room, ev2, bob.UserID)
	})
	if s.readReceipt(room, ev1, alice.UserID) || s.readReceipt(room, ev1, "@mallory:c.fed.test") {
		t.Errorf("a receipt of a user not of the origin was applied: %v", s.Rooms.Join[room].Ephemeral.Events)
	}

	// The room's ACL denies b.fed.test: bob's receipt is dropped, his
	// presence (not of a room) still arrives, after it.
	alice.must("PUT", apiStatePath(room, "m.room.server_acl", ""), map[string]any{"allow": []string{"*"}, "deny": []string{"b.fed.test"}})
	next := alice.apiSync(t, nil).NextBatch
	bob.must("POST", "/rooms/"+apiEsc(room)+"/receipt/m.read/"+apiEsc(ev1), map[string]any{})
	bob.must("PUT", "/presence/"+apiEsc(bob.UserID)+"/status", map[string]any{"presence": "online", "status_msg": "after the ACL"})
	s = alice.apiSyncUntil(t, since(next), "bob's presence", func(s *apiSyncResp) bool {
		p := s.presenceOf(bob.UserID)
		return p != nil && p["status_msg"] == "after the ACL"
	})
	if s.readReceipt(room, ev1, bob.UserID) {
		t.Errorf("a receipt from a server the ACL denies was applied")
	}
}
