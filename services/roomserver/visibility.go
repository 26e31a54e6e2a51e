package roomserver

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/axon-hs/axon/matrix/roomversion"
)

// maxVisibilityRows bounds the state changes Visibility loads per key (the
// room's history visibility, the user's membership): the most recent ones.
// Timeline events older than the oldest loaded change are treated as not
// visible to the user (unless world-readable could not be told either: they
// are denied), which only a user with more membership changes in one room
// than this (profile changes count) would notice.
const maxVisibilityRows = 10000

// Visibility is what one user may see of a room's timeline under its
// history visibility (spec client-server "Room History Visibility"): the
// room's m.room.history_visibility and the user's membership over
// room_seq, from the room's state history.
//
// The state "at an event" is taken as the room's current state just
// before the event was persisted (state after room_seq - 1). It is the
// state at the event in the DAG except for events on a fork that state
// resolution did not follow. History that other servers sent for a room
// this server joined late (room_seq ≤ 0) is not in the state history: it
// is shown as those servers served it, which they filtered (redacting
// what this server's users could not see) by the same rules.
type Visibility struct {
	userID string
	hv     []stateSpan // m.room.history_visibility values, oldest first
	member []stateSpan // the user's memberships, oldest first
	// lastJoin is the latest room_seq at which the user's membership
	// became or stayed join (profile changes included).
	lastJoin int64
	// floor is the from_seq of the oldest change loaded of a key whose
	// changes were cut at maxVisibilityRows (0: none were cut).
	floor int64
}

// stateSpan is a state key holding value from room_seq from on, until to
// (0: still).
type stateSpan struct {
	from, to int64
	value    string
}

// Visibility loads the history visibility of the room for userID.
func (rd *Reader) Visibility(ctx context.Context, v *roomversion.Version, roomID, userID string) (*Visibility, error) {
	vis := &Visibility{userID: userID}
	load := func(typ, stateKey, field string) ([]stateSpan, error) {
		rows, err := rd.db.Query(ctx, fmt.Sprintf(`SELECT from_seq, to_seq, event_id FROM state_history
			WHERE room_id = $1 AND type = $2 AND state_key = $3 ORDER BY from_seq DESC LIMIT %d`, maxVisibilityRows+1),
			roomID, typ, stateKey)
		if err != nil {
			return nil, fmt.Errorf("roomserver: read %s history of %s: %w", typ, roomID, err)
		}
		var spans []stateSpan
		var ids []string
		for rows.Next() {
			var sp stateSpan
			var to sql.NullInt64
			var id string
			if err := rows.Scan(&sp.from, &to, &id); err != nil {
				rows.Close()
				return nil, err
			}
			sp.to = to.Int64
			sp.value = id // replaced by the value below
			spans = append(spans, sp)
			ids = append(ids, id)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, err
		}
		if len(spans) > maxVisibilityRows {
			spans, ids = spans[:maxVisibilityRows], ids[:maxVisibilityRows]
			vis.floor = max(vis.floor, spans[len(spans)-1].from)
		}
		evs, err := rd.EventsByID(ctx, v, ids)
		if err != nil {
			return nil, err
		}
		for i := range spans {
			value := ""
			if e := evs[spans[i].value]; e != nil {
				value, _ = e.Content().Get(field).Str()
			}
			spans[i].value = value
		}
		slices.Reverse(spans)
		return spans, nil
	}
	var err error
	if vis.hv, err = load("m.room.history_visibility", "", "history_visibility"); err != nil {
		return nil, err
	}
	if vis.member, err = load("m.room.member", userID, "membership"); err != nil {
		return nil, err
	}
	for _, sp := range vis.member {
		if sp.value == "join" {
			vis.lastJoin = sp.from
		}
	}
	return vis, nil
}

// valueAt returns the value the key held after room_seq seq ("" if none).
func valueAt(spans []stateSpan, seq int64) string {
	for i := len(spans) - 1; i >= 0; i-- {
		sp := spans[i]
		if sp.from <= seq {
			if sp.to == 0 || sp.to > seq {
				return sp.value
			}
			return ""
		}
	}
	return ""
}

// historyVisibility is the visibility after room_seq seq: shared when
// unset or not understood.
func (vis *Visibility) historyVisibility(seq int64) string {
	switch v := valueAt(vis.hv, seq); v {
	case "world_readable", "shared", "invited", "joined":
		return v
	}
	return "shared"
}

// allowed applies the rules to an event at room_seq seq under history
// visibility hv with the user's membership m.
func (vis *Visibility) allowed(hv, m string, seq int64) bool {
	switch {
	case hv == "world_readable", m == "join":
		return true
	case hv == "shared":
		return vis.lastJoin > seq
	case hv == "invited":
		return m == "invite"
	}
	return false
}

// Visible reports whether the user may see e. A history visibility event
// is visible when the visibility before or after it allows it, and so is
// the user's own membership event with their membership before or after.
func (vis *Visibility) Visible(e *StoredEvent) bool {
	seq := e.RoomSeq
	if seq <= 0 {
		return true
	}
	if vis.floor > 0 && seq < vis.floor {
		return false
	}
	hv, m := vis.historyVisibility(seq-1), valueAt(vis.member, seq-1)
	if vis.allowed(hv, m, seq) {
		return true
	}
	sk, isState := e.StateKey()
	switch {
	case !isState:
		return false
	case e.Type() == "m.room.history_visibility" && sk == "":
		return vis.allowed(vis.historyVisibility(seq), m, seq)
	case e.Type() == "m.room.member" && sk == vis.userID:
		return vis.allowed(hv, valueAt(vis.member, seq), seq)
	}
	return false
}
