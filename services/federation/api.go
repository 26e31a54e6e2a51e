package federation

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/acl"
	"github.com/axon-hs/axon/matrix/id"
	"github.com/axon-hs/axon/matrix/keys"
	"github.com/axon-hs/axon/matrix/roomversion"
	"github.com/axon-hs/axon/services/federation/fedclient"
	"github.com/axon-hs/axon/services/keyserver"
	"github.com/axon-hs/axon/services/roomserver"
)

// DefaultBodyLimit bounds a federation request body: a transaction of 50
// PDUs and 100 EDUs of 64 KiB each fits.
const DefaultBodyLimit = 10 << 20

// Config configures the API.
type Config struct {
	ServerName string
	// Keys finds the origins' keys to check request signatures.
	Keys *keyserver.Service
	// Profile returns a local user's profile; an *httpx.Error with
	// M_NOT_FOUND when there is none.
	Profile func(ctx context.Context, userID string) (displayName, avatarURL string, err error)
	// RoomForAlias returns the room a local alias maps to ("" for none)
	// and the servers resident in it.
	RoomForAlias func(ctx context.Context, alias string) (roomID string, servers []string, err error)
	// DB holds the transactions' answers (migrations of this package).
	DB *store.DB
	// RoomVersion returns the version of a room this server is in, nil
	// for a room it is not in.
	RoomVersion func(ctx context.Context, roomID string) (*roomversion.Version, error)
	// Extremities returns a room's forward extremities.
	Extremities func(ctx context.Context, roomID string) ([]string, error)
	// Submit hands an Input to the room role and waits for its Result.
	Submit func(ctx context.Context, in *roomserver.Input) (roomserver.Result, error)
	// Client fetches missing events from other servers (nil: never).
	Client *fedclient.Client
	// ServerACL returns the room's current server ACL (nil: none, which
	// allows every server).
	ServerACL func(ctx context.Context, roomID string) (*acl.ACL, error)
	// Reader reads rooms for the DAG endpoints.
	Reader *roomserver.Reader
	// Key countersigns invites of local users (nil: invites refused).
	Key *keys.SigningKey
	// Invites keeps invites to rooms this server is not in (nil: those
	// are refused); roomserver.Invites.
	Invites InviteStore
	// EDUs applies the EDUs of inbound transactions (edus.go).
	EDUs EDUReceiver
	// Lookups answers the public room directory, hierarchy, device, key
	// and OpenID queries (lookups.go).
	Lookups   Lookups
	BodyLimit int64
	Now       func() time.Time
	Logger    *slog.Logger
}

// API serves the Server-Server API.
type API struct {
	cfg  Config
	log  *slog.Logger
	txns txnStore
}

// New returns the API.
func New(cfg Config) (*API, error) {
	if cfg.ServerName == "" || cfg.Keys == nil || cfg.DB == nil || cfg.RoomVersion == nil || cfg.Submit == nil || cfg.Reader == nil {
		return nil, errors.New("federation: a server name, key server, database, room versions and submitter are required")
	}
	if cfg.BodyLimit == 0 {
		cfg.BodyLimit = DefaultBodyLimit
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &API{cfg: cfg, log: cfg.Logger, txns: txnStore{db: cfg.DB, now: cfg.Now}}, nil
}

// Routes registers the authenticated endpoints.
func (a *API) Routes(mux *http.ServeMux) {
	mux.Handle("GET /_matrix/federation/v1/query/profile", a.authed(a.queryProfile))
	mux.Handle("GET /_matrix/federation/v1/query/directory", a.authed(a.queryDirectory))
	mux.Handle("PUT /_matrix/federation/v1/send/{txnId}", a.authed(a.send))
	a.readRoutes(mux)
	a.joinRoutes(mux)
	a.membershipRoutes(mux)
	a.knockRoutes(mux)
	a.lookupRoutes(mux)
}

func (a *API) queryProfile(w http.ResponseWriter, r *http.Request, _ *Request) error {
	raw := r.URL.Query().Get("user_id")
	if raw == "" {
		return httpx.MissingParam("user_id is required")
	}
	uid, err := id.ParseUserID(raw)
	if err != nil {
		return httpx.InvalidParam("user_id is not a valid user ID: " + err.Error())
	}
	if string(uid.Server()) != a.cfg.ServerName {
		return httpx.InvalidParam("user_id is not a user of this server")
	}
	field := r.URL.Query().Get("field")
	if a.cfg.Profile == nil {
		return httpx.NotFound("profile not found")
	}
	name, avatar, err := a.cfg.Profile(r.Context(), raw)
	if err != nil {
		return err
	}
	out := map[string]string{}
	if name != "" && (field == "" || field == "displayname") {
		out["displayname"] = name
	}
	if avatar != "" && (field == "" || field == "avatar_url") {
		out["avatar_url"] = avatar
	}
	if field != "" && len(out) == 0 {
		return httpx.NotFound("the user has no " + field)
	}
	return httpx.WriteJSON(w, http.StatusOK, out)
}

func (a *API) queryDirectory(w http.ResponseWriter, r *http.Request, _ *Request) error {
	raw := r.URL.Query().Get("room_alias")
	if raw == "" {
		return httpx.MissingParam("room_alias is required")
	}
	alias, err := id.ParseRoomAlias(raw)
	if err != nil {
		return httpx.InvalidParam("room_alias is not a valid room alias: " + err.Error())
	}
	if string(alias.Server()) != a.cfg.ServerName || a.cfg.RoomForAlias == nil {
		return httpx.NotFound("no room has the alias " + raw + " on this server")
	}
	roomID, servers, err := a.cfg.RoomForAlias(r.Context(), raw)
	if err != nil {
		return err
	}
	if roomID == "" {
		return httpx.NotFound("no room has the alias " + raw)
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"room_id": roomID, "servers": servers})
}
