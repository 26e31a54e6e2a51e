package clientapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/services/roomserver"
)

// knockByIDOrAlias knocks on a room (spec "Knocking on rooms"): for a room
// this server is in, the knock is an ordinary member event; for another,
// it goes through a server that is (Config.RemoteKnock), the servers named
// by via (and the older server_name), the room ID's server, or those an
// alias lookup gave. Guests may not knock.
func (a *API) knockByIDOrAlias(w http.ResponseWriter, r *http.Request, d Device) error {
	if d.IsGuest {
		return httpx.GuestAccessForbidden("guests cannot knock on rooms")
	}
	var body reasonBody
	if err := optionalBody(r, &body); err != nil {
		return err
	}
	roomID, via, err := a.roomTarget(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	c, err := a.knockContent(ctx, d.UserID, body.Reason)
	if err != nil {
		return err
	}
	if err := a.knock(ctx, roomID, d.UserID, via, c); err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]string{"room_id": roomID})
}

// knock sends the user's knock on roomID, through via when this server is
// not in the room.
func (a *API) knock(ctx context.Context, roomID, userID string, via []string, c cjson.Value) error {
	info, err := a.rooms.Room(ctx, roomID)
	if errors.Is(err, roomserver.ErrNotFound) {
		return a.knockRemote(ctx, roomID, userID, via, c)
	}
	if err != nil {
		return err
	}
	if a.cfg.RemoteKnock != nil {
		// A room every local user has left goes on elsewhere (see join).
		others, err := a.staleRoomServers(ctx, roomID)
		if err != nil {
			return err
		}
		if len(others) > 0 {
			return a.knockRemote(ctx, roomID, userID, append(via, others...), c)
		}
	}
	if err := a.mayKnock(ctx, info, userID); err != nil {
		return err
	}
	_, err = a.sendMember(ctx, roomID, userID, userID, c)
	return err
}

// mayKnock refuses, with the spec's 403, a knock that the room cannot
// take: its version has no knocking, its join rule is not knock (or
// knock_restricted), or the user is joined, invited or banned. The auth
// rules check the knock again when it is sent.
func (a *API) mayKnock(ctx context.Context, info roomserver.RoomInfo, userID string) error {
	v := info.Version
	if !v.Knocking {
		return httpx.Forbidden("room version " + v.ID + " has no knocking")
	}
	rule := "invite"
	jr, err := a.rooms.StateEvent(ctx, v, info.ID, info.HeadSeq, "m.room.join_rules", "")
	if err != nil && !errors.Is(err, roomserver.ErrNotFound) {
		return err
	}
	if jr != nil {
		rule = jr.Content().Get("join_rule").StrOr("invite")
	}
	m, err := a.rooms.MembershipOf(ctx, info.ID, userID)
	if err != nil {
		return err
	}
	switch m.Membership {
	case "ban":
		return httpx.Forbidden("you are banned from the room " + info.ID)
	case "join":
		return httpx.Forbidden("you are already in the room " + info.ID)
	case "invite":
		return httpx.Forbidden("you are already invited to the room " + info.ID + ": join it instead")
	}
	if rule != "knock" && (rule != "knock_restricted" || !v.KnockRestricted) {
		return httpx.Forbidden("the room " + info.ID + " does not allow knocking (join rule " + rule + ")")
	}
	return nil
}

// knockRemote knocks on a room this server is not in, through the servers
// given and the room ID's server (room IDs before version 12 name one).
func (a *API) knockRemote(ctx context.Context, roomID, userID string, via []string, c cjson.Value) error {
	if a.cfg.RemoteKnock == nil {
		return httpx.NotFound("this server does not know the room " + roomID)
	}
	servers := a.remoteServers(roomID, via)
	if len(servers) == 0 {
		return httpx.NotFound("this server does not know the room " + roomID + " and no server to knock through was given")
	}
	_, err := a.cfg.RemoteKnock(ctx, roomID, userID, servers, c)
	return err
}

// knockContent is the content of the user's knock: membership knock, the
// reason given, and the user's profile (as for a join).
func (a *API) knockContent(ctx context.Context, userID string, reason *string) (cjson.Value, error) {
	c := cjson.ObjectValue(cjson.Member{Key: "membership", Value: cjson.StringValue("knock")})
	if a.profile != nil {
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
	if reason != nil {
		c = c.With("reason", cjson.StringValue(*reason))
	}
	return c, nil
}
