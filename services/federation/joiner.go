package federation

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/id"
	"github.com/axon-hs/axon/matrix/keys"
	"github.com/axon-hs/axon/matrix/roomversion"
	"github.com/axon-hs/axon/services/federation/fedclient"
	"github.com/axon-hs/axon/services/keyserver"
	"github.com/axon-hs/axon/services/roomserver"
)

// Joiner joins local users to rooms this server is not in, through a
// server that is (spec "Joining Rooms", as the joining server): make_join
// for a template, the join signed here, send_join for the room's state,
// every event of the answer checked (signatures, hashes), and the room
// created from that state by the room role (roomserver Input.Join).
type Joiner struct {
	ServerName string
	Key        *keys.SigningKey
	Client     *fedclient.Client
	Keys       *keyserver.Service
	Submit     func(ctx context.Context, in *roomserver.Input) (roomserver.Result, error)
	// Reader reads the rooms this server invites to.
	Reader *roomserver.Reader
	// Invites keeps the invites of local users to rooms this server is
	// not in: a join or a rejection retires them.
	Invites *roomserver.Invites
	Logger  *slog.Logger
}

// Join joins userID to roomID through the first of servers that helps,
// with content (membership join plus profile fields), and returns the join
// event's ID. Errors from the resident servers are passed on as Matrix
// errors the client can act on.
//
// An invite of the user from another server puts the inviter's server
// first, and the join retires it.
func (j *Joiner) Join(ctx context.Context, roomID, userID string, servers []string, content cjson.Value) (string, error) {
	var inv *roomserver.RemoteInvite
	if j.Invites != nil {
		var err error
		if inv, err = j.Invites.Get(ctx, roomID, userID); err != nil {
			return "", err
		}
		if inv != nil {
			if uid, err := id.ParseUserID(inv.Sender); err == nil {
				servers = append([]string{string(uid.Server())}, servers...)
			}
		}
	}
	var eventID string
	err := j.throughServers(servers, "join", roomID, func(server string) error {
		var err error
		eventID, err = j.joinVia(ctx, server, roomID, userID, content)
		return err
	})
	if err != nil {
		return "", err
	}
	if inv != nil {
		if err := j.Invites.Retire(ctx, roomID, userID, "", nil); err != nil {
			return "", err
		}
	}
	return eventID, nil
}

// joinVia runs the handshake with one resident server.
func (j *Joiner) joinVia(ctx context.Context, server, roomID, userID string, content cjson.Value) (string, error) {
	v, proto, err := j.makeTemplate(ctx, server, "join", roomID, userID, true)
	if err != nil {
		return "", err
	}
	join, err := j.signMember(v, proto, "join", content, true)
	if err != nil {
		return "", fmt.Errorf("federation: %s: %w", server, err)
	}
	var sj struct {
		State     []json.RawMessage `json:"state"`
		AuthChain []json.RawMessage `json:"auth_chain"`
		Event     json.RawMessage   `json:"event"`
	}
	path := "/_matrix/federation/v2/send_join/" + url.PathEscape(roomID) + "/" + url.PathEscape(join.ID())
	if err := j.Client.SendJSON(ctx, server, http.MethodPut, path, join.Canonical(), &sj); err != nil {
		return "", remoteError(err)
	}
	// A restricted join comes back signed by the resident server too.
	if len(sj.Event) > 0 {
		if signed, err := event.Parse(v, sj.Event); err == nil && signed.ID() == join.ID() {
			join = signed
		}
	}
	state, err := j.checked(ctx, v, roomID, sj.State)
	if err != nil {
		return "", err
	}
	chain, err := j.checked(ctx, v, roomID, sj.AuthChain)
	if err != nil {
		return "", err
	}
	in := &roomserver.Input{RoomID: roomID, RoomVersion: v.ID, Origin: server,
		Join: &roomserver.RemoteJoin{Event: join.Canonical(), State: state, AuthChain: chain}}
	res, err := j.Submit(ctx, in)
	if err != nil {
		return "", err
	}
	if res.Error == nil && res.PDUs[join.ID()] == roomserver.OutcomeMissingPrev {
		// A room this server knows from before: what happened since it
		// left comes first.
		if missed := j.missedEvents(ctx, server, v, roomID, join.ID()); len(missed) > 0 {
			in.Join.Missed = missed
			if res, err = j.Submit(ctx, in); err != nil {
				return "", err
			}
		}
	}
	if res.Error != nil {
		return "", httpx.New(res.Error.Code, res.Error.Message)
	}
	if outcome, ok := res.PDUs[join.ID()]; ok && outcome != "" {
		return "", httpx.Forbidden("the join was not accepted: " + outcome)
	}
	return join.ID(), nil
}

// missedEvents asks server for the events between this server's forward
// extremities of a room it knows and the join (/get_missing_events, at
// most maxMissingEvents), verified, oldest first.
func (j *Joiner) missedEvents(ctx context.Context, server string, v *roomversion.Version, roomID, joinID string) []json.RawMessage {
	info, err := j.Reader.Room(ctx, roomID)
	if err != nil {
		return nil
	}
	body := map[string]any{"earliest_events": info.Extremities, "latest_events": []string{joinID},
		"limit": maxMissingEvents, "min_depth": 0}
	var resp struct {
		Events []json.RawMessage `json:"events"`
	}
	path := "/_matrix/federation/v1/get_missing_events/" + url.PathEscape(roomID)
	if err := j.Client.SendJSON(ctx, server, http.MethodPost, path, body, &resp); err != nil {
		if j.Logger != nil {
			j.Logger.Info("federation: get_missing_events for a rejoin failed", "destination", server, "room_id", roomID, "err", err)
		}
		return nil
	}
	missed, err := j.checked(ctx, v, roomID, resp.Events)
	if err != nil {
		return nil
	}
	return missed
}

// checked verifies the events of a send_join answer and returns those that
// pass (redacted when only their content hash failed).
func (j *Joiner) checked(ctx context.Context, v *roomversion.Version, roomID string, raws []json.RawMessage) ([]json.RawMessage, error) {
	var evs []received
	for _, raw := range raws {
		ev, err := event.Parse(v, raw)
		if err != nil || ev.RoomID() != roomID {
			continue
		}
		evs = append(evs, received{ev: ev, room: roomID})
	}
	ok, _, err := verifyEvents(ctx, j.Keys, evs)
	if err != nil {
		return nil, err
	}
	out := make([]json.RawMessage, len(ok))
	for i, rc := range ok {
		out[i] = rc.ev.Canonical()
	}
	return out, nil
}

// remoteError passes a resident server's Matrix error on to the client
// (a 403 for a private room, an incompatible version); anything else is a
// failure of the join.
func remoteError(err error) error {
	var fe *fedclient.Error
	if errors.As(err, &fe) && fe.Code != "" && strings.HasPrefix(fe.Code, "M_") && fe.Status >= 400 && fe.Status < 500 {
		return httpx.New(fe.Code, fe.Destination+": "+fe.Message).WithStatus(fe.Status)
	}
	return err
}

// withEventID gives an event of room versions 1 and 2, whose IDs are not
// hashes, a fresh ID of this server and its origin.
func withEventID(v *roomversion.Version, proto cjson.Value, server string) (cjson.Value, error) {
	if v.HashEventIDs() {
		return proto, nil
	}
	var rnd [12]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return cjson.Value{}, err
	}
	return proto.With("event_id", cjson.StringValue("$"+base64.RawURLEncoding.EncodeToString(rnd[:])+":"+server)).
		With("origin", cjson.StringValue(server)), nil
}
