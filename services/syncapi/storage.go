package syncapi

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/axon-hs/axon/internal/store"
)

// currentPos returns the highest indexed ROOM_EVENTS position.
func currentPos(ctx context.Context, db *store.DB) (int64, error) {
	var pos int64
	err := db.QueryRow(ctx, `SELECT pos FROM sync_positions WHERE stream = 'events'`).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return pos, err
}

// memberState is a user's membership of one room at a position.
type memberState struct {
	roomID     string
	membership string
	pos        int64 // position of the membership event
}

// membershipsAt returns the user's latest membership per room at pos and
// at since (<= pos), with one query.
func membershipsAt(ctx context.Context, db *store.DB, userID string, pos, since int64) (now, before map[string]memberState, err error) {
	rows, err := db.Query(ctx, `SELECT room_id, membership, pos FROM sync_memberships
		WHERE user_id = $1 AND pos <= $2 ORDER BY pos`, userID, pos)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	now, before = make(map[string]memberState), make(map[string]memberState)
	for rows.Next() {
		var m memberState
		if err := rows.Scan(&m.roomID, &m.membership, &m.pos); err != nil {
			return nil, nil, err
		}
		now[m.roomID] = m
		if m.pos <= since {
			before[m.roomID] = m
		}
	}
	return now, before, rows.Err()
}

// indexed is one sync_events row.
type indexed struct {
	pos      int64
	eventID  string
	roomSeq  int64
	deviceID string
	txnID    string
	sender   string
	notifies bool
	mentions string
	// redactedBy is the redaction applied to the event as of the
	// indexed position (see migration 0301).
	redactedBy string
	// pushPlain and pushMention are the default push rules' decisions
	// (migration 0302).
	pushPlain, pushMention int64
}

// roomRange is one room's range of positions, from < pos <= to.
type roomRange struct {
	roomID   string
	from, to int64
}

// indexedColumns are the sync_events columns roomEventsMany reads.
const indexedColumns = "room_id, pos, event_id, room_seq, device_id, txn_id, sender, notifies, mentions, redacted_by, push_plain, push_mention"

// roomsPerQuery bounds the rooms of one roomEventsMany query.
const roomsPerQuery = 32

// roomPosRange is the condition "from < pos <= to in the room", given the
// numbers of the three placeholders, for a scan that orders by (room_id,
// pos) and stops at a LIMIT. Positions start at 1, so from = 0 means all.
//
// Written as room_id = $n AND pos > … on PostgreSQL, the planner knows
// room_id is fixed, sees that ordering by pos alone will do, and picks a
// backward scan of every room's events by position, filtering out the
// others: after a few thousand events in other rooms that took 2–5 ms per
// room instead of 0.1 ms (EXPLAIN ANALYZE on the (e) benchmark's
// database). As row values over (room_id, pos) only the sync_events_room
// index serves both the range and the order. SQLite, whose planner does
// the right thing with the plain form, bounds a row-value range by
// room_id only, and then scans the room's older events and other rooms
// when the range holds fewer rows than the LIMIT: it keeps the plain form.
func roomPosRange(db *store.DB, room, from, to int) string {
	if db.Kind() == store.KindSQLite {
		return fmt.Sprintf("room_id = $%d AND pos > $%d AND pos <= $%d", room, from, to)
	}
	return fmt.Sprintf("(room_id, pos) > ($%[1]d, $%[2]d) AND (room_id, pos) <= ($%[1]d, $%[3]d)", room, from, to)
}

// rangeArrays splits ranges into the arrays of a lateral query.
func rangeArrays(ranges []roomRange) (rooms []string, froms, tos []int64) {
	rooms = make([]string, len(ranges))
	froms = make([]int64, len(ranges))
	tos = make([]int64, len(ranges))
	for i, r := range ranges {
		rooms[i], froms[i], tos[i] = r.roomID, r.from, r.to
	}
	return rooms, froms, tos
}

// prefixed qualifies each of a comma-separated list of columns.
func prefixed(prefix, columns string) string {
	return prefix + strings.ReplaceAll(columns, ", ", ", "+prefix)
}

// roomEventsMany returns, by room, the indexed events of each range,
// newest first, at most limit per room: on PostgreSQL with one lateral
// query, on SQLite with one query per roomsPerQuery rooms (a UNION ALL of
// the per-room index scans).
func roomEventsMany(ctx context.Context, db *store.DB, ranges []roomRange, limit int) (map[string][]indexed, error) {
	out := make(map[string][]indexed, len(ranges))
	if db.Kind() != store.KindSQLite {
		// One statement for any number of rooms (see store.DB.AnyOf): a
		// lateral index scan per element of the arrays.
		rooms, froms, tos := rangeArrays(ranges)
		rows, err := db.Query(ctx, `SELECT `+prefixed("r.", indexedColumns)+`
			FROM unnest($2::text[], $3::bigint[], $4::bigint[]) AS q(room_id, lo, hi)
			CROSS JOIN LATERAL (SELECT `+indexedColumns+` FROM sync_events
				WHERE (room_id, pos) > (q.room_id, q.lo) AND (room_id, pos) <= (q.room_id, q.hi)
				ORDER BY room_id DESC, pos DESC LIMIT $1) r`, limit, rooms, froms, tos)
		if err != nil {
			return nil, err
		}
		if out, _, err = scanIndexed(rows); err != nil {
			return nil, err
		}
		ranges = nil
	}
	for len(ranges) > 0 {
		chunk := ranges[:min(len(ranges), roomsPerQuery)]
		ranges = ranges[len(chunk):]
		args := []any{limit}
		parts := make([]string, len(chunk))
		for i, r := range chunk {
			n := len(args)
			args = append(args, r.roomID, r.from, r.to)
			parts[i] = fmt.Sprintf(`SELECT %[3]s FROM (SELECT %[3]s FROM sync_events
				WHERE %[2]s ORDER BY room_id DESC, pos DESC LIMIT $1) AS r%[1]d`,
				i, roomPosRange(db, n+1, n+2, n+3), indexedColumns)
		}
		rows, err := db.Query(ctx, strings.Join(parts, " UNION ALL "), args...)
		if err != nil {
			return nil, err
		}
		byRoom, _, err := scanIndexed(rows)
		if err != nil {
			return nil, err
		}
		maps.Copy(out, byRoom)
	}
	for _, rows := range out {
		// A UNION ALL promises no order.
		slices.SortFunc(rows, func(a, b indexed) int { return cmp.Compare(b.pos, a.pos) })
	}
	return out, nil
}

// recentEvents returns, by room, the indexed events of the rooms with
// from < pos <= to, newest first, with one query, when there are at most
// max of them; complete is false (and the map nil) when there are more.
// An incremental sync thus finds which rooms have news and their
// timelines at once, in the usual case of a few new events.
func recentEvents(ctx context.Context, db *store.DB, roomIDs []string, from, to int64, max int) (byRoom map[string][]indexed, complete bool, err error) {
	if len(roomIDs) > recentEventsRooms {
		return nil, false, nil
	}
	in, inArgs := db.AnyOf(4, roomIDs)
	rows, err := db.Query(ctx, `SELECT `+indexedColumns+` FROM sync_events WHERE pos > $1 AND pos <= $2 AND room_id `+
		in+` ORDER BY pos DESC LIMIT $3`, append([]any{from, to, max + 1}, inArgs...)...)
	if err != nil {
		return nil, false, err
	}
	byRoom, n, err := scanIndexed(rows)
	if err != nil || n > max {
		return nil, false, err
	}
	return byRoom, true, nil
}

// recentEventsRooms bounds the rooms of one recentEvents query; a user in
// more rooms takes the roomsWithNews path.
const recentEventsRooms = 500

// scanIndexed reads and closes rows of indexedColumns, grouping them by
// room in the order they come; n counts them.
func scanIndexed(rows *store.Rows) (byRoom map[string][]indexed, n int, err error) {
	defer rows.Close()
	byRoom = make(map[string][]indexed)
	for rows.Next() {
		var room string
		var ix indexed
		var dev, txn, mentions, redactedBy sql.NullString
		if err := rows.Scan(&room, &ix.pos, &ix.eventID, &ix.roomSeq, &dev, &txn, &ix.sender, &ix.notifies, &mentions, &redactedBy,
			&ix.pushPlain, &ix.pushMention); err != nil {
			return nil, 0, err
		}
		ix.deviceID, ix.txnID, ix.mentions, ix.redactedBy = dev.String, txn.String, mentions.String, redactedBy.String
		byRoom[room] = append(byRoom[room], ix)
		n++
	}
	return byRoom, n, rows.Err()
}

// roomsWithNews returns which of the rooms have indexed events with
// from < pos <= to, in one query (an incremental sync then reads the
// timelines of those rooms only).
func roomsWithNews(ctx context.Context, db *store.DB, roomIDs []string, from, to int64) (map[string]bool, error) {
	out := map[string]bool{}
	for len(roomIDs) > 0 {
		chunk := roomIDs[:min(len(roomIDs), 500)]
		roomIDs = roomIDs[len(chunk):]
		in, inArgs := db.AnyOf(3, chunk)
		rows, err := db.Query(ctx, `SELECT DISTINCT room_id FROM sync_events WHERE pos > $1 AND pos <= $2 AND room_id `+in,
			append([]any{from, to}, inArgs...)...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			out[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// roomSeqAt returns the room_seq of the room's last indexed event at or
// before pos (0 when none).
func roomSeqAt(ctx context.Context, db *store.DB, roomID string, pos int64) (int64, error) {
	var seq int64
	err := db.QueryRow(ctx, `SELECT room_seq FROM sync_events WHERE `+roomPosRange(db, 1, 3, 2)+` ORDER BY room_id DESC, pos DESC LIMIT 1`,
		roomID, pos, int64(0)).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return seq, err
}

// RoomSeqAt is roomSeqAt for other roles: it turns a sync token position
// into a room-local one (for /messages called with a sync token).
func RoomSeqAt(ctx context.Context, db *store.DB, roomID string, pos int64) (int64, error) {
	return roomSeqAt(ctx, db, roomID, pos)
}

// isForgotten reports whether the user forgot the room (POST /forget; the
// client API's forgotten_rooms table): forgotten rooms never appear in
// /sync.
func isForgotten(ctx context.Context, db *store.DB, userID, roomID string) (bool, error) {
	var n int
	err := db.QueryRow(ctx, `SELECT COUNT(*) FROM forgotten_rooms WHERE user_id = $1 AND room_id = $2`, userID, roomID).Scan(&n)
	return n > 0, err
}
