package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/id"
	"github.com/axon-hs/axon/matrix/roomversion"
	"github.com/axon-hs/axon/services/roomserver"
)

// joinRoutes registers the resident server's side of joining a room.
func (a *API) joinRoutes(mux *http.ServeMux) {
	mux.Handle("GET /_matrix/federation/v1/make_join/{roomId}/{userId}", a.authed(a.makeJoin))
	mux.Handle("PUT /_matrix/federation/v2/send_join/{roomId}/{eventId}", a.authed(a.sendJoin))
}

// userOfOrigin checks that userID is a valid user of origin.
func userOfOrigin(userID, origin string) error {
	uid, err := id.ParseUserID(userID)
	if err != nil {
		return httpx.InvalidParam("not a valid user ID: " + err.Error())
	}
	if string(uid.Server()) != origin {
		return httpx.Forbidden("the user " + userID + " does not belong to " + origin)
	}
	return nil
}

// makeJoin answers a template of the join event (spec "Joining Rooms").
func (a *API) makeJoin(w http.ResponseWriter, r *http.Request, req *Request) error {
	ctx := r.Context()
	room, user := r.PathValue("roomId"), r.PathValue("userId")
	if err := userOfOrigin(user, req.Origin); err != nil {
		return err
	}
	v, err := a.residentRoom(ctx, room, req.Origin)
	if err != nil {
		return err
	}
	supported := r.URL.Query()["ver"]
	if len(supported) == 0 {
		supported = []string{"1"}
	}
	if !slices.Contains(supported, v.ID) {
		return httpx.IncompatibleRoomVersion("room "+room+" has version "+v.ID+", which "+req.Origin+" does not support", v.ID)
	}
	authoriser, err := a.mayJoin(ctx, v, room, user)
	if err != nil {
		return err
	}
	content := cjson.ObjectValue(cjson.Member{Key: "membership", Value: cjson.StringValue("join")})
	if authoriser != "" {
		content = content.With("join_authorised_via_users_server", cjson.StringValue(authoriser))
	}
	tmpl, _, err := memberTemplate(ctx, a.cfg.Reader, v, room, user, user, content, a.cfg.Now().UnixMilli(), a.cfg.ServerName)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"room_version": v.ID, "event": tmpl})
}

// mayJoin refuses a join that the room's join rules and the user's
// membership cannot allow (send_join checks the auth rules for real). A
// join to a restricted room returns the user of this server who
// authorises it (authoriseRestricted).
func (a *API) mayJoin(ctx context.Context, v *roomversion.Version, room, user string) (authoriser string, err error) {
	rule, membership, err := a.joinRuleAndMembership(ctx, v, room, user)
	if err != nil {
		return "", err
	}
	switch {
	case membership == "ban":
		return "", httpx.Forbidden(user + " is banned from " + room)
	case membership == "join" || membership == "invite" || rule == "public":
		return "", nil
	case restrictedJoinRule(v, rule):
		return a.authoriseRestricted(ctx, v, room, user)
	}
	return "", httpx.Forbidden(room + " is " + rule + "-only and " + user + " is not invited")
}

// sendJoin accepts a signed join event into the room and answers with the
// room's state before it and the auth chain (send_join v2).
func (a *API) sendJoin(w http.ResponseWriter, r *http.Request, req *Request) error {
	ctx := r.Context()
	room, eventID := r.PathValue("roomId"), r.PathValue("eventId")
	v, err := a.residentRoom(ctx, room, req.Origin)
	if err != nil {
		return err
	}
	ev, err := receivedMember(v, req.Body, room, eventID, req.Origin, "join", httpx.BadJSON)
	if err != nil {
		return err
	}
	// A restricted join that a user of this server authorises: the user
	// must still qualify, and this server signs the join.
	signed := false
	if by := a.authorisedBy(ev.Content()); by != "" && v.RestrictedJoins {
		if _, err := a.authoriseRestricted(ctx, v, room, ev.Sender()); err != nil {
			return err
		}
		if a.cfg.Key == nil {
			return httpx.New(codeUnableToGrant, "this server cannot sign joins; try another server").WithStatus(http.StatusBadRequest)
		}
		ev, signed = ev.Sign(a.cfg.ServerName, a.cfg.Key), true
	}
	if err := a.acceptMember(ctx, req.Origin, room, ev, httpx.BadJSON); err != nil {
		return err
	}
	stateIDs, err := a.cfg.Reader.StateIDsBefore(ctx, room, ev.ID())
	if errors.Is(err, roomserver.ErrNotFound) {
		return fmt.Errorf("federation: the accepted join %s is not stored", ev.ID())
	}
	if err != nil {
		return err
	}
	list := make([]string, 0, len(stateIDs))
	for _, sid := range stateIDs {
		list = append(list, sid)
	}
	slices.Sort(list)
	evs, err := a.cfg.Reader.PDUs(ctx, v, room, list)
	if err != nil {
		return err
	}
	state := make([]json.RawMessage, 0, len(list))
	for _, sid := range list {
		if e := evs[sid]; e != nil {
			state = append(state, e.Canonical())
		}
	}
	chain, err := a.cfg.Reader.AuthChain(ctx, v, room, append(list, ev.ID()))
	if err != nil {
		return err
	}
	answer := map[string]any{"origin": a.cfg.ServerName, "state": state, "auth_chain": pdusOf(chain), "members_omitted": false}
	if signed {
		answer["event"] = json.RawMessage(ev.Canonical())
	}
	return httpx.WriteJSON(w, http.StatusOK, answer)
}
