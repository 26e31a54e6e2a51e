package federation

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/roomversion"
	"github.com/axon-hs/axon/services/roomserver"
)

// Bounds of the DAG reads.
const (
	maxBackfill       = 100
	maxMissingAnswer  = 100
	defaultMissingAns = 10
)

// readRoutes registers the room reads other servers use to follow a
// room's DAG.
func (a *API) readRoutes(mux *http.ServeMux) {
	mux.Handle("GET /_matrix/federation/v1/event/{eventId}", a.authed(a.getEvent))
	mux.Handle("GET /_matrix/federation/v1/state_ids/{roomId}", a.authed(a.getStateIDs))
	mux.Handle("GET /_matrix/federation/v1/state/{roomId}", a.authed(a.getState))
	mux.Handle("GET /_matrix/federation/v1/event_auth/{roomId}/{eventId}", a.authed(a.getEventAuth))
	mux.Handle("POST /_matrix/federation/v1/get_missing_events/{roomId}", a.authed(a.getMissingEvents))
	mux.Handle("GET /_matrix/federation/v1/backfill/{roomId}", a.authed(a.backfill))
}

// roomFor checks that roomID is a room here that origin is in, and returns
// its version. A server sees a room's DAG only while one of its users is
// joined (history visibility for servers is not applied beyond that).
func (a *API) roomFor(ctx context.Context, roomID, origin string) (*roomversion.Version, error) {
	v, err := a.cfg.RoomVersion(ctx, roomID)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, httpx.NotFound("this server is not in room " + roomID)
	}
	if err := a.checkACL(ctx, roomID, origin); err != nil {
		return nil, err
	}
	in, err := a.cfg.Reader.ServerInRoom(ctx, roomID, origin)
	if err != nil {
		return nil, err
	}
	if !in {
		return nil, httpx.Forbidden(origin + " is not in room " + roomID)
	}
	return v, nil
}

// checkACL refuses origin with 403 M_FORBIDDEN when the room's current
// m.room.server_acl denies it.
func (a *API) checkACL(ctx context.Context, roomID, origin string) error {
	if a.cfg.ServerACL == nil {
		return nil
	}
	list, err := a.cfg.ServerACL(ctx, roomID)
	if err != nil {
		return err
	}
	if !list.Allows(origin) {
		return httpx.Forbidden(origin + " is denied by the server ACL of " + roomID)
	}
	return nil
}

// pdusOf encodes events as a JSON array of PDUs.
func pdusOf(evs []*event.Event) []json.RawMessage {
	out := make([]json.RawMessage, len(evs))
	for i, ev := range evs {
		out[i] = ev.Canonical()
	}
	return out
}

func (a *API) transaction(w http.ResponseWriter, evs []*event.Event) error {
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{
		"origin": a.cfg.ServerName, "origin_server_ts": a.cfg.Now().UnixMilli(), "pdus": pdusOf(evs)})
}

func (a *API) getEvent(w http.ResponseWriter, r *http.Request, req *Request) error {
	id := r.PathValue("eventId")
	room, err := a.cfg.Reader.RoomOfEvent(r.Context(), id)
	if errors.Is(err, roomserver.ErrNotFound) {
		return httpx.NotFound("unknown event " + id)
	}
	if err != nil {
		return err
	}
	v, err := a.roomFor(r.Context(), room, req.Origin)
	if err != nil {
		return err
	}
	evs, err := a.cfg.Reader.PDUs(r.Context(), v, room, []string{id})
	if err != nil {
		return err
	}
	if evs[id] == nil {
		return httpx.NotFound("unknown event " + id)
	}
	shown, err := a.forServer(r.Context(), v, room, req.Origin, []*event.Event{evs[id]})
	if err != nil {
		return err
	}
	return a.transaction(w, shown)
}

// stateBefore answers the state before ?event_id= with its auth chain.
func (a *API) stateBefore(r *http.Request, req *Request) (state, chain []*event.Event, err error) {
	room := r.PathValue("roomId")
	id := r.URL.Query().Get("event_id")
	if id == "" {
		return nil, nil, httpx.MissingParam("event_id is required")
	}
	v, err := a.roomFor(r.Context(), room, req.Origin)
	if err != nil {
		return nil, nil, err
	}
	ids, err := a.cfg.Reader.StateIDsBefore(r.Context(), room, id)
	if errors.Is(err, roomserver.ErrNotFound) {
		return nil, nil, httpx.NotFound("unknown event " + id + " in " + room)
	}
	if err != nil {
		return nil, nil, err
	}
	list := make([]string, 0, len(ids))
	for _, sid := range ids {
		list = append(list, sid)
	}
	slices.Sort(list)
	found, err := a.cfg.Reader.PDUs(r.Context(), v, room, list)
	if err != nil {
		return nil, nil, err
	}
	for _, sid := range list {
		if ev := found[sid]; ev != nil {
			state = append(state, ev)
		}
	}
	chain, err = a.cfg.Reader.AuthChain(r.Context(), v, room, list)
	return state, chain, err
}

func ids(evs []*event.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID()
	}
	return out
}

func (a *API) getStateIDs(w http.ResponseWriter, r *http.Request, req *Request) error {
	state, chain, err := a.stateBefore(r, req)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"pdu_ids": ids(state), "auth_chain_ids": ids(chain)})
}

func (a *API) getState(w http.ResponseWriter, r *http.Request, req *Request) error {
	state, chain, err := a.stateBefore(r, req)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"pdus": pdusOf(state), "auth_chain": pdusOf(chain)})
}

func (a *API) getEventAuth(w http.ResponseWriter, r *http.Request, req *Request) error {
	room, id := r.PathValue("roomId"), r.PathValue("eventId")
	v, err := a.roomFor(r.Context(), room, req.Origin)
	if err != nil {
		return err
	}
	evs, err := a.cfg.Reader.PDUs(r.Context(), v, room, []string{id})
	if err != nil {
		return err
	}
	if evs[id] == nil {
		return httpx.NotFound("unknown event " + id + " in " + room)
	}
	chain, err := a.cfg.Reader.AuthChain(r.Context(), v, room, []string{id})
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"auth_chain": pdusOf(chain)})
}

func (a *API) getMissingEvents(w http.ResponseWriter, r *http.Request, req *Request) error {
	room := r.PathValue("roomId")
	var body struct {
		Earliest []string `json:"earliest_events"`
		Latest   []string `json:"latest_events"`
		Limit    *int     `json:"limit"`
		MinDepth int64    `json:"min_depth"`
	}
	if err := json.Unmarshal(req.Body, &body); err != nil {
		return httpx.BadJSON("the body is not a valid get_missing_events request: " + err.Error())
	}
	if body.Earliest == nil || body.Latest == nil {
		return httpx.BadJSON("earliest_events and latest_events are required")
	}
	limit := defaultMissingAns
	if body.Limit != nil {
		limit = min(max(*body.Limit, 0), maxMissingAnswer)
	}
	v, err := a.roomFor(r.Context(), room, req.Origin)
	if err != nil {
		return err
	}
	evs, err := a.cfg.Reader.Walk(r.Context(), v, room, body.Latest, body.Earliest, false, limit, body.MinDepth)
	if err != nil {
		return err
	}
	if evs, err = a.forServer(r.Context(), v, room, req.Origin, evs); err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"events": pdusOf(evs)})
}

func (a *API) backfill(w http.ResponseWriter, r *http.Request, req *Request) error {
	room := r.PathValue("roomId")
	q := r.URL.Query()
	from := q["v"]
	if len(from) == 0 {
		return httpx.MissingParam("v (the events to backfill from) is required")
	}
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit < 0 {
		return httpx.InvalidParam("limit must be a non-negative integer")
	}
	v, err := a.roomFor(r.Context(), room, req.Origin)
	if err != nil {
		return err
	}
	evs, err := a.cfg.Reader.Walk(r.Context(), v, room, from, nil, true, min(limit, maxBackfill), 0)
	if err != nil {
		return err
	}
	if evs, err = a.forServer(r.Context(), v, room, req.Origin, evs); err != nil {
		return err
	}
	return a.transaction(w, evs)
}
