package federation

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/matrix/auth"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/roomversion"
	"github.com/axon-hs/axon/services/roomserver"
)

// knockRoutes registers the resident server's side of knocking (spec
// "Knocking upon a room").
func (a *API) knockRoutes(mux *http.ServeMux) {
	mux.Handle("GET /_matrix/federation/v1/make_knock/{roomId}/{userId}", a.authed(a.makeKnock))
	mux.Handle("PUT /_matrix/federation/v1/send_knock/{roomId}/{eventId}", a.authed(a.sendKnock))
}

// makeKnock answers a template of the user's knock.
func (a *API) makeKnock(w http.ResponseWriter, r *http.Request, req *Request) error {
	ctx := r.Context()
	room, user := r.PathValue("roomId"), r.PathValue("userId")
	if err := userOfOrigin(user, req.Origin); err != nil {
		return err
	}
	v, err := a.residentRoom(ctx, room, req.Origin)
	if err != nil {
		return err
	}
	// ver is required: knocking came with room version 7, long after
	// servers started naming the versions they support.
	if !slices.Contains(r.URL.Query()["ver"], v.ID) {
		return httpx.IncompatibleRoomVersion("room "+room+" has version "+v.ID+", which "+req.Origin+" does not support", v.ID)
	}
	if !v.Knocking {
		return httpx.IncompatibleRoomVersion("room "+room+" has version "+v.ID+", which has no knocking", v.ID)
	}
	if err := a.mayKnock(ctx, v, room, user); err != nil {
		return err
	}
	content := cjson.ObjectValue(cjson.Member{Key: "membership", Value: cjson.StringValue("knock")})
	tmpl, _, err := memberTemplate(ctx, a.cfg.Reader, v, room, user, user, content, a.cfg.Now().UnixMilli(), a.cfg.ServerName)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"room_version": v.ID, "event": tmpl})
}

// mayKnock refuses a knock that the room's join rules or the user's
// membership cannot allow (spec: the room must be set up for knocks; a
// user who is joined, invited or banned cannot knock). send_knock checks
// the auth rules for real.
func (a *API) mayKnock(ctx context.Context, v *roomversion.Version, room, user string) error {
	rule, membership, err := a.joinRuleAndMembership(ctx, v, room, user)
	if err != nil {
		return err
	}
	switch membership {
	case "ban":
		return httpx.Forbidden(user + " is banned from " + room)
	case "join":
		return httpx.Forbidden(user + " is already in " + room)
	case "invite":
		return httpx.Forbidden(user + " is already invited to " + room)
	}
	if rule != "knock" && (rule != "knock_restricted" || !v.KnockRestricted) {
		return httpx.Forbidden(room + " does not allow knocking (join rule " + rule + ")")
	}
	return nil
}

// sendKnock accepts a signed knock of its sender into the room and answers
// with the room's identifying state, as full PDUs (spec v1.16 on: the
// create event among them).
func (a *API) sendKnock(w http.ResponseWriter, r *http.Request, req *Request) error {
	ctx := r.Context()
	room, eventID := r.PathValue("roomId"), r.PathValue("eventId")
	v, err := a.residentRoom(ctx, room, req.Origin)
	if err != nil {
		return err
	}
	if !v.Knocking {
		return httpx.IncompatibleRoomVersion("room "+room+" has version "+v.ID+", which has no knocking", v.ID)
	}
	ev, err := receivedMember(v, req.Body, room, eventID, req.Origin, "knock", httpx.InvalidParam)
	if err != nil {
		return err
	}
	if err := a.acceptMember(ctx, req.Origin, room, ev, httpx.InvalidParam); err != nil {
		return err
	}
	state, err := identifyingState(ctx, a.cfg.Reader, v, room)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"knock_room_state": state})
}

// identifyingState is the room's current state of the types that identify
// it to someone outside (inviteStateTypes) and the memberships of users,
// as full PDUs.
func identifyingState(ctx context.Context, rd *roomserver.Reader, v *roomversion.Version, room string, users ...string) ([]json.RawMessage, error) {
	state, err := rd.CurrentStateIDs(ctx, room)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, typ := range inviteStateTypes {
		if sid, ok := state[auth.StateKey{Type: typ}]; ok {
			ids = append(ids, sid)
		}
	}
	for _, u := range users {
		if sid, ok := state[auth.StateKey{Type: "m.room.member", StateKey: u}]; ok {
			ids = append(ids, sid)
		}
	}
	evs, err := rd.PDUs(ctx, v, room, ids)
	if err != nil {
		return nil, err
	}
	out := make([]json.RawMessage, 0, len(ids))
	for _, sid := range ids {
		if ev := evs[sid]; ev != nil {
			out = append(out, ev.Canonical())
		}
	}
	return out, nil
}
