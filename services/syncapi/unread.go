package syncapi

import (
	"context"
	"regexp"
	"slices"
	"strings"

	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/services/roomserver"
)

// Unread and highlight counts (spec "Receipts" and the default push
// rules). An event counts as a notification when it is a message (or an
// encrypted message or sticker) from someone else after the user's latest
// read receipt (public or private) in the room, or after their join when
// they have none. It is a highlight when it mentions the user: listed in
// content.m.mentions.user_ids, or, for events without m.mentions (older
// clients), when its body contains the user's localpart or displayname as
// a word — the default rules .m.rule.is_user_mention,
// .m.rule.contains_user_name and .m.rule.contains_display_name. User push
// rules are not evaluated yet (they come with the push area).
//
// Counting stops at maxUnreadCounted events: clients show "999+" anyway,
// and a room with a million unread messages must not cost a million rows
// per sync.
const maxUnreadCounted = 1000

func (s *syncRequest) unread(ctx context.Context, info roomserver.RoomInfo, to int64) (unreadCounts, error) {
	a := s.api
	rows, err := a.db.Query(ctx, `SELECT se.event_id FROM sync_events se
		WHERE se.room_id = $1 AND se.pos <= $3 AND se.sender <> $2
		AND se.type IN ('m.room.message', 'm.room.encrypted', 'm.sticker')
		AND se.pos > COALESCE(
			(SELECT MAX(x.pos) FROM userdata_receipts r JOIN sync_events x ON x.event_id = r.event_id
				WHERE r.room_id = $1 AND r.user_id = $2 AND r.receipt_type IN ('m.read', 'm.read.private')),
			(SELECT MAX(m.pos) FROM sync_memberships m WHERE m.user_id = $2 AND m.room_id = $1 AND m.membership = 'join'),
			0)
		ORDER BY se.pos DESC LIMIT $4`, info.ID, s.userID, to, maxUnreadCounted)
	if err != nil {
		return unreadCounts{}, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return unreadCounts{}, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return unreadCounts{}, err
	}
	counts := unreadCounts{NotificationCount: len(ids)}
	if len(ids) == 0 {
		return counts, nil
	}
	evs, err := a.rooms.EventsByID(ctx, info.Version, ids)
	if err != nil {
		return counts, err
	}
	names, err := s.mentionNames(ctx, info)
	if err != nil {
		return counts, err
	}
	for _, ev := range evs {
		if mentions(ev.Content(), s.userID, names) {
			counts.HighlightCount++
		}
	}
	return counts, nil
}

// mentionNames are the words that mention the user in a plain body: their
// localpart and their displayname in the room.
func (s *syncRequest) mentionNames(ctx context.Context, info roomserver.RoomInfo) ([]*regexp.Regexp, error) {
	local := strings.TrimPrefix(s.userID, "@")
	if i := strings.IndexByte(local, ':'); i >= 0 {
		local = local[:i]
	}
	words := []string{local}
	m, err := s.api.rooms.MembershipOf(ctx, info.ID, s.userID)
	if err != nil {
		return nil, err
	}
	if m.EventID != "" {
		if ev, err := s.api.rooms.Event(ctx, info.Version, m.EventID); err == nil {
			if name := ev.Content().Get("displayname").StrOr(""); name != "" && !slices.Contains(words, name) {
				words = append(words, name)
			}
		}
	}
	var out []*regexp.Regexp
	for _, w := range words {
		re, err := regexp.Compile(`(?i)(^|\W)` + regexp.QuoteMeta(w) + `(\W|$)`)
		if err == nil {
			out = append(out, re)
		}
	}
	return out, nil
}

func mentions(content cjson.Value, userID string, names []*regexp.Regexp) bool {
	if m := content.Get("m.mentions"); m.Exists() {
		ids, _ := m.Get("user_ids").Strings()
		return slices.Contains(ids, userID)
	}
	body := content.Get("body").StrOr("")
	for _, re := range names {
		if re.MatchString(body) {
			return true
		}
	}
	return false
}
