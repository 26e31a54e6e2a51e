package clientapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/id"
	"github.com/axon-hs/axon/services/roomserver"
)

// memberContent is the content of a member event for a local user, with
// their profile (spec: displayname and avatar_url are copied into the
// member event). extra keys (reason, is_direct) are added.
func (a *API) memberContent(ctx context.Context, userID, membership string, extra map[string]cjson.Value) (cjson.Value, error) {
	c := cjson.ObjectValue(cjson.Member{Key: "membership", Value: cjson.StringValue(membership)})
	if membership == "join" && a.profile != nil {
		name, avatar, err := a.profile(ctx, userID)
		if err != nil {
			return c, err
		}
		if name != "" {
			c = c.With("displayname", cjson.StringValue(name))
		}
		if avatar != "" {
			c = c.With("avatar_url", cjson.StringValue(avatar))
		}
	}
	for k, v := range extra {
		c = c.With(k, v)
	}
	return c, nil
}

// roomIDParam validates the {roomId} path parameter.
func roomIDParam(r *http.Request) (string, error) {
	rid := r.PathValue("roomId")
	if _, err := id.ParseRoomID(rid); err != nil {
		return "", httpx.InvalidParam("not a room ID: " + rid)
	}
	return rid, nil
}

type reasonBody struct {
	Reason *string `json:"reason"`
	UserID string  `json:"user_id"`
}

func optionalBody(r *http.Request, v any) error {
	if r.ContentLength == 0 {
		return nil
	}
	return httpx.DecodeJSON(r, 0, v)
}

func reasonExtra(reason *string) map[string]cjson.Value {
	if reason == nil {
		return nil
	}
	return map[string]cjson.Value{"reason": cjson.StringValue(*reason)}
}

// sendMember submits a member event and returns its ID.
func (a *API) sendMember(ctx context.Context, roomID, sender, target string, content cjson.Value) (string, error) {
	res, err := a.submit.Submit(ctx, &roomserver.Input{RoomID: roomID, Events: []roomserver.Template{{
		Type: "m.room.member", StateKey: &target, Sender: sender, Content: content.Canonical(),
	}}})
	if err := submitErr(res, err); err != nil {
		return "", err
	}
	return res.EventIDs[0], nil
}

func (a *API) join(ctx context.Context, w http.ResponseWriter, roomID string, d Device, reason *string, via []string) error {
	info, err := a.rooms.Room(ctx, roomID)
	if errors.Is(err, roomserver.ErrNotFound) {
		return a.joinRemote(ctx, w, roomID, d, reason, via)
	} else if err != nil {
		return err
	}
	if a.cfg.RemoteJoin != nil {
		// A room every local user has left goes on elsewhere: this
		// server's copy is stale, so the join goes through a server
		// still in it, as for a room never joined.
		others, err := a.staleRoomServers(ctx, roomID)
		if err != nil {
			return err
		}
		if len(others) > 0 {
			return a.joinRemote(ctx, w, roomID, d, reason, append(via, others...))
		}
	}
	if d.IsGuest {
		// Guests may join only rooms that allow them (spec "Guest
		// access": m.room.guest_access can_join).
		ga, err := a.rooms.StateEvent(ctx, info.Version, roomID, info.HeadSeq, "m.room.guest_access", "")
		if err != nil && !errors.Is(err, roomserver.ErrNotFound) {
			return err
		}
		if ga == nil || ga.Content().Get("guest_access").StrOr("") != "can_join" {
			return httpx.GuestAccessForbidden("this room does not allow guests to join")
		}
	}
	c, err := a.memberContent(ctx, d.UserID, "join", reasonExtra(reason))
	if err != nil {
		return err
	}
	if _, err := a.sendMember(ctx, roomID, d.UserID, d.UserID, c); err != nil {
		return err
	}
	// Joining again undoes a forget.
	if _, err := a.db.Exec(ctx, `DELETE FROM forgotten_rooms WHERE user_id = $1 AND room_id = $2`, d.UserID, roomID); err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]string{"room_id": roomID})
}

func (a *API) joinRoom(w http.ResponseWriter, r *http.Request, d Device) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	var body reasonBody
	if err := optionalBody(r, &body); err != nil {
		return err
	}
	return a.join(r.Context(), w, roomID, d, body.Reason, nil)
}

// maxJoinServers bounds the servers one remote join tries.
const maxJoinServers = 5

// joinRemote joins a room this server is not in, through the servers the
// client named (via, server_name), the room ID's server (before room
// version 12 room IDs carry one) and those an alias lookup gave.
func (a *API) joinRemote(ctx context.Context, w http.ResponseWriter, roomID string, d Device, reason *string, via []string) error {
	if a.cfg.RemoteJoin == nil {
		return httpx.NotFound("this server does not know the room " + roomID)
	}
	if d.IsGuest {
		return httpx.GuestAccessForbidden("guests cannot join rooms on other servers")
	}
	servers := a.remoteServers(roomID, via)
	if len(servers) == 0 {
		// An invite from another server names one.
		inv, err := a.rooms.RemoteInvite(ctx, roomID, d.UserID)
		if err != nil {
			return err
		}
		if inv == nil {
			return httpx.NotFound("this server does not know the room " + roomID + " and no server to join it through was given")
		}
	}
	c, err := a.memberContent(ctx, d.UserID, "join", reasonExtra(reason))
	if err != nil {
		return err
	}
	if _, err := a.cfg.RemoteJoin(ctx, roomID, d.UserID, servers, c); err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]string{"room_id": roomID})
}

func (a *API) joinByIDOrAlias(w http.ResponseWriter, r *http.Request, d Device) error {
	var body reasonBody
	if err := optionalBody(r, &body); err != nil {
		return err
	}
	roomID, via, err := a.roomTarget(r)
	if err != nil {
		return err
	}
	return a.join(r.Context(), w, roomID, d, body.Reason, via)
}

// roomTarget resolves the {roomIdOrAlias} of /join and /knock to a room ID
// and the servers to go through for a room this server is not in: the
// client's via (and the older server_name) and, for an alias of another
// server, those its directory answered.
func (a *API) roomTarget(r *http.Request) (roomID string, via []string, err error) {
	target := r.PathValue("roomIdOrAlias")
	q := r.URL.Query()
	via = append(q["via"], q["server_name"]...)
	switch {
	case strings.HasPrefix(target, "!"):
		if _, err := id.ParseRoomID(target); err != nil {
			return "", nil, httpx.InvalidParam("not a room ID: " + target)
		}
		return target, via, nil
	case strings.HasPrefix(target, "#"):
		alias, err := id.ParseRoomAlias(target)
		if err != nil {
			return "", nil, httpx.InvalidParam("not a room alias: " + target)
		}
		if string(alias.Server()) != a.cfg.ServerName && a.cfg.RemoteAlias != nil {
			roomID, servers, err := a.cfg.RemoteAlias(r.Context(), target)
			if err != nil {
				return "", nil, err
			}
			return roomID, append(via, servers...), nil
		}
		roomID, err := a.resolveAlias(r.Context(), target)
		return roomID, via, err
	}
	return "", nil, httpx.InvalidParam("expected a room ID (!…) or a room alias (#…), got " + url.PathEscape(target))
}

func (a *API) leave(w http.ResponseWriter, r *http.Request, d Device) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	var body reasonBody
	if err := optionalBody(r, &body); err != nil {
		return err
	}
	if a.cfg.RejectInvite != nil {
		// An invite from another server to a room this server is not in
		// is rejected through the inviting server.
		inv, err := a.rooms.RemoteInvite(r.Context(), roomID, d.UserID)
		if err != nil {
			return err
		}
		if inv != nil {
			if err := a.cfg.RejectInvite(r.Context(), roomID, d.UserID, body.Reason); err != nil {
				return err
			}
			return httpx.WriteJSON(w, http.StatusOK, map[string]any{})
		}
	}
	m, err := a.rooms.MembershipOf(r.Context(), roomID, d.UserID)
	if err != nil {
		return err
	}
	switch m.Membership {
	case "join", "invite", "knock":
	case "leave", "ban":
		return httpx.WriteJSON(w, http.StatusOK, map[string]any{}) // already out
	default:
		return httpx.Forbidden("you are not in the room " + roomID)
	}
	c, _ := a.memberContent(r.Context(), d.UserID, "leave", reasonExtra(body.Reason))
	if _, err := a.sendMember(r.Context(), roomID, d.UserID, d.UserID, c); err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{})
}

func (a *API) forget(w http.ResponseWriter, r *http.Request, d Device) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	m, err := a.rooms.MembershipOf(r.Context(), roomID, d.UserID)
	if err != nil {
		return err
	}
	if m.Membership == "join" || m.Membership == "invite" || m.Membership == "knock" {
		return httpx.New(httpx.CodeUnknown, "leave the room before forgetting it").WithStatus(http.StatusBadRequest)
	}
	if m.Membership == "" {
		return httpx.NotFound("you were never in the room " + roomID)
	}
	if _, err := a.db.Exec(r.Context(), `INSERT INTO forgotten_rooms (user_id, room_id, forgotten_at) VALUES ($1, $2, $3)
		ON CONFLICT (user_id, room_id) DO NOTHING`, d.UserID, roomID, a.cfg.Now().UnixMilli()); err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{})
}

// targetAction sends a membership change of another user: invite, kick,
// ban, unban.
func (a *API) targetAction(w http.ResponseWriter, r *http.Request, d Device, membership string, needCurrent ...string) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	var body struct {
		UserID   string  `json:"user_id"`
		Reason   *string `json:"reason"`
		IsDirect *bool   `json:"is_direct"`
	}
	if err := httpx.DecodeJSON(r, 0, &body); err != nil {
		return err
	}
	if body.UserID == "" {
		return httpx.MissingParam("user_id is required")
	}
	if _, err := id.ParseUserID(body.UserID); err != nil {
		return httpx.InvalidParam("user_id: " + err.Error())
	}
	if len(needCurrent) > 0 {
		m, err := a.rooms.MembershipOf(r.Context(), roomID, body.UserID)
		if err != nil {
			return err
		}
		ok := false
		for _, n := range needCurrent {
			ok = ok || m.Membership == n
		}
		if !ok {
			return httpx.Forbidden(body.UserID + " is not " + strings.Join(needCurrent, " or ") + " in the room")
		}
	}
	extra := reasonExtra(body.Reason)
	if body.IsDirect != nil && membership == "invite" {
		if extra == nil {
			extra = map[string]cjson.Value{}
		}
		extra["is_direct"] = cjson.BoolValue(*body.IsDirect)
	}
	c, _ := a.memberContent(r.Context(), body.UserID, membership, extra)
	if membership == "invite" && a.cfg.RemoteInvite != nil && !a.isLocal(body.UserID) {
		if _, err := a.cfg.RemoteInvite(r.Context(), roomID, d.UserID, body.UserID, c); err != nil {
			return err
		}
		return httpx.WriteJSON(w, http.StatusOK, json.RawMessage(`{}`))
	}
	if _, err := a.sendMember(r.Context(), roomID, d.UserID, body.UserID, c); err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, json.RawMessage(`{}`))
}

// remoteServers is the servers a join or knock of a room this server is
// not in goes through: via, then the room ID's server (room IDs before
// version 12 name one), each once and this server left out. Each may take
// a round of requests, so a client cannot make one try more than
// maxJoinServers.
func (a *API) remoteServers(roomID string, via []string) []string {
	servers := slices.Clone(via)
	if rid, err := id.ParseRoomID(roomID); err == nil {
		if s, ok := rid.Server(); ok {
			servers = append(servers, string(s))
		}
	}
	seen := map[string]bool{a.cfg.ServerName: true}
	servers = slices.DeleteFunc(servers, func(s string) bool {
		dup := seen[s]
		seen[s] = true
		return dup
	})
	return servers[:min(len(servers), maxJoinServers)]
}

// isLocal reports whether userID belongs to this server.
func (a *API) isLocal(userID string) bool {
	uid, err := id.ParseUserID(userID)
	return err == nil && string(uid.Server()) == a.cfg.ServerName
}

// staleRoomServers returns, for a known room no local user is joined to,
// the other servers its last known state has in it (none for a room this
// server is in, or that nobody else was in).
func (a *API) staleRoomServers(ctx context.Context, roomID string) ([]string, error) {
	resident, err := a.rooms.ServerInRoom(ctx, roomID, a.cfg.ServerName)
	if err != nil || resident {
		return nil, err
	}
	servers, err := a.rooms.ResidentServers(ctx, roomID)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(servers, func(s string) bool { return s == a.cfg.ServerName }), nil
}

func (a *API) invite(w http.ResponseWriter, r *http.Request, d Device) error {
	return a.targetAction(w, r, d, "invite")
}

func (a *API) kick(w http.ResponseWriter, r *http.Request, d Device) error {
	return a.targetAction(w, r, d, "leave", "join", "invite", "knock")
}

func (a *API) ban(w http.ResponseWriter, r *http.Request, d Device) error {
	return a.targetAction(w, r, d, "ban")
}

func (a *API) unban(w http.ResponseWriter, r *http.Request, d Device) error {
	return a.targetAction(w, r, d, "leave", "ban")
}

// forgotten reports whether the user forgot the room (and has not joined
// it again since).
func (a *API) forgotten(ctx context.Context, roomID, userID string) (bool, error) {
	var n int
	err := a.db.QueryRow(ctx, `SELECT COUNT(*) FROM forgotten_rooms WHERE user_id = $1 AND room_id = $2`, userID, roomID).Scan(&n)
	return n > 0, err
}
