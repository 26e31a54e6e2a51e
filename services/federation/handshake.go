package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// makeTemplate asks server for a template of userID's membership in
// roomID (kind is "join", "leave" or "knock": make_join, make_leave,
// make_knock), naming every room version this server supports when
// offerVersions, and checks that it is a member event of the room sent by
// the user about the user. It returns the room's version and the
// template.
func (j *Joiner) makeTemplate(ctx context.Context, server, kind, roomID, userID string, offerVersions bool) (*roomversion.Version, cjson.Value, error) {
	path := "/_matrix/federation/v1/make_" + kind + "/" + url.PathEscape(roomID) + "/" + url.PathEscape(userID)
	if offerVersions {
		vers := url.Values{}
		for _, v := range roomversion.IDs() {
			vers.Add("ver", v)
		}
		path += "?" + vers.Encode()
	}
	var mt struct {
		RoomVersion string          `json:"room_version"`
		Event       json.RawMessage `json:"event"`
	}
	if err := j.Client.GetJSON(ctx, server, path, &mt); err != nil {
		return nil, cjson.Value{}, remoteError(err)
	}
	if mt.RoomVersion == "" {
		mt.RoomVersion = "1"
	}
	v, ok := roomversion.Lookup(mt.RoomVersion)
	if !ok {
		return nil, cjson.Value{}, httpx.UnsupportedRoomVersion("the room has version " + mt.RoomVersion + ", which this server does not support")
	}
	proto, err := checkTemplate(v, mt.Event, roomID, userID, kind)
	if err != nil {
		return nil, cjson.Value{}, fmt.Errorf("federation: %s answered make_%s with %w", server, kind, err)
	}
	return v, proto, nil
}

// checkTemplate parses a make_join, make_leave or make_knock template and
// checks what the spec asks of it: a member event of the room, sent by the
// user about the user, with the membership asked for.
func checkTemplate(v *roomversion.Version, raw json.RawMessage, roomID, userID, membership string) (cjson.Value, error) {
	proto, err := cjson.Parse(raw, event.JSONRules(v))
	if err != nil || proto.Kind() != cjson.Object {
		return cjson.Value{}, errors.New("an invalid template")
	}
	if proto.Get("type").StrOr("") != "m.room.member" || proto.Get("room_id").StrOr("") != roomID ||
		proto.Get("sender").StrOr("") != userID || proto.Get("state_key").StrOr("") != userID ||
		proto.Get("content").Kind() != cjson.Object || proto.Get("content").Get("membership").StrOr("") != membership {
		return cjson.Value{}, errors.New("a template that is not a " + membership + " of " + userID + " in " + roomID)
	}
	return proto, nil
}

// signMember completes a membership template and signs it here: the
// content is the template's (when keepTemplate: for a join, what the
// resident server put there, such as join_authorised_via_users_server)
// with content's fields but membership, then membership; a fresh
// timestamp, and an event ID where the room version needs one.
func (j *Joiner) signMember(v *roomversion.Version, proto cjson.Value, membership string, content cjson.Value, keepTemplate bool) (*event.Event, error) {
	merged := cjson.ObjectValue()
	if c := proto.Get("content"); keepTemplate && c.Kind() == cjson.Object {
		merged = c
	}
	for _, m := range content.Members() {
		if m.Key != "membership" && m.Key != "join_authorised_via_users_server" {
			merged = merged.With(m.Key, m.Value)
		}
	}
	proto = proto.With("content", merged.With("membership", cjson.StringValue(membership))).
		With("origin_server_ts", cjson.IntValue(time.Now().UnixMilli())).Without("signatures", "hashes", "unsigned")
	proto, err := withEventID(v, proto, j.ServerName)
	if err != nil {
		return nil, err
	}
	ev, err := event.Build(v, proto, j.ServerName, j.Key)
	if err != nil {
		return nil, fmt.Errorf("federation: the %s template does not make a valid event: %w", membership, err)
	}
	return ev, nil
}

// throughServers runs try with each of servers in turn, this server and
// repeats left out, until one succeeds. It returns the last failure, or
// none (an M_NOT_FOUND naming what) when no server was tried.
func (j *Joiner) throughServers(servers []string, what, roomID string, try func(server string) error) error {
	var last error = httpx.NotFound("no server to " + what + " " + roomID + " through")
	tried := map[string]bool{}
	for _, server := range servers {
		if server == j.ServerName || tried[server] {
			continue
		}
		tried[server] = true
		err := try(server)
		if err == nil {
			return nil
		}
		if j.Logger != nil {
			j.Logger.Info("federation: a membership handshake through a server failed", "what", what, "destination", server,
				"room_id", roomID, "err", err)
		}
		last = err
	}
	return last
}
