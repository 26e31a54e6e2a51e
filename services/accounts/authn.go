package accounts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/id"
)

// Device is the authenticated device behind an access token.
type Device struct {
	UserID   id.UserID
	DeviceID string
	IsGuest  bool
	IsAdmin  bool
}

// lastSeenInterval is how stale a device's last_seen_ts may get: it is
// written at most about once per interval per device.
const lastSeenInterval = time.Minute

type deviceCtxKey struct{}

// WithDevice returns ctx carrying d, as Authed does for its handler.
func WithDevice(ctx context.Context, d *Device) context.Context {
	return context.WithValue(ctx, deviceCtxKey{}, d)
}

// DeviceFrom returns the device that Authed put in the request context, or
// nil.
func DeviceFrom(ctx context.Context) *Device {
	d, _ := ctx.Value(deviceCtxKey{}).(*Device)
	return d
}

// Authed adapts a handler that needs an authenticated device: the request
// is authenticated first (see Authenticate), and its context carries the
// device (DeviceFrom).
func (s *Service) Authed(h func(w http.ResponseWriter, r *http.Request, d *Device) error) httpx.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		d, err := s.Authenticate(r)
		if err != nil {
			return err
		}
		return h(w, r.WithContext(WithDevice(r.Context(), d)), d)
	}
}

// accessToken returns the request's access token: from "Authorization:
// Bearer", else from the deprecated access_token query parameter.
func accessToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return ""
		}
		return strings.TrimSpace(tok)
	}
	return r.URL.Query().Get("access_token")
}

// hasAccessToken reports whether the request tries to authenticate at all,
// for endpoints where an access token is optional.
func hasAccessToken(r *http.Request) bool {
	return r.Header.Get("Authorization") != "" || r.URL.Query().Has("access_token")
}

// Authenticate returns the device of the request's access token, taken
// from "Authorization: Bearer" or the deprecated ?access_token=. Its errors
// are *httpx.Error: 401 M_MISSING_TOKEN without a token; 401
// M_UNKNOWN_TOKEN with soft_logout true for an expired token (the client
// should refresh it) and false for an unknown or revoked one (also when
// the account is deactivated). Database failures are internal errors.
//
// Answers are cached for Config.TokenCacheTTL: a token revoked on another
// worker may keep working here that long.
func (s *Service) Authenticate(r *http.Request) (*Device, error) {
	return s.authenticate(r, false)
}

func (s *Service) authenticate(r *http.Request, allowExpired bool) (*Device, error) {
	tok := accessToken(r)
	if tok == "" {
		return nil, httpx.MissingToken("Missing access token")
	}
	if !strings.HasPrefix(tok, accessTokenPrefix) {
		return nil, httpx.UnknownToken("Unrecognised access token", false)
	}
	ctx := r.Context()
	h := hashToken(tok)
	now := s.now()
	e, ok := s.cache.get(h, now)
	if !ok {
		var err error
		if e, err = s.loadToken(ctx, h, now); err != nil {
			return nil, err
		}
		s.cache.put(h, e)
	}
	if e.expiresAt != 0 && now.UnixMilli() >= e.expiresAt && !allowExpired {
		return nil, httpx.UnknownToken("Access token has expired; refresh it", true)
	}
	s.touchDevice(r, h, &e.dev)
	d := e.dev
	return &d, nil
}

// loadToken reads an access token from the database. The first time a
// token made by /refresh is seen, the refresh token it replaced is revoked.
func (s *Service) loadToken(ctx context.Context, h tokenHash, now time.Time) (cachedToken, error) {
	var (
		e           cachedToken
		userID      string
		revokes     []byte
		deactivated bool
	)
	err := s.db.QueryRow(ctx, `SELECT t.user_id, t.device_id, t.expires_at, t.revokes_refresh,
			u.is_guest, u.is_admin, u.deactivated, COALESCE(d.last_seen_ts, 0)
		FROM accounts_access_tokens t
		JOIN accounts_users u ON u.user_id = t.user_id
		JOIN accounts_devices d ON d.user_id = t.user_id AND d.device_id = t.device_id
		WHERE t.token_hash = $1`, h[:]).Scan(&userID, &e.dev.DeviceID, &e.expiresAt, &revokes,
		&e.dev.IsGuest, &e.dev.IsAdmin, &deactivated, &e.lastSeen)
	if errors.Is(err, store.ErrNoRows) || (err == nil && deactivated) {
		return e, httpx.UnknownToken("Unrecognised access token", false)
	}
	if err != nil {
		return e, fmt.Errorf("accounts: look up access token: %w", err)
	}
	e.dev.UserID = id.UserID(userID)
	e.loadedAt = now
	if revokes != nil {
		if err := s.revokeReplaced(ctx, h, revokes); err != nil {
			// The new token is valid either way; the next cache miss retries.
			s.log.LogAttrs(ctx, slog.LevelWarn, "cannot revoke the replaced refresh token",
				slog.String("user_id", userID), slog.String("device_id", e.dev.DeviceID), slog.Any("error", err))
		}
	}
	return e, nil
}

// touchDevice records the device's last_seen_ts and last_seen_ip at most
// once per lastSeenInterval per token on this worker, and the UPDATE's
// condition makes other workers' writes within the interval no-ops. A
// failure is logged and does not fail the request.
func (s *Service) touchDevice(r *http.Request, h tokenHash, d *Device) {
	now := s.nowMS()
	interval := lastSeenInterval.Milliseconds()
	if !s.cache.touch(h, now, interval) {
		return
	}
	ip := r.RemoteAddr
	if host, _, err := net.SplitHostPort(ip); err == nil {
		ip = host
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	_, err := s.db.Exec(ctx, `UPDATE accounts_devices SET last_seen_ts = $1, last_seen_ip = $2
		WHERE user_id = $3 AND device_id = $4 AND (last_seen_ts IS NULL OR last_seen_ts <= $5)`,
		now, ip, string(d.UserID), d.DeviceID, now-interval)
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "cannot record device last seen",
			slog.String("user_id", string(d.UserID)), slog.String("device_id", d.DeviceID), slog.Any("error", err))
	}
}
