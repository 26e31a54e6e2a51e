package federation

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/matrix/id"
)

// Lookups are the hooks of the lookup endpoints, so that this package
// needs neither the client API nor the accounts package. A nil hook
// answers what a server with nothing to tell answers: an empty
// directory, no devices, no valid OpenID token.
type Lookups struct {
	// PublicRooms answers a page of this server's published room
	// directory: a value that encodes as the spec's PublicRoomsResponse.
	// Bad input (a since token it did not make) is an *httpx.Error.
	PublicRooms func(ctx context.Context, q PublicRoomsQuery) (any, error)
	// Devices returns a local user's devices; an empty list for a user
	// without any (or without an account).
	Devices func(ctx context.Context, userID string) (DeviceList, error)
	// OpenIDUser returns the local user an OpenID token was issued to,
	// "" when the token is unknown or expired.
	OpenIDUser func(ctx context.Context, token string) (string, error)
}

// PublicRoomsQuery is a /publicRooms request.
type PublicRoomsQuery struct {
	Limit      int    // 0: no limit of the requester's (the directory's own bound applies)
	Since      string // a next_batch or prev_batch token
	SearchTerm string // filter.generic_search_term
	// RoomTypes is filter.room_types (nil when absent); a nil element
	// stands for rooms without a type.
	RoomTypes            *[]*string
	IncludeAllNetworks   bool
	ThirdPartyInstanceID string
}

// DeviceList is a user's devices as the device list of
// /user/devices answers them.
type DeviceList struct {
	// StreamID names this version of the list: the stream_id of the
	// user's last m.device_list_update EDU (services/accounts counts
	// them), which the requesting server matches with the EDUs that
	// follow; 0 when no change was ever counted. An empty list may have
	// any (every device deleted).
	StreamID int64
	Devices  []Device
}

// Device is one device of a DeviceList.
type Device struct {
	DeviceID    string
	DisplayName string // "" when it has none
}

// lookupRoutes registers the lookup endpoints. /openid/userinfo is not
// X-Matrix authenticated: a third party calls it with the token.
func (a *API) lookupRoutes(mux *http.ServeMux) {
	mux.Handle("GET /_matrix/federation/v1/publicRooms", a.authed(a.publicRoomsGet))
	mux.Handle("POST /_matrix/federation/v1/publicRooms", a.authed(a.publicRoomsPost))
	mux.Handle("GET /_matrix/federation/v1/hierarchy/{roomId}", a.authed(a.hierarchy))
	mux.Handle("GET /_matrix/federation/v1/user/devices/{userId}", a.authed(a.userDevices))
	mux.Handle("POST /_matrix/federation/v1/user/keys/query", a.authed(a.keysQuery))
	mux.Handle("POST /_matrix/federation/v1/user/keys/claim", a.authed(a.keysClaim))
	mux.Handle("GET /_matrix/federation/v1/openid/userinfo", httpx.Handle(a.openIDUserInfo, httpx.WithErrorLogger(a.log)))
}

func (a *API) publicRoomsGet(w http.ResponseWriter, r *http.Request, _ *Request) error {
	qv := r.URL.Query()
	q := PublicRoomsQuery{Since: qv.Get("since"), ThirdPartyInstanceID: qv.Get("third_party_instance_id")}
	if s := qv.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return httpx.InvalidParam("limit must be a non-negative integer")
		}
		q.Limit = n
	}
	switch qv.Get("include_all_networks") {
	case "", "false":
	case "true":
		q.IncludeAllNetworks = true
	default:
		return httpx.InvalidParam("include_all_networks must be true or false")
	}
	return a.publicRooms(w, r, q)
}

func (a *API) publicRoomsPost(w http.ResponseWriter, r *http.Request, req *Request) error {
	var body struct {
		Limit  *int   `json:"limit"`
		Since  string `json:"since"`
		Filter *struct {
			GenericSearchTerm string     `json:"generic_search_term"`
			RoomTypes         *[]*string `json:"room_types"`
		} `json:"filter"`
		IncludeAllNetworks   bool   `json:"include_all_networks"`
		ThirdPartyInstanceID string `json:"third_party_instance_id"`
	}
	if err := decodeObject(req.Body, &body); err != nil {
		return err
	}
	q := PublicRoomsQuery{Since: body.Since, IncludeAllNetworks: body.IncludeAllNetworks, ThirdPartyInstanceID: body.ThirdPartyInstanceID}
	if body.Limit != nil {
		if *body.Limit < 0 {
			return httpx.InvalidParam("limit must be a non-negative integer")
		}
		q.Limit = *body.Limit
	}
	if body.Filter != nil {
		q.SearchTerm, q.RoomTypes = body.Filter.GenericSearchTerm, body.Filter.RoomTypes
	}
	return a.publicRooms(w, r, q)
}

func (a *API) publicRooms(w http.ResponseWriter, r *http.Request, q PublicRoomsQuery) error {
	if q.IncludeAllNetworks && q.ThirdPartyInstanceID != "" {
		return httpx.InvalidParam("third_party_instance_id can only be used when include_all_networks is false")
	}
	if a.cfg.Lookups.PublicRooms == nil {
		return httpx.WriteJSON(w, http.StatusOK, map[string]any{"chunk": []any{}, "total_room_count_estimate": 0})
	}
	page, err := a.cfg.Lookups.PublicRooms(r.Context(), q)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, page)
}

// decodeObject decodes a request body that must be a JSON object:
// M_NOT_JSON without one, M_BAD_JSON for one of the wrong shape.
func decodeObject(body []byte, v any) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return httpx.NotJSON("the request needs a JSON object body")
	}
	if trimmed[0] != '{' {
		return httpx.BadJSON("the request body must be a JSON object")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return httpx.BadJSON("the request body has the wrong shape: " + err.Error())
	}
	return nil
}

// localUser parses a user ID that must be of this server: M_INVALID_PARAM
// otherwise.
func (a *API) localUser(raw string) (string, error) {
	uid, err := id.ParseUserID(raw)
	if err != nil {
		return "", httpx.InvalidParam(strconv.Quote(raw) + " is not a valid user ID: " + err.Error())
	}
	if string(uid.Server()) != a.cfg.ServerName {
		return "", httpx.InvalidParam(raw + " is not a user of this server")
	}
	return raw, nil
}

// userDevices answers a local user's device list. End-to-end keys are not
// stored yet, so every device's keys are an empty object (the field is
// required) and there are no cross-signing keys.
func (a *API) userDevices(w http.ResponseWriter, r *http.Request, _ *Request) error {
	userID, err := a.localUser(r.PathValue("userId"))
	if err != nil {
		return err
	}
	var list DeviceList
	if a.cfg.Lookups.Devices != nil {
		if list, err = a.cfg.Lookups.Devices(r.Context(), userID); err != nil {
			return err
		}
	}
	type device struct {
		DeviceID    string         `json:"device_id"`
		Keys        map[string]any `json:"keys"`
		DisplayName string         `json:"device_display_name,omitempty"`
	}
	devices := make([]device, 0, len(list.Devices))
	for _, d := range list.Devices {
		devices = append(devices, device{DeviceID: d.DeviceID, Keys: map[string]any{}, DisplayName: d.DisplayName})
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"user_id": userID, "stream_id": list.StreamID, "devices": devices})
}

// keysQuery answers /user/keys/query. No end-to-end keys are stored yet:
// every requested user is answered, with no device keys and no
// cross-signing keys.
func (a *API) keysQuery(w http.ResponseWriter, _ *http.Request, req *Request) error {
	var body struct {
		DeviceKeys map[string][]string `json:"device_keys"`
	}
	if err := decodeObject(req.Body, &body); err != nil {
		return err
	}
	if body.DeviceKeys == nil {
		return httpx.BadJSON("device_keys is required")
	}
	out := make(map[string]map[string]any, len(body.DeviceKeys))
	for user := range body.DeviceKeys {
		if _, err := a.localUser(user); err != nil {
			return err
		}
		out[user] = map[string]any{}
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{
		"device_keys": out, "master_keys": map[string]any{}, "self_signing_keys": map[string]any{}})
}

// keysClaim answers /user/keys/claim. No one-time or fallback keys are
// stored yet: every requested user is answered with none.
func (a *API) keysClaim(w http.ResponseWriter, _ *http.Request, req *Request) error {
	var body struct {
		OneTimeKeys map[string]map[string]string `json:"one_time_keys"`
	}
	if err := decodeObject(req.Body, &body); err != nil {
		return err
	}
	if body.OneTimeKeys == nil {
		return httpx.BadJSON("one_time_keys is required")
	}
	out := make(map[string]map[string]any, len(body.OneTimeKeys))
	for user := range body.OneTimeKeys {
		if _, err := a.localUser(user); err != nil {
			return err
		}
		out[user] = map[string]any{}
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"one_time_keys": out})
}

// openIDUserInfo exchanges an OpenID token for the user it was issued to.
func (a *API) openIDUserInfo(w http.ResponseWriter, r *http.Request) error {
	token := r.URL.Query().Get("access_token")
	if token == "" {
		return httpx.MissingToken("access_token is required")
	}
	var user string
	if a.cfg.Lookups.OpenIDUser != nil {
		var err error
		if user, err = a.cfg.Lookups.OpenIDUser(r.Context(), token); err != nil {
			return err
		}
	}
	if user == "" {
		return httpx.New(httpx.CodeUnknownToken, "access token unknown or expired")
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]string{"sub": user})
}
