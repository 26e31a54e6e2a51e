package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/roomversion"
	"github.com/axon-hs/axon/services/roomserver"
)

// maxKnockState bounds the events of knock_room_state kept for a knock:
// the identifying state is a handful of events.
const maxKnockState = 50

// Knock knocks on a room this server is not in for userID, through the
// first of servers that accepts it (spec "Knocking upon a room", as the
// knocking server): make_knock with every room version this server
// supports, the template checked and completed with content (reason,
// displayname, avatar_url), signed here, and send_knock. The knock is
// then kept with the room state the resident server answered (roomserver
// Invites, as a knock) and announced, so that the user's /sync shows the
// room under rooms.knock. It returns the knock's event ID. Errors of the
// resident servers are passed on as Matrix errors the client can act on.
func (j *Joiner) Knock(ctx context.Context, roomID, userID string, servers []string, content cjson.Value) (string, error) {
	if j.Invites == nil {
		return "", errors.New("federation: knocking needs a store of out-of-room memberships")
	}
	var knock *event.Event
	var state []json.RawMessage
	var via string
	err := j.throughServers(servers, "knock on", roomID, func(server string) error {
		var err error
		knock, state, err = j.knockVia(ctx, server, roomID, userID, content)
		via = server
		return err
	})
	if err != nil {
		return "", err
	}
	err = j.Invites.Receive(ctx, &roomserver.RemoteInvite{RoomID: roomID, UserID: userID, EventID: knock.ID(),
		RoomVersion: knock.Version().ID, Sender: userID, Event: knock.Canonical(), RoomState: state,
		Membership: "knock", Via: via})
	if err != nil {
		return "", err
	}
	return knock.ID(), nil
}

// knockVia runs the knock handshake with one resident server and returns
// the knock and the room state that came back, verified.
func (j *Joiner) knockVia(ctx context.Context, server, roomID, userID string, content cjson.Value) (*event.Event, []json.RawMessage, error) {
	v, proto, err := j.makeTemplate(ctx, server, "knock", roomID, userID, true)
	if err != nil {
		return nil, nil, err
	}
	if !v.Knocking {
		return nil, nil, httpx.Forbidden("the room has version " + v.ID + ", which has no knocking")
	}
	knock, err := j.signMember(v, proto, "knock", content, true)
	if err != nil {
		return nil, nil, fmt.Errorf("federation: %s: %w", server, err)
	}
	var sk struct {
		KnockRoomState []json.RawMessage `json:"knock_room_state"`
	}
	path := "/_matrix/federation/v1/send_knock/" + url.PathEscape(roomID) + "/" + url.PathEscape(knock.ID())
	if err := j.Client.SendJSON(ctx, server, http.MethodPut, path, json.RawMessage(knock.Canonical()), &sk); err != nil {
		return nil, nil, remoteError(err)
	}
	return knock, j.knockState(ctx, v, roomID, sk.KnockRoomState), nil
}

// knockState keeps the state events of a send_knock answer that are of
// the room and pass their signature checks (spec: the others are not
// shown to clients), at most maxKnockState.
func (j *Joiner) knockState(ctx context.Context, v *roomversion.Version, roomID string, raws []json.RawMessage) []json.RawMessage {
	var evs []received
	for _, raw := range raws {
		if len(evs) == maxKnockState {
			break
		}
		ev, err := event.Parse(v, raw)
		if err != nil || ev.RoomID() != roomID {
			continue
		}
		if _, ok := ev.StateKey(); !ok {
			continue
		}
		evs = append(evs, received{ev: ev, room: roomID})
	}
	ok, _, err := verifyEvents(ctx, j.Keys, evs)
	if err != nil {
		// The knock is in the room: only its description is lost.
		if j.Logger != nil {
			j.Logger.Info("federation: the room state of a knock could not be checked", "room_id", roomID, "err", err)
		}
		return []json.RawMessage{}
	}
	out := make([]json.RawMessage, 0, len(ok))
	for _, rc := range ok {
		out = append(out, rc.ev.Canonical())
	}
	return out
}
