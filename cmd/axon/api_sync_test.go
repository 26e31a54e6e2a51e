package main

import (
	"fmt"
	"net/url"
	"slices"
	"testing"
)

// TestAPISync checks GET /sync (spec: client-server-api "Syncing" and the
// sync.yaml OpenAPI) against one server, with many users in parallel.
func TestAPISync(t *testing.T) {
	runAPICases(t, []apiCase{
		{"InitialShape", apiSyncInitialShape},
		{"InitialStateIsAtTimelineStart", apiSyncInitialStateAtTimelineStart},
		{"RoomSummaryCounts", apiSyncRoomSummary},
		{"IncrementalOnlyNew", apiSyncIncremental},
		{"GappyTimeline", apiSyncGappy},
		{"LongGapManyRooms", apiSyncLongGap},
		{"FullState", apiSyncFullState},
		{"LeaveThenRejoin", apiSyncLeaveRejoin},
		{"Invites", apiSyncInvites},
		{"Redaction", apiSyncRedaction},
		{"RedactedStateEvent", apiSyncRedactedState},
		{"LazyLoadMembers", apiSyncLazyLoad},
		{"LazyLoadMembersIncremental", apiSyncLazyLoadIncremental},
		{"LongPollWakesOnSend", apiSyncLongPoll},
		{"TransactionIDOnlyForSendingDevice", apiSyncTxnIDSendingDevice},
		{"StoredFilter", apiSyncStoredFilter},
	})
}

// apiSyncInitialShape: an initial sync has next_batch, the rooms maps, and
// per joined room the timeline, state, account_data and ephemeral blocks;
// events inside rooms carry no room_id (ClientEventWithoutRoomID).
func apiSyncInitialShape(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "shape")
	room := alice.apiRoom(t, map[string]any{"name": "shape room", "topic": "shape topic"})
	msg := alice.apiText(t, room, "hello shape")
	s := alice.apiSyncUntilEvent(t, nil, room, msg)

	if s.NextBatch == "" {
		t.Errorf("initial sync has no next_batch: %v", s.raw)
	}
	rooms, ok := s.raw["rooms"].(map[string]any)
	if !ok {
		t.Fatalf("initial sync has no rooms object: %v", s.raw)
	}
	for _, k := range []string{"join", "invite", "leave"} {
		if _, ok := rooms[k].(map[string]any); !ok {
			t.Errorf("rooms.%s is not an object: %v", k, rooms[k])
		}
	}
	jr := rooms["join"].(map[string]any)[room].(map[string]any)
	for _, k := range []string{"timeline", "state", "account_data", "ephemeral"} {
		blk, ok := jr[k].(map[string]any)
		if !ok {
			t.Errorf("rooms.join[room].%s missing: %v", k, jr)
			continue
		}
		if _, ok := blk["events"].([]any); !ok {
			t.Errorf("rooms.join[room].%s.events is not an array: %v", k, blk)
		}
	}
	j := s.Rooms.Join[room]
	tl := j.Timeline.Events
	if len(tl) == 0 || tl[len(tl)-1].EventID != msg {
		t.Errorf("timeline does not end with the message %s: %v", msg, tl)
	}
	for _, e := range append(slices.Clone(tl), j.State.Events...) {
		if e.EventID == "" || e.Type == "" || e.Sender == "" || e.OriginServerTS == 0 || e.Content == nil {
			t.Errorf("event lacks a required ClientEvent field: %+v", e)
		}
		if e.RoomID != "" {
			t.Errorf("event inside rooms.join has a room_id (ClientEventWithoutRoomID): %v", e)
		}
	}
	for _, e := range j.State.Events {
		if e.StateKey == nil {
			t.Errorf("state holds a non-state event: %v", e)
		}
		if apiIndexOf(tl, e.EventID) >= 0 {
			t.Errorf("event %s is both in state and in the timeline", e.EventID)
		}
	}
	all := append(slices.Clone(j.State.Events), tl...)
	for _, want := range [][2]string{{"m.room.create", ""}, {"m.room.member", alice.UserID}, {"m.room.power_levels", ""},
		{"m.room.join_rules", ""}, {"m.room.history_visibility", ""}, {"m.room.name", ""}, {"m.room.topic", ""}} {
		if _, ok := apiFindState(all, want[0], want[1]); !ok {
			t.Errorf("state+timeline of the initial sync lack %s %q", want[0], want[1])
		}
	}
}

// apiSyncInitialStateAtTimelineStart: with a small timeline limit, state is
// the room state at the start of the timeline: it and the timeline
// together are the current state, they don't overlap, and a state event
// first set inside the timeline is not in state.
func apiSyncInitialStateAtTimelineStart(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "start")
	room := alice.apiRoom(t, map[string]any{"name": "start room"})
	topic := alice.apiPutState(t, room, "m.room.topic", "", map[string]any{"topic": "set late"})
	msg := alice.apiText(t, room, "after the topic")
	f := apiFilter(map[string]any{"room": map[string]any{"timeline": map[string]any{"limit": 2}}})
	s := alice.apiSyncUntilEvent(t, url.Values{"filter": {f}}, room, msg)
	j := s.Rooms.Join[room]
	if got := apiIDs(j.Timeline.Events); !slices.Equal(got, []string{topic, msg}) {
		t.Fatalf("timeline = %v, want [topic %s, message %s]", j.Timeline.Events, topic, msg)
	}
	if !j.Timeline.Limited {
		t.Errorf("timeline of 2 out of many events is not limited")
	}
	if j.Timeline.PrevBatch == "" {
		t.Errorf("limited timeline has no prev_batch")
	}
	if _, ok := apiFindState(j.State.Events, "m.room.topic", ""); ok {
		t.Errorf("state has m.room.topic, but the room had no topic at the start of the timeline: %v", j.State.Events)
	}
	cur := alice.apiFullState(t, room)
	merged := map[[2]string]string{}
	for _, e := range append(slices.Clone(j.State.Events), j.Timeline.Events...) {
		if e.StateKey != nil {
			merged[[2]string{e.Type, *e.StateKey}] = e.EventID
		}
	}
	for _, e := range cur {
		if got := merged[[2]string{e.Type, *e.StateKey}]; got != e.EventID {
			t.Errorf("state+timeline has %q for %s %q, current state has %s", got, e.Type, *e.StateKey, e.EventID)
		}
	}
	// prev_batch leads back to the event just before the timeline.
	m := alice.apiMessages(t, room, url.Values{"dir": {"b"}, "from": {j.Timeline.PrevBatch}, "limit": {"1"}})
	if len(m.Chunk) != 1 || m.Chunk[0].Type != "m.room.name" {
		t.Errorf("/messages back from prev_batch starts with %v, want the m.room.name event", m.Chunk)
	}
}

// apiSyncRoomSummary: in the first sync that shows a room, the summary has
// m.joined_member_count and m.invited_member_count (required unless
// unchanged since the last sync) and, for a room without a name or
// canonical alias, m.heroes without the syncing user.
func apiSyncRoomSummary(t *testing.T, ts *testServer) {
	alice, bob, carol := apiUser(t, ts, "sumA"), apiUser(t, ts, "sumB"), apiUser(t, ts, "sumC")
	room := alice.apiRoom(t, map[string]any{"preset": "public_chat", "invite": []string{carol.UserID}})
	bob.apiJoin(t, room)
	msg := alice.apiText(t, room, "summary")
	s := alice.apiSyncUntilEvent(t, nil, room, msg)
	sum := s.Rooms.Join[room].Summary
	if n, ok := sum["m.joined_member_count"].(float64); !ok || n != 2 {
		t.Errorf("summary m.joined_member_count = %v, want 2 (summary %v)", sum["m.joined_member_count"], sum)
	}
	if n, ok := sum["m.invited_member_count"].(float64); !ok || n != 1 {
		t.Errorf("summary m.invited_member_count = %v, want 1 (summary %v)", sum["m.invited_member_count"], sum)
	}
	heroes, _ := sum["m.heroes"].([]any)
	var hs []string
	for _, h := range heroes {
		hs = append(hs, fmt.Sprint(h))
	}
	if !slices.Contains(hs, bob.UserID) || !slices.Contains(hs, carol.UserID) || slices.Contains(hs, alice.UserID) {
		t.Errorf("summary m.heroes = %v, want %s and %s and never the syncing user (summary %v)", hs, bob.UserID, carol.UserID, sum)
	}
}

// apiSyncIncremental: an incremental sync returns only what happened after
// since, and nothing for rooms that did not change.
func apiSyncIncremental(t *testing.T, ts *testServer) {
	alice, bob := apiUser(t, ts, "incA"), apiUser(t, ts, "incB")
	room := alice.apiRoom(t, nil)
	one := alice.apiText(t, room, "one")
	s0 := alice.apiSyncUntilEvent(t, nil, room, one)
	two, three := alice.apiText(t, room, "two"), alice.apiText(t, room, "three")
	s1 := alice.apiSyncUntilEvent(t, url.Values{"since": {s0.NextBatch}}, room, three)
	j := s1.Rooms.Join[room]
	if got := apiIDs(j.Timeline.Events); !slices.Equal(got, []string{two, three}) {
		t.Errorf("incremental timeline = %v, want exactly [%s %s]", j.Timeline.Events, two, three)
	}
	if j.Timeline.Limited {
		t.Errorf("incremental timeline of 2 events is limited")
	}
	if len(j.State.Events) != 0 {
		t.Errorf("incremental sync without a gap has state %v, want none", j.State.Events)
	}
	if s1.NextBatch == "" || s1.NextBatch == s0.NextBatch {
		t.Errorf("next_batch did not move: %q then %q", s0.NextBatch, s1.NextBatch)
	}

	// Another user's room is none of alice's business.
	other := bob.apiRoom(t, nil)
	bobMsg := bob.apiText(t, other, "not for alice")
	bob.apiSyncUntilEvent(t, nil, other, bobMsg)
	s2 := alice.apiSync(t, url.Values{"since": {s1.NextBatch}})
	if jr, ok := s2.Rooms.Join[room]; ok && len(jr.Timeline.Events) > 0 {
		t.Errorf("a sync with nothing new repeats %v", jr.Timeline.Events)
	}
	if _, ok := s2.Rooms.Join[other]; ok {
		t.Errorf("alice's sync shows bob's room %s", other)
	}
	if s2.NextBatch == "" {
		t.Errorf("an empty incremental sync has no next_batch")
	}
}

// apiSyncGappy: more events than the timeline limit between two syncs give a
// limited timeline whose prev_batch /messages paginates back from, down
// to the since token, and a state delta with the state changes inside the
// gap but not those inside the timeline window.
func apiSyncGappy(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "gap")
	room := alice.apiRoom(t, map[string]any{"name": "gap room"})
	f := apiFilter(map[string]any{"room": map[string]any{"timeline": map[string]any{"limit": 3}}})
	setup := alice.apiText(t, room, "setup")
	s0 := alice.apiSyncUntilEvent(t, url.Values{"filter": {f}}, room, setup)
	since := s0.NextBatch

	var gap []string // chronological
	for i := 1; i <= 3; i++ {
		gap = append(gap, alice.apiText(t, room, fmt.Sprintf("gap %d", i)))
	}
	topic := alice.apiPutState(t, room, "m.room.topic", "", map[string]any{"topic": "changed in the gap"})
	gap = append(gap, topic)
	for i := 4; i <= 8; i++ {
		gap = append(gap, alice.apiText(t, room, fmt.Sprintf("gap %d", i)))
	}
	name := alice.apiPutState(t, room, "m.room.name", "", map[string]any{"name": "changed in the window"})
	m9, m10 := alice.apiText(t, room, "window 9"), alice.apiText(t, room, "window 10")

	s1 := alice.apiSyncUntilEvent(t, url.Values{"since": {since}, "filter": {f}}, room, m10)
	j := s1.Rooms.Join[room]
	if got := apiIDs(j.Timeline.Events); !slices.Equal(got, []string{name, m9, m10}) {
		t.Fatalf("gappy timeline = %v, want the last 3 events [%s %s %s]", j.Timeline.Events, name, m9, m10)
	}
	if !j.Timeline.Limited {
		t.Errorf("timeline with 9 events left out is not limited")
	}
	if j.Timeline.PrevBatch == "" {
		t.Fatalf("limited timeline has no prev_batch")
	}
	if e, ok := apiFindState(j.State.Events, "m.room.topic", ""); !ok || e.EventID != topic || e.Content["topic"] != "changed in the gap" {
		t.Errorf("state delta lacks the topic change %s made inside the gap: %v", topic, j.State.Events)
	}
	for _, e := range j.State.Events {
		if e.EventID == name || e.Type == "m.room.name" {
			t.Errorf("state delta repeats the name change that is in the timeline: %v", e)
		}
		if e.Type == "m.room.create" || e.Type == "m.room.join_rules" {
			t.Errorf("state delta holds %s, which did not change after since", e.Type)
		}
	}

	// Closing the gap: from=prev_batch to=since gives exactly the gap,
	// newest first.
	want := slices.Clone(gap)
	slices.Reverse(want)
	m := alice.apiMessages(t, room, url.Values{"dir": {"b"}, "from": {j.Timeline.PrevBatch}, "to": {since}, "limit": {"50"}})
	if got := apiIDs(m.Chunk); !slices.Equal(got, want) {
		t.Errorf("/messages from prev_batch to since = %v, want the 9 gap events %v", got, want)
	}
	if m.Start == "" {
		t.Errorf("/messages has no start token")
	}
	// The same in pages of 4, following end.
	var paged []string
	from := j.Timeline.PrevBatch
	for range 10 {
		p := alice.apiMessages(t, room, url.Values{"dir": {"b"}, "from": {from}, "to": {since}, "limit": {"4"}})
		paged = append(paged, apiIDs(p.Chunk)...)
		if p.End == "" || len(p.Chunk) == 0 {
			break
		}
		from = p.End
	}
	if !slices.Equal(paged, want) {
		t.Errorf("paging /messages by 4 from prev_batch to since = %v, want %v", paged, want)
	}
	// Without to, the page just before the timeline starts with the
	// newest gap event; the next page continues at the setup message.
	p := alice.apiMessages(t, room, url.Values{"dir": {"b"}, "from": {j.Timeline.PrevBatch}, "limit": {"9"}})
	if got := apiIDs(p.Chunk); !slices.Equal(got, want) {
		t.Errorf("/messages back 9 from prev_batch = %v, want %v", got, want)
	}
	if p.End == "" {
		t.Fatalf("/messages stopped at the gap although older events exist")
	}
	p2 := alice.apiMessages(t, room, url.Values{"dir": {"b"}, "from": {p.End}, "limit": {"1"}})
	if len(p2.Chunk) != 1 || p2.Chunk[0].EventID != setup {
		t.Errorf("the page before the gap starts with %v, want the setup message %s", p2.Chunk, setup)
	}
	// Forwards from since to prev_batch: the gap in order.
	fw := alice.apiMessages(t, room, url.Values{"dir": {"f"}, "from": {since}, "to": {j.Timeline.PrevBatch}, "limit": {"50"}})
	if got := apiIDs(fw.Chunk); !slices.Equal(got, gap) {
		t.Errorf("/messages forwards from since to prev_batch = %v, want %v", got, gap)
	}
}

// apiSyncLongGap: after a gap of more new events than an incremental
// sync reads in its first query (recentEventsMax), every room with news
// still has its newest events, limited, and a quiet room is not shown;
// after a short gap the same rooms give exactly their new events.
func apiSyncLongGap(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "longgap")
	busy, other, quiet := alice.apiRoom(t, nil), alice.apiRoom(t, nil), alice.apiRoom(t, nil)
	f := apiFilter(map[string]any{"room": map[string]any{"timeline": map[string]any{"limit": 3}}})
	mark := alice.apiText(t, quiet, "before the gap")
	since := alice.apiSyncUntilEvent(t, url.Values{"filter": {f}}, quiet, mark).NextBatch

	var busyIDs []string
	for i := range 110 {
		busyIDs = append(busyIDs, alice.apiText(t, busy, fmt.Sprintf("busy %d", i)))
	}
	o1, o2 := alice.apiText(t, other, "other 1"), alice.apiText(t, other, "other 2")
	s := alice.apiSyncUntilEvent(t, url.Values{"since": {since}, "filter": {f}}, other, o2)
	if j := s.Rooms.Join[busy]; !slices.Equal(apiIDs(j.Timeline.Events), busyIDs[len(busyIDs)-3:]) || !j.Timeline.Limited {
		t.Errorf("busy room after a long gap: timeline %v limited %v, want the last 3 of 110, limited", apiIDs(j.Timeline.Events), j.Timeline.Limited)
	}
	if j := s.Rooms.Join[other]; !slices.Equal(apiIDs(j.Timeline.Events), []string{o1, o2}) || j.Timeline.Limited {
		t.Errorf("other room after a long gap: timeline %v limited %v, want [%s %s], not limited", apiIDs(j.Timeline.Events), j.Timeline.Limited, o1, o2)
	}
	if _, ok := s.Rooms.Join[quiet]; ok {
		t.Errorf("a room without news is in an incremental sync")
	}

	// A short gap: four events in one room, one in another.
	b1, b2, b3, b4 := alice.apiText(t, busy, "b1"), alice.apiText(t, busy, "b2"), alice.apiText(t, busy, "b3"), alice.apiText(t, busy, "b4")
	o3 := alice.apiText(t, other, "other 3")
	s = alice.apiSyncUntilEvent(t, url.Values{"since": {s.NextBatch}, "filter": {f}}, other, o3)
	if j := s.Rooms.Join[busy]; !slices.Equal(apiIDs(j.Timeline.Events), []string{b2, b3, b4}) || !j.Timeline.Limited {
		t.Errorf("busy room after a short gap: timeline %v limited %v, want [%s %s %s], limited (%s left out)", apiIDs(j.Timeline.Events), j.Timeline.Limited, b2, b3, b4, b1)
	}
	if j := s.Rooms.Join[other]; !slices.Equal(apiIDs(j.Timeline.Events), []string{o3}) || j.Timeline.Limited {
		t.Errorf("other room after a short gap: timeline %v limited %v, want [%s]", apiIDs(j.Timeline.Events), j.Timeline.Limited, o3)
	}
	if _, ok := s.Rooms.Join[quiet]; ok {
		t.Errorf("a room without news is in an incremental sync")
	}
}

// apiSyncFullState: full_state=true returns the whole room state (at the
// start of the timeline) even on an incremental sync; the timeline is
// still limited by since.
func apiSyncFullState(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "full")
	room := alice.apiRoom(t, map[string]any{"name": "full room", "topic": "full topic"})
	a := alice.apiText(t, room, "a")
	s0 := alice.apiSyncUntilEvent(t, nil, room, a)
	b := alice.apiText(t, room, "b")
	inc := alice.apiSyncUntilEvent(t, url.Values{"since": {s0.NextBatch}}, room, b)
	if st := inc.Rooms.Join[room].State.Events; len(st) != 0 {
		t.Errorf("incremental sync without full_state has state %v", st)
	}
	s1 := alice.apiSyncUntilEvent(t, url.Values{"since": {s0.NextBatch}, "full_state": {"true"}}, room, b)
	j := s1.Rooms.Join[room]
	if got := apiIDs(j.Timeline.Events); !slices.Equal(got, []string{b}) {
		t.Errorf("full_state timeline = %v, want only the new message %s", got, b)
	}
	cur := alice.apiFullState(t, room)
	got := map[string]bool{}
	for _, e := range j.State.Events {
		got[e.EventID] = true
	}
	for _, e := range cur {
		if !got[e.EventID] {
			t.Errorf("full_state sync lacks %s %q (%s)", e.Type, *e.StateKey, e.EventID)
		}
	}
	if len(j.State.Events) != len(cur) {
		t.Errorf("full_state sync has %d state events, the room has %d", len(j.State.Events), len(cur))
	}
	// full_state with nothing new still answers, with the full state.
	s2 := alice.apiSync(t, url.Values{"since": {s1.NextBatch}, "full_state": {"true"}})
	if j2, ok := s2.Rooms.Join[room]; !ok || len(j2.State.Events) != len(cur) {
		t.Errorf("full_state sync with nothing new: room %v, want the full state of %d events", s2.Rooms.Join[room], len(cur))
	} else if len(j2.Timeline.Events) != 0 {
		t.Errorf("full_state sync with nothing new has timeline %v", j2.Timeline.Events)
	}
}

// apiSyncLeaveRejoin: a left room shows once in rooms.leave with the leave
// event; new events of the room are not sent to the user who left; after
// rejoining, the room is in rooms.join with its full state.
func apiSyncLeaveRejoin(t *testing.T, ts *testServer) {
	alice, bob := apiUser(t, ts, "lrA"), apiUser(t, ts, "lrB")
	room := alice.apiRoom(t, map[string]any{"preset": "public_chat"})
	bob.apiJoin(t, room)
	before := alice.apiText(t, room, "before leave")
	s0 := bob.apiSyncUntilEvent(t, nil, room, before)

	bob.apiOK(t, "POST", "/rooms/"+apiEsc(room)+"/leave", map[string]any{"reason": "bye"})
	s1 := bob.apiSyncUntil(t, url.Values{"since": {s0.NextBatch}}, "room in rooms.leave", func(s *apiSyncResp) bool {
		_, ok := s.Rooms.Leave[room]
		return ok
	})
	if _, ok := s1.Rooms.Join[room]; ok {
		t.Errorf("left room is also in rooms.join")
	}
	tl := s1.Rooms.Leave[room].Timeline.Events
	if len(tl) == 0 {
		t.Fatalf("rooms.leave timeline is empty; want bob's leave event")
	}
	last := tl[len(tl)-1]
	if !last.isState("m.room.member", bob.UserID) || last.Content["membership"] != "leave" || last.Content["reason"] != "bye" {
		t.Errorf("rooms.leave timeline ends with %v, want bob's leave with reason", last)
	}

	// While bob is away.
	alice.apiText(t, room, "while away")
	topic := alice.apiPutState(t, room, "m.room.topic", "", map[string]any{"topic": "while away topic"})
	alice.apiSyncUntilEvent(t, nil, room, topic)
	s2 := bob.apiSync(t, url.Values{"since": {s1.NextBatch}})
	if _, ok := s2.Rooms.Leave[room]; ok {
		t.Errorf("left room shown in rooms.leave a second time: %v", s2.Rooms.Leave[room])
	}
	if _, ok := s2.Rooms.Join[room]; ok {
		t.Errorf("bob gets events of a room he left: %v", s2.Rooms.Join[room])
	}

	bob.apiJoin(t, room)
	s3 := bob.apiSyncUntil(t, url.Values{"since": {s2.NextBatch}}, "room back in rooms.join", func(s *apiSyncResp) bool {
		_, ok := s.Rooms.Join[room]
		return ok
	})
	if _, ok := s3.Rooms.Leave[room]; ok {
		t.Errorf("rejoined room is also in rooms.leave")
	}
	j := s3.Rooms.Join[room]
	all := append(slices.Clone(j.State.Events), j.Timeline.Events...)
	if _, ok := apiFindState(all, "m.room.create", ""); !ok {
		t.Errorf("rejoined room's sync lacks m.room.create: state is not full: %v", j.State.Events)
	}
	if e, ok := apiFindState(all, "m.room.topic", ""); !ok || e.EventID != topic {
		t.Errorf("rejoined room's sync lacks the topic set while bob was away (%s): %v", topic, all)
	}
	var lastMember apiEvent
	for _, e := range all {
		if e.isState("m.room.member", bob.UserID) {
			lastMember = e
		}
	}
	if lastMember.Content["membership"] != "join" {
		t.Errorf("bob's latest member event in the rejoin sync is %v, want join", lastMember)
	}
}

// apiSyncInvites: an invite shows in rooms.invite with stripped state: the
// invite member event, the create event (required since v1.16), the name
// and the join rules; stripped events have only sender, type, state_key
// and content. Accepting moves the room to rooms.join, rejecting to
// rooms.leave.
func apiSyncInvites(t *testing.T, ts *testServer) {
	alice, bob, carol := apiUser(t, ts, "invA"), apiUser(t, ts, "invB"), apiUser(t, ts, "invC")
	room := alice.apiRoom(t, map[string]any{"preset": "private_chat", "name": "invite room"})
	b0 := bob.apiSync(t, nil)
	alice.apiOK(t, "POST", "/rooms/"+apiEsc(room)+"/invite", map[string]any{"user_id": bob.UserID})
	s := bob.apiSyncUntil(t, url.Values{"since": {b0.NextBatch}}, "invite", func(s *apiSyncResp) bool {
		_, ok := s.Rooms.Invite[room]
		return ok
	})
	if _, ok := s.Rooms.Join[room]; ok {
		t.Errorf("invited room is in rooms.join")
	}
	ist := s.Rooms.Invite[room].InviteState.Events
	if m, ok := apiFindState(ist, "m.room.member", bob.UserID); !ok || m.Content["membership"] != "invite" || m.Sender != alice.UserID {
		t.Errorf("invite_state lacks bob's invite from alice: %v", ist)
	}
	if e, ok := apiFindState(ist, "m.room.name", ""); !ok || e.Content["name"] != "invite room" {
		t.Errorf("invite_state lacks the room name: %v", ist)
	}
	if e, ok := apiFindState(ist, "m.room.join_rules", ""); !ok || e.Content["join_rule"] != "invite" {
		t.Errorf("invite_state lacks the join rules: %v", ist)
	}
	if _, ok := apiFindState(ist, "m.room.create", ""); !ok {
		t.Errorf("invite_state lacks m.room.create (required since v1.16): %v", ist)
	}
	raw := s.raw["rooms"].(map[string]any)["invite"].(map[string]any)[room].(map[string]any)["invite_state"].(map[string]any)["events"].([]any)
	for _, e := range raw {
		for k := range e.(map[string]any) {
			if k != "sender" && k != "type" && k != "state_key" && k != "content" {
				t.Errorf("stripped state event has key %q (only sender, type, state_key, content are allowed): %v", k, e)
			}
		}
	}

	bob.apiJoin(t, room)
	s2 := bob.apiSyncUntil(t, url.Values{"since": {s.NextBatch}}, "joined after invite", func(s *apiSyncResp) bool {
		_, ok := s.Rooms.Join[room]
		return ok
	})
	if _, ok := s2.Rooms.Invite[room]; ok {
		t.Errorf("accepted invite still in rooms.invite")
	}

	// An initial sync shows pending invites too; rejecting one moves it
	// to rooms.leave.
	alice.apiOK(t, "POST", "/rooms/"+apiEsc(room)+"/invite", map[string]any{"user_id": carol.UserID})
	c0 := carol.apiSyncUntil(t, nil, "invite in initial sync", func(s *apiSyncResp) bool {
		_, ok := s.Rooms.Invite[room]
		return ok
	})
	carol.apiOK(t, "POST", "/rooms/"+apiEsc(room)+"/leave", map[string]any{})
	c1 := carol.apiSyncUntil(t, url.Values{"since": {c0.NextBatch}}, "rejected invite in rooms.leave", func(s *apiSyncResp) bool {
		_, ok := s.Rooms.Leave[room]
		return ok
	})
	if _, ok := c1.Rooms.Invite[room]; ok {
		t.Errorf("rejected invite still in rooms.invite")
	}
}

// apiSyncRedaction: a redaction shows in the timeline, and the redacted event
// is served with its content emptied and the redaction under
// unsigned.redacted_because.
func apiSyncRedaction(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "redact")
	room := alice.apiRoom(t, nil)
	secret := alice.apiText(t, room, "secret words")
	s0 := alice.apiSyncUntilEvent(t, nil, room, secret)
	red := alice.apiOK(t, "PUT", "/rooms/"+apiEsc(room)+"/redact/"+apiEsc(secret)+"/"+apiUniq("r"), map[string]any{"reason": "oops"})["event_id"].(string)
	s1 := alice.apiSyncUntilEvent(t, url.Values{"since": {s0.NextBatch}}, room, red)
	tl := s1.Rooms.Join[room].Timeline.Events
	re := tl[apiIndexOf(tl, red)]
	if re.Type != "m.room.redaction" || re.Sender != alice.UserID || re.Content["reason"] != "oops" {
		t.Errorf("redaction in the timeline is %v", re)
	}
	if re.Redacts != secret && re.Content["redacts"] != secret {
		t.Errorf("redaction in the timeline does not name %s: %v", secret, re)
	}

	ev := alice.apiGetEvent(t, room, secret)
	if len(ev.Content) != 0 || ev.Type != "m.room.message" {
		t.Errorf("/event of the redacted message: %v, want type m.room.message with empty content", ev)
	}
	rb, _ := ev.Unsigned["redacted_because"].(map[string]any)
	if rb["event_id"] != red || rb["type"] != "m.room.redaction" || rb["sender"] != alice.UserID {
		t.Errorf("unsigned.redacted_because = %v, want the redaction event %s (type, sender, content…)", ev.Unsigned["redacted_because"], red)
	}
	s2 := alice.apiSyncUntilEvent(t, nil, room, red)
	tl = s2.Rooms.Join[room].Timeline.Events
	if i := apiIndexOf(tl, secret); i < 0 || len(tl[i].Content) != 0 {
		t.Errorf("initial sync after the redaction serves the message as %v, want empty content", tl)
	}
	m := alice.apiMessages(t, room, url.Values{"dir": {"b"}, "limit": {"5"}})
	if i := apiIndexOf(m.Chunk, secret); i < 0 || len(m.Chunk[i].Content) != 0 {
		t.Errorf("/messages after the redaction serves the message as %v, want empty content", m.Chunk)
	}
}

// apiSyncRedactedState: a state event that a sync has already served (and
// the server has cached) is served redacted in the state of every later
// sync once the redaction is in, with its redaction under
// unsigned.redacted_because.
func apiSyncRedactedState(t *testing.T, ts *testServer) {
	alice := apiUser(t, ts, "redstate")
	room := alice.apiRoom(t, nil)
	topic := alice.apiPutState(t, room, "m.room.topic", "", map[string]any{"topic": "secret topic"})
	last := alice.apiText(t, room, "after the topic")
	// Twice with the topic outside a one-event timeline: the second
	// sync reads the topic back from the cache.
	limit1 := url.Values{"filter": {`{"room":{"timeline":{"limit":1}}}`}}
	for range 2 {
		s := alice.apiSyncUntilEvent(t, limit1, room, last)
		if e, ok := apiFindState(s.Rooms.Join[room].State.Events, "m.room.topic", ""); !ok || e.Content["topic"] != "secret topic" {
			t.Fatalf("state before the redaction has topic %v", e)
		}
	}
	red := alice.apiOK(t, "PUT", "/rooms/"+apiEsc(room)+"/redact/"+apiEsc(topic)+"/"+apiUniq("r"), map[string]any{})["event_id"].(string)
	s := alice.apiSyncUntilEvent(t, limit1, room, red)
	e, ok := apiFindState(s.Rooms.Join[room].State.Events, "m.room.topic", "")
	if !ok || e.EventID != topic || len(e.Content) != 0 {
		t.Fatalf("state after the redaction has topic %v, want %s with empty content", e, topic)
	}
	if rb, _ := e.Unsigned["redacted_because"].(map[string]any); rb["event_id"] != red {
		t.Errorf("redacted topic's unsigned.redacted_because = %v, want the redaction %s", e.Unsigned["redacted_because"], red)
	}
	if got := alice.apiState(t, room, "m.room.topic", ""); len(got) != 0 {
		t.Errorf("GET state of the redacted topic = %v, want empty content", got)
	}
}

// apiSyncLazyLoad: with lazy_load_members, the state of an initial sync has
// the member events of the timeline's senders and of the syncing user,
// and no others; other state is unaffected.
func apiSyncLazyLoad(t *testing.T, ts *testServer) {
	alice, bob, carol, dave := apiUser(t, ts, "llA"), apiUser(t, ts, "llB"), apiUser(t, ts, "llC"), apiUser(t, ts, "llD")
	room := alice.apiRoom(t, map[string]any{"preset": "public_chat"})
	for _, c := range []*client{bob, carol, dave} {
		c.apiJoin(t, room)
	}
	msg := bob.apiText(t, room, "from bob")
	lazy := apiFilter(map[string]any{"room": map[string]any{
		"timeline": map[string]any{"limit": 1}, "state": map[string]any{"lazy_load_members": true}}})
	s := dave.apiSyncUntilEvent(t, url.Values{"filter": {lazy}}, room, msg)
	j := s.Rooms.Join[room]
	if got, want := apiMemberKeys(j.State.Events), apiSorted(bob.UserID, dave.UserID); !slices.Equal(got, want) {
		t.Errorf("lazy-loaded members = %v, want the sender and the syncing user %v", got, want)
	}
	for _, typ := range []string{"m.room.create", "m.room.power_levels", "m.room.join_rules"} {
		if _, ok := apiFindState(j.State.Events, typ, ""); !ok {
			t.Errorf("lazy-loading dropped %s from state", typ)
		}
	}
	eager := apiFilter(map[string]any{"room": map[string]any{"timeline": map[string]any{"limit": 1}}})
	s2 := dave.apiSyncUntilEvent(t, url.Values{"filter": {eager}}, room, msg)
	if got, want := apiMemberKeys(s2.Rooms.Join[room].State.Events), apiSorted(alice.UserID, bob.UserID, carol.UserID, dave.UserID); !slices.Equal(got, want) {
		t.Errorf("members without lazy-loading = %v, want all %v", got, want)
	}
}

// apiSyncLazyLoadIncremental: on an incremental sync with lazy-loading, the
// member event of a timeline sender the client has not been sent yet is
// in state ("only return the member events required to display the
// senders of the timeline events in this response").
func apiSyncLazyLoadIncremental(t *testing.T, ts *testServer) {
	alice, bob, carol := apiUser(t, ts, "lliA"), apiUser(t, ts, "lliB"), apiUser(t, ts, "lliC")
	room := alice.apiRoom(t, map[string]any{"preset": "public_chat"})
	bob.apiJoin(t, room)
	carol.apiJoin(t, room)
	first := alice.apiText(t, room, "from alice")
	lazy := apiFilter(map[string]any{"room": map[string]any{
		"timeline": map[string]any{"limit": 1}, "state": map[string]any{"lazy_load_members": true}}})
	s0 := bob.apiSyncUntilEvent(t, url.Values{"filter": {lazy}}, room, first)
	if slices.Contains(apiMemberKeys(s0.Rooms.Join[room].State.Events), carol.UserID) {
		t.Fatalf("initial lazy sync already has carol's member event; the test needs it not to")
	}
	msg := carol.apiText(t, room, "from carol")
	s1 := bob.apiSyncUntilEvent(t, url.Values{"since": {s0.NextBatch}, "filter": {lazy}}, room, msg)
	if !slices.Contains(apiMemberKeys(s1.Rooms.Join[room].State.Events), carol.UserID) {
		t.Errorf("incremental lazy sync with carol's message lacks carol's member event in state: %v", s1.Rooms.Join[room].State.Events)
	}
}

// apiSyncLongPoll: a sync with a timeout returns as soon as another user
// sends, with that event; two devices of one user both wake; with
// nothing new, the long-poll returns an empty response.
func apiSyncLongPoll(t *testing.T, ts *testServer) {
	alice, bob := apiUser(t, ts, "lpA"), apiUser(t, ts, "lpB")
	alice2 := alice.apiLogin(t, "")
	room := alice.apiRoom(t, map[string]any{"preset": "public_chat"})
	bob.apiJoin(t, room)
	hello := bob.apiText(t, room, "hello")
	since := alice.apiSyncUntilEvent(t, nil, room, hello).NextBatch
	since2 := alice2.apiSyncUntilEvent(t, nil, room, hello).NextBatch

	type result struct {
		r   response
		err error
	}
	poll := func(c *client, since string) chan result {
		ch := make(chan result, 1)
		go func() {
			q := url.Values{"since": {since}, "timeout": {"20000"}}
			r, err := apiRaw("GET", ts.base+apiV3+"/sync?"+q.Encode(), c.Token, nil)
			ch <- result{r, err}
		}()
		return ch
	}
	for round := range 3 {
		ch, ch2 := poll(alice, since), poll(alice2, since2)
		id := bob.apiText(t, room, fmt.Sprintf("wake up %d", round))
		for i, res := range []result{<-ch, <-ch2} {
			if res.err != nil {
				t.Fatalf("round %d device %d: long-poll: %v", round, i, res.err)
			}
			s := apiDecodeSync(t, res.r)
			j, ok := s.Rooms.Join[room]
			if !ok || apiIndexOf(j.Timeline.Events, id) < 0 {
				t.Fatalf("round %d device %d: long-poll returned without bob's message %s: %s", round, i, id, res.r.Raw)
			}
			if tl := j.Timeline.Events; tl[len(tl)-1].Content["body"] != fmt.Sprintf("wake up %d", round) {
				t.Errorf("round %d: long-poll's last event is %v", round, tl[len(tl)-1])
			}
			if i == 0 {
				since = s.NextBatch
			} else {
				since2 = s.NextBatch
			}
		}
	}
	// Nothing new: the long-poll times out with an empty answer.
	s := alice.apiSync(t, url.Values{"since": {since}, "timeout": {"200"}})
	if j, ok := s.Rooms.Join[room]; ok && len(j.Timeline.Events) > 0 {
		t.Errorf("a timed-out long-poll returned events: %v", j.Timeline.Events)
	}
	if s.NextBatch == "" {
		t.Errorf("a timed-out long-poll has no next_batch")
	}
}

// apiSyncTxnIDSendingDevice: unsigned.transaction_id is set only for the
// device that sent the event, not for another device of the same user nor
// for other users.
func apiSyncTxnIDSendingDevice(t *testing.T, ts *testServer) {
	alice, bob := apiUser(t, ts, "txA"), apiUser(t, ts, "txB")
	alice2 := alice.apiLogin(t, "")
	room := alice.apiRoom(t, map[string]any{"preset": "public_chat"})
	bob.apiJoin(t, room)
	txn := apiUniq("visible-txn-")
	r := alice.apiSend(t, room, "m.room.message", txn, map[string]any{"msgtype": "m.text", "body": "with a txn"})
	if r.Status != 200 {
		t.Fatalf("send: %d %s", r.Status, r.Raw)
	}
	id := r.Body["event_id"].(string)
	get := func(c *client) apiEvent {
		s := c.apiSyncUntilEvent(t, nil, room, id)
		tl := s.Rooms.Join[room].Timeline.Events
		return tl[apiIndexOf(tl, id)]
	}
	if e := get(alice); e.Unsigned["transaction_id"] != txn {
		t.Errorf("sending device sees unsigned %v, want transaction_id %q", e.Unsigned, txn)
	}
	if e := get(alice2); e.Unsigned["transaction_id"] != nil {
		t.Errorf("another device of the sender sees transaction_id: %v", e.Unsigned)
	}
	if e := get(bob); e.Unsigned["transaction_id"] != nil {
		t.Errorf("another user sees transaction_id: %v", e.Unsigned)
	}
}

// apiSyncStoredFilter: a filter uploaded with POST /user/{userId}/filter is
// returned by GET and applies to /sync by its ID; other users' filters are
// out of reach.
func apiSyncStoredFilter(t *testing.T, ts *testServer) {
	alice, bob := apiUser(t, ts, "sfA"), apiUser(t, ts, "sfB")
	room := alice.apiRoom(t, nil)
	alice.apiText(t, room, "one")
	last := alice.apiText(t, room, "two")
	f := map[string]any{"room": map[string]any{"timeline": map[string]any{"limit": 1}}}
	fid, _ := alice.apiOK(t, "POST", "/user/"+apiEsc(alice.UserID)+"/filter", f)["filter_id"].(string)
	if fid == "" {
		t.Fatalf("no filter_id")
	}
	got := alice.apiOK(t, "GET", "/user/"+apiEsc(alice.UserID)+"/filter/"+apiEsc(fid), nil)
	if lim := got["room"].(map[string]any)["timeline"].(map[string]any)["limit"]; lim != float64(1) {
		t.Errorf("stored filter reads back as %v", got)
	}
	s := alice.apiSyncUntilEvent(t, url.Values{"filter": {fid}}, room, last)
	if tl := s.Rooms.Join[room].Timeline.Events; len(tl) != 1 || !s.Rooms.Join[room].Timeline.Limited {
		t.Errorf("sync with stored filter %s: timeline %v limited %v, want 1 event, limited", fid, tl, s.Rooms.Join[room].Timeline.Limited)
	}
	if r := bob.apiCall(t, "GET", "/user/"+apiEsc(alice.UserID)+"/filter/"+apiEsc(fid), nil); r.Status == 200 {
		t.Errorf("bob reads alice's filter: %s", r.Raw)
	}
	if r := bob.apiCall(t, "POST", "/user/"+apiEsc(alice.UserID)+"/filter", f); r.Status != 403 {
		t.Errorf("bob uploads a filter for alice: %d %s, want 403", r.Status, r.Raw)
	}
}
