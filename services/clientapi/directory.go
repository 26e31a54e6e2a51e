package clientapi

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/matrix/auth"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/id"
	"github.com/axon-hs/axon/services/roomserver"
	"github.com/axon-hs/axon/services/syncapi"
)

func decodeFilter(s string, f *syncapi.RoomEventFilter) error {
	if err := json.Unmarshal([]byte(s), f); err != nil {
		return httpx.BadJSON("filter is not a valid RoomEventFilter: " + err.Error())
	}
	return nil
}

// reserveAlias maps alias to roomID, failing with M_ROOM_IN_USE when it is
// taken.
func (a *API) reserveAlias(ctx context.Context, alias, roomID, creator string) error {
	res, err := a.db.Exec(ctx, `INSERT INTO room_aliases (alias, room_id, creator, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (alias) DO NOTHING`, alias, roomID, creator, a.cfg.Now().UnixMilli())
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return httpx.RoomInUse("the alias " + alias + " is already in use")
	}
	return nil
}

// undoAlias releases an alias reserved for a room that was not created,
// and returns cause.
func (a *API) undoAlias(r *http.Request, alias string, cause error) error {
	if alias != "" {
		if _, err := a.db.Exec(context.WithoutCancel(r.Context()), `DELETE FROM room_aliases WHERE alias = $1`, alias); err != nil {
			a.cfg.Logger.Error("clientapi: releasing a reserved alias failed", "alias", alias, "err", err)
		}
	}
	return cause
}

func (a *API) resolveAlias(ctx context.Context, alias string) (string, error) {
	var roomID string
	err := a.db.QueryRow(ctx, `SELECT room_id FROM room_aliases WHERE alias = $1`, alias).Scan(&roomID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", httpx.NotFound("no room has the alias " + alias)
	}
	return roomID, err
}

func aliasParam(r *http.Request, serverName string, mustBeLocal bool) (string, error) {
	alias := r.PathValue("roomAlias")
	al, err := id.ParseRoomAlias(alias)
	if err != nil {
		return "", httpx.InvalidParam("not a room alias: " + err.Error())
	}
	if mustBeLocal && string(al.Server()) != serverName {
		return "", httpx.InvalidParam("aliases of other servers cannot be changed here")
	}
	return alias, nil
}

func (a *API) putAlias(w http.ResponseWriter, r *http.Request, d Device) error {
	alias, err := aliasParam(r, a.cfg.ServerName, true)
	if err != nil {
		return err
	}
	var body struct {
		RoomID string `json:"room_id"`
	}
	if err := httpx.DecodeJSON(r, 0, &body); err != nil {
		return err
	}
	if _, err := id.ParseRoomID(body.RoomID); err != nil {
		return httpx.InvalidParam("room_id: " + err.Error())
	}
	if _, err := a.rooms.Room(r.Context(), body.RoomID); errors.Is(err, roomserver.ErrNotFound) {
		return httpx.NotFound("unknown room " + body.RoomID)
	} else if err != nil {
		return err
	}
	if m, err := a.rooms.MembershipOf(r.Context(), body.RoomID, d.UserID); err != nil {
		return err
	} else if m.Membership != "join" {
		return httpx.Forbidden("only members of the room can give it an alias")
	}
	if err := a.reserveAlias(r.Context(), alias, body.RoomID, d.UserID); err != nil {
		if httpx.CodeOf(err) == httpx.CodeRoomInUse {
			return httpx.New("M_UNKNOWN", "the alias "+alias+" already exists").WithStatus(http.StatusConflict)
		}
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{})
}

func (a *API) getAlias(w http.ResponseWriter, r *http.Request, _ Device) error {
	alias, err := aliasParam(r, a.cfg.ServerName, false)
	if err != nil {
		return err
	}
	roomID, err := a.resolveAlias(r.Context(), alias)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"room_id": roomID, "servers": []string{a.cfg.ServerName}})
}

func (a *API) deleteAlias(w http.ResponseWriter, r *http.Request, d Device) error {
	alias, err := aliasParam(r, a.cfg.ServerName, true)
	if err != nil {
		return err
	}
	var roomID, creator string
	err = a.db.QueryRow(r.Context(), `SELECT room_id, creator FROM room_aliases WHERE alias = $1`, alias).Scan(&roomID, &creator)
	if errors.Is(err, sql.ErrNoRows) {
		return httpx.NotFound("no room has the alias " + alias)
	}
	if err != nil {
		return err
	}
	if creator != d.UserID {
		// Room moderators may delete aliases too (spec: the power to
		// change m.room.canonical_alias).
		if ok, err := a.canSendState(r.Context(), roomID, d.UserID, "m.room.canonical_alias"); err != nil {
			return err
		} else if !ok {
			return httpx.Forbidden("only the alias's creator or a room moderator can delete it")
		}
	}
	if _, err := a.db.Exec(r.Context(), `DELETE FROM room_aliases WHERE alias = $1`, alias); err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{})
}

// canSendState reports whether the user's power level allows the state
// event type in the room's current state.
func (a *API) canSendState(ctx context.Context, roomID, userID, eventType string) (bool, error) {
	info, err := a.rooms.Room(ctx, roomID)
	if err != nil {
		return false, err
	}
	create, err := a.rooms.StateEvent(ctx, info.Version, roomID, info.HeadSeq, "m.room.create", "")
	if err != nil {
		return false, err
	}
	pl, err := a.rooms.StateEvent(ctx, info.Version, roomID, info.HeadSeq, "m.room.power_levels", "")
	if err != nil && !errors.Is(err, roomserver.ErrNotFound) {
		return false, err
	}
	var plEv *event.Event
	if pl != nil {
		plEv = pl.Event
	}
	levels, err := auth.NewPowerLevels(create.Event, plEv)
	if err != nil {
		return false, nil // unusable power levels: nobody has the power
	}
	return levels.User(userID) >= levels.Event(eventType, true), nil
}

func (a *API) roomAliases(w http.ResponseWriter, r *http.Request, d Device) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	if _, _, err := a.visibleUpTo(r.Context(), roomID, d.UserID); err != nil {
		return err
	}
	rows, err := a.db.Query(r.Context(), `SELECT alias FROM room_aliases WHERE room_id = $1 ORDER BY alias`, roomID)
	if err != nil {
		return err
	}
	defer rows.Close()
	aliases := []string{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return err
		}
		aliases = append(aliases, s)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"aliases": aliases})
}

func (a *API) setVisibility(ctx context.Context, roomID string, public bool) error {
	if public {
		_, err := a.db.Exec(ctx, `INSERT INTO room_directory (room_id, published_at) VALUES ($1, $2)
			ON CONFLICT (room_id) DO NOTHING`, roomID, a.cfg.Now().UnixMilli())
		return err
	}
	_, err := a.db.Exec(ctx, `DELETE FROM room_directory WHERE room_id = $1`, roomID)
	return err
}

func (a *API) getVisibility(w http.ResponseWriter, r *http.Request) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	if _, err := a.rooms.Room(r.Context(), roomID); errors.Is(err, roomserver.ErrNotFound) {
		return httpx.NotFound("unknown room " + roomID)
	} else if err != nil {
		return err
	}
	var n int
	if err := a.db.QueryRow(r.Context(), `SELECT COUNT(*) FROM room_directory WHERE room_id = $1`, roomID).Scan(&n); err != nil {
		return err
	}
	vis := "private"
	if n > 0 {
		vis = "public"
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]string{"visibility": vis})
}

func (a *API) putVisibility(w http.ResponseWriter, r *http.Request, d Device) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	var body struct {
		Visibility string `json:"visibility"`
	}
	if err := httpx.DecodeJSON(r, 0, &body); err != nil {
		return err
	}
	if body.Visibility != "public" && body.Visibility != "private" {
		return httpx.InvalidParam("visibility must be public or private")
	}
	if _, err := a.rooms.Room(r.Context(), roomID); errors.Is(err, roomserver.ErrNotFound) {
		return httpx.NotFound("unknown room " + roomID)
	} else if err != nil {
		return err
	}
	ok, err := a.canSendState(r.Context(), roomID, d.UserID, "m.room.canonical_alias")
	if err != nil {
		return err
	}
	if !ok {
		return httpx.Forbidden("publishing a room needs the power to change its canonical alias")
	}
	if err := a.setVisibility(r.Context(), roomID, body.Visibility == "public"); err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{})
}

// maxPublicRoomsLimit bounds one page of the directory.
const maxPublicRoomsLimit = 500

type publicRoomsQuery struct {
	Limit  int
	Since  string
	Filter string
	// RoomTypes, when not nil, keeps rooms of these types; a JSON null
	// in the list stands for rooms without a type.
	RoomTypes *[]*string
}

func (a *API) publicRoomsGet(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	pq := publicRoomsQuery{Since: q.Get("since")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return httpx.InvalidParam("limit must be a non-negative integer")
		}
		pq.Limit = n
	}
	if s := q.Get("server"); s != "" && s != a.cfg.ServerName {
		return httpx.New(httpx.CodeUnknown, "directories of other servers need federation").WithStatus(http.StatusBadGateway)
	}
	return a.publicRooms(w, r, pq)
}

func (a *API) publicRoomsPost(w http.ResponseWriter, r *http.Request, _ Device) error {
	var body struct {
		Limit  int    `json:"limit"`
		Since  string `json:"since"`
		Filter struct {
			GenericSearchTerm string     `json:"generic_search_term"`
			RoomTypes         *[]*string `json:"room_types"`
		} `json:"filter"`
	}
	if err := httpx.DecodeJSON(r, 0, &body); err != nil {
		return err
	}
	if s := r.URL.Query().Get("server"); s != "" && s != a.cfg.ServerName {
		return httpx.New(httpx.CodeUnknown, "directories of other servers need federation").WithStatus(http.StatusBadGateway)
	}
	return a.publicRooms(w, r, publicRoomsQuery{Limit: body.Limit, Since: body.Since, Filter: body.Filter.GenericSearchTerm, RoomTypes: body.Filter.RoomTypes})
}

type publicRoom struct {
	RoomID           string  `json:"room_id"`
	Name             *string `json:"name,omitempty"`
	Topic            *string `json:"topic,omitempty"`
	CanonicalAlias   *string `json:"canonical_alias,omitempty"`
	AvatarURL        *string `json:"avatar_url,omitempty"`
	NumJoinedMembers int     `json:"num_joined_members"`
	WorldReadable    bool    `json:"world_readable"`
	GuestCanJoin     bool    `json:"guest_can_join"`
	JoinRule         string  `json:"join_rule,omitempty"`
	RoomType         *string `json:"room_type,omitempty"`
}

// publicRooms lists the published rooms by descending member count, then
// room ID. "since" tokens are offsets ("o<n>"), so pages are stable only
// while the list does not change, which is all the spec asks.
func (a *API) publicRooms(w http.ResponseWriter, r *http.Request, q publicRoomsQuery) error {
	ctx := r.Context()
	limit := q.Limit
	if limit <= 0 || limit > maxPublicRoomsLimit {
		limit = maxPublicRoomsLimit
	}
	offset := 0
	if q.Since != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(q.Since, "o"))
		if err != nil || n < 0 || !strings.HasPrefix(q.Since, "o") {
			return httpx.InvalidParam("since is not a directory token of this server")
		}
		offset = n
	}
	rows, err := a.db.Query(ctx, `SELECT d.room_id, (SELECT COUNT(*) FROM memberships m WHERE m.room_id = d.room_id AND m.membership = 'join') AS n
		FROM room_directory d ORDER BY n DESC, d.room_id LIMIT 10000`)
	if err != nil {
		return err
	}
	type entry struct {
		roomID string
		n      int
	}
	var all []entry
	for rows.Next() {
		var e entry
		if err := rows.Scan(&e.roomID, &e.n); err != nil {
			rows.Close()
			return err
		}
		all = append(all, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var chunk []publicRoom
	term := strings.ToLower(q.Filter)
	matched := 0
	for _, e := range all {
		pr, err := a.describe(ctx, e.roomID, e.n)
		if err != nil {
			return err
		}
		if term != "" && !matches(pr, term) {
			continue
		}
		if q.RoomTypes != nil && !typeMatches(pr.RoomType, *q.RoomTypes) {
			continue
		}
		matched++
		if matched <= offset || len(chunk) >= limit {
			continue
		}
		chunk = append(chunk, pr)
	}
	resp := map[string]any{"chunk": chunkOrEmpty(chunk), "total_room_count_estimate": matched}
	if offset+len(chunk) < matched {
		resp["next_batch"] = "o" + strconv.Itoa(offset+len(chunk))
	}
	if offset > 0 {
		resp["prev_batch"] = "o" + strconv.Itoa(max(offset-limit, 0))
	}
	return httpx.WriteJSON(w, http.StatusOK, resp)
}

func chunkOrEmpty(c []publicRoom) []publicRoom {
	if c == nil {
		return []publicRoom{}
	}
	return c
}

func typeMatches(t *string, want []*string) bool {
	for _, w := range want {
		if (w == nil && t == nil) || (w != nil && t != nil && *w == *t) {
			return true
		}
	}
	return false
}

func matches(pr publicRoom, term string) bool {
	for _, s := range []*string{pr.Name, pr.Topic, pr.CanonicalAlias} {
		if s != nil && strings.Contains(strings.ToLower(*s), term) {
			return true
		}
	}
	return false
}

func (a *API) describe(ctx context.Context, roomID string, joined int) (publicRoom, error) {
	pr := publicRoom{RoomID: roomID, NumJoinedMembers: joined}
	info, err := a.rooms.Room(ctx, roomID)
	if err != nil {
		return pr, err
	}
	state, err := a.rooms.StateAt(ctx, info.Version, roomID, info.HeadSeq, "m.room.name", "m.room.topic",
		"m.room.canonical_alias", "m.room.avatar", "m.room.history_visibility", "m.room.guest_access", "m.room.join_rules", "m.room.create")
	if err != nil {
		return pr, err
	}
	str := func(ev *roomserver.StoredEvent, key string) *string {
		if s, ok := ev.Content().Get(key).Str(); ok {
			return &s
		}
		return nil
	}
	for _, ev := range state {
		switch ev.Type() {
		case "m.room.name":
			pr.Name = str(ev, "name")
		case "m.room.topic":
			pr.Topic = str(ev, "topic")
		case "m.room.canonical_alias":
			pr.CanonicalAlias = str(ev, "alias")
		case "m.room.avatar":
			pr.AvatarURL = str(ev, "url")
		case "m.room.history_visibility":
			pr.WorldReadable = ev.Content().Get("history_visibility").StrOr("") == "world_readable"
		case "m.room.guest_access":
			pr.GuestCanJoin = ev.Content().Get("guest_access").StrOr("") == "can_join"
		case "m.room.join_rules":
			pr.JoinRule = ev.Content().Get("join_rule").StrOr("")
		case "m.room.create":
			pr.RoomType = str(ev, "type")
		}
	}
	return pr, nil
}
