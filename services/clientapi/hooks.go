package clientapi

import (
	"context"
	"errors"

	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/services/roomserver"
)

// ProfileChanged updates the user's member event in every room they are
// joined to with their new displayname and avatar URL (spec: profile
// changes propagate into m.room.member). Rooms whose member event already
// says so are left alone. It keeps going past a failing room and returns
// the errors joined.
func (a *API) ProfileChanged(ctx context.Context, userID, displayName, avatarURL string) error {
	rooms, err := a.rooms.RoomsOf(ctx, userID, "join")
	if err != nil {
		return err
	}
	var errs []error
	for _, roomID := range rooms {
		info, err := a.rooms.Room(ctx, roomID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cur, err := a.rooms.StateEvent(ctx, info.Version, roomID, info.HeadSeq, "m.room.member", userID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c := cur.Content().Without("displayname", "avatar_url")
		if displayName != "" {
			c = c.With("displayname", cjson.StringValue(displayName))
		}
		if avatarURL != "" {
			c = c.With("avatar_url", cjson.StringValue(avatarURL))
		}
		sk := userID
		res, err := a.submit.Submit(ctx, &roomserver.Input{RoomID: roomID, Events: []roomserver.Template{{
			Type: "m.room.member", StateKey: &sk, Sender: userID, Content: c.Canonical(), SkipIfUnchanged: true,
		}}})
		if err := submitErr(res, err); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// LeaveAll makes a deactivated user leave (or decline the invites of)
// every room.
func (a *API) LeaveAll(ctx context.Context, userID string) error {
	var errs []error
	for _, membership := range []string{"join", "invite", "knock"} {
		rooms, err := a.rooms.RoomsOf(ctx, userID, membership)
		if err != nil {
			return err
		}
		for _, roomID := range rooms {
			c := cjson.ObjectValue(cjson.Member{Key: "membership", Value: cjson.StringValue("leave")})
			if _, err := a.sendMember(ctx, roomID, userID, userID, c); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
