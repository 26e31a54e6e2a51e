package main

import (
	"net/url"
	"slices"
	"testing"
)

// TestAPIHistoryVisibility: what a member sees of the messages sent
// before they joined follows the room's history visibility at each
// message (spec "Room History Visibility"), in /messages, /context,
// /event and the /sync timeline alike.
func TestAPIHistoryVisibility(t *testing.T) {
	runAPICases(t, []apiCase{{"PerEvent", apiHistoryVisibility}})
}

func apiHistoryVisibility(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "hva")
	bob := apiUser(t, ts, "hvb")
	carol := apiUser(t, ts, "hvc")
	dave := apiUser(t, ts, "hvd")
	room := alice.apiRoom(t, map[string]any{"preset": "private_chat"})
	setHV := func(v string) string {
		return alice.apiPutState(t, room, "m.room.history_visibility", "", map[string]any{"history_visibility": v})
	}
	invite := func(c *client) {
		alice.apiOK(t, "POST", "/rooms/"+apiEsc(room)+"/invite", map[string]any{"user_id": c.UserID})
	}

	sharedMsg := alice.apiText(t, room, "shared, before anyone")
	hvJoined := setHV("joined")
	beforeInvite := alice.apiText(t, room, "joined, before bob's invite")
	invite(bob)
	whileInvited := alice.apiText(t, room, "joined, while bob is invited")
	bob.apiJoin(t, room)
	afterJoin := alice.apiText(t, room, "joined, after bob's join")
	setHV("invited")
	invite(carol)
	carolInvited := alice.apiText(t, room, "invited, while carol is invited")
	carol.apiJoin(t, room)
	setHV("shared")
	last := alice.apiText(t, room, "shared, at the end")
	invite(dave)
	dave.apiJoin(t, room)

	all := []string{sharedMsg, hvJoined, beforeInvite, whileInvited, afterJoin, carolInvited, last}
	cases := []struct {
		who  *client
		sees []string
	}{
		// Bob joined while it was "joined": he sees from his join on,
		// and the "shared" message before it (he joined after it).
		{bob, []string{sharedMsg, hvJoined, afterJoin, carolInvited, last}},
		// Carol sees from her invite on while it was "invited".
		{carol, []string{sharedMsg, hvJoined, carolInvited, last}},
		// Dave joined under "shared": only what was "shared" then, not
		// the "joined" and "invited" stretch.
		{dave, []string{sharedMsg, hvJoined, last}},
		{alice, all},
	}
	for _, c := range cases {
		name := c.who.UserID
		var got []string
		for _, e := range c.who.apiMessages(t, room, url.Values{"dir": {"b"}, "limit": {"100"}}).Chunk {
			if slices.Contains(all, e.EventID) {
				got = append(got, e.EventID)
			}
		}
		slices.Reverse(got)
		if !slices.Equal(got, c.sees) {
			t.Errorf("%s: /messages shows %d of the events: %v, want %v", name, len(got), got, c.sees)
		}
		for _, id := range all {
			r := c.who.apiCall(t, "GET", "/rooms/"+apiEsc(room)+"/event/"+apiEsc(id), nil)
			if want := slices.Contains(c.sees, id); (r.Status == 200) != want {
				t.Errorf("%s: /event of %s: %d, visible %v", name, id, r.Status, want)
			}
		}
		// /sync's timeline with room for everything.
		s := c.who.apiSync(t, url.Values{"filter": {`{"room":{"timeline":{"limit":100}}}`}})
		got = nil
		for _, e := range s.Rooms.Join[room].Timeline.Events {
			if slices.Contains(all, e.EventID) {
				got = append(got, e.EventID)
			}
		}
		if !slices.Equal(got, c.sees) {
			t.Errorf("%s: /sync timeline shows %v, want %v", name, got, c.sees)
		}
	}
	// /context around bob's first visible message leaves out the
	// hidden ones before it; the hidden one itself is not found.
	ctx := bob.apiOK(t, "GET", "/rooms/"+apiEsc(room)+"/context/"+apiEsc(afterJoin)+"?limit=10", nil)
	for _, e := range ctx["events_before"].([]any) {
		if id := e.(map[string]any)["event_id"].(string); id == beforeInvite || id == whileInvited {
			t.Errorf("/context shows bob the hidden %s", id)
		}
	}
	apiWantErr(t, bob.apiCall(t, "GET", "/rooms/"+apiEsc(room)+"/context/"+apiEsc(whileInvited), nil), 404, "M_NOT_FOUND")
}
