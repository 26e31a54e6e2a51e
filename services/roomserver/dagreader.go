package roomserver

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/roomversion"
	"github.com/axon-hs/axon/matrix/stateres"
)

// The Reader's view of a room's DAG, for the Server-Server API's reads:
// events as stored (rejected and soft-failed ones included: other servers
// need them to follow the DAG), the state before an event, auth chains,
// and walks along prev_events.

// maxAuthChain bounds an auth chain read for another server.
const maxAuthChain = 100000

// PDUs returns the events of the room with the given IDs, from the
// timeline and the outliers, by ID; unknown IDs are left out.
func (rd *Reader) PDUs(ctx context.Context, v *roomversion.Version, roomID string, ids []string) (map[string]*event.Event, error) {
	out := make(map[string]*event.Event, len(ids))
	var pdu []byte
	err := eventsByID(ctx, rd.db, roomID, ids, "pdu", "", []any{&pdu}, func() error {
		ev, err := event.Parse(v, pdu)
		if err != nil {
			return fmt.Errorf("roomserver: a stored event of %s does not parse: %w", roomID, err)
		}
		out[ev.ID()] = ev
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// StateIDsBefore returns the room's state before the timeline event id
// (spec: "prior to considering any state changes induced by the requested
// event"), as event IDs. ErrNotFound when the event is not in the
// room's timeline.
func (rd *Reader) StateIDsBefore(ctx context.Context, roomID, id string) (stateres.StateMap, error) {
	var seq int64
	var base sql.NullInt64
	err := rd.db.QueryRow(ctx, `SELECT room_seq, state_base FROM events WHERE event_id = $1 AND room_id = $2 AND NOT outlier`, id, roomID).
		Scan(&seq, &base)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if !base.Valid {
		return stateMapAt(ctx, rd.db, roomID, seq-1)
	}
	s, err := stateMapAt(ctx, rd.db, roomID, base.Int64)
	if err != nil {
		return nil, err
	}
	return s, overlayDelta(ctx, rd.db, id, s)
}

// CurrentStateIDs returns the room's current state as event IDs.
func (rd *Reader) CurrentStateIDs(ctx context.Context, roomID string) (stateres.StateMap, error) {
	rows, err := rd.db.Query(ctx, `SELECT type, state_key, event_id FROM state_history WHERE room_id = $1 AND to_seq IS NULL`, roomID)
	if err != nil {
		return nil, err
	}
	return scanStateMap(rows)
}

// AuthChain returns the auth chain of the events ids (their auth events,
// recursively, not the events themselves), sorted by depth then ID.
func (rd *Reader) AuthChain(ctx context.Context, v *roomversion.Version, roomID string, ids []string) ([]*event.Event, error) {
	seen := map[string]bool{}
	var frontier []string
	start, err := rd.PDUs(ctx, v, roomID, ids)
	if err != nil {
		return nil, err
	}
	for _, ev := range start {
		for _, a := range ev.AuthEvents() {
			if !seen[a] {
				seen[a] = true
				frontier = append(frontier, a)
			}
		}
	}
	var out []*event.Event
	for len(frontier) > 0 {
		if len(seen) > maxAuthChain {
			return nil, fmt.Errorf("roomserver: the auth chain in %s is over %d events", roomID, maxAuthChain)
		}
		found, err := rd.PDUs(ctx, v, roomID, frontier)
		if err != nil {
			return nil, err
		}
		frontier = frontier[:0]
		for _, ev := range found {
			out = append(out, ev)
			for _, a := range ev.AuthEvents() {
				if !seen[a] {
					seen[a] = true
					frontier = append(frontier, a)
				}
			}
		}
	}
	sortByDepth(out)
	return out, nil
}

// Walk follows prev_events back from the events from, breadth first,
// never past stop and never below minDepth, and returns at most limit
// events it reached (from themselves included when include is set),
// sorted by depth then ID.
func (rd *Reader) Walk(ctx context.Context, v *roomversion.Version, roomID string, from, stop []string, include bool, limit int, minDepth int64) ([]*event.Event, error) {
	seen := map[string]bool{}
	for _, s := range stop {
		seen[s] = true
	}
	var frontier []string
	for _, f := range from {
		if !seen[f] {
			seen[f] = true
			frontier = append(frontier, f)
		}
	}
	var out []*event.Event
	first := true
	for len(frontier) > 0 && len(out) < limit {
		found, err := rd.PDUs(ctx, v, roomID, frontier)
		if err != nil {
			return nil, err
		}
		level := make([]*event.Event, 0, len(found))
		for _, id := range frontier {
			if ev := found[id]; ev != nil {
				level = append(level, ev)
			}
		}
		frontier = frontier[:0]
		for _, ev := range level {
			if ev.Depth() < minDepth {
				continue
			}
			if !first || include {
				if len(out) >= limit {
					break
				}
				out = append(out, ev)
			}
			for _, p := range ev.PrevEvents() {
				if !seen[p] {
					seen[p] = true
					frontier = append(frontier, p)
				}
			}
		}
		first = false
	}
	sortByDepth(out)
	return out, nil
}

// ServerInRoom reports whether server has a user whose membership in the
// room's current state is join.
func (rd *Reader) ServerInRoom(ctx context.Context, roomID, server string) (bool, error) {
	rows, err := rd.db.Query(ctx, `SELECT user_id FROM memberships WHERE room_id = $1 AND membership = 'join' AND user_id LIKE $2`,
		roomID, "%:"+server)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return false, err
		}
		// The LIKE is a prefilter: the server is what follows the first ':'.
		if _, s, ok := strings.Cut(u, ":"); ok && s == server {
			return true, nil
		}
	}
	return false, rows.Err()
}

// RoomOfEvent returns the room of a stored event (timeline or outlier),
// ErrNotFound when unknown.
func (rd *Reader) RoomOfEvent(ctx context.Context, id string) (string, error) {
	var room string
	err := rd.db.QueryRow(ctx, `SELECT room_id FROM events WHERE event_id = $1`, id).Scan(&room)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return room, err
}

func sortByDepth(evs []*event.Event) {
	slices.SortFunc(evs, func(a, b *event.Event) int {
		if c := cmp.Compare(a.Depth(), b.Depth()); c != 0 {
			return c
		}
		return strings.Compare(a.ID(), b.ID())
	})
}

// Unknown returns those of ids that this server does not have as events
// of the room, in their order, each once.
func (rd *Reader) Unknown(ctx context.Context, roomID string, ids []string) ([]string, error) {
	have := map[string]bool{}
	var id string
	if err := eventsByID(ctx, rd.db, roomID, ids, "event_id", "", []any{&id}, func() error {
		have[id] = true
		return nil
	}); err != nil {
		return nil, err
	}
	var out []string
	for _, id := range ids {
		if !have[id] {
			have[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}
