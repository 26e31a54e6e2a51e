package federation

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/matrix/auth"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/id"
	"github.com/axon-hs/axon/matrix/roomversion"
	"github.com/axon-hs/axon/services/roomserver"
)

// membershipRoutes registers the resident server's side of leaving and
// the invited server's side of invites.
func (a *API) membershipRoutes(mux *http.ServeMux) {
	mux.Handle("GET /_matrix/federation/v1/make_leave/{roomId}/{userId}", a.authed(a.makeLeave))
	mux.Handle("PUT /_matrix/federation/v2/send_leave/{roomId}/{eventId}", a.authed(a.sendLeave))
	mux.Handle("PUT /_matrix/federation/v2/invite/{roomId}/{eventId}", a.authed(a.invite))
}

// memberTemplate is an unsigned m.room.member event of sender about
// stateKey on the room's current forward extremities and state, with the
// auth events its content needs (the template of make_join, make_leave,
// and the invites this server sends). It returns the template and the
// state the auth rules need for it (its auth events and the create
// event), for a check before signing.
func memberTemplate(ctx context.Context, rd *roomserver.Reader, v *roomversion.Version, room, sender, stateKey string,
	content cjson.Value, ts int64, origin string) (cjson.Value, auth.MapState, error) {
	state, err := rd.CurrentStateIDs(ctx, room)
	if err != nil {
		return cjson.Value{}, nil, err
	}
	info, err := rd.Room(ctx, room)
	if err != nil {
		return cjson.Value{}, nil, err
	}
	var authIDs []string
	for _, k := range auth.SelectionFor(v, "m.room.member", sender, stateKey, true, content) {
		if sid, ok := state[k]; ok {
			authIDs = append(authIDs, sid)
		}
	}
	createID := state[auth.StateKey{Type: "m.room.create"}]
	evs, err := rd.PDUs(ctx, v, room, append(slices.Clone(info.Extremities), append(authIDs, createID)...))
	if err != nil {
		return cjson.Value{}, nil, err
	}
	var prev, authEvs []*event.Event
	depth := int64(0)
	for _, x := range info.Extremities {
		if ev := evs[x]; ev != nil {
			prev = append(prev, ev)
			depth = max(depth, ev.Depth())
		}
	}
	as := auth.MapState{}
	if ev := evs[createID]; ev != nil {
		// Not an auth event from room version 12 on, but the rules need it.
		as[auth.StateKey{Type: "m.room.create"}] = ev
	}
	for _, x := range authIDs {
		if ev := evs[x]; ev != nil {
			authEvs = append(authEvs, ev)
			sk, _ := ev.StateKey()
			as[auth.StateKey{Type: ev.Type(), StateKey: sk}] = ev
		}
	}
	tmpl := cjson.ObjectValue(
		cjson.Member{Key: "type", Value: cjson.StringValue("m.room.member")},
		cjson.Member{Key: "room_id", Value: cjson.StringValue(room)},
		cjson.Member{Key: "sender", Value: cjson.StringValue(sender)},
		cjson.Member{Key: "state_key", Value: cjson.StringValue(stateKey)},
		cjson.Member{Key: "content", Value: content},
		cjson.Member{Key: "origin_server_ts", Value: cjson.IntValue(ts)},
		cjson.Member{Key: "depth", Value: cjson.IntValue(depth + 1)},
		cjson.Member{Key: "prev_events", Value: roomserver.Refs(v, prev)},
		cjson.Member{Key: "auth_events", Value: roomserver.Refs(v, authEvs)},
	)
	if !v.HashEventIDs() {
		tmpl = tmpl.With("origin", cjson.StringValue(origin))
	}
	return tmpl, as, nil
}

// residentRoom returns the version of a room this server is in and checks
// the origin against its server ACL.
func (a *API) residentRoom(ctx context.Context, room, origin string) (*roomversion.Version, error) {
	v, err := a.cfg.RoomVersion(ctx, room)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, httpx.NotFound("this server is not in room " + room)
	}
	if err := a.checkACL(ctx, room, origin); err != nil {
		return nil, err
	}
	return v, nil
}

// makeLeave answers a template of the user's leave (spec "Leaving Rooms
// (Rejecting Invites)").
func (a *API) makeLeave(w http.ResponseWriter, r *http.Request, req *Request) error {
	ctx := r.Context()
	room, user := r.PathValue("roomId"), r.PathValue("userId")
	if err := userOfOrigin(user, req.Origin); err != nil {
		return err
	}
	v, err := a.residentRoom(ctx, room, req.Origin)
	if err != nil {
		return err
	}
	m, err := a.cfg.Reader.MembershipOf(ctx, room, user)
	if err != nil {
		return err
	}
	if m.Membership != "join" && m.Membership != "invite" && m.Membership != "knock" {
		return httpx.Forbidden(user + " is not in room " + room + " (membership " + strings.TrimSpace(m.Membership+" none") + ")")
	}
	content := cjson.ObjectValue(cjson.Member{Key: "membership", Value: cjson.StringValue("leave")})
	tmpl, _, err := memberTemplate(ctx, a.cfg.Reader, v, room, user, user, content, a.cfg.Now().UnixMilli(), a.cfg.ServerName)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"room_version": v.ID, "event": tmpl})
}

// sendLeave accepts a signed leave of its sender into the room (v2: the
// answer is an empty object).
func (a *API) sendLeave(w http.ResponseWriter, r *http.Request, req *Request) error {
	ctx := r.Context()
	room, eventID := r.PathValue("roomId"), r.PathValue("eventId")
	v, err := a.residentRoom(ctx, room, req.Origin)
	if err != nil {
		return err
	}
	ev, err := receivedMember(v, req.Body, room, eventID, req.Origin, "leave", httpx.BadJSON)
	if err != nil {
		return err
	}
	if err := a.acceptMember(ctx, req.Origin, room, ev, httpx.BadJSON); err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{})
}

// acceptMember verifies a member event sent directly (send_join,
// send_leave, send_knock) and has the room role accept it like a received
// PDU. An event the auth rules refuse is 403 M_FORBIDDEN; one whose
// signatures fail or that cannot be placed is answered with bad.
func (a *API) acceptMember(ctx context.Context, origin, room string, ev *event.Event, bad func(string) *httpx.Error) error {
	checked, errs, err := a.verify(ctx, []received{{ev: ev, room: room}})
	if err != nil {
		return err
	}
	if len(checked) == 0 {
		return bad("the event's signature check failed: " + errs[ev.ID()])
	}
	results, err := a.submit(ctx, origin, room, []*event.Event{checked[0].ev}, nil)
	if err != nil {
		return err
	}
	if outcome := results[ev.ID()]; outcome != "" {
		if strings.HasPrefix(outcome, roomserver.OutcomeRejected) || strings.HasPrefix(outcome, roomserver.OutcomeSoftFailed) {
			return httpx.Forbidden("the event is not allowed: " + outcome)
		}
		return bad("the event cannot be placed in the room: " + outcome)
	}
	return nil
}

// InviteStore keeps the invites of local users to rooms this server is not
// in (roomserver.Invites).
type InviteStore interface {
	Receive(ctx context.Context, inv *roomserver.RemoteInvite) error
}

// inviteBody is the body of /v2/invite.
type inviteBody struct {
	RoomVersion     string            `json:"room_version"`
	Event           json.RawMessage   `json:"event"`
	InviteRoomState []json.RawMessage `json:"invite_room_state"`
}

// invite countersigns another server's invite of a local user (spec
// "Inviting to a room", v2) after the checks the spec asks for, and keeps
// it for the user when this server is not in the room.
func (a *API) invite(w http.ResponseWriter, r *http.Request, req *Request) error {
	ctx := r.Context()
	room, eventID := r.PathValue("roomId"), r.PathValue("eventId")
	if a.cfg.Key == nil {
		return httpx.Forbidden("this server does not accept invites from other servers")
	}
	var body inviteBody
	if err := json.Unmarshal(req.Body, &body); err != nil {
		return httpx.BadJSON("the body is not a valid invite: " + err.Error())
	}
	if body.RoomVersion == "" || len(body.Event) == 0 {
		return httpx.MissingParam("room_version and event are required")
	}
	v, ok := roomversion.Lookup(body.RoomVersion)
	if !ok {
		return httpx.IncompatibleRoomVersion("this server does not support room version "+body.RoomVersion, body.RoomVersion)
	}
	ev, err := event.Parse(v, body.Event)
	if err != nil {
		return httpx.InvalidParam("the invite event is not valid: " + err.Error())
	}
	if ev.ID() != eventID || ev.RoomID() != room {
		return httpx.InvalidParam("the event's ID or room does not match the path")
	}
	sk, _ := ev.StateKey()
	if ev.Type() != "m.room.member" || ev.Membership() != "invite" {
		return httpx.InvalidParam("the event is not an invite")
	}
	if err := userOfOrigin(ev.Sender(), req.Origin); err != nil {
		return httpx.InvalidParam(err.Error())
	}
	if uid, err := id.ParseUserID(sk); err != nil || string(uid.Server()) != a.cfg.ServerName {
		return httpx.InvalidParam("the invited user " + sk + " is not a user of this server")
	}
	known, err := a.cfg.RoomVersion(ctx, room)
	if err != nil {
		return err
	}
	if known != nil {
		if err := a.checkACL(ctx, room, req.Origin); err != nil {
			return err
		}
	}
	// The invite and the state shared with it are checked alike.
	rcv := []received{{ev: ev, room: room}}
	hasCreate := false
	for _, raw := range body.InviteRoomState {
		se, err := event.Parse(v, raw)
		if err != nil {
			return httpx.InvalidParam("invite_room_state holds an event not formatted for room version " + v.ID + ": " + err.Error())
		}
		if se.RoomID() != room {
			return httpx.InvalidParam("invite_room_state holds an event of another room")
		}
		hasCreate = hasCreate || se.StateKeyIs("m.room.create", "")
		rcv = append(rcv, received{ev: se, room: room})
	}
	if !hasCreate {
		return httpx.InvalidParam("invite_room_state must hold the room's m.room.create event")
	}
	checked, errs, err := a.verify(ctx, rcv)
	if err != nil {
		return err
	}
	if len(checked) != len(rcv) {
		for _, rc := range rcv {
			if msg := errs[rc.ev.ID()]; msg != "" {
				return httpx.InvalidParam("signature check failed for " + rc.ev.ID() + ": " + msg)
			}
		}
		return httpx.InvalidParam("an event of the invite failed its signature check")
	}
	signed := checked[0].ev.Sign(a.cfg.ServerName, a.cfg.Key)
	// A room this server is in receives the invite as a PDU as well.
	resident := false
	if known != nil {
		if resident, err = a.cfg.Reader.ServerInRoom(ctx, room, a.cfg.ServerName); err != nil {
			return err
		}
	}
	if !resident {
		if a.cfg.Invites == nil {
			return httpx.Forbidden("this server does not accept invites to rooms it is not in")
		}
		state := make([]json.RawMessage, 0, len(body.InviteRoomState))
		for _, rc := range checked[1:] {
			state = append(state, rc.ev.Canonical())
		}
		if err := a.cfg.Invites.Receive(ctx, &roomserver.RemoteInvite{RoomID: room, UserID: sk, EventID: signed.ID(),
			RoomVersion: v.ID, Sender: ev.Sender(), Event: signed.Canonical(), RoomState: state}); err != nil {
			return err
		}
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"event": json.RawMessage(signed.Canonical())})
}

// joinRuleAndMembership returns the room's current join rule ("invite"
// when it has none) and the user's current membership ("" for none).
func (a *API) joinRuleAndMembership(ctx context.Context, v *roomversion.Version, room, user string) (rule, membership string, err error) {
	state, err := a.cfg.Reader.CurrentStateIDs(ctx, room)
	if err != nil {
		return "", "", err
	}
	rulesKey, memberKey := auth.StateKey{Type: "m.room.join_rules"}, auth.StateKey{Type: "m.room.member", StateKey: user}
	var ids []string
	for _, k := range []auth.StateKey{rulesKey, memberKey} {
		if sid, ok := state[k]; ok {
			ids = append(ids, sid)
		}
	}
	evs, err := a.cfg.Reader.PDUs(ctx, v, room, ids)
	if err != nil {
		return "", "", err
	}
	rule = "invite"
	if ev := evs[state[rulesKey]]; ev != nil {
		rule = ev.Content().Get("join_rule").StrOr("invite")
	}
	if ev := evs[state[memberKey]]; ev != nil {
		membership = ev.Membership()
	}
	return rule, membership, nil
}

// receivedMember parses the member event a server sent directly
// (send_join, send_leave, send_knock) and checks that it is the one the
// path names, a change of its sender's own membership to membership, and
// sent by a user of the origin. Failures are answered with bad.
func receivedMember(v *roomversion.Version, body []byte, room, eventID, origin, membership string, bad func(string) *httpx.Error) (*event.Event, error) {
	ev, err := event.Parse(v, body)
	if err != nil {
		return nil, bad("the " + membership + " event is not valid: " + err.Error())
	}
	if ev.ID() != eventID || ev.RoomID() != room {
		return nil, bad("the event's ID or room does not match the path")
	}
	sk, _ := ev.StateKey()
	if ev.Type() != "m.room.member" || ev.Membership() != membership || sk != ev.Sender() {
		return nil, bad("the event is not a " + membership + " of its sender")
	}
	if uid, err := id.ParseUserID(ev.Sender()); err != nil || string(uid.Server()) != origin {
		return nil, bad("the sender " + ev.Sender() + " is not a user of " + origin)
	}
	return ev, nil
}
