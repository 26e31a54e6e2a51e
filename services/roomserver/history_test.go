package roomserver

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/axon-hs/axon/internal/testenv"
	"github.com/axon-hs/axon/matrix/event"
)

// TestBackfill: events from another server's history are checked against
// their auth events and listed in the room's history, newest first, once;
// the room's state, extremities and timeline do not move.
func TestBackfill(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		roomID := h.createRoom("12")
		rm := newRemote(t, h, roomID, "12")
		join := rm.event("m.room.member", sk(carol), carol, `{"membership":"join"}`, []*event.Event{h.head(rm.v, roomID)})
		if out := rm.send(join); out[join.ID()] != "" {
			t.Fatalf("join: %q", out[join.ID()])
		}
		older := rm.event("m.room.message", nil, carol, `{"body":"older"}`, []*event.Event{join})
		newer := rm.event("m.room.message", nil, carol, `{"body":"newer"}`, []*event.Event{older})
		spam := rm.event("m.room.message", nil, mallory, `{"body":"spam"}`, []*event.Event{join})
		noAuth := rm.event("m.room.message", nil, carol, `{"body":"?"}`, []*event.Event{join}, "$"+strings.Repeat("B", 42)+"A")
		state, extremities, head := h.currentState(roomID), h.extremities(roomID), h.head(rm.v, roomID).ID()

		backfill := func(evs ...*event.Event) map[string]string {
			in := &Input{RoomID: roomID, Origin: remoteServer}
			for _, ev := range evs {
				in.Backfill = append(in.Backfill, json.RawMessage(ev.Canonical()))
			}
			res := h.submit(in)
			if res.Error != nil {
				t.Fatalf("backfill: %+v", res.Error)
			}
			return res.PDUs
		}
		out := backfill(older, spam, newer, noAuth)
		if out[older.ID()] != "" || out[newer.ID()] != "" || !strings.HasPrefix(out[spam.ID()], OutcomeRejected) ||
			out[noAuth.ID()] != OutcomeMissingAuth {
			t.Fatalf("outcomes: %v", out)
		}
		rd := NewReader(h.db)
		hist, err := rd.History(context.Background(), rm.v, roomID, -100, 0, 10, true)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ev := range hist {
			got = append(got, ev.ID())
		}
		if want := []string{newer.ID(), older.ID()}; !slices.Equal(got, want) || hist[0].RoomSeq != -1 || hist[1].RoomSeq != -2 {
			t.Fatalf("history %v (first at %d); want %v at -1, -2", got, hist[0].RoomSeq, want)
		}
		// Again, and with an event already in the timeline: nothing new.
		if out := backfill(newer, older, join); out[join.ID()] != "" || out[newer.ID()] != "" {
			t.Fatalf("repeated backfill: %v", out)
		}
		if n := h.count(`SELECT COUNT(*) FROM history_events WHERE room_id = $1`, roomID); n != 2 {
			t.Errorf("%d history rows; want 2", n)
		}
		if !maps.Equal(h.currentState(roomID), state) || !slices.Equal(h.extremities(roomID), extremities) || h.head(rm.v, roomID).ID() != head {
			t.Error("backfill changed the room's state, extremities or head")
		}
		// A later backfill goes below the last.
		oldest := rm.event("m.room.message", nil, carol, `{"body":"oldest"}`, []*event.Event{join})
		if out := backfill(oldest); out[oldest.ID()] != "" {
			t.Fatalf("oldest: %v", out)
		}
		if hist, err = rd.History(context.Background(), rm.v, roomID, -100, 0, 10, false); err != nil || len(hist) != 3 || hist[0].ID() != oldest.ID() || hist[0].RoomSeq != -3 {
			t.Fatalf("history after a second backfill: %d events, %v", len(hist), err)
		}
	})
}

// TestGapState: a PDU whose prev_events are unknown is placed on the state
// its origin says it follows (Input.GapStates); a state that does not
// allow it rejects it; without one it waits for its prev_events.
func TestGapState(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		roomID := h.createRoom("12")
		rm := newRemote(t, h, roomID, "12")
		join := rm.event("m.room.member", sk(carol), carol, `{"membership":"join"}`, []*event.Event{h.head(rm.v, roomID)})
		if out := rm.send(join); out[join.ID()] != "" {
			t.Fatalf("join: %q", out[join.ID()])
		}
		state := h.currentState(roomID)
		var stateIDs []string
		for _, id := range state {
			stateIDs = append(stateIDs, id)
		}
		missed := rm.event("m.room.message", nil, carol, `{"body":"never seen here"}`, []*event.Event{join})
		after := rm.event("m.room.message", nil, carol, `{"body":"after the gap"}`, []*event.Event{missed})
		if out := rm.send(after); out[after.ID()] != OutcomeMissingPrev {
			t.Fatalf("without a gap state: %q", out[after.ID()])
		}
		gapped := func(ev *event.Event, ids []string) string {
			res := h.submit(&Input{RoomID: roomID, Origin: remoteServer, PDUs: []json.RawMessage{ev.Canonical()},
				GapStates: map[string][]string{ev.ID(): ids}})
			if res.Error != nil {
				t.Fatalf("submit: %+v", res.Error)
			}
			return res.PDUs[ev.ID()]
		}
		// A state without carol's join does not allow her message.
		var noCarol []string
		for k, id := range state {
			if k.StateKey != carol {
				noCarol = append(noCarol, id)
			}
		}
		other := rm.event("m.room.message", nil, carol, `{"body":"other"}`, []*event.Event{missed})
		if out := gapped(other, noCarol); !strings.HasPrefix(out, OutcomeRejected) {
			t.Fatalf("on a state without carol: %q", out)
		}
		if out := gapped(after, stateIDs); out != "" {
			t.Fatalf("across the gap: %q", out)
		}
		// Nothing known cites the join: it stays a forward extremity,
		// beside the event across the gap.
		ex := h.extremities(roomID)
		if len(ex) != 2 || !slices.Contains(ex, after.ID()) || !slices.Contains(ex, join.ID()) {
			t.Errorf("extremities after the gap: %v", ex)
		}
		if !maps.Equal(h.currentState(roomID), state) {
			t.Error("a message across a gap changed the state")
		}
	})
}
