package federation

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/matrix/auth"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/id"
	"github.com/axon-hs/axon/services/roomserver"
)

// inviteStateTypes are the state events shared with an invited server to
// identify the room (spec "Stripped state"), besides the inviter's
// membership.
var inviteStateTypes = []string{"m.room.create", "m.room.join_rules", "m.room.canonical_alias", "m.room.avatar",
	"m.room.name", "m.room.encryption", "m.room.topic"}

// Invite invites a user of another server to a room this server is in
// (spec "Inviting to a room", as the inviting server): the invite is built
// on the room's current state and signed here, countersigned by the
// invitee's server (/v2/invite, which also gets the room's identifying
// state), and then persisted by the room role like any event, which sends
// it to the room's servers. It returns the invite's event ID.
func (j *Joiner) Invite(ctx context.Context, roomID, sender, target string, content cjson.Value) (string, error) {
	uid, err := id.ParseUserID(target)
	if err != nil {
		return "", httpx.InvalidParam("user_id: " + err.Error())
	}
	server := string(uid.Server())
	v, err := j.Reader.Version(ctx, roomID)
	if err != nil {
		return "", err
	}
	tmpl, authState, err := memberTemplate(ctx, j.Reader, v, roomID, sender, target, content, time.Now().UnixMilli(), j.ServerName)
	if err != nil {
		return "", err
	}
	if tmpl, err = withEventID(v, tmpl, j.ServerName); err != nil {
		return "", err
	}
	ev, err := event.Build(v, tmpl, j.ServerName, j.Key)
	if err != nil {
		return "", err
	}
	// The invitee's server is told only of an invite the room allows.
	if err := auth.Check(ev, authState); err != nil {
		return "", httpx.Forbidden("the invite is not allowed: " + err.Error())
	}
	roomState, err := identifyingState(ctx, j.Reader, v, roomID, sender)
	if err != nil {
		return "", err
	}
	var answer struct {
		Event json.RawMessage `json:"event"`
	}
	path := "/_matrix/federation/v2/invite/" + url.PathEscape(roomID) + "/" + url.PathEscape(ev.ID())
	body := map[string]any{"room_version": v.ID, "event": json.RawMessage(ev.Canonical()), "invite_room_state": roomState}
	if err := j.Client.SendJSON(ctx, server, http.MethodPut, path, body, &answer); err != nil {
		return "", remoteError(err)
	}
	signed, err := event.Parse(v, answer.Event)
	if err != nil || signed.ID() != ev.ID() || !signed.HasSignatureFrom(server) {
		return "", fmt.Errorf("federation: %s answered the invite with another event or without its signature", server)
	}
	ok, errs, err := verifyEvents(ctx, j.Keys, []received{{ev: signed, room: roomID}})
	if err != nil {
		return "", err
	}
	if len(ok) == 0 {
		return "", fmt.Errorf("federation: the invite countersigned by %s does not verify: %s", server, errs[signed.ID()])
	}
	res, err := j.Submit(ctx, &roomserver.Input{RoomID: roomID, PDUs: []json.RawMessage{signed.Canonical()}, Origin: j.ServerName})
	if err != nil {
		return "", err
	}
	if res.Error != nil {
		return "", httpx.New(res.Error.Code, res.Error.Message)
	}
	if outcome := res.PDUs[signed.ID()]; outcome != "" {
		return "", httpx.Forbidden("the invite was not accepted: " + outcome)
	}
	return signed.ID(), nil
}

// RejectInvite rejects a local user's invite to a room this server is not
// in (spec "Leaving Rooms (Rejecting Invites)"): make_leave and send_leave
// v2 through the inviting server, then the invite is retired and the
// user's /sync shows the room left. The room ID's server, when it names
// one, is tried after the inviter's.
//
// A knock on such a room is rescinded the same way, through the server
// the knock went through.
func (j *Joiner) RejectInvite(ctx context.Context, roomID, userID string, reason *string) error {
	inv, err := j.Invites.Get(ctx, roomID, userID)
	if err != nil {
		return err
	}
	if inv == nil {
		return httpx.NotFound("there is no invite of " + userID + " to " + roomID)
	}
	var servers []string
	if inv.IsKnock() {
		if inv.Via != "" {
			servers = append(servers, inv.Via)
		}
	} else if sid, err := id.ParseUserID(inv.Sender); err == nil {
		servers = append(servers, string(sid.Server()))
	}
	if rid, err := id.ParseRoomID(roomID); err == nil {
		if s, ok := rid.Server(); ok && !slices.Contains(servers, string(s)) {
			servers = append(servers, string(s))
		}
	}
	var leave *event.Event
	err = j.throughServers(servers, "leave", roomID, func(server string) error {
		var err error
		leave, err = j.leaveVia(ctx, server, roomID, userID, reason)
		return err
	})
	if err != nil {
		return err
	}
	return j.Invites.Retire(ctx, roomID, userID, leave.ID(), leave.Canonical())
}

// leaveVia runs make_leave and send_leave with one resident server and
// returns the leave event it accepted.
func (j *Joiner) leaveVia(ctx context.Context, server, roomID, userID string, reason *string) (*event.Event, error) {
	v, proto, err := j.makeTemplate(ctx, server, "leave", roomID, userID, false)
	if err != nil {
		return nil, err
	}
	content := cjson.ObjectValue()
	if reason != nil {
		content = content.With("reason", cjson.StringValue(*reason))
	}
	leave, err := j.signMember(v, proto, "leave", content, false)
	if err != nil {
		return nil, fmt.Errorf("federation: %s: %w", server, err)
	}
	path := "/_matrix/federation/v2/send_leave/" + url.PathEscape(roomID) + "/" + url.PathEscape(leave.ID())
	if err := j.Client.SendJSON(ctx, server, http.MethodPut, path, json.RawMessage(leave.Canonical()), nil); err != nil {
		return nil, remoteError(err)
	}
	return leave, nil
}
