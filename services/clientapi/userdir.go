package clientapi

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/matrix/cjson"
)

// User directory search (spec "User directory"): the users the searcher
// can see through rooms — those sharing a room with them, and those joined
// to rooms with a public join rule or world-readable history — matched
// case-insensitively on user ID and displayname (from their member
// events).
//
// It reads the room role's tables directly, bounded: at most
// maxDirectoryRooms rooms with a public join rule or world-readable
// history and maxDirectoryMembers member rows per search. A dedicated
// directory index replaces the scan when servers outgrow it.
const (
	maxDirectoryRooms   = 10_000
	maxDirectoryMembers = 50_000
	maxDirectoryLimit   = 100
)

func (a *API) searchUsers(w http.ResponseWriter, r *http.Request, d Device) error {
	var body struct {
		SearchTerm *string `json:"search_term"`
		Limit      *int    `json:"limit"`
	}
	if err := httpx.DecodeJSON(r, 0, &body); err != nil {
		return err
	}
	if body.SearchTerm == nil {
		return httpx.MissingParam("search_term is required")
	}
	limit := 10
	if body.Limit != nil {
		limit = min(max(*body.Limit, 0), maxDirectoryLimit)
	}
	term := strings.ToLower(strings.TrimSpace(*body.SearchTerm))
	rooms, err := a.visibleRooms(r.Context(), d.UserID)
	if err != nil {
		return err
	}
	type result struct {
		UserID      string  `json:"user_id"`
		DisplayName *string `json:"display_name,omitempty"`
		AvatarURL   *string `json:"avatar_url,omitempty"`
	}
	found := map[string]result{}
	scanned := 0
	for _, roomID := range rooms {
		if scanned >= maxDirectoryMembers {
			break
		}
		rows, err := a.db.Query(r.Context(), `SELECT m.user_id, e.pdu FROM memberships m JOIN events e ON e.event_id = m.event_id
			WHERE m.room_id = $1 AND m.membership = 'join'`, roomID)
		if err != nil {
			return err
		}
		for rows.Next() {
			scanned++
			var uid string
			var pdu []byte
			if err := rows.Scan(&uid, &pdu); err != nil {
				rows.Close()
				return err
			}
			if _, seen := found[uid]; seen {
				continue
			}
			ev, err := cjson.Parse(pdu, cjson.Lenient)
			if err != nil {
				continue
			}
			res := result{UserID: uid}
			if s, ok := ev.Path("content", "displayname").Str(); ok {
				res.DisplayName = &s
			}
			if s, ok := ev.Path("content", "avatar_url").Str(); ok {
				res.AvatarURL = &s
			}
			if strings.Contains(strings.ToLower(uid), term) ||
				(res.DisplayName != nil && strings.Contains(strings.ToLower(*res.DisplayName), term)) {
				found[uid] = res
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	ids := make([]string, 0, len(found))
	for id := range found {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := []result{}
	for _, id := range ids {
		if len(out) == limit {
			break
		}
		out = append(out, found[id])
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"results": out, "limited": len(ids) > limit || scanned >= maxDirectoryMembers})
}

// visibleRooms lists the rooms whose members the user may find: their own
// joined rooms, then rooms with a public join rule or world-readable
// history.
func (a *API) visibleRooms(ctx context.Context, userID string) ([]string, error) {
	own, err := a.rooms.RoomsOf(ctx, userID, "join")
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, r := range own {
		seen[r] = true
	}
	rows, err := a.db.Query(ctx, `SELECT s.room_id, e.pdu FROM state_history s JOIN events e ON e.event_id = s.event_id
		WHERE s.to_seq IS NULL AND s.state_key = '' AND s.type IN ('m.room.join_rules', 'm.room.history_visibility')
		LIMIT $1`, 2*maxDirectoryRooms)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	rooms := own
	for rows.Next() {
		var roomID string
		var pdu []byte
		if err := rows.Scan(&roomID, &pdu); err != nil {
			return nil, err
		}
		if seen[roomID] {
			continue
		}
		ev, err := cjson.Parse(pdu, cjson.Lenient)
		if err != nil {
			continue
		}
		c := ev.Get("content")
		if c.Get("join_rule").StrOr("") == "public" || c.Get("history_visibility").StrOr("") == "world_readable" {
			seen[roomID] = true
			rooms = append(rooms, roomID)
		}
	}
	return rooms, rows.Err()
}
