package clientapi

import (
	"encoding/json"
	"net/http"
	"slices"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/id"
	"github.com/axon-hs/axon/matrix/roomversion"
	"github.com/axon-hs/axon/services/roomserver"
)

type createRoomRequest struct {
	Visibility                string            `json:"visibility"`
	RoomAliasName             string            `json:"room_alias_name"`
	Name                      *string           `json:"name"`
	Topic                     *string           `json:"topic"`
	Invite                    []string          `json:"invite"`
	Invite3PID                []json.RawMessage `json:"invite_3pid"`
	RoomVersion               string            `json:"room_version"`
	CreationContent           json.RawMessage   `json:"creation_content"`
	InitialState              []stateEvent      `json:"initial_state"`
	Preset                    string            `json:"preset"`
	IsDirect                  bool              `json:"is_direct"`
	PowerLevelContentOverride json.RawMessage   `json:"power_level_content_override"`
}

type stateEvent struct {
	Type     string          `json:"type"`
	StateKey string          `json:"state_key"`
	Content  json.RawMessage `json:"content"`
}

// maxInvites bounds the invite list of one createRoom.
const maxInvites = 100

func (a *API) createRoom(w http.ResponseWriter, r *http.Request, d Device) error {
	if d.IsGuest {
		return httpx.GuestAccessForbidden("guests cannot create rooms")
	}
	var req createRoomRequest
	if err := httpx.DecodeJSON(r, 0, &req); err != nil {
		return err
	}
	vid := req.RoomVersion
	if vid == "" {
		vid = a.cfg.DefaultRoomVersion
	}
	v, ok := roomversion.Lookup(vid)
	if !ok {
		return httpx.UnsupportedRoomVersion("this server does not support room version " + vid)
	}
	switch req.Visibility {
	case "", "private", "public":
	default:
		return httpx.BadJSON("visibility must be public or private")
	}
	preset := req.Preset
	switch preset {
	case "":
		preset = "private_chat"
		if req.Visibility == "public" {
			preset = "public_chat"
		}
	case "private_chat", "public_chat", "trusted_private_chat":
	default:
		return httpx.BadJSON("unknown preset " + preset)
	}
	if len(req.Invite) > maxInvites {
		return httpx.InvalidParam("too many invites")
	}
	for _, u := range req.Invite {
		if _, err := id.ParseUserID(u); err != nil {
			return httpx.InvalidParam("invite: " + err.Error())
		}
	}
	if len(req.Invite3PID) > 0 {
		return httpx.New(httpx.CodeUnrecognized, "third-party invites are not supported by this server").WithStatus(http.StatusBadRequest)
	}
	rules := event.JSONRules(v)
	parseObj := func(what string, raw json.RawMessage) (cjson.Value, error) {
		if len(raw) == 0 || string(raw) == "null" {
			return cjson.ObjectValue(), nil
		}
		val, err := cjson.Parse(raw, rules)
		if err != nil || val.Kind() != cjson.Object {
			return cjson.Value{}, httpx.BadJSON(what + " must be a JSON object valid in room version " + v.ID)
		}
		return val, nil
	}
	creation, err := parseObj("creation_content", req.CreationContent)
	if err != nil {
		return err
	}
	plOverride, err := parseObj("power_level_content_override", req.PowerLevelContentOverride)
	if err != nil {
		return err
	}
	// The alias is reserved before the room exists, so two rooms never
	// race for it; it is released if the room cannot be created.
	var alias string
	if req.RoomAliasName != "" {
		alias = "#" + req.RoomAliasName + ":" + a.cfg.ServerName
		if _, err := id.ParseRoomAlias(alias); err != nil {
			return httpx.InvalidParam("room_alias_name: " + err.Error())
		}
	}

	// The create event.
	creation = creation.Without("creator", "room_version").With("room_version", cjson.StringValue(v.ID))
	if v.CreatorInContent {
		creation = creation.With("creator", cjson.StringValue(d.UserID))
	}
	if preset == "trusted_private_chat" && v.PrivilegedCreators && len(req.Invite) > 0 {
		extra, _ := creation.Get("additional_creators").Strings()
		for _, u := range req.Invite {
			if !slices.Contains(extra, u) && u != d.UserID {
				extra = append(extra, u)
			}
		}
		creation = creation.With("additional_creators", cjson.StringArray(extra))
	}
	create, roomID, err := roomserver.NewCreateEvent(v, d.UserID, creation, a.cfg.ServerName, a.cfg.Key, a.cfg.Now(), a.cfg.Rand)
	if err != nil {
		return httpx.BadJSON("creation_content does not make a valid create event: " + err.Error())
	}
	if alias != "" {
		if err := a.reserveAlias(r.Context(), alias, roomID, d.UserID); err != nil {
			return err
		}
	}

	str := func(s string) *string { return &s }
	var evs []roomserver.Template
	add := func(typ string, sk *string, content cjson.Value) {
		evs = append(evs, roomserver.Template{Type: typ, StateKey: sk, Sender: d.UserID, Content: content.Canonical()})
	}
	member, err := a.memberContent(r.Context(), d.UserID, "join", nil)
	if err != nil {
		return err
	}
	add("m.room.member", str(d.UserID), member)
	add("m.room.power_levels", str(""), defaultPowerLevels(v, d.UserID, preset, req.Invite, plOverride))
	if alias != "" {
		add("m.room.canonical_alias", str(""), cjson.ObjectValue(cjson.Member{Key: "alias", Value: cjson.StringValue(alias)}))
	}
	joinRule, guest := "invite", "can_join"
	if preset == "public_chat" {
		joinRule, guest = "public", "forbidden"
	}
	add("m.room.join_rules", str(""), cjson.ObjectValue(cjson.Member{Key: "join_rule", Value: cjson.StringValue(joinRule)}))
	add("m.room.history_visibility", str(""), cjson.ObjectValue(cjson.Member{Key: "history_visibility", Value: cjson.StringValue("shared")}))
	add("m.room.guest_access", str(""), cjson.ObjectValue(cjson.Member{Key: "guest_access", Value: cjson.StringValue(guest)}))
	for i, se := range req.InitialState {
		if se.Type == "" {
			return a.undoAlias(r, alias, httpx.BadJSON("initial_state entry without a type"))
		}
		if se.Type == "m.room.create" || se.Type == "m.room.member" {
			return a.undoAlias(r, alias, httpx.BadJSON("initial_state cannot set "+se.Type))
		}
		c, err := parseObj("initial_state content", se.Content)
		if err != nil {
			return a.undoAlias(r, alias, err)
		}
		_ = i
		add(se.Type, str(se.StateKey), c)
	}
	if req.Name != nil {
		add("m.room.name", str(""), cjson.ObjectValue(cjson.Member{Key: "name", Value: cjson.StringValue(*req.Name)}))
	}
	if req.Topic != nil {
		add("m.room.topic", str(""), cjson.ObjectValue(cjson.Member{Key: "topic", Value: cjson.StringValue(*req.Topic)}))
	}
	for _, u := range req.Invite {
		c := cjson.ObjectValue(cjson.Member{Key: "membership", Value: cjson.StringValue("invite")})
		if req.IsDirect {
			c = c.With("is_direct", cjson.BoolValue(true))
		}
		add("m.room.member", str(u), c)
	}
	res, err := a.submit.Submit(r.Context(), &roomserver.Input{RoomID: roomID, RoomVersion: v.ID, Create: create.Canonical(), Events: evs})
	if err := submitErr(res, err); err != nil {
		if httpx.CodeOf(err) == httpx.CodeForbidden {
			// The request's own state (power levels, initial_state)
			// made one of the room's first events unauthorised.
			err = httpx.InvalidRoomState("the requested room state is not valid: " + res.Error.Message)
		}
		return a.undoAlias(r, alias, err)
	}
	if req.Visibility == "public" {
		if err := a.setVisibility(r.Context(), roomID, true); err != nil {
			return err
		}
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]string{"room_id": roomID})
}

// defaultPowerLevels is the power levels content of a new room.
func defaultPowerLevels(v *roomversion.Version, creator, preset string, invites []string, override cjson.Value) cjson.Value {
	users := cjson.ObjectValue()
	if !v.PrivilegedCreators {
		users = users.With(creator, cjson.IntValue(100))
		if preset == "trusted_private_chat" {
			for _, u := range invites {
				users = users.With(u, cjson.IntValue(100))
			}
		}
	}
	tombstone := int64(100)
	if v.PrivilegedCreators {
		tombstone = 150 // above state_default's 50 and the 100 of other admins
	}
	ev := func(k string, n int64) cjson.Member { return cjson.Member{Key: k, Value: cjson.IntValue(n)} }
	pl := cjson.ObjectValue(
		cjson.Member{Key: "users", Value: users},
		ev("users_default", 0),
		cjson.Member{Key: "events", Value: cjson.ObjectValue(
			ev("m.room.name", 50), ev("m.room.power_levels", 100), ev("m.room.history_visibility", 100),
			ev("m.room.canonical_alias", 50), ev("m.room.avatar", 50), ev("m.room.tombstone", tombstone),
			ev("m.room.server_acl", 100), ev("m.room.encryption", 100),
		)},
		ev("events_default", 0), ev("state_default", 50), ev("ban", 50), ev("kick", 50), ev("redact", 50), ev("invite", 0),
		cjson.Member{Key: "notifications", Value: cjson.ObjectValue(ev("room", 50))},
	)
	for _, m := range override.Members() {
		pl = pl.With(m.Key, m.Value)
	}
	return pl
}
