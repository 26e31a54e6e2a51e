package accounts

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"runtime"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/id"
)

// Registration modes of Config.Registration.
const (
	RegistrationOpen    = "open"   // anyone may register (UIA flow m.login.dummy), guests too
	RegistrationByToken = "token"  // registration needs a registration token (m.login.registration_token)
	RegistrationClosed  = "closed" // POST /register answers 403; accounts come from the CLI or shared-secret registration
)

// Defaults of the Config fields whose zero value means "the default".
const (
	DefaultBcryptCost          = 12
	DefaultAccessTokenLifetime = 5 * time.Minute
	DefaultTokenCacheTTL       = 30 * time.Second
	DefaultTokenCacheSize      = 10000
)

// Config configures a Service. The zero value of every optional field takes
// the documented default.
type Config struct {
	ServerName id.ServerName
	// Registration is RegistrationOpen, RegistrationByToken or
	// RegistrationClosed; "" means closed.
	Registration string
	// SharedSecret enables Synapse-compatible shared-secret registration
	// (/_synapse/admin/v1/register). "" disables it: the endpoint then
	// answers 404 M_UNRECOGNIZED, as for an endpoint this server does not
	// have (see doc.go).
	SharedSecret string
	// BcryptCost is the bcrypt work factor of new password hashes (0 = 12).
	BcryptCost int
	// AccessTokenLifetime is the lifetime of access tokens issued to clients
	// that ask for refresh tokens (refresh_token: true); 0 = 5 minutes.
	// Clients that do not ask get non-expiring access tokens.
	AccessTokenLifetime time.Duration
	// TokenCacheTTL bounds how long a worker trusts its cached answer for an
	// access token (0 = 30 s): a logout on another worker takes effect here
	// within this time. TokenCacheSize bounds the entries (0 = 10000).
	TokenCacheTTL  time.Duration
	TokenCacheSize int
	Now            func() time.Time // nil = time.Now
	Rand           io.Reader        // nil = crypto/rand
	Logger         *slog.Logger     // nil = discard

	// Hooks called after a successful commit; each may be nil. They run
	// before the response is sent, with a context that the client going
	// away does not cancel. They are best-effort: an error is logged, never
	// returned to the client, and a worker that dies between the commit and
	// the hook skips it.

	// OnProfileChange is called when a user's displayname or avatar_url
	// changed ("" = none), to update their member events.
	OnProfileChange func(ctx context.Context, userID id.UserID, displayName, avatarURL string) error
	// OnDeactivate is called after an account was deactivated, to make the
	// user leave their rooms.
	OnDeactivate func(ctx context.Context, userID id.UserID) error
	// OnDevicesDeleted is called after devices were deleted (logout,
	// device deletion, password change, deactivation), so that their
	// end-to-end keys and to-device messages can be deleted too.
	OnDevicesDeleted func(ctx context.Context, userID id.UserID, deviceIDs []string) error
	// OnDeviceListChange is called after a user's device list changed: a
	// device added (login or registration with a new device ID), deleted
	// (logout, logout/all, device deletion, password change,
	// deactivation; after OnDevicesDeleted) or renamed (PUT /devices).
	// changes are the changes of one transaction in stream order, with
	// consecutive stream IDs, each chained on the one before (see
	// DeviceChange), so that other servers can be sent
	// m.device_list_update EDUs and local users sharing a room with the
	// user see them in /sync's device_lists.changed.
	OnDeviceListChange func(ctx context.Context, userID id.UserID, changes []DeviceChange) error
	// RemoteProfile, when set, answers GET /profile for users of other
	// servers (a federation profile query) with the whole profile object.
	// When nil, such lookups answer 404 M_NOT_FOUND.
	RemoteProfile func(ctx context.Context, userID id.UserID) (map[string]any, error)
}

// Service owns local accounts, devices, tokens, UIA sessions, registration
// and login tokens, and profiles. It is safe for concurrent use; it keeps
// nothing in memory but a bounded cache of access tokens.
type Service struct {
	db    *store.DB
	cfg   Config
	log   *slog.Logger
	cache *tokenCache

	randMu sync.Mutex // guards cfg.Rand, which need not be safe for concurrent use

	hashSem   chan struct{} // bounds concurrent bcrypt work
	dummyOnce sync.Once
	dummyHash string // a hash to compare against for unknown users (constant timing)
}

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns this package's schema migrations (versions 0100–0199),
// for store.Options.Migrations.
func Migrations() fs.FS { return store.MigrationsDir(migrations) }

// New returns a Service over db, whose schema must include Migrations().
func New(db *store.DB, cfg Config) (*Service, error) {
	if db == nil {
		return nil, errors.New("accounts: nil store")
	}
	if _, err := id.ParseServerName(string(cfg.ServerName)); err != nil {
		return nil, fmt.Errorf("accounts: server name: %w", err)
	}
	switch cfg.Registration {
	case "":
		cfg.Registration = RegistrationClosed
	case RegistrationOpen, RegistrationByToken, RegistrationClosed:
	default:
		return nil, fmt.Errorf("accounts: registration mode %q: want %q, %q or %q",
			cfg.Registration, RegistrationOpen, RegistrationByToken, RegistrationClosed)
	}
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = DefaultBcryptCost
	}
	if cfg.BcryptCost < bcrypt.MinCost || cfg.BcryptCost > bcrypt.MaxCost {
		return nil, fmt.Errorf("accounts: bcrypt cost %d is outside %d–%d", cfg.BcryptCost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	if cfg.AccessTokenLifetime < 0 || cfg.TokenCacheTTL < 0 || cfg.TokenCacheSize < 0 {
		return nil, errors.New("accounts: negative lifetime, cache TTL or cache size")
	}
	if cfg.AccessTokenLifetime == 0 {
		cfg.AccessTokenLifetime = DefaultAccessTokenLifetime
	}
	if cfg.TokenCacheTTL == 0 {
		cfg.TokenCacheTTL = DefaultTokenCacheTTL
	}
	if cfg.TokenCacheSize == 0 {
		cfg.TokenCacheSize = DefaultTokenCacheSize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{
		db:      db,
		cfg:     cfg,
		log:     cfg.Logger,
		cache:   newTokenCache(cfg.TokenCacheSize, cfg.TokenCacheTTL),
		hashSem: make(chan struct{}, max(1, runtime.GOMAXPROCS(0))),
	}, nil
}

// Routes registers every endpoint of the package on mux: the v3 paths, the
// r0 aliases of the endpoints that existed in r0, the v1 paths of the
// endpoints added later, and the Synapse shared-secret registration.
func (s *Service) Routes(mux *http.ServeMux) {
	handle := func(pattern string, h httpx.HandlerFunc) {
		mux.Handle(pattern, httpx.Handle(h, httpx.WithErrorLogger(s.log)))
	}
	const v3, r0, v1 = "/_matrix/client/v3", "/_matrix/client/r0", "/_matrix/client/v1"
	both := func(method, path string, h httpx.HandlerFunc) {
		handle(method+" "+v3+path, h)
		handle(method+" "+r0+path, h)
	}

	both("POST", "/register", s.handleRegister)
	both("GET", "/register/available", s.handleAvailable)
	handle("GET "+v1+"/register/m.login.registration_token/validity", s.handleTokenValidity)

	both("GET", "/login", s.handleLoginFlows)
	both("POST", "/login", s.handleLogin)
	handle("POST "+v1+"/login/get_token", s.Authed(s.handleGetLoginToken))
	handle("POST "+v3+"/refresh", s.handleRefresh)
	both("POST", "/logout", s.handleLogout)
	both("POST", "/logout/all", s.Authed(s.handleLogoutAll))
	both("GET", "/account/whoami", s.Authed(s.handleWhoami))

	both("GET", "/devices", s.Authed(s.handleListDevices))
	both("GET", "/devices/{deviceId}", s.Authed(s.handleGetDevice))
	both("PUT", "/devices/{deviceId}", s.Authed(s.handlePutDevice))
	both("DELETE", "/devices/{deviceId}", s.Authed(s.handleDeleteDevice))
	both("POST", "/delete_devices", s.Authed(s.handleDeleteDevices))

	both("POST", "/account/password", s.handlePassword)
	both("POST", "/account/deactivate", s.handleDeactivate)
	both("GET", "/account/3pid", s.Authed(s.handleThreePIDs))
	both("POST", "/user/{userId}/openid/request_token", s.Authed(s.handleOpenIDRequestToken))

	both("GET", "/profile/{userId}", s.handleGetProfile)
	both("GET", "/profile/{userId}/{keyName}", s.handleGetProfileField)
	both("PUT", "/profile/{userId}/{keyName}", s.Authed(s.handlePutProfileField))
	both("DELETE", "/profile/{userId}/{keyName}", s.Authed(s.handleDeleteProfileField))

	handle("GET /_synapse/admin/v1/register", s.handleAdminNonce)
	handle("POST /_synapse/admin/v1/register", s.handleAdminRegister)
}

// Capabilities returns the capabilities this package decides, for the
// client API's GET /capabilities to merge into its answer for d.
func (s *Service) Capabilities(d *Device) map[string]any {
	full := d != nil && !d.IsGuest
	profile := map[string]any{"enabled": true}
	if !full {
		profile["allowed"] = []string{"displayname"}
	}
	return map[string]any{
		"m.change_password": map[string]any{"enabled": full},
		"m.set_displayname": map[string]any{"enabled": true},
		"m.set_avatar_url":  map[string]any{"enabled": full},
		"m.profile_fields":  profile,
		"m.3pid_changes":    map[string]any{"enabled": false},
		"m.get_login_token": map[string]any{"enabled": full},
	}
}

func (s *Service) now() time.Time { return s.cfg.Now() }

func (s *Service) nowMS() int64 { return s.cfg.Now().UnixMilli() }

// randomBytes fills a fresh slice of n bytes from the configured source.
func (s *Service) randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	s.randMu.Lock()
	defer s.randMu.Unlock()
	if _, err := io.ReadFull(s.cfg.Rand, b); err != nil {
		return nil, fmt.Errorf("accounts: read random bytes: %w", err)
	}
	return b, nil
}

// randomString returns n characters drawn uniformly from alphabet (at most
// 256 characters), by rejection sampling.
func (s *Service) randomString(n int, alphabet string) (string, error) {
	limit := 256 - 256%len(alphabet)
	out := make([]byte, 0, n)
	for len(out) < n {
		b, err := s.randomBytes(n)
		if err != nil {
			return "", err
		}
		for _, c := range b {
			if int(c) < limit && len(out) < n {
				out = append(out, alphabet[int(c)%len(alphabet)])
			}
		}
	}
	return string(out), nil
}

// hook runs a post-commit hook, logging its error.
func (s *Service) hook(ctx context.Context, name string, userID id.UserID, fn func(context.Context) error) {
	if err := fn(context.WithoutCancel(ctx)); err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "accounts hook failed",
			slog.String("hook", name), slog.String("user_id", string(userID)), slog.Any("error", err))
	}
}

func (s *Service) devicesDeleted(ctx context.Context, userID id.UserID, deviceIDs []string) {
	if s.cfg.OnDevicesDeleted == nil || len(deviceIDs) == 0 {
		return
	}
	s.hook(ctx, "devices_deleted", userID, func(ctx context.Context) error {
		return s.cfg.OnDevicesDeleted(ctx, userID, deviceIDs)
	})
}

func slogUser(u id.UserID) slog.Attr { return slog.String("user_id", string(u)) }

func slogBool(k string, v bool) slog.Attr { return slog.Bool(k, v) }
