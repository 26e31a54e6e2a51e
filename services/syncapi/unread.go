package syncapi

import (
	"context"
	"strings"
	"sync"

	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/services/roomserver"
)

// Unread and highlight counts (spec "Receipts" and the default push
// rules). An event counts as a notification when it is a message (or an
// encrypted message or sticker) from someone else after the user's latest
// read receipt (public or private) in the room, or after their join when
// they have none. It is a highlight when content.m.mentions.user_ids names
// the user (the indexer records these): the default rule
// .m.rule.is_user_mention. Since v1.17 the spec has no body-matching
// default rules. Room mentions and users' own push rules are not evaluated
// yet (services/pushrules stores the rules; evaluating them comes with
// push).
//
// Counting stops at maxUnreadCounted: clients show "999+" anyway, and a
// room with a million unread messages must not cost a million rows per
// sync.
const maxUnreadCounted = 1000

func (s *syncRequest) unread(ctx context.Context, info roomserver.RoomInfo, to int64, w *unreadWindow) (unreadCounts, error) {
	a := s.api
	from, ok := s.readPos[info.ID]
	if !ok {
		pos, err := readPositions(ctx, a.db, s.userID, []string{info.ID})
		if err != nil {
			return unreadCounts{}, err
		}
		from = pos[info.ID]
	}
	// Counts grow by the events since the last computation as long as the
	// read position stays: only the new range is counted.
	key := unreadKey{user: s.userID, room: info.ID}
	base, lo := unreadCounts{}, from
	if c, ok := a.unreadCache.get(key); ok && c.from == from && c.to <= to {
		base, lo = c.counts, c.to
	}
	delta := unreadCounts{}
	if w != nil && w.from == lo && w.to == to {
		// The timeline read exactly the new range already.
		delta = w.counts
	} else {
		var err error
		if delta, err = s.countUnread(ctx, info, lo, to); err != nil {
			return unreadCounts{}, err
		}
	}
	counts := unreadCounts{
		NotificationCount: min(base.NotificationCount+delta.NotificationCount, maxUnreadCounted),
		HighlightCount:    min(base.HighlightCount+delta.HighlightCount, maxUnreadCounted),
	}
	a.unreadCache.put(key, unreadEntry{from: from, to: to, counts: counts})
	return counts, nil
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
		if !r.notifies || r.sender == s.userID {
			continue
		}
		c.NotificationCount++
		if strings.Contains(r.mentions, mention) {
			c.HighlightCount++
		}
	}
	return c
}

// countUnread counts notifications and highlights in (lo, hi].
func (s *syncRequest) countUnread(ctx context.Context, info roomserver.RoomInfo, lo, hi int64) (unreadCounts, error) {
	var counts unreadCounts
	if hi <= lo {
		return counts, nil
	}
	err := s.api.db.QueryRow(ctx, `SELECT COUNT(*), COUNT(CASE WHEN mentions LIKE $5 ESCAPE '\' THEN 1 END)
		FROM (SELECT mentions FROM sync_events
			WHERE room_id = $1 AND pos > $2 AND pos <= $3 AND sender <> $4 AND notifies
			ORDER BY room_id, pos LIMIT $6) n`,
		info.ID, lo, hi, s.userID, "% "+likeEscape(s.userID)+" %", maxUnreadCounted).
		Scan(&counts.NotificationCount, &counts.HighlightCount)
	return counts, err
}

// readPositions returns, for each room, the position from which the
// user's unread messages count: their latest read receipt (public or
// private), else their latest join, else 0. Two queries for all rooms.
func readPositions(ctx context.Context, db *store.DB, userID string, roomIDs []string) (map[string]int64, error) {
	receipts := map[string]int64{}
	joins := map[string]int64{}
	for len(roomIDs) > 0 {
		chunk := roomIDs[:min(len(roomIDs), 500)]
		roomIDs = roomIDs[len(chunk):]
		args := []any{userID}
		for _, id := range chunk {
			args = append(args, id)
		}
		for _, id := range chunk {
			joins[id] = 0
		}
		in := store.Placeholders(2, len(chunk))
		if err := scanMaxPos(ctx, db, receipts, `SELECT r.room_id, MAX(x.pos) FROM userdata_receipts r
			JOIN sync_events x ON x.event_id = r.event_id
			WHERE r.user_id = $1 AND r.receipt_type IN ('m.read', 'm.read.private') AND r.room_id IN (`+in+`)
			GROUP BY r.room_id`, args); err != nil {
			return nil, err
		}
		if err := scanMaxPos(ctx, db, joins, `SELECT room_id, MAX(pos) FROM sync_memberships
			WHERE user_id = $1 AND membership = 'join' AND room_id IN (`+in+`) GROUP BY room_id`, args); err != nil {
			return nil, err
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
