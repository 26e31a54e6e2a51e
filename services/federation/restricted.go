package federation

import (
	"context"
	"net/http"
	"strings"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/matrix/auth"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/id"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// Error codes of restricted joins (spec "Restricted rooms").
const (
	codeUnableToAuthorise = "M_UNABLE_TO_AUTHORISE_JOIN"
	codeUnableToGrant     = "M_UNABLE_TO_GRANT_JOIN"
)

// restrictedJoinRule reports whether rule is a restricted join rule of
// the room version.
func restrictedJoinRule(v *roomversion.Version, rule string) bool {
	return (rule == "restricted" && v.RestrictedJoins) || (rule == "knock_restricted" && v.KnockRestricted)
}

// authoriseRestricted decides a join of user to a restricted room as its
// resident server (spec "Restricted rooms"): the user must be joined to
// one of the rooms the join rule allows, which this server must be in to
// tell (400 M_UNABLE_TO_AUTHORISE_JOIN when it is in none of them; 403
// when the user is in none), and a user of this server joined to the room
// must be allowed to invite, to authorise the join (400
// M_UNABLE_TO_GRANT_JOIN otherwise: another server may). It returns that
// user, for join_authorised_via_users_server.
func (a *API) authoriseRestricted(ctx context.Context, v *roomversion.Version, room, user string) (string, error) {
	state, err := a.cfg.Reader.CurrentStateIDs(ctx, room)
	if err != nil {
		return "", err
	}
	keys := []auth.StateKey{{Type: "m.room.join_rules"}, {Type: "m.room.create"}, {Type: "m.room.power_levels"}}
	var ids []string
	for _, k := range keys {
		if sid, ok := state[k]; ok {
			ids = append(ids, sid)
		}
	}
	evs, err := a.cfg.Reader.PDUs(ctx, v, room, ids)
	if err != nil {
		return "", err
	}
	rules := evs[state[keys[0]]]
	if rules == nil {
		return "", httpx.Forbidden(room + " has no join rules")
	}
	known, allowed := false, false
	allow := rules.Content().Get("allow")
	for i := range allow.Len() {
		cond := allow.Index(i)
		other := cond.Get("room_id").StrOr("")
		if cond.Get("type").StrOr("") != "m.room_membership" || other == "" {
			continue
		}
		ov, err := a.cfg.RoomVersion(ctx, other)
		if err != nil {
			return "", err
		}
		if ov == nil {
			continue
		}
		if in, err := a.cfg.Reader.ServerInRoom(ctx, other, a.cfg.ServerName); err != nil {
			return "", err
		} else if !in {
			continue // this server's copy of that room may be stale
		}
		known = true
		m, err := a.cfg.Reader.MembershipOf(ctx, other, user)
		if err != nil {
			return "", err
		}
		if m.Membership == "join" {
			allowed = true
			break
		}
	}
	switch {
	case allowed:
	case !known:
		return "", httpx.New(codeUnableToAuthorise, "this server is in none of the rooms that "+room+" lets join").WithStatus(http.StatusBadRequest)
	default:
		return "", httpx.Forbidden(user + " is in none of the rooms that " + room + " lets join")
	}
	pl, err := auth.NewPowerLevels(evs[state[keys[1]]], evs[state[keys[2]]])
	if err != nil {
		return "", err
	}
	members, err := a.cfg.Reader.Members(ctx, room, "join")
	if err != nil {
		return "", err
	}
	for _, m := range members {
		if uid, err := id.ParseUserID(m.UserID); err == nil && string(uid.Server()) == a.cfg.ServerName && pl.User(m.UserID) >= pl.Invite() {
			return m.UserID, nil
		}
	}
	return "", httpx.New(codeUnableToGrant, "no user of this server in "+room+" may authorise the join; try another server").WithStatus(http.StatusBadRequest)
}

// authorisedBy returns the local user a join names in
// join_authorised_via_users_server ("" for none or a user of another
// server).
func (a *API) authorisedBy(content cjson.Value) string {
	u := content.Get("join_authorised_via_users_server").StrOr("")
	if !strings.HasSuffix(u, ":"+a.cfg.ServerName) {
		return ""
	}
	if uid, err := id.ParseUserID(u); err != nil || string(uid.Server()) != a.cfg.ServerName {
		return ""
	}
	return u
}
