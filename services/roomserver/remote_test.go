package roomserver

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/testenv"
	"github.com/axon-hs/axon/matrix/auth"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/keys"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// unknownID is a well-formed event ID no server has.
var unknownID = "$" + strings.Repeat("A", 43)

const (
	remoteServer = "remote.test"
	carol        = "@carol:remote.test"
	mallory      = "@mallory:remote.test"
)

// remote builds events as another server would.
type remote struct {
	t    testing.TB
	h    *harness
	v    *roomversion.Version
	room string
	key  *keys.SigningKey
	ts   int64
}

func newRemote(t testing.TB, h *harness, roomID, v string) *remote {
	k, err := keys.Generate("r1", nil)
	if err != nil {
		t.Fatal(err)
	}
	return &remote{t: t, h: h, v: roomversion.MustLookup(v), room: roomID, key: k, ts: time.Now().UnixMilli()}
}

// event builds an event citing prev and the auth events selected from the
// room's current state as this server stores it (override replaces keys).
func (rm *remote) event(typ string, stateKey *string, sender, content string, prev []*event.Event, extraAuth ...string) *event.Event {
	rm.t.Helper()
	return rm.eventIn(rm.h.currentState(rm.room), typ, stateKey, sender, content, prev, extraAuth...)
}

// eventIn is event with the auth events selected from the state cur.
func (rm *remote) eventIn(cur map[auth.StateKey]string, typ string, stateKey *string, sender, content string, prev []*event.Event, extraAuth ...string) *event.Event {
	rm.t.Helper()
	c, err := cjson.ParseString(content, cjson.Strict)
	if err != nil {
		rm.t.Fatal(err)
	}
	var authIDs []string
	sk := ""
	if stateKey != nil {
		sk = *stateKey
	}
	for _, k := range auth.SelectionFor(rm.v, typ, sender, sk, stateKey != nil, c) {
		if id, ok := cur[k]; ok {
			authIDs = append(authIDs, id)
		}
	}
	authIDs = append(authIDs, extraAuth...)
	var depth int64
	prevIDs := make([]string, len(prev))
	for i, p := range prev {
		prevIDs[i] = p.ID()
		depth = max(depth, p.Depth())
	}
	rm.ts++
	p := cjson.ObjectValue(
		cjson.Member{Key: "type", Value: cjson.StringValue(typ)},
		cjson.Member{Key: "room_id", Value: cjson.StringValue(rm.room)},
		cjson.Member{Key: "sender", Value: cjson.StringValue(sender)},
		cjson.Member{Key: "content", Value: c},
		cjson.Member{Key: "origin_server_ts", Value: cjson.IntValue(rm.ts)},
		cjson.Member{Key: "depth", Value: cjson.IntValue(depth + 1)},
		cjson.Member{Key: "prev_events", Value: cjson.StringArray(prevIDs)},
		cjson.Member{Key: "auth_events", Value: cjson.StringArray(authIDs)},
	)
	if stateKey != nil {
		p = p.With("state_key", cjson.StringValue(*stateKey))
	}
	if target, ok := c.Get("redacts").Str(); ok && !rm.v.RedactsInContent {
		p = p.With("redacts", cjson.StringValue(target))
	}
	ev, err := event.Build(rm.v, p, remoteServer, rm.key)
	if err != nil {
		rm.t.Fatal(err)
	}
	return ev
}

// send submits PDUs as the federation role would and returns their
// outcomes.
func (rm *remote) send(pdus ...*event.Event) map[string]string {
	rm.t.Helper()
	in := &Input{RoomID: rm.room, Origin: remoteServer}
	for _, p := range pdus {
		in.PDUs = append(in.PDUs, p.Canonical())
	}
	res := rm.h.submit(in)
	if res.Error != nil {
		rm.t.Fatalf("remote send: %+v", res.Error)
	}
	return res.PDUs
}

// currentState reads the room's current state from state_history.
func (h *harness) currentState(roomID string) map[auth.StateKey]string {
	h.t.Helper()
	rows, err := h.db.Query(context.Background(), `SELECT type, state_key, event_id FROM state_history WHERE room_id = $1 AND to_seq IS NULL`, roomID)
	if err != nil {
		h.t.Fatal(err)
	}
	defer rows.Close()
	out := map[auth.StateKey]string{}
	for rows.Next() {
		var k auth.StateKey
		var id string
		if err := rows.Scan(&k.Type, &k.StateKey, &id); err != nil {
			h.t.Fatal(err)
		}
		out[k] = id
	}
	return out
}

// extremities reads the room's forward extremities.
func (h *harness) extremities(roomID string) []string {
	h.t.Helper()
	var raw []byte
	if err := h.db.QueryRow(context.Background(), `SELECT extremities FROM rooms WHERE room_id = $1`, roomID).Scan(&raw); err != nil {
		h.t.Fatal(err)
	}
	var ids []string
	if err := json.Unmarshal(raw, &ids); err != nil {
		h.t.Fatal(err)
	}
	slices.Sort(ids)
	return ids
}

// stored loads an event of the timeline with its flags.
func (h *harness) stored(v *roomversion.Version, id string) (ev *event.Event, rejected, softFailed bool) {
	h.t.Helper()
	var pdu []byte
	err := h.db.QueryRow(context.Background(), `SELECT pdu, rejected, soft_failed FROM events WHERE event_id = $1`, id).
		Scan(&pdu, &rejected, &softFailed)
	if err != nil {
		return nil, false, false
	}
	ev, err = event.Parse(v, pdu)
	if err != nil {
		h.t.Fatal(err)
	}
	return ev, rejected, softFailed
}

func (h *harness) head(v *roomversion.Version, roomID string) *event.Event {
	h.t.Helper()
	ids := h.extremities(roomID)
	if len(ids) != 1 {
		h.t.Fatalf("room has %d extremities", len(ids))
	}
	ev, _, _ := h.stored(v, ids[0])
	return ev
}

func TestReceivedEvents(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		for _, v := range []string{"10", "12"} {
			t.Run("v"+v, func(t *testing.T) { testReceivedEvents(t, newHarness(t, e), v) })
		}
	})
}

func testReceivedEvents(t *testing.T, h *harness, v string) {
	roomID := h.createRoom(v)
	rm := newRemote(t, h, roomID, v)
	rv := rm.v
	memberKey := func(u string) auth.StateKey { return auth.StateKey{Type: "m.room.member", StateKey: u} }

	// Carol joins from her server: a plain extension of the room.
	join := rm.event("m.room.member", sk(carol), carol, `{"membership":"join"}`, []*event.Event{h.head(rv, roomID)})
	if out := rm.send(join); out[join.ID()] != "" {
		t.Fatalf("join: %q", out[join.ID()])
	}
	if h.currentState(roomID)[memberKey(carol)] != join.ID() || h.count(`SELECT COUNT(*) FROM memberships WHERE user_id = $1 AND membership = 'join'`, carol) != 1 {
		t.Fatal("carol's join is not in the state")
	}
	// The same event again changes nothing.
	if out := rm.send(join); out[join.ID()] != "" || h.count(`SELECT COUNT(*) FROM events WHERE event_id = $1`, join.ID()) != 1 {
		t.Fatalf("a repeated event: %v", out)
	}

	// Events that cannot be placed are not stored.
	orphan := rm.event("m.room.message", nil, carol, `{"body":"?"}`, []*event.Event{join})
	orphanJSON := orphan.JSON().With("prev_events", cjson.StringArray([]string{unknownID}))
	orphan, err := event.Build(rv, orphanJSON.Without("signatures", "hashes"), remoteServer, rm.key)
	if err != nil {
		t.Fatal(err)
	}
	noAuth := rm.event("m.room.message", nil, carol, `{"body":"?"}`, []*event.Event{join}, "$"+strings.Repeat("B", 42)+"A")
	out := rm.send(orphan, noAuth)
	if out[orphan.ID()] != errMissingPrev.Error() || out[noAuth.ID()] != errMissingAuth.Error() {
		t.Fatalf("unplaceable events: %v", out)
	}
	if h.count(`SELECT COUNT(*) FROM events WHERE event_id = $1 OR event_id = $2`, orphan.ID(), noAuth.ID()) != 0 {
		t.Fatal("an unplaceable event was stored")
	}

	// Mallory is not in the room: her message is rejected, stored, and
	// never becomes an extremity.
	m1 := rm.event("m.room.message", nil, mallory, `{"body":"spam"}`, []*event.Event{join})
	if out := rm.send(m1); !strings.HasPrefix(out[m1.ID()], "rejected") {
		t.Fatalf("mallory's message: %q", out[m1.ID()])
	}
	if _, rej, _ := h.stored(rv, m1.ID()); !rej {
		t.Error("the rejected event is not stored as rejected")
	}
	if ex := h.extremities(roomID); len(ex) != 1 || ex[0] != join.ID() {
		t.Fatalf("extremities after a rejected event: %v", ex)
	}

	// Carol redacts her own message.
	oops := rm.event("m.room.message", nil, carol, `{"body":"oops"}`, []*event.Event{join})
	redaction := rm.event("m.room.redaction", nil, carol, `{"redacts":"`+oops.ID()+`"}`, []*event.Event{oops})
	if out := rm.send(oops, redaction); out[oops.ID()] != "" || out[redaction.ID()] != "" {
		t.Fatalf("message and redaction: %v", out)
	}
	if n := h.count(`SELECT COUNT(*) FROM events WHERE event_id = $1 AND redacted_by = $2`, oops.ID(), redaction.ID()); n != 1 {
		t.Fatal("the received redaction was not applied")
	}

	// An event first known as an outlier (sent along to authorise or
	// place another) is stored outside the timeline; when it arrives as
	// a PDU it joins the timeline.
	ghost := rm.event("m.room.message", nil, carol, `{"body":"first an outlier"}`, []*event.Event{redaction})
	if res := h.submit(&Input{RoomID: roomID, Origin: remoteServer, Outliers: []json.RawMessage{ghost.Canonical()}}); res.Error != nil {
		t.Fatal(res.Error)
	}
	if h.count(`SELECT COUNT(*) FROM events WHERE event_id = $1 AND outlier`, ghost.ID()) != 1 {
		t.Fatal("the outlier is not stored as one")
	}
	if ex := h.extremities(roomID); len(ex) != 1 || ex[0] != redaction.ID() {
		t.Fatalf("an outlier moved the extremities: %v", ex)
	}
	if out := rm.send(ghost); out[ghost.ID()] != "" {
		t.Fatalf("the outlier as a PDU: %q", out[ghost.ID()])
	}
	if h.count(`SELECT COUNT(*) FROM events WHERE event_id = $1 AND NOT outlier`, ghost.ID()) != 1 {
		t.Fatal("the outlier did not join the timeline")
	}

	// A fork: alice speaks here while carol renames herself on a branch
	// that does not know alice's message. Both branches are current; the
	// rename is in the state after resolution.
	local := h.send(roomID, alice, nil, "hello")
	if local.Error != nil {
		t.Fatal(local.Error)
	}
	rename := rm.event("m.room.member", sk(carol), carol, `{"membership":"join","displayname":"Carol"}`, []*event.Event{join})
	if out := rm.send(rename); out[rename.ID()] != "" {
		t.Fatalf("rename: %q", out[rename.ID()])
	}
	want := []string{local.EventIDs[0], rename.ID()}
	slices.Sort(want)
	if ex := h.extremities(roomID); !slices.Equal(ex, want) {
		t.Fatalf("extremities after the fork: %v, want %v", ex, want)
	}
	if h.currentState(roomID)[memberKey(carol)] != rename.ID() {
		t.Fatal("the rename is not in the resolved state")
	}
	// The next local event merges the branches.
	merge := h.send(roomID, alice, nil, "merged")
	mev, _, _ := h.stored(rv, merge.EventIDs[0])
	if got := slices.Sorted(slices.Values(mev.PrevEvents())); !slices.Equal(got, want) {
		t.Fatalf("the merging event cites %v, want %v", got, want)
	}

	// Alice bans carol. An event of carol's on an old branch, from before
	// the ban, passes at its place in the DAG but not against the current
	// state: it is soft-failed, stored, and not shown.
	branch := h.currentState(roomID)
	if res := h.submit(&Input{RoomID: roomID, Events: []Template{{Type: "m.room.member", StateKey: sk(carol), Sender: alice,
		Content: js(t, `{"membership":"ban"}`)}}}); res.Error != nil {
		t.Fatal(res.Error)
	}
	evade := rm.eventIn(branch, "m.room.message", nil, carol, `{"body":"still here"}`, []*event.Event{rename})
	if out := rm.send(evade); !strings.HasPrefix(out[evade.ID()], "soft-failed") {
		t.Fatalf("ban evasion: %q", out[evade.ID()])
	}
	if _, rej, soft := h.stored(rv, evade.ID()); rej || !soft {
		t.Errorf("the evading event: rejected=%v soft_failed=%v", rej, soft)
	}
	if len(h.extremities(roomID)) != 1 {
		t.Error("a soft-failed event became an extremity")
	}
	rd := NewReader(h.db)
	if ev, _ := rd.Event(context.Background(), rv, evade.ID()); ev != nil {
		t.Error("clients can read the soft-failed event")
	}
	if h.count(`SELECT COUNT(*) FROM memberships WHERE user_id = $1 AND membership = 'ban'`, carol) != 1 {
		t.Error("the ban is not in the state")
	}
	// Its state (carol joined) is kept as a delta: a later event on that
	// branch is checked against it.
	if h.count(`SELECT COUNT(*) FROM event_state_deltas WHERE event_id = $1`, evade.ID()) == 0 {
		t.Error("the soft-failed event's state was not recorded")
	}
	after := rm.eventIn(branch, "m.room.message", nil, carol, `{"body":"and again"}`, []*event.Event{evade})
	if out := rm.send(after); !strings.HasPrefix(out[after.ID()], "soft-failed") {
		t.Fatalf("on the evading branch: %q", out[after.ID()])
	}

	// What other servers read of the DAG.
	ctx := context.Background()
	before, err := rd.StateIDsBefore(ctx, roomID, after.ID())
	if err != nil || before[memberKey(carol)] != rename.ID() {
		t.Errorf("state before the branch's event: carol is %q (%v), want her rename", before[memberKey(carol)], err)
	}
	if now, err := rd.StateIDsBefore(ctx, roomID, merge.EventIDs[0]); err != nil || now[memberKey(carol)] != rename.ID() {
		t.Errorf("state before the merge: %v %v", now, err)
	}
	chain, err := rd.AuthChain(ctx, rv, roomID, []string{after.ID()})
	// From room version 12 auth_events never name the create event.
	if err != nil || len(chain) == 0 || (chain[0].Type() == "m.room.create") == rv.RoomIDFromCreate {
		t.Errorf("auth chain: %d events, %v", len(chain), err)
	}
	for _, a := range chain {
		if a.ID() == after.ID() {
			t.Error("the auth chain holds the event itself")
		}
	}
	walked, err := rd.Walk(ctx, rv, roomID, []string{after.ID()}, []string{join.ID()}, false, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	var walkedIDs []string
	for _, e := range walked {
		walkedIDs = append(walkedIDs, e.ID())
	}
	if want := []string{rename.ID(), evade.ID()}; !slices.Equal(walkedIDs, want) {
		t.Errorf("walk back from the branch to carol's join: %v, want %v", walkedIDs, want)
	}
	if in, _ := rd.ServerInRoom(ctx, roomID, remoteServer); in {
		t.Error("remote.test counts as in the room after carol's ban")
	}
	if in, _ := rd.ServerInRoom(ctx, roomID, server); !in {
		t.Error("our own server is not in the room")
	}
	if room, err := rd.RoomOfEvent(ctx, evade.ID()); err != nil || room != roomID {
		t.Errorf("room of an event: %q %v", room, err)
	}
}
