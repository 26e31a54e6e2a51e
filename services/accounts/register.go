package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"unicode/utf8"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/id"
)

// Generated localparts (guests, and registrations without a username) are
// this many characters of generatedAlphabet: random rather than a counter,
// so that no row is a hotspot every registration writes.
const (
	generatedLocalpartLength = 12
	generatedAlphabet        = "abcdefghijklmnopqrstuvwxyz0123456789"
)

// ErrUserInUse is wrapped by the errors that report a user ID already taken.
var ErrUserInUse = errors.New("accounts: user ID already taken")

func errUserInUse() error {
	return httpx.UserInUse("Desired user ID is already taken").WithCause(ErrUserInUse)
}

// Limits on device IDs and display names (of devices and users). The spec
// sets none; these keep member events and device lists reasonable.
const (
	maxDeviceIDBytes    = 255
	maxDisplayNameRunes = 256
)

func checkDeviceID(p *string) error {
	if p == nil {
		return nil
	}
	d := *p
	if d == "" || len(d) > maxDeviceIDBytes || !utf8.ValidString(d) {
		return httpx.InvalidParam(fmt.Sprintf("'device_id' must be 1–%d bytes of UTF-8", maxDeviceIDBytes))
	}
	for _, c := range d {
		if c < 0x20 || c == 0x7f {
			return httpx.InvalidParam("'device_id' must not contain control characters")
		}
	}
	return nil
}

func checkDisplayName(p *string, field string) error {
	if p != nil && utf8.RuneCountInString(*p) > maxDisplayNameRunes {
		return httpx.InvalidParam(fmt.Sprintf("'%s' is longer than %d characters", field, maxDisplayNameRunes))
	}
	return nil
}

// checkNewLocalpart validates a wanted localpart with the strict grammar
// (no upper case: the spec lets a server either map or reject, and we
// reject) and checks that it is free.
func (s *Service) checkNewLocalpart(ctx context.Context, localpart string) (id.UserID, error) {
	u, err := id.NewUserID(localpart, s.cfg.ServerName)
	if err == nil {
		err = id.ValidateUserIDStrict(string(u))
	}
	if err != nil {
		return "", httpx.InvalidUsername("Usernames may contain only a-z, 0-9, '.', '_', '=', '-', '/' and '+', " +
			"and make a user ID of at most 255 bytes").WithCause(err)
	}
	var n int
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM accounts_users WHERE user_id = $1`, string(u)).Scan(&n); err != nil {
		return "", fmt.Errorf("accounts: check user ID: %w", err)
	}
	if n > 0 {
		return "", errUserInUse()
	}
	return u, nil
}

// insertUserTx creates an account, its displayname defaulting to the
// localpart. It reports false if the user ID is taken.
func insertUserTx(ctx context.Context, tx *store.Tx, userID id.UserID, passwordHash *string, guest, admin bool, now int64) (bool, error) {
	res, err := tx.Exec(ctx, `INSERT INTO accounts_users
		(user_id, password_hash, is_guest, is_admin, deactivated, displayname, avatar_url, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, NULL, $7) ON CONFLICT (user_id) DO NOTHING`,
		string(userID), nullString(passwordHash), guest, admin, false, userID.Localpart(), now)
	if err != nil {
		return false, fmt.Errorf("accounts: insert user: %w", err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

func (s *Service) generatedUserID() (id.UserID, error) {
	lp, err := s.randomString(generatedLocalpartLength, generatedAlphabet)
	if err != nil {
		return "", err
	}
	return id.NewUserID(lp, s.cfg.ServerName)
}

// CreateUser creates an account for the admin CLI, whatever the
// registration mode. The localpart must follow the strict grammar; a taken
// one gives an error wrapping ErrUserInUse (and an *httpx.Error
// M_USER_IN_USE).
func (s *Service) CreateUser(ctx context.Context, localpart, password string, admin bool) (id.UserID, error) {
	userID, err := s.checkNewLocalpart(ctx, localpart)
	if err != nil {
		return "", err
	}
	if err := checkNewPassword(&password, "password"); err != nil {
		return "", err
	}
	hash, err := s.hashPassword(ctx, password)
	if err != nil {
		return "", err
	}
	err = s.db.Tx(ctx, func(ctx context.Context, tx *store.Tx) error {
		ok, err := insertUserTx(ctx, tx, userID, &hash, false, admin, s.nowMS())
		if err == nil && !ok {
			err = errUserInUse()
		}
		return err
	})
	if err != nil {
		return "", err
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "created user", slogUser(userID))
	return userID, nil
}

type registerRequest struct {
	Auth                     json.RawMessage `json:"auth"`
	Username                 *string         `json:"username"`
	Password                 *string         `json:"password"`
	DeviceID                 *string         `json:"device_id"`
	InitialDeviceDisplayName *string         `json:"initial_device_display_name"`
	InhibitLogin             bool            `json:"inhibit_login"`
	RefreshToken             bool            `json:"refresh_token"`
	GuestAccessToken         string          `json:"guest_access_token"`
}

func (s *Service) registerFlows() [][]string {
	if s.cfg.Registration == RegistrationByToken {
		return [][]string{{stageRegistrationToken}}
	}
	return [][]string{{stageDummy}}
}

// handleRegister serves POST /register.
func (s *Service) handleRegister(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	kind := r.URL.Query().Get("kind")
	if kind != "" && kind != "user" && kind != "guest" {
		return httpx.InvalidParam("'kind' must be 'user' or 'guest'")
	}
	if s.cfg.Registration == RegistrationClosed {
		return httpx.Forbidden("Registration is disabled on this homeserver")
	}
	var req registerRequest
	if err := httpx.DecodeJSON(r, 0, &req); err != nil {
		return err
	}
	if kind == "guest" {
		return s.registerGuest(w, r, req.InitialDeviceDisplayName)
	}
	auth, err := parseAuthDict(req.Auth)
	if err != nil {
		return err
	}

	// The spec wants these checks before User-Interactive Authentication.
	var userID, upgrade id.UserID
	if req.GuestAccessToken != "" {
		if upgrade, err = s.guestForUpgrade(ctx, req.GuestAccessToken); err != nil {
			return err
		}
		if req.Username != nil && *req.Username != upgrade.Localpart() {
			return httpx.InvalidUsername("To upgrade a guest account, 'username' must be its localpart")
		}
		userID = upgrade
	} else if req.Username != nil {
		if userID, err = s.checkNewLocalpart(ctx, *req.Username); err != nil {
			return err
		}
	}
	if err := checkDeviceID(req.DeviceID); err != nil {
		return err
	}
	if err := checkDisplayName(req.InitialDeviceDisplayName, "initial_device_display_name"); err != nil {
		return err
	}
	if req.Password != nil {
		if err := checkNewPassword(req.Password, "password"); err != nil {
			return err
		}
	}

	ureq := uiaRequest{op: opRegister, bind: bindDigest(opRegister, string(upgrade)), flows: s.registerFlows()}
	sid, done, err := s.runUIA(w, r, ureq, auth)
	if err != nil || !done {
		return err
	}
	if err := checkNewPassword(req.Password, "password"); err != nil {
		return err
	}
	hash, err := s.hashPassword(ctx, *req.Password)
	if err != nil {
		return err
	}
	sreq := sessionRequest{displayName: req.InitialDeviceDisplayName, refresh: req.RefreshToken, inhibit: req.InhibitLogin}
	if req.DeviceID != nil {
		sreq.deviceID = *req.DeviceID
	}
	for attempt := 0; ; attempt++ {
		generated := userID == ""
		if generated {
			if userID, err = s.generatedUserID(); err != nil {
				return err
			}
		}
		resp, err := s.startSession(ctx, sreq, func(ctx context.Context, tx *store.Tx) (id.UserID, error) {
			sess, err := consumeUIATx(ctx, tx, sid, ureq, s.nowMS())
			if err != nil {
				return "", err
			}
			if sess.regToken != nil {
				if err := s.useRegistrationTokenTx(ctx, tx, *sess.regToken); err != nil {
					return "", err
				}
			}
			if upgrade != "" {
				return userID, upgradeGuestTx(ctx, tx, userID, hash)
			}
			ok, err := insertUserTx(ctx, tx, userID, &hash, false, false, s.nowMS())
			if err == nil && !ok {
				err = errUserInUse()
			}
			return userID, err
		})
		if generated && errors.Is(err, ErrUserInUse) && attempt < 3 {
			userID = ""
			continue
		}
		if err != nil {
			return err
		}
		if upgrade != "" {
			s.cache.invalidateUser(upgrade)
		}
		s.log.LogAttrs(ctx, slog.LevelInfo, "registered user", slogUser(resp.UserID), slogBool("guest_upgrade", upgrade != ""))
		return httpx.WriteJSON(w, http.StatusOK, resp)
	}
}

// registerGuest creates a guest account. All parameters but the device's
// display name are ignored, as the spec requires; guests get a
// non-expiring access token.
func (s *Service) registerGuest(w http.ResponseWriter, r *http.Request, displayName *string) error {
	if s.cfg.Registration != RegistrationOpen {
		return httpx.Forbidden("Guest access is disabled on this homeserver")
	}
	if err := checkDisplayName(displayName, "initial_device_display_name"); err != nil {
		return err
	}
	ctx := r.Context()
	for attempt := 0; ; attempt++ {
		userID, err := s.generatedUserID()
		if err != nil {
			return err
		}
		resp, err := s.startSession(ctx, sessionRequest{displayName: displayName}, func(ctx context.Context, tx *store.Tx) (id.UserID, error) {
			ok, err := insertUserTx(ctx, tx, userID, nil, true, false, s.nowMS())
			if err == nil && !ok {
				err = errUserInUse()
			}
			return userID, err
		})
		if errors.Is(err, ErrUserInUse) && attempt < 3 {
			continue
		}
		if err != nil {
			return err
		}
		return httpx.WriteJSON(w, http.StatusOK, resp)
	}
}

// guestForUpgrade returns the guest account whose access token is given.
func (s *Service) guestForUpgrade(ctx context.Context, token string) (id.UserID, error) {
	bad := httpx.Forbidden("'guest_access_token' is not the access token of a guest account")
	if len(token) > 255 {
		return "", bad
	}
	e, err := s.loadToken(ctx, hashToken(token), s.now())
	if httpx.CodeOf(err) == httpx.CodeUnknownToken {
		return "", bad
	}
	if err != nil {
		return "", err
	}
	if !e.dev.IsGuest {
		return "", bad
	}
	return e.dev.UserID, nil
}

func upgradeGuestTx(ctx context.Context, tx *store.Tx, userID id.UserID, hash string) error {
	res, err := tx.Exec(ctx, `UPDATE accounts_users SET is_guest = $2, password_hash = $3
		WHERE user_id = $1 AND is_guest AND NOT deactivated`, string(userID), false, hash)
	if err != nil {
		return fmt.Errorf("accounts: upgrade guest: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return httpx.Forbidden("The guest account can no longer be upgraded")
	}
	return nil
}

// handleAvailable serves GET /register/available.
func (s *Service) handleAvailable(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if !q.Has("username") {
		return httpx.MissingParam("The 'username' query parameter is required")
	}
	if _, err := s.checkNewLocalpart(r.Context(), q.Get("username")); err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]bool{"available": true})
}
