package clientapi

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

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

// directory is the published room directory, which federation lists too.
func (a *API) directory() *Directory { return NewDirectory(a.db, a.rooms) }

func (a *API) publicRoomsGet(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	pq := PublicRoomsQuery{Since: q.Get("since"), ThirdPartyInstanceID: q.Get("third_party_instance_id")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return httpx.InvalidParam("limit must be a non-negative integer")
		}
		pq.Limit = n
	}
	switch q.Get("include_all_networks") {
	case "", "false":
	case "true":
		pq.IncludeAllNetworks = true
	default:
		return httpx.InvalidParam("include_all_networks must be true or false")
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
		IncludeAllNetworks   bool   `json:"include_all_networks"`
		ThirdPartyInstanceID string `json:"third_party_instance_id"`
	}
	if err := httpx.DecodeJSON(r, 0, &body); err != nil {
		return err
	}
	if s := r.URL.Query().Get("server"); s != "" && s != a.cfg.ServerName {
		return httpx.New(httpx.CodeUnknown, "directories of other servers need federation").WithStatus(http.StatusBadGateway)
	}
	return a.publicRooms(w, r, PublicRoomsQuery{Limit: body.Limit, Since: body.Since, SearchTerm: body.Filter.GenericSearchTerm,
		RoomTypes: body.Filter.RoomTypes, IncludeAllNetworks: body.IncludeAllNetworks, ThirdPartyInstanceID: body.ThirdPartyInstanceID})
}

func (a *API) publicRooms(w http.ResponseWriter, r *http.Request, q PublicRoomsQuery) error {
	page, err := a.directory().PublicRooms(r.Context(), q)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, page)
}
