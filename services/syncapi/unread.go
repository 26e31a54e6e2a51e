package syncapi

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"

	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/auth"
	"github.com/axon-hs/axon/services/pushrules"
	"github.com/axon-hs/axon/services/roomserver"
)

// Unread and highlight counts (spec "Receipts", "Push Rules"). An event
// counts when the user's push rules say notify (notification_count) or
// highlight (highlight_count), it was sent by someone else after the
// user's latest read receipt (public or private) in the room, or after
// their join when they have none, and it is not redacted.
//
// Two ways to decide, per user and room:
//
//   - The index holds what the server-default rules decide for each event,
//     for a user it does not mention and for one it mentions (migration
//     0302, computed by the indexer). When no rule the user added or
//     changed can match events of the room (pushrules.Rules.DefaultFor:
//     the common case, also for users who muted other rooms), those
//     decisions are the user's, and the counts are one query over the
//     index (or none, when the timeline just read the range).
//   - Otherwise the range's events are read (from the Reader's cache
//     mostly) and the user's rules evaluated on each, with the room's
//     current power levels, member count and the user's display name
//     (not those at each event: a close approximation that saves a
//     state query per event).
//
// Rules apply to the events counted after they change (within the
// rules cache's few seconds); counts already computed are not redone.
//
// Counting stops at maxUnreadCounted: clients show "999+" anyway, and a
// room with a million unread messages must not cost a million rows per
// sync.
const maxUnreadCounted = 1000

func (s *syncRequest) unread(ctx context.Context, info roomserver.RoomInfo, to int64, w *unreadWindow) (unreadCounts, error) {
	m, err := s.unreadMany(ctx, []unreadReq{{roomID: info.ID, to: to, w: w}})
	return m[info.ID], err
}

// unreadReq asks for a room's counts at position to; w, if not nil, is
// what the timeline just read adds.
type unreadReq struct {
	roomID string
	to     int64
	w      *unreadWindow
}

// unreadMany computes the counts of many rooms. Counts grow by the events
// since the last computation as long as the read position stays, so only
// the new range is counted: from the timeline's rows when they are that
// range, else by one query for all the rooms that need one.
func (s *syncRequest) unreadMany(ctx context.Context, reqs []unreadReq) (map[string]unreadCounts, error) {
	a := s.api
	pos := s.readPos
	var missing []string
	for _, r := range reqs {
		if _, ok := pos[r.roomID]; !ok {
			missing = append(missing, r.roomID)
		}
	}
	if len(missing) > 0 {
		got, err := readPositions(ctx, a.db, s.userID, missing, s.members)
		if err != nil {
			return nil, err
		}
		maps.Copy(got, pos) // s.readPos is shared: build a new map
		pos = got
	}
	type plan struct {
		from, lo    int64
		base, delta unreadCounts
	}
	plans := make([]plan, len(reqs))
	var ranges []roomRange
	var counted []int
	for i, r := range reqs {
		p := plan{from: pos[r.roomID]}
		p.lo = p.from
		if c, ok := a.unreadCache.get(unreadKey{user: s.userID, room: r.roomID}); ok && c.from == p.from && c.to <= r.to {
			p.base, p.lo = c.counts, c.to
		}
		switch {
		case r.w != nil && r.w.from == p.lo && r.w.to == r.to:
			// The timeline read exactly the new range already.
			p.delta = r.w.counts
		case r.to > p.lo:
			ranges = append(ranges, roomRange{roomID: r.roomID, from: p.lo, to: r.to})
			counted = append(counted, i)
		}
		plans[i] = p
	}
	var fast []roomRange
	var fastAt, slow []int
	for k, rr := range ranges {
		if s.rules.DefaultFor(rr.roomID) {
			fast, fastAt = append(fast, rr), append(fastAt, counted[k])
		} else {
			slow = append(slow, k)
		}
	}
	// Rooms whose events must be evaluated take a few queries each: a
	// few rooms at a time, as the rooms' other parts are computed.
	errs := make([]error, len(slow))
	sem := make(chan struct{}, syncParallelism)
	var wg sync.WaitGroup
	for j, k := range slow {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			plans[counted[k]].delta, errs[j] = s.countEvaluated(ctx, ranges[k])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(fast) > 0 {
		deltas, err := countUnreadMany(ctx, a.db, s.userID, fast)
		if err != nil {
			return nil, err
		}
		for k, i := range fastAt {
			plans[i].delta = deltas[k]
		}
	}
	out := make(map[string]unreadCounts, len(reqs))
	for i, r := range reqs {
		p := plans[i]
		counts := unreadCounts{
			NotificationCount: min(p.base.NotificationCount+p.delta.NotificationCount, maxUnreadCounted),
			HighlightCount:    min(p.base.HighlightCount+p.delta.HighlightCount, maxUnreadCounted),
		}
		a.unreadCache.put(unreadKey{user: s.userID, room: r.roomID}, unreadEntry{from: p.from, to: r.to, counts: counts})
		out[r.roomID] = counts
	}
	return out, nil
}

// unreadWindow is what the events with from < pos <= to add to the counts.
type unreadWindow struct {
	from, to int64
	counts   unreadCounts
}

// countRows counts notifications and highlights among indexed rows, the
// way countUnread does in SQL.
func (s *syncRequest) countRows(rows []indexed) unreadCounts {
	var c unreadCounts
	mention := " " + s.userID + " "
	for _, r := range rows {
		if r.sender == s.userID || r.redactedBy != "" {
			continue
		}
		bits := r.pushPlain
		if r.mentions != "" && strings.Contains(r.mentions, mention) {
			bits = r.pushMention
		}
		if bits&pushNotify != 0 {
			c.NotificationCount++
		}
		if bits&pushHighlight != 0 {
			c.HighlightCount++
		}
	}
	return c
}

// countEvaluated counts a range by evaluating the user's push rules on its
// events (at most maxUnreadCounted of them).
func (s *syncRequest) countEvaluated(ctx context.Context, rr roomRange) (unreadCounts, error) {
	var c unreadCounts
	a := s.api
	rows, err := a.db.Query(ctx, `SELECT event_id, redacted_by FROM sync_events
		WHERE `+roomPosRange(a.db, 1, 2, 3)+` AND sender <> $4 AND redacted_by IS NULL
		ORDER BY room_id, pos LIMIT $5`, rr.roomID, rr.from, rr.to, s.userID, maxUnreadCounted)
	if err != nil {
		return c, err
	}
	var keys []roomserver.EventKey
	for rows.Next() {
		var k roomserver.EventKey
		if err := rows.Scan(&k.ID, new(sql.NullString)); err != nil {
			rows.Close()
			return c, err
		}
		keys = append(keys, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(keys) == 0 {
		return c, err
	}
	info, err := a.rooms.Room(ctx, rr.roomID)
	if err != nil {
		return c, err
	}
	evs, err := a.rooms.EventsByKey(ctx, info.Version, keys)
	if err != nil {
		return c, err
	}
	in, levels, err := s.pushContext(ctx, info)
	if err != nil {
		return c, err
	}
	for _, k := range keys {
		ev := evs[k.ID]
		if ev == nil || ev.RedactedBy != "" {
			continue
		}
		in.Event = ev.JSON()
		in.SenderPowerLevel = 0
		if levels != nil {
			in.SenderPowerLevel = levels.User(ev.Sender())
		}
		res := s.rules.Evaluate(in)
		if res.Notify {
			c.NotificationCount++
		}
		if res.Highlight {
			c.HighlightCount++
		}
	}
	return c, nil
}

// pushContext is what evaluating push rules needs of the room, as it is
// now: its power levels, joined member count and the user's display name.
func (s *syncRequest) pushContext(ctx context.Context, info roomserver.RoomInfo) (pushrules.Input, *auth.PowerLevels, error) {
	var in pushrules.Input
	levels, content, err := powerLevelsAt(ctx, s.api.rooms, info.Version, info.ID, info.HeadSeq)
	if err != nil {
		return in, nil, err
	}
	in.PowerLevels = content
	if in.MemberCount, _, _, err = s.api.rooms.MemberSummary(ctx, info.ID, "", 0); err != nil {
		return in, nil, err
	}
	me, err := s.api.rooms.StateEvent(ctx, info.Version, info.ID, info.HeadSeq, "m.room.member", s.userID)
	switch {
	case err == nil:
		in.DisplayName = me.Content().Get("displayname").StrOr("")
	case !errors.Is(err, roomserver.ErrNotFound):
		return in, nil, err
	}
	return in, levels, nil
}

// countUnreadMany counts notifications and highlights in each range, at
// most maxUnreadCounted each, over the sync_events_room index: on
// PostgreSQL with one lateral query, on SQLite with one query per
// roomsPerQuery ranges (a UNION ALL of per-room counts). The result is in
// the order of ranges.
func countUnreadMany(ctx context.Context, db *store.DB, userID string, ranges []roomRange) ([]unreadCounts, error) {
	out := make([]unreadCounts, len(ranges))
	done := 0
	if db.Kind() != store.KindSQLite && len(ranges) > 0 {
		// One statement for any number of rooms (see store.DB.AnyOf): a
		// lateral count per element of the arrays.
		rooms, froms, tos := rangeArrays(ranges)
		rows, err := db.Query(ctx, `SELECT q.i - 1, COUNT(CASE WHEN c.p % 2 = 1 THEN 1 END), COUNT(CASE WHEN c.p >= 2 THEN 1 END)
			FROM unnest($4::text[], $5::bigint[], $6::bigint[]) WITH ORDINALITY AS q(room_id, lo, hi, i)
			CROSS JOIN LATERAL (SELECT CASE WHEN mentions LIKE $3 ESCAPE '\' THEN push_mention ELSE push_plain END AS p
				FROM sync_events
				WHERE (room_id, pos) > (q.room_id, q.lo) AND (room_id, pos) <= (q.room_id, q.hi)
					AND sender <> $1 AND redacted_by IS NULL AND (push_plain <> 0 OR push_mention <> 0)
				ORDER BY room_id, pos LIMIT $2) c
			GROUP BY q.i`, userID, maxUnreadCounted, "% "+likeEscape(userID)+" %", rooms, froms, tos)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var i int
			var c unreadCounts
			if err := rows.Scan(&i, &c.NotificationCount, &c.HighlightCount); err != nil {
				return nil, err
			}
			if i >= 0 && i < len(out) {
				out[i] = c
			}
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		done = len(ranges)
	}
	for done < len(ranges) {
		chunk := ranges[done:min(len(ranges), done+roomsPerQuery)]
		args := []any{userID, maxUnreadCounted, "% " + likeEscape(userID) + " %"}
		parts := make([]string, len(chunk))
		for i, r := range chunk {
			n := len(args)
			args = append(args, r.roomID, r.from, r.to)
			parts[i] = fmt.Sprintf(`SELECT %[1]d AS i, COUNT(CASE WHEN p %% 2 = 1 THEN 1 END) AS n, COUNT(CASE WHEN p >= 2 THEN 1 END) AS h
				FROM (SELECT CASE WHEN mentions LIKE $3 ESCAPE '\' THEN push_mention ELSE push_plain END AS p FROM sync_events
					WHERE %[2]s AND sender <> $1 AND redacted_by IS NULL AND (push_plain <> 0 OR push_mention <> 0)
					ORDER BY room_id, pos LIMIT $2) c%[1]d`, i, roomPosRange(db, n+1, n+2, n+3))
		}
		rows, err := db.Query(ctx, strings.Join(parts, " UNION ALL "), args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var i int
			var c unreadCounts
			if err := rows.Scan(&i, &c.NotificationCount, &c.HighlightCount); err != nil {
				rows.Close()
				return nil, err
			}
			if i >= 0 && i < len(chunk) {
				out[done+i] = c
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		done += len(chunk)
	}
	return out, nil
}

// readPositions returns, for each room, the position from which the
// user's unread messages count: their latest read receipt (public or
// private), else their latest join, else 0. One query for the receipts
// of all rooms, and one for the latest joins of the rooms in which
// members (the user's memberships at the sync's position, when known)
// does not show the user joined: the latest membership of a joined user
// is their latest join (a profile change is a join too).
func readPositions(ctx context.Context, db *store.DB, userID string, roomIDs []string, members map[string]memberState) (map[string]int64, error) {
	receipts := map[string]int64{}
	joins := map[string]int64{}
	for len(roomIDs) > 0 {
		chunk := roomIDs[:min(len(roomIDs), 500)]
		roomIDs = roomIDs[len(chunk):]
		var unknown []string
		for _, id := range chunk {
			if m, ok := members[id]; ok && m.membership == "join" {
				joins[id] = m.pos
			} else {
				joins[id] = 0
				unknown = append(unknown, id)
			}
		}
		in, inArgs := db.AnyOf(2, chunk)
		if err := scanMaxPos(ctx, db, receipts, `SELECT r.room_id, MAX(x.pos) FROM userdata_receipts r
			JOIN sync_events x ON x.event_id = r.event_id
			WHERE r.user_id = $1 AND r.receipt_type IN ('m.read', 'm.read.private') AND r.room_id `+in+`
			GROUP BY r.room_id`, append([]any{userID}, inArgs...)); err != nil {
			return nil, err
		}
		if len(unknown) > 0 {
			in, inArgs := db.AnyOf(2, unknown)
			if err := scanMaxPos(ctx, db, joins, `SELECT room_id, MAX(pos) FROM sync_memberships
				WHERE user_id = $1 AND membership = 'join' AND room_id `+in+` GROUP BY room_id`,
				append([]any{userID}, inArgs...)); err != nil {
				return nil, err
			}
		}
	}
	for room, pos := range receipts {
		joins[room] = pos
	}
	return joins, nil
}

func scanMaxPos(ctx context.Context, db *store.DB, into map[string]int64, q string, args []any) error {
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var room string
		var pos int64
		if err := rows.Scan(&room, &pos); err != nil {
			return err
		}
		into[room] = pos
	}
	return rows.Err()
}

type unreadKey struct{ user, room string }

type unreadEntry struct {
	from, to int64
	counts   unreadCounts
}

// unreadCache remembers the last counts per user and room, so that a
// steady stream of syncs counts only new events. Bounded: emptied when
// full. Per process; a cold entry costs one full count.
type unreadCache struct {
	mu sync.Mutex
	m  map[unreadKey]unreadEntry
}

const maxUnreadCacheEntries = 200_000

func (c *unreadCache) get(k unreadKey) (unreadEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	return e, ok
}

func (c *unreadCache) put(k unreadKey, e unreadEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxUnreadCacheEntries {
		c.m = make(map[unreadKey]unreadEntry)
	}
	c.m[k] = e
}

// likeEscape escapes LIKE's wildcards (user IDs may contain '_').
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
