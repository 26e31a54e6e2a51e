package roomserver

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// Reader answers read-only questions about rooms from the room role's
// tables, for the client and sync roles. It never writes: every change to
// a room goes through ROOM_INPUT.
type Reader struct {
	db *store.DB
	// versions caches room versions, which never change. Bounded: it is
	// emptied when it reaches maxCachedVersions.
	mu       sync.RWMutex
	versions map[string]*roomversion.Version
	events   *eventCache
}

const maxCachedVersions = 100_000

// NewReader returns a Reader over db.
func NewReader(db *store.DB) *Reader {
	return &Reader{db: db, versions: make(map[string]*roomversion.Version), events: newEventCache(eventsPerGeneration)}
}

// Version returns the room's version, from memory after the first time.
func (rd *Reader) Version(ctx context.Context, roomID string) (*roomversion.Version, error) {
	rd.mu.RLock()
	v := rd.versions[roomID]
	rd.mu.RUnlock()
	if v != nil {
		return v, nil
	}
	info, err := rd.Room(ctx, roomID)
	if err != nil {
		return nil, err
	}
	rd.mu.Lock()
	if len(rd.versions) >= maxCachedVersions {
		clear(rd.versions)
	}
	rd.versions[roomID] = info.Version
	rd.mu.Unlock()
	return info.Version, nil
}

// EventsByID returns the room's events with the given IDs (those that
// exist and are not rejected), by ID, in one query.
func (rd *Reader) EventsByID(ctx context.Context, v *roomversion.Version, ids []string) (map[string]*StoredEvent, error) {
	out := make(map[string]*StoredEvent, len(ids))
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		in, args := rd.db.AnyOf(1, chunk)
		rows, err := rd.db.Query(ctx, `SELECT event_id, pdu, room_seq, redacted_by FROM events WHERE NOT rejected AND event_id `+in, args...)
		if err != nil {
			return nil, err
		}
		evs, err := rd.scanWithRedactions(ctx, rows, v)
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			out[e.ID()] = e
		}
	}
	return out, nil
}

// EventsByKey is EventsByID for callers that know the state each event
// was stored in (its ID and the redaction applied to it, from an index
// that mirrors redacted_by). The events the cache holds in that state cost
// no query; the others are read from the events table, in their stored
// state, which may be newer than the key's (a redaction the caller's
// index does not show yet).
func (rd *Reader) EventsByKey(ctx context.Context, v *roomversion.Version, keys []EventKey) (map[string]*StoredEvent, error) {
	out := make(map[string]*StoredEvent, len(keys))
	var missing []string
	var redacted []*StoredEvent
	for _, k := range keys {
		e, ok := rd.events.get(k)
		if !ok || e.ev.Version() != v {
			missing = append(missing, k.ID)
			continue
		}
		se := &StoredEvent{Event: e.ev, RoomSeq: e.seq, RedactedBy: k.RedactedBy}
		out[k.ID] = se
		if k.RedactedBy != "" {
			redacted = append(redacted, se)
		}
	}
	if err := rd.WithRedactions(ctx, v, redacted...); err != nil {
		return nil, err
	}
	loaded, err := rd.EventsByID(ctx, v, missing)
	if err != nil {
		return nil, err
	}
	maps.Copy(out, loaded)
	return out, nil
}

// eventsByKeyRows reads rows of (event_id, redacted_by) and returns their
// events (EventsByKey) in the rows' order.
func (rd *Reader) eventsByKeyRows(ctx context.Context, rows *store.Rows, v *roomversion.Version) ([]*StoredEvent, error) {
	keys, err := scanKeys(rows)
	if err != nil {
		return nil, err
	}
	byID, err := rd.EventsByKey(ctx, v, keys)
	if err != nil {
		return nil, err
	}
	out := make([]*StoredEvent, 0, len(keys))
	for _, k := range keys {
		if e := byID[k.ID]; e != nil {
			out = append(out, e)
		}
	}
	return out, nil
}

func scanKeys(rows *store.Rows) ([]EventKey, error) {
	defer rows.Close()
	var keys []EventKey
	for rows.Next() {
		var k EventKey
		var by sql.NullString
		if err := rows.Scan(&k.ID, &by); err != nil {
			return nil, err
		}
		k.RedactedBy = by.String
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// ErrNotFound means the room or event is not known here.
var ErrNotFound = errors.New("roomserver: not found")

// RoomInfo is a room's version and head.
type RoomInfo struct {
	ID      string
	Version *roomversion.Version
	HeadSeq int64
	// Extremities are the room's forward extremities.
	Extremities []string
}

// Room returns the room's version and head.
func (rd *Reader) Room(ctx context.Context, roomID string) (RoomInfo, error) {
	var vid string
	info := RoomInfo{ID: roomID}
	var extr []byte
	err := rd.db.QueryRow(ctx, `SELECT room_version, head_seq, extremities FROM rooms WHERE room_id = $1`, roomID).Scan(&vid, &info.HeadSeq, &extr)
	if errors.Is(err, sql.ErrNoRows) {
		return info, ErrNotFound
	}
	if err != nil {
		return info, err
	}
	if err := json.Unmarshal(extr, &info.Extremities); err != nil {
		return info, fmt.Errorf("roomserver: room %s extremities: %w", roomID, err)
	}
	v, ok := roomversion.Lookup(vid)
	if !ok {
		return info, fmt.Errorf("roomserver: room %s has unknown version %q", roomID, vid)
	}
	info.Version = v
	return info, nil
}

// StoredEvent is an event as stored, with its position in the room.
type StoredEvent struct {
	*event.Event
	RoomSeq    int64
	RedactedBy string
	// RedactedBecause is the redaction event when RedactedBy is set and
	// the Reader loaded it (see WithRedactions).
	RedactedBecause *StoredEvent
}

// WithRedactions loads the redaction event of every redacted event, for
// unsigned.redacted_because.
func (rd *Reader) WithRedactions(ctx context.Context, v *roomversion.Version, evs ...*StoredEvent) error {
	for _, e := range evs {
		if e == nil || e.RedactedBy == "" || e.RedactedBecause != nil {
			continue
		}
		r, err := rd.Event(ctx, v, e.RedactedBy)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		e.RedactedBecause = r
	}
	return nil
}

// Event returns one event of the room.
func (rd *Reader) Event(ctx context.Context, v *roomversion.Version, eventID string) (*StoredEvent, error) {
	rows, err := rd.db.Query(ctx, `SELECT event_id, pdu, room_seq, redacted_by FROM events WHERE event_id = $1 AND NOT rejected AND NOT soft_failed`, eventID)
	if err != nil {
		return nil, err
	}
	evs, err := rd.scanWithRedactions(ctx, rows, v)
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		return nil, ErrNotFound
	}
	return evs[0], nil
}

// Events returns the room's events with room_seq in [from, to], in room
// order, at most limit of them, from the oldest (or from the newest when
// backwards).
func (rd *Reader) Events(ctx context.Context, v *roomversion.Version, roomID string, from, to int64, limit int, backwards bool) ([]*StoredEvent, error) {
	order := "ASC"
	if backwards {
		order = "DESC"
	}
	rows, err := rd.db.Query(ctx, `SELECT event_id, pdu, room_seq, redacted_by FROM events
		WHERE room_id = $1 AND room_seq >= $2 AND room_seq <= $3 AND NOT rejected AND NOT soft_failed AND NOT outlier
		ORDER BY room_seq `+order+` LIMIT $4`, roomID, from, to, limit)
	if err != nil {
		return nil, err
	}
	return rd.scanWithRedactions(ctx, rows, v)
}

func (rd *Reader) scanWithRedactions(ctx context.Context, rows *store.Rows, v *roomversion.Version) ([]*StoredEvent, error) {
	evs, err := rd.scanEvents(rows, v)
	if err != nil {
		return nil, err
	}
	return evs, rd.WithRedactions(ctx, v, evs...)
}

// scanEvents reads rows of (event_id, pdu, room_seq, redacted_by), taking
// parsed events from the cache when it has them.
func (rd *Reader) scanEvents(rows *store.Rows, v *roomversion.Version) ([]*StoredEvent, error) {
	defer rows.Close()
	var out []*StoredEvent
	for rows.Next() {
		var id string
		var pdu []byte
		var redactedBy sql.NullString
		var seq int64
		if err := rows.Scan(&id, &pdu, &seq, &redactedBy); err != nil {
			return nil, err
		}
		key := EventKey{ID: id, RedactedBy: redactedBy.String}
		e, ok := rd.events.get(key)
		if !ok || e.ev.Version() != v || e.seq != seq {
			ev, err := event.Parse(v, pdu)
			if err != nil {
				return nil, fmt.Errorf("roomserver: stored event %s does not parse: %w", id, err)
			}
			if ev.ID() != id {
				return nil, fmt.Errorf("roomserver: stored event %s parses as %s", id, ev.ID())
			}
			e = cachedEvent{ev: ev, seq: seq}
			rd.events.put(key, e)
		}
		out = append(out, &StoredEvent{Event: e.ev, RoomSeq: seq, RedactedBy: redactedBy.String})
	}
	return out, rows.Err()
}

// StateAt returns the room's state after the event at room_seq seq (the
// current state for seq ≥ head). types, if not empty, restricts it to
// those event types.
func (rd *Reader) StateAt(ctx context.Context, v *roomversion.Version, roomID string, seq int64, types ...string) ([]*StoredEvent, error) {
	q := `SELECT s.event_id, s.redacted_by FROM state_history s
		WHERE s.room_id = $1 AND s.from_seq <= $2 AND (s.to_seq IS NULL OR s.to_seq > $2)`
	args := []any{roomID, seq}
	if len(types) > 0 {
		ph := make([]string, len(types))
		for i, t := range types {
			args = append(args, t)
			ph[i] = fmt.Sprintf("$%d", len(args))
		}
		q += ` AND s.type IN (` + strings.Join(ph, ",") + `)`
	}
	rows, err := rd.db.Query(ctx, q+` ORDER BY s.type, s.state_key`, args...)
	if err != nil {
		return nil, err
	}
	return rd.eventsByKeyRows(ctx, rows, v)
}

// StateQuery asks for the state of a room after room_seq Seq.
type StateQuery struct {
	RoomID  string
	Version *roomversion.Version
	Seq     int64
}

// statesPerQuery bounds the rooms of one StatesAt query.
const statesPerQuery = 32

// StatesAt is StateAt for many rooms, by room ID, in one query per
// statesPerQuery rooms of the same version (a sync of many rooms
// otherwise pays a round trip per room).
func (rd *Reader) StatesAt(ctx context.Context, qs []StateQuery) (map[string][]*StoredEvent, error) {
	out := make(map[string][]*StoredEvent, len(qs))
	byVersion := map[*roomversion.Version][]StateQuery{}
	for _, q := range qs {
		byVersion[q.Version] = append(byVersion[q.Version], q)
		out[q.RoomID] = nil
	}
	// collect reads the state events a query selects (event_id,
	// redacted_by) into out.
	collect := func(v *roomversion.Version, query string, args ...any) error {
		rows, err := rd.db.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		evs, err := rd.eventsByKeyRows(ctx, rows, v)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			out[ev.RoomID()] = append(out[ev.RoomID()], ev)
		}
		return nil
	}
	for v, qs := range byVersion {
		if rd.db.Kind() != store.KindSQLite {
			// One statement for any number of rooms (see store.DB.AnyOf):
			// a lateral scan of each room's state rows (OFFSET 0 keeps
			// the planner from turning it into a join over the table).
			rooms := make([]string, len(qs))
			seqs := make([]int64, len(qs))
			for i, q := range qs {
				rooms[i], seqs[i] = q.RoomID, q.Seq
			}
			err := collect(v, `SELECT st.event_id, st.redacted_by
				FROM unnest($1::text[], $2::bigint[]) AS q(room_id, seq)
				CROSS JOIN LATERAL (SELECT s.event_id, s.redacted_by, s.room_id, s.type, s.state_key FROM state_history s
					WHERE s.room_id = q.room_id AND s.from_seq <= q.seq AND (s.to_seq IS NULL OR s.to_seq > q.seq) OFFSET 0) st
				ORDER BY st.room_id, st.type, st.state_key`, rooms, seqs)
			if err != nil {
				return nil, err
			}
			continue
		}
		for len(qs) > 0 {
			chunk := qs[:min(len(qs), statesPerQuery)]
			qs = qs[len(chunk):]
			var args []any
			parts := make([]string, len(chunk))
			for i, q := range chunk {
				args = append(args, q.RoomID, q.Seq)
				parts[i] = fmt.Sprintf(`SELECT s.event_id, s.redacted_by, s.room_id, s.type, s.state_key
					FROM state_history s
					WHERE s.room_id = $%d AND s.from_seq <= $%d AND (s.to_seq IS NULL OR s.to_seq > $%d)`,
					len(args)-1, len(args), len(args))
			}
			err := collect(v, `SELECT event_id, redacted_by FROM (`+
				strings.Join(parts, " UNION ALL ")+`) st ORDER BY room_id, type, state_key`, args...)
			if err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// StateEvent returns one piece of the room's state after room_seq seq.
func (rd *Reader) StateEvent(ctx context.Context, v *roomversion.Version, roomID string, seq int64, eventType, stateKey string) (*StoredEvent, error) {
	rows, err := rd.db.Query(ctx, `SELECT s.event_id, s.redacted_by FROM state_history s
		WHERE s.room_id = $1 AND s.type = $2 AND s.state_key = $3 AND s.from_seq <= $4 AND (s.to_seq IS NULL OR s.to_seq > $4)`,
		roomID, eventType, stateKey, seq)
	if err != nil {
		return nil, err
	}
	evs, err := rd.eventsByKeyRows(ctx, rows, v)
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		return nil, ErrNotFound
	}
	return evs[0], nil
}

// StateChangedBetween returns the state after room_seq to restricted to
// the (type, state_key) pairs that changed in (from, to].
func (rd *Reader) StateChangedBetween(ctx context.Context, v *roomversion.Version, roomID string, from, to int64) ([]*StoredEvent, error) {
	rows, err := rd.db.Query(ctx, `SELECT s.event_id, s.redacted_by FROM state_history s
		WHERE s.room_id = $1 AND s.from_seq <= $3 AND (s.to_seq IS NULL OR s.to_seq > $3)
		AND EXISTS (SELECT 1 FROM state_history c WHERE c.room_id = s.room_id AND c.type = s.type
			AND c.state_key = s.state_key AND c.from_seq > $2 AND c.from_seq <= $3)
		ORDER BY s.type, s.state_key`, roomID, from, to)
	if err != nil {
		return nil, err
	}
	return rd.eventsByKeyRows(ctx, rows, v)
}

// Membership is a user's current membership of a room.
type Membership struct {
	RoomID     string
	UserID     string
	Membership string
	EventID    string
	RoomSeq    int64
}

// MembershipOf returns the user's current membership of the room ("" when
// there is none).
func (rd *Reader) MembershipOf(ctx context.Context, roomID, userID string) (Membership, error) {
	m := Membership{RoomID: roomID, UserID: userID}
	err := rd.db.QueryRow(ctx, `SELECT membership, event_id, room_seq FROM memberships WHERE user_id = $1 AND room_id = $2`,
		userID, roomID).Scan(&m.Membership, &m.EventID, &m.RoomSeq)
	if errors.Is(err, sql.ErrNoRows) {
		return m, nil
	}
	return m, err
}

// RoomsOf lists the user's current memberships with the given membership
// ("join", "invite", …).
func (rd *Reader) RoomsOf(ctx context.Context, userID, membership string) ([]string, error) {
	rows, err := rd.db.Query(ctx, `SELECT room_id FROM memberships WHERE user_id = $1 AND membership = $2 ORDER BY room_id`, userID, membership)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Members lists the room's current memberships, optionally only those
// with the given membership.
func (rd *Reader) Members(ctx context.Context, roomID, membership string) ([]Membership, error) {
	q := `SELECT user_id, membership, event_id, room_seq FROM memberships WHERE room_id = $1`
	args := []any{roomID}
	if membership != "" {
		q += ` AND membership = $2`
		args = append(args, membership)
	}
	rows, err := rd.db.Query(ctx, q+` ORDER BY user_id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Membership
	for rows.Next() {
		m := Membership{RoomID: roomID}
		if err := rows.Scan(&m.UserID, &m.Membership, &m.EventID, &m.RoomSeq); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// JoinedMembersOf lists the users joined to any of the rooms, each once.
func (rd *Reader) JoinedMembersOf(ctx context.Context, roomIDs []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for len(roomIDs) > 0 {
		chunk := roomIDs[:min(len(roomIDs), 500)]
		roomIDs = roomIDs[len(chunk):]
		rows, err := rd.db.Query(ctx, `SELECT DISTINCT user_id FROM memberships WHERE membership = 'join' AND room_id IN (`+
			store.Placeholders(1, len(chunk))+`)`, anys(chunk)...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var u string
			if err := rows.Scan(&u); err != nil {
				rows.Close()
				return nil, err
			}
			if !seen[u] {
				seen[u] = true
				out = append(out, u)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// MemberSummary counts the room's current joined and invited members and
// lists up to maxHeroes of them other than exclude (by user ID), for the
// room summary of /sync.
func (rd *Reader) MemberSummary(ctx context.Context, roomID, exclude string, maxHeroes int) (joined, invited int, heroes []string, err error) {
	rows, err := rd.db.Query(ctx, `SELECT membership, COUNT(*) FROM memberships
		WHERE room_id = $1 AND membership IN ('join', 'invite') GROUP BY membership`, roomID)
	if err != nil {
		return 0, 0, nil, err
	}
	for rows.Next() {
		var m string
		var n int
		if err := rows.Scan(&m, &n); err != nil {
			rows.Close()
			return 0, 0, nil, err
		}
		if m == "join" {
			joined = n
		} else {
			invited = n
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, nil, err
	}
	rows, err = rd.db.Query(ctx, `SELECT user_id FROM memberships
		WHERE room_id = $1 AND membership IN ('join', 'invite') AND user_id <> $2 ORDER BY user_id LIMIT $3`, roomID, exclude, maxHeroes)
	if err != nil {
		return 0, 0, nil, err
	}
	defer rows.Close()
	heroes = []string{}
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return 0, 0, nil, err
		}
		heroes = append(heroes, u)
	}
	return joined, invited, heroes, rows.Err()
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// RoomForAlias returns the room an alias of this server maps to, or ""
// when none does.
func (rd *Reader) RoomForAlias(ctx context.Context, alias string) (string, error) {
	var roomID string
	err := rd.db.QueryRow(ctx, `SELECT room_id FROM room_aliases WHERE alias = $1`, alias).Scan(&roomID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return roomID, err
}

// ResidentServers lists the servers with a joined member in the room,
// sorted.
func (rd *Reader) ResidentServers(ctx context.Context, roomID string) ([]string, error) {
	ms, err := rd.Members(ctx, roomID, "join")
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, m := range ms {
		_, server, ok := strings.Cut(m.UserID, ":")
		if ok && !seen[server] {
			seen[server] = true
			out = append(out, server)
		}
	}
	slices.Sort(out)
	return out, nil
}
