package clientapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/keys"
	"github.com/axon-hs/axon/services/roomserver"
)

// Device is the authenticated caller of a request.
type Device struct {
	UserID   string
	DeviceID string
	IsGuest  bool
}

// Authenticator resolves a request's access token; its errors are
// *httpx.Error (M_MISSING_TOKEN, M_UNKNOWN_TOKEN).
type Authenticator func(r *http.Request) (Device, error)

// ProfileLookup returns a local user's displayname and avatar URL, for the
// content of their member events.
type ProfileLookup func(ctx context.Context, userID string) (displayName, avatarURL string, err error)

// Config configures the room endpoints.
type Config struct {
	ServerName string
	Key        *keys.SigningKey
	// DefaultRoomVersion is the version of rooms created without one.
	DefaultRoomVersion string
	// PublicBaseURL is the Client-Server API's public URL, advertised in
	// /.well-known/matrix/client (default https://<server name>).
	PublicBaseURL string
	// LimitUser, when set, rate-limits a user's writes (every request but
	// GET): ok false means refuse with M_LIMIT_EXCEEDED, retry after the
	// duration.
	LimitUser func(userID string) (ok bool, retryAfter time.Duration)
	// Capabilities adds the capabilities other areas decide (accounts:
	// password change, profile fields, login tokens) for the device.
	Capabilities func(d Device) map[string]any
	// RemoteJoin, when set, joins userID to a room this server is not in
	// through one of servers (federation) and returns the join's event ID.
	RemoteJoin func(ctx context.Context, roomID, userID string, servers []string, content cjson.Value) (string, error)
	// RemoteAlias, when set, resolves an alias of another server to a room
	// and the servers in it (federation /query/directory).
	RemoteAlias func(ctx context.Context, alias string) (roomID string, servers []string, err error)
	// RemoteInvite, when set, invites a user of another server (the
	// invitee's server countersigns the invite) and returns its event ID.
	RemoteInvite func(ctx context.Context, roomID, sender, target string, content cjson.Value) (string, error)
	// RejectInvite, when set, rejects an invite from another server to a
	// room this server is not in, through the inviting server.
	RejectInvite func(ctx context.Context, roomID, userID string, reason *string) error
	// RemoteKnock, when set, knocks on a room this server is not in
	// through one of servers (make_knock, send_knock).
	RemoteKnock func(ctx context.Context, roomID, userID string, servers []string, content cjson.Value) (string, error)
	// Backfill, when set, asks other servers for a room's events before
	// the earliest this server has (federation /backfill) and has them
	// stored; it reports whether any was added.
	Backfill func(ctx context.Context, roomID string) (bool, error)
	Now      func() time.Time
	Rand     io.Reader
	Logger   *slog.Logger
}

// API serves the Client-Server API's room endpoints (everything but /sync
// and the account endpoints).
type API struct {
	db      *store.DB
	rooms   *roomserver.Reader
	submit  *roomserver.Submitter
	auth    Authenticator
	profile ProfileLookup
	cfg     Config
}

// New returns the API.
func New(db *store.DB, sub *roomserver.Submitter, auth Authenticator, profile ProfileLookup, cfg Config) *API {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DefaultRoomVersion == "" {
		cfg.DefaultRoomVersion = "12"
	}
	return &API{db: db, rooms: roomserver.NewReader(db), submit: sub, auth: auth, profile: profile, cfg: cfg}
}

// authed wraps a handler that needs an access token.
func (a *API) authed(h func(w http.ResponseWriter, r *http.Request, d Device) error) http.Handler {
	return httpx.Handle(func(w http.ResponseWriter, r *http.Request) error {
		d, err := a.auth(r)
		if err != nil {
			return err
		}
		if a.cfg.LimitUser != nil && r.Method != http.MethodGet {
			if ok, after := a.cfg.LimitUser(d.UserID); !ok {
				return httpx.LimitExceeded("too many requests; slow down", after)
			}
		}
		return h(w, r, d)
	})
}

// Routes registers the endpoints under /v3 and, where the spec had them,
// the /r0 aliases.
func (a *API) Routes(mux *http.ServeMux) {
	mux.Handle("GET /_matrix/client/versions", httpx.Handle(a.versions))
	mux.Handle("GET /.well-known/matrix/client", httpx.Handle(a.wellKnown))
	for _, v := range []string{"v3", "r0"} {
		p := "/_matrix/client/" + v
		h := func(pattern string, fn func(w http.ResponseWriter, r *http.Request, d Device) error) {
			method, path, _ := cut(pattern)
			mux.Handle(method+" "+p+path, a.authed(fn))
		}
		h("GET /capabilities", a.capabilities)
		h("POST /createRoom", a.createRoom)
		h("POST /join/{roomIdOrAlias}", a.joinByIDOrAlias)
		h("POST /rooms/{roomId}/join", a.joinRoom)
		h("POST /knock/{roomIdOrAlias}", a.knockByIDOrAlias)
		h("POST /rooms/{roomId}/leave", a.leave)
		h("POST /rooms/{roomId}/forget", a.forget)
		h("POST /rooms/{roomId}/invite", a.invite)
		h("POST /rooms/{roomId}/kick", a.kick)
		h("POST /rooms/{roomId}/ban", a.ban)
		h("POST /rooms/{roomId}/unban", a.unban)
		h("PUT /rooms/{roomId}/send/{eventType}/{txnId}", a.send)
		h("PUT /rooms/{roomId}/state/{eventType}", a.putState)
		h("PUT /rooms/{roomId}/state/{eventType}/{stateKey...}", a.putState)
		h("PUT /rooms/{roomId}/redact/{eventId}/{txnId}", a.redact)
		h("GET /rooms/{roomId}/state", a.getAllState)
		h("GET /rooms/{roomId}/state/{eventType}", a.getState)
		h("GET /rooms/{roomId}/state/{eventType}/{stateKey...}", a.getState)
		h("GET /rooms/{roomId}/event/{eventId}", a.getEvent)
		h("GET /rooms/{roomId}/members", a.members)
		h("GET /rooms/{roomId}/joined_members", a.joinedMembers)
		h("GET /rooms/{roomId}/messages", a.messages)
		h("GET /rooms/{roomId}/context/{eventId}", a.context)
		h("GET /joined_rooms", a.joinedRooms)
		h("PUT /directory/room/{roomAlias}", a.putAlias)
		h("GET /directory/room/{roomAlias}", a.getAlias)
		h("DELETE /directory/room/{roomAlias}", a.deleteAlias)
		h("GET /rooms/{roomId}/aliases", a.roomAliases)
		mux.Handle("GET "+p+"/directory/list/room/{roomId}", httpx.Handle(a.getVisibility))
		h("PUT /directory/list/room/{roomId}", a.putVisibility)
		mux.Handle("GET "+p+"/publicRooms", httpx.Handle(a.publicRoomsGet))
		h("POST /publicRooms", a.publicRoomsPost)
		h("POST /user_directory/search", a.searchUsers)
	}
}

func cut(pattern string) (method, path string, ok bool) {
	for i := range pattern {
		if pattern[i] == ' ' {
			return pattern[:i], pattern[i+1:], true
		}
	}
	return "", pattern, false
}

// submitErr turns a refused Input into the Matrix error.
func submitErr(res roomserver.Result, err error) error {
	if err != nil {
		// The input could not be published, or was not answered in time:
		// overload or an outage of the room role. The client retries
		// (with the same transaction ID, so nothing is sent twice).
		e := httpx.New(httpx.CodeUnknown, "the server is busy; retry the request").
			WithStatus(http.StatusServiceUnavailable).WithCause(err)
		e.RetryAfter = time.Second
		return e
	}
	if f := res.Error; f != nil {
		return httpx.New(f.Code, f.Message)
	}
	return nil
}
