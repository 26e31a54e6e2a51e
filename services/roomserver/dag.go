package roomserver

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/auth"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/stateres"
)

// maxResolveEvents bounds the events loaded to resolve one state: a room
// whose auth DAG is larger cannot take a received fork here (the event is
// refused, not persisted) until resolution works from an index of auth
// chains instead of loading them.
const maxResolveEvents = 200000

// dagSource finds what checking a received event needs: events by ID (in
// the batch, the room's current state, the timeline and the outliers of
// the database) and the state after any event of the timeline. It is the
// stateres.Source of the resolutions it runs, over the events it loaded.
type dagSource struct {
	w  *partitionWorker
	r  *room
	rw *roomWrite
	// known are the events loaded so far; rejected the rejected ones.
	known    map[string]*event.Event
	rejected map[string]bool
	// staged are the batch's events of this room, by ID.
	staged map[string]*persisted
	// timeline caches inTimeline answers from the database.
	timeline map[string]bool
	// current indexes the room's current state by event ID (built on
	// first use).
	current map[string]*event.Event
}

func newDAGSource(w *partitionWorker, r *room, rw *roomWrite) *dagSource {
	ds := &dagSource{w: w, r: r, rw: rw, known: map[string]*event.Event{}, rejected: map[string]bool{},
		staged: map[string]*persisted{}, timeline: map[string]bool{}}
	for _, p := range rw.events {
		ds.known[p.ev.ID()] = p.ev
		if p.outlier {
			continue
		}
		ds.staged[p.ev.ID()] = p
		if p.rejected {
			ds.rejected[p.ev.ID()] = true
		}
	}
	return ds
}

// Event implements stateres.Source.
func (ds *dagSource) Event(id string) *event.Event { return ds.known[id] }

// Rejected implements stateres.Source (and auth.CheckAuthEvents's
// predicate).
func (ds *dagSource) Rejected(id string) bool { return ds.rejected[id] }

// stage records ev, persisted in this batch.
func (ds *dagSource) stage(p *persisted) {
	ds.staged[p.ev.ID()] = p
	ds.known[p.ev.ID()] = p.ev
	if p.rejected {
		ds.rejected[p.ev.ID()] = true
	}
}

// inTimeline reports whether id is an event of the room's timeline
// (persisted, or staged in this batch), not an outlier.
func (ds *dagSource) inTimeline(ctx context.Context, id string) (bool, error) {
	if _, ok := ds.staged[id]; ok {
		return true, nil
	}
	if known, ok := ds.timeline[id]; ok {
		return known, nil
	}
	var one int
	err := ds.w.s.db.QueryRow(ctx, `SELECT 1 FROM events WHERE event_id = $1 AND room_id = $2 AND NOT outlier`, id, ds.r.id).Scan(&one)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, err
	}
	ds.timeline[id] = err == nil
	return err == nil, nil
}

// prefetchTimeline answers inTimeline for all of ids with one query, so
// that a batch of received events costs one lookup, not one per event and
// prev_event. IDs staged in the batch or already answered are skipped.
func (ds *dagSource) prefetchTimeline(ctx context.Context, ids []string) error {
	var ask []string
	for _, id := range ids {
		if _, ok := ds.staged[id]; ok {
			continue
		}
		if _, ok := ds.timeline[id]; ok {
			continue
		}
		ds.timeline[id] = false // until the query finds it
		ask = append(ask, id)
	}
	var id string
	return eventsByID(ctx, ds.w.s.db, ds.r.id, ask, "event_id", "NOT outlier AND ", []any{&id}, func() error {
		ds.timeline[id] = true
		return nil
	})
}

// events returns the events of ids that are known anywhere, in the order
// of ids (the unknown ones left out).
func (ds *dagSource) events(ctx context.Context, ids []string) ([]*event.Event, error) {
	var missing []string
	for _, id := range ids {
		if ds.known[id] == nil && ds.fromCurrent(id) == nil {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		if err := ds.load(ctx, missing); err != nil {
			return nil, err
		}
	}
	out := make([]*event.Event, 0, len(ids))
	for _, id := range ids {
		if ev := ds.known[id]; ev != nil {
			out = append(out, ev)
		}
	}
	return out, nil
}

// fromCurrent finds id in the room's current state and makes it known.
func (ds *dagSource) fromCurrent(id string) *event.Event {
	if ds.current == nil {
		ds.current = make(map[string]*event.Event, len(ds.r.state))
		for _, ev := range ds.r.state {
			ds.current[ev.ID()] = ev
		}
	}
	ev := ds.current[id]
	if ev != nil {
		ds.known[id] = ev
	}
	return ev
}

// load reads events of the room by ID, outliers included.
func (ds *dagSource) load(ctx context.Context, ids []string) error {
	var pdu []byte
	var rejected bool
	return eventsByID(ctx, ds.w.s.db, ds.r.id, ids, "pdu, rejected", "", []any{&pdu, &rejected}, func() error {
		ev, err := event.Parse(ds.r.version, pdu)
		if err != nil {
			return fmt.Errorf("roomserver: a stored event of %s does not parse: %w", ds.r.id, err)
		}
		ds.known[ev.ID()] = ev
		if rejected {
			ds.rejected[ev.ID()] = true
		}
		return nil
	})
}

// eventsByID reads cols of the events of roomID among ids, in chunks of
// 500: for each it scans the row into dest and calls fn. cond, when not
// empty, is a further condition ending in "AND ". The query selects by
// event ID alone, so that the primary key is the plan (with the room ID
// in the condition SQLite prefers the room's index and scans the room);
// rows of other rooms are skipped here.
func eventsByID(ctx context.Context, db *store.DB, roomID string, ids []string, cols, cond string, dest []any, fn func() error) error {
	var rowRoom string
	dest = append([]any{&rowRoom}, dest...)
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		in, args := db.AnyOf(1, chunk)
		rows, err := db.Query(ctx, `SELECT room_id, `+cols+` FROM events WHERE `+cond+`event_id `+in, args...)
		if err != nil {
			return fmt.Errorf("roomserver: read events of %s: %w", roomID, err)
		}
		for rows.Next() {
			err := rows.Scan(dest...)
			if err == nil && rowRoom == roomID {
				err = fn()
			}
			if err != nil {
				rows.Close()
				return err
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// stateAt returns the room's current state after room_seq seq, staged
// changes included.
func (ds *dagSource) stateAt(ctx context.Context, seq int64) (stateres.StateMap, error) {
	r := ds.r
	if seq == r.headSeq {
		return stateMapOf(r.state), nil
	}
	base := min(seq, r.committedSeq)
	out, err := stateMapAt(ctx, ds.w.s.db, r.id, base)
	if err != nil {
		return nil, err
	}
	// Staged changes up to seq (the batch is not committed yet).
	for _, p := range ds.rw.events {
		if p.roomSeq > seq {
			break
		}
		if p.roomSeq <= base {
			continue
		}
		for _, c := range p.changes { // outliers have none
			if c.ev == nil {
				delete(out, c.key)
			} else {
				out[c.key] = c.ev.ID()
			}
		}
	}
	return out, nil
}

// stateAfter returns the state after the timeline event id.
func (ds *dagSource) stateAfter(ctx context.Context, id string) (stateres.StateMap, error) {
	var (
		ev       *event.Event
		seq      int64
		rejected bool
		delta    stateres.StateMap
		hasDelta bool
	)
	if p, ok := ds.staged[id]; ok {
		ev, seq, rejected = p.ev, p.roomSeq, p.rejected
		if p.before != nil {
			hasDelta = true
			delta = p.before
		}
	} else {
		db := ds.w.s.db
		var pdu []byte
		var base sql.NullInt64
		err := db.QueryRow(ctx, `SELECT pdu, room_seq, rejected, state_base FROM events WHERE event_id = $1 AND room_id = $2`,
			id, ds.r.id).Scan(&pdu, &seq, &rejected, &base)
		if err != nil {
			return nil, fmt.Errorf("roomserver: event %s of %s: %w", id, ds.r.id, err)
		}
		if ev, err = event.Parse(ds.r.version, pdu); err != nil {
			return nil, fmt.Errorf("roomserver: a stored event of %s does not parse: %w", ds.r.id, err)
		}
		if base.Valid {
			hasDelta = true
			if delta, err = ds.storedBefore(ctx, id, base.Int64); err != nil {
				return nil, err
			}
		}
	}
	var out stateres.StateMap
	if hasDelta {
		out = make(stateres.StateMap, len(delta)+1)
		for k, v := range delta {
			out[k] = v
		}
	} else {
		var err error
		if out, err = ds.stateAt(ctx, seq-1); err != nil {
			return nil, err
		}
	}
	if sk, ok := ev.StateKey(); ok && !rejected {
		out[auth.StateKey{Type: ev.Type(), StateKey: sk}] = ev.ID()
	}
	return out, nil
}

// storedBefore rebuilds the state before a stored event whose state is
// kept as a delta against the current state after base.
func (ds *dagSource) storedBefore(ctx context.Context, id string, base int64) (stateres.StateMap, error) {
	out, err := ds.stateAt(ctx, base)
	if err != nil {
		return nil, err
	}
	return out, overlayDelta(ctx, ds.w.s.db, id, out)
}

// stateMapAt reads the room's committed current state after room_seq seq.
func stateMapAt(ctx context.Context, db *store.DB, roomID string, seq int64) (stateres.StateMap, error) {
	rows, err := db.Query(ctx, `SELECT type, state_key, event_id FROM state_history
		WHERE room_id = $1 AND from_seq <= $2 AND (to_seq IS NULL OR to_seq > $2)`, roomID, seq)
	if err != nil {
		return nil, fmt.Errorf("roomserver: state of %s at %d: %w", roomID, seq, err)
	}
	return scanStateMap(rows)
}

// overlayDelta applies the stored state delta of event id to s.
func overlayDelta(ctx context.Context, db *store.DB, id string, s stateres.StateMap) error {
	rows, err := db.Query(ctx, `SELECT type, state_key, state_event_id FROM event_state_deltas WHERE event_id = $1`, id)
	if err != nil {
		return fmt.Errorf("roomserver: state before %s: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var k auth.StateKey
		var sid string
		if err := rows.Scan(&k.Type, &k.StateKey, &sid); err != nil {
			return err
		}
		if sid == "" {
			delete(s, k)
		} else {
			s[k] = sid
		}
	}
	return rows.Err()
}

// resolve resolves states with the room version's algorithm, loading the
// events and auth chains it needs first.
func (ds *dagSource) resolve(ctx context.Context, states []stateres.StateMap) (stateres.StateMap, error) {
	if len(states) == 1 {
		return states[0], nil
	}
	// Load every event of the states and their auth chains.
	var frontier []string
	seen := map[string]bool{}
	for _, s := range states {
		for _, id := range s {
			if !seen[id] {
				seen[id] = true
				frontier = append(frontier, id)
			}
		}
	}
	for len(frontier) > 0 {
		if len(seen) > maxResolveEvents {
			return nil, fmt.Errorf("roomserver: resolving the state of %s needs over %d events", ds.r.id, maxResolveEvents)
		}
		evs, err := ds.events(ctx, frontier)
		if err != nil {
			return nil, err
		}
		frontier = frontier[:0]
		for _, ev := range evs {
			for _, a := range ev.AuthEvents() {
				if !seen[a] {
					seen[a] = true
					frontier = append(frontier, a)
				}
			}
		}
	}
	return stateres.Resolve(ds.r.version, states, ds)
}

// materialise returns the events of s as an auth.State.
func (ds *dagSource) materialise(ctx context.Context, s stateres.StateMap) (auth.MapState, error) {
	ids := make([]string, 0, len(s))
	for _, id := range s {
		ids = append(ids, id)
	}
	if _, err := ds.events(ctx, ids); err != nil {
		return nil, err
	}
	out := make(auth.MapState, len(s))
	for k, id := range s {
		if ev := ds.known[id]; ev != nil {
			out[k] = ev
		}
	}
	return out, nil
}

// diff lists what turns from into to, loading the events it needs, in
// (type, state key) order.
func (ds *dagSource) diff(ctx context.Context, from, to stateres.StateMap) ([]stateChange, error) {
	var ids []string
	for k, id := range to {
		if from[k] != id {
			ids = append(ids, id)
		}
	}
	if _, err := ds.events(ctx, ids); err != nil {
		return nil, err
	}
	var out []stateChange
	for k, id := range to {
		if from[k] != id {
			ev := ds.known[id]
			if ev == nil {
				return nil, fmt.Errorf("roomserver: state event %s of %s is unknown", id, ds.r.id)
			}
			out = append(out, stateChange{key: k, ev: ev})
		}
	}
	for k := range from {
		if _, ok := to[k]; !ok {
			out = append(out, stateChange{key: k})
		}
	}
	sortChanges(out)
	return out, nil
}

// scanStateMap reads rows of (type, state_key, event_id) into a state map.
func scanStateMap(rows *store.Rows) (stateres.StateMap, error) {
	defer rows.Close()
	out := stateres.StateMap{}
	for rows.Next() {
		var k auth.StateKey
		var id string
		if err := rows.Scan(&k.Type, &k.StateKey, &id); err != nil {
			return nil, err
		}
		out[k] = id
	}
	return out, rows.Err()
}
