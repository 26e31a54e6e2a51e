package roomserver

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/auth"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/roomversion"
	"github.com/axon-hs/axon/matrix/stateres"
)

// errConflict means the room's head moved under us: another writer (a
// previous owner of the partition, a paused process) persisted events. The
// batch is retried against the fresh head.
var errConflict = errors.New("roomserver: room head moved (compare-and-set failed)")

// errTxnTaken means that a client transaction ID a batch took for new was
// recorded already: the batch is applied again with every ID looked up.
var errTxnTaken = errors.New("roomserver: client transaction ID recorded already")

// errNoRoom means the room is not known to this server.
var errNoRoom = errors.New("roomserver: unknown room")

// loadRoom reads a room's head and current state from the database.
func loadRoom(ctx context.Context, db *store.DB, roomID string) (*room, error) {
	var versionID string
	var extrem []byte
	r := &room{id: roomID, state: make(map[auth.StateKey]*event.Event)}
	err := db.QueryRow(ctx, `SELECT room_version, head_seq, depth, extremities FROM rooms WHERE room_id = $1`, roomID).
		Scan(&versionID, &r.headSeq, &r.extremDepth, &extrem)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoRoom
	}
	if err != nil {
		return nil, fmt.Errorf("roomserver: load room %s: %w", roomID, err)
	}
	v, ok := roomversion.Lookup(versionID)
	if !ok {
		return nil, fmt.Errorf("roomserver: room %s has unknown version %q", roomID, versionID)
	}
	r.version = v
	r.committedSeq = r.headSeq
	var extremIDs []string
	if err := json.Unmarshal(extrem, &extremIDs); err != nil {
		return nil, fmt.Errorf("roomserver: room %s extremities: %w", roomID, err)
	}
	if r.extremities, err = loadEvents(ctx, db, v, extremIDs); err != nil {
		return nil, fmt.Errorf("roomserver: room %s extremities: %w", roomID, err)
	}
	rows, err := db.Query(ctx, `SELECT e.pdu FROM state_history s JOIN events e ON e.event_id = s.event_id
		WHERE s.room_id = $1 AND s.to_seq IS NULL`, roomID)
	if err != nil {
		return nil, fmt.Errorf("roomserver: load state of %s: %w", roomID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var pdu []byte
		if err := rows.Scan(&pdu); err != nil {
			return nil, err
		}
		ev, err := event.Parse(v, pdu)
		if err != nil {
			return nil, fmt.Errorf("roomserver: stored event of %s does not parse: %w", roomID, err)
		}
		sk, _ := ev.StateKey()
		r.state[auth.StateKey{Type: ev.Type(), StateKey: sk}] = ev
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("roomserver: load state of %s: %w", roomID, err)
	}
	return r, nil
}

// loadEvents reads events by ID; missing IDs are left out.
func loadEvents(ctx context.Context, db *store.DB, v *roomversion.Version, ids []string) ([]*event.Event, error) {
	out := make([]*event.Event, 0, len(ids))
	for _, id := range ids {
		var pdu []byte
		err := db.QueryRow(ctx, `SELECT pdu FROM events WHERE event_id = $1`, id).Scan(&pdu)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, err
		}
		ev, err := event.Parse(v, pdu)
		if err != nil {
			return nil, fmt.Errorf("roomserver: stored event %s does not parse: %w", id, err)
		}
		out = append(out, ev)
	}
	return out, nil
}

// lookupTxn returns the event ID recorded for a client transaction, or "".
func lookupTxn(ctx context.Context, db *store.DB, sender string, t *Txn) (string, error) {
	var eventID string
	err := db.QueryRow(ctx, `SELECT event_id FROM client_txns WHERE user_id = $1 AND device_id = $2 AND txn_id = $3 AND scope = $4`,
		sender, t.DeviceID, t.TxnID, t.Scope).Scan(&eventID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return eventID, err
}

// persisted is one event to write in a batch.
type persisted struct {
	inputSeq uint64 // the ROOM_INPUT message it came from (0: none)
	ev       *event.Event
	roomSeq  int64
	// changes are the changes of the room's current state at this event:
	// the event itself for a local state event; for a received one,
	// whatever state resolution across the forward extremities gave.
	changes []stateChange
	redacts string // applied redaction target
	txn     *Txn
	out     []byte // the Output payload
	pdu     []byte // ev's canonical JSON, once made (canonical)
	// Received events only:
	remote     bool
	outlier    bool
	rejected   bool
	softFailed bool
	// before is the state before the event when it is not the current
	// state after room_seq - 1 (a fork): nil otherwise. It is stored as
	// a delta against that current state (event_state_deltas).
	before stateres.StateMap
	delta  []deltaRow
}

// canonical returns the event's canonical JSON, made once for the events
// table and the Output both.
func (p *persisted) canonical() []byte {
	if p.pdu == nil {
		p.pdu = p.ev.Canonical()
	}
	return p.pdu
}

// roomWrite is what a batch writes for one room.
type roomWrite struct {
	r       *room
	create  bool
	fromSeq int64 // committed head before the batch
	// events are the room's events to write, outliers included, in
	// room_seq order.
	events []*persisted
	// history lists backfilled events (outliers among events) in the
	// room's history, newest first.
	history []historyRow
}

// writeBatch persists the batch's rooms in one transaction, each guarded
// by a compare-and-set of its head. It also deletes outbox rows already
// published (done, by room: every row up to the seq).
func writeBatch(ctx context.Context, db *store.DB, partition int, writes []*roomWrite, done map[string]int64, now int64, stream int64) error {
	return db.Tx(ctx, func(ctx context.Context, tx *store.Tx) error {
		for roomID, seq := range done {
			if _, err := tx.Exec(ctx, `DELETE FROM outbox WHERE partition = $1 AND room_id = $2 AND room_seq <= $3`,
				partition, roomID, seq); err != nil {
				return err
			}
		}
		for _, w := range writes {
			if err := writeRoom(ctx, tx, partition, w, now, stream); err != nil {
				return err
			}
		}
		return nil
	})
}

func writeRoom(ctx context.Context, tx *store.Tx, partition int, w *roomWrite, now, stream int64) error {
	r := w.r
	ids := make([]string, len(r.extremities))
	for i, e := range r.extremities {
		ids[i] = e.ID()
	}
	extr, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	// Everything below is deferred: the whole batch costs one round trip
	// on PostgreSQL. The head's compare-and-set fails the transaction
	// with errConflict when another writer moved it.
	if w.create {
		tx.DeferExpect(1, errConflict, `INSERT INTO rooms (room_id, room_version, head_seq, depth, extremities, created_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (room_id) DO NOTHING`,
			r.id, r.version.ID, r.headSeq, r.extremDepth, extr, now)
	} else {
		tx.DeferExpect(1, errConflict, `UPDATE rooms SET head_seq = $1, depth = $2, extremities = $3
			WHERE room_id = $4 AND head_seq = $5`, r.headSeq, r.extremDepth, extr, r.id, w.fromSeq)
	}
	for _, h := range w.history {
		tx.Defer(`INSERT INTO history_events (room_id, hist_seq, event_id) VALUES ($1, $2, $3)`, w.r.id, h.seq, h.eventID)
	}
	for _, p := range w.events {
		ev := p.ev
		sk, isState := ev.StateKey()
		var skArg any
		if isState {
			skArg = sk
		}
		var stateBase, inputStream, inputSeq any
		if p.before != nil {
			stateBase = p.roomSeq - 1
		}
		if p.inputSeq != 0 {
			inputStream, inputSeq = stream, int64(p.inputSeq)
		}
		// A received event may be known as an outlier: it joins the
		// timeline (or, as an outlier again, changes nothing).
		conflict := ""
		switch {
		case p.outlier:
			conflict = ` ON CONFLICT (event_id) DO NOTHING`
		case p.remote:
			conflict = ` ON CONFLICT (event_id) DO UPDATE SET room_seq = excluded.room_seq, rejected = excluded.rejected,
				input_stream = excluded.input_stream, input_seq = excluded.input_seq, soft_failed = excluded.soft_failed,
				state_base = excluded.state_base, outlier = FALSE WHERE events.outlier`
		}
		tx.Defer(`INSERT INTO events (event_id, room_id, room_seq, type, state_key, sender, origin_ts, pdu, rejected,
				input_stream, input_seq, soft_failed, state_base, outlier)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`+conflict,
			ev.ID(), r.id, p.roomSeq, ev.Type(), skArg, ev.Sender(), ev.OriginServerTS(), p.canonical(), p.rejected,
			inputStream, inputSeq, p.softFailed, stateBase, p.outlier)
		for _, d := range p.delta {
			tx.Defer(`INSERT INTO event_state_deltas (event_id, type, state_key, state_event_id) VALUES ($1, $2, $3, $4)`,
				ev.ID(), d.key.Type, d.key.StateKey, d.eventID)
		}
		for _, c := range p.changes {
			deferStateChange(tx, r.id, p.roomSeq, c)
		}
		if p.redacts != "" {
			if err := applyRedaction(ctx, tx, r.version, p.redacts, ev.ID()); err != nil {
				return err
			}
		}
		if p.txn != nil {
			tx.DeferExpect(1, errTxnTaken, `INSERT INTO client_txns (user_id, device_id, txn_id, scope, room_id, event_id, created_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (user_id, device_id, txn_id, scope) DO NOTHING`,
				ev.Sender(), p.txn.DeviceID, p.txn.TxnID, p.txn.Scope, r.id, ev.ID(), now)
		}
		if p.out != nil {
			tx.Defer(`INSERT INTO outbox (partition, room_id, room_seq, payload, created_at)
				VALUES ($1, $2, $3, $4, $5)`, partition, r.id, p.roomSeq, p.out, now)
		}
	}
	return nil
}

// deferStateChange records that the current state's key c.key holds c.ev
// (or nothing) from room_seq seq on.
func deferStateChange(tx *store.Tx, roomID string, seq int64, c stateChange) {
	tx.Defer(`UPDATE state_history SET to_seq = $1
		WHERE room_id = $2 AND type = $3 AND state_key = $4 AND to_seq IS NULL`,
		seq, roomID, c.key.Type, c.key.StateKey)
	if c.ev == nil {
		if c.key.Type == "m.room.member" {
			tx.Defer(`DELETE FROM memberships WHERE user_id = $1 AND room_id = $2`, c.key.StateKey, roomID)
		}
		return
	}
	tx.Defer(`INSERT INTO state_history (room_id, type, state_key, from_seq, event_id, redacted_by)
		VALUES ($1, $2, $3, $4, $5, (SELECT redacted_by FROM events WHERE event_id = $6))`,
		roomID, c.key.Type, c.key.StateKey, seq, c.ev.ID(), c.ev.ID())
	if c.key.Type == "m.room.member" {
		tx.Defer(`INSERT INTO memberships (user_id, room_id, membership, event_id, room_seq)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (user_id, room_id) DO UPDATE SET membership = excluded.membership,
				event_id = excluded.event_id, room_seq = excluded.room_seq`,
			c.key.StateKey, roomID, c.ev.Membership(), c.ev.ID(), seq)
	}
}

// applyRedaction replaces the target's stored PDU by its redacted form.
// The original content is gone from this server afterwards, which is what
// a redaction asks for.
func applyRedaction(ctx context.Context, tx *store.Tx, v *roomversion.Version, target, by string) error {
	var pdu []byte
	err := tx.QueryRow(ctx, `SELECT pdu FROM events WHERE event_id = $1`, target).Scan(&pdu)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // not here (yet): nothing to redact
	}
	if err != nil {
		return err
	}
	ev, err := event.Parse(v, pdu)
	if err != nil {
		return fmt.Errorf("roomserver: stored event %s does not parse: %w", target, err)
	}
	res, err := tx.Exec(ctx, `UPDATE events SET pdu = $1, redacted_by = $2 WHERE event_id = $3 AND redacted_by IS NULL`,
		ev.Redacted().Canonical(), by, target)
	if err != nil {
		return err
	}
	sk, isState := ev.StateKey()
	if n, _ := res.RowsAffected(); n == 0 || !isState {
		return nil
	}
	// state_history mirrors redacted_by, so that reading a room's state
	// needs the events table only for events the Reader has not cached.
	_, err = tx.Exec(ctx, `UPDATE state_history SET redacted_by = $1
		WHERE room_id = $2 AND type = $3 AND state_key = $4 AND event_id = $5 AND redacted_by IS NULL`,
		by, ev.RoomID(), ev.Type(), sk, target)
	return err
}

// pendingOutbox returns the partition's unpublished outbox payloads in
// room persistence order.
func pendingOutbox(ctx context.Context, db *store.DB, partition int, limit int) ([]outboxRow, error) {
	rows, err := db.Query(ctx, `SELECT room_id, room_seq, payload FROM outbox WHERE partition = $1
		ORDER BY room_id, room_seq LIMIT $2`, partition, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		var o outboxRow
		if err := rows.Scan(&o.roomID, &o.roomSeq, &o.payload); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

type outboxRow struct {
	roomID  string
	roomSeq int64
	payload []byte
}

// inputApplied reports whether the ROOM_INPUT message seq of the stream
// created at stream already produced events.
func inputApplied(ctx context.Context, db *store.DB, stream int64, seq uint64) (bool, error) {
	var one int
	err := db.QueryRow(ctx, `SELECT 1 FROM events WHERE input_stream = $1 AND input_seq = $2 LIMIT 1`, stream, int64(seq)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}
