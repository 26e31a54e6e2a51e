package accounts

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/id"
)

// optionalDevice authenticates a request to an endpoint where the access
// token is optional: nil without one; a bad one is an error all the same.
func (s *Service) optionalDevice(r *http.Request) (*Device, error) {
	if !hasAccessToken(r) {
		return nil, nil
	}
	return s.Authenticate(r)
}

func userOf(d *Device) id.UserID {
	if d == nil {
		return ""
	}
	return d.UserID
}

// handlePassword serves POST /account/password. Without an access token
// the password stage names the user; with one it must be that user's.
func (s *Service) handlePassword(w http.ResponseWriter, r *http.Request) error {
	d, err := s.optionalDevice(r)
	if err != nil {
		return err
	}
	if d != nil && d.IsGuest {
		return httpx.GuestAccessForbidden("Guest accounts have no password")
	}
	var req struct {
		NewPassword   *string         `json:"new_password"`
		LogoutDevices *bool           `json:"logout_devices"`
		Auth          json.RawMessage `json:"auth"`
	}
	if err := httpx.DecodeJSON(r, 0, &req); err != nil {
		return err
	}
	if err := checkNewPassword(req.NewPassword, "new_password"); err != nil {
		return err
	}
	auth, err := parseAuthDict(req.Auth)
	if err != nil {
		return err
	}
	ureq := uiaRequest{op: opPassword, userID: userOf(d), bind: bindDigest(opPassword), flows: [][]string{{stagePassword}}}
	sid, done, err := s.runUIA(w, r, ureq, auth)
	if err != nil || !done {
		return err
	}
	hash, err := s.hashPassword(r.Context(), *req.NewPassword)
	if err != nil {
		return err
	}
	logout := req.LogoutDevices == nil || *req.LogoutDevices
	var userID id.UserID
	var deleted []DeviceChange
	err = s.db.Tx(r.Context(), func(ctx context.Context, tx *store.Tx) error {
		deleted = nil
		sess, err := consumeUIATx(ctx, tx, sid, ureq, s.nowMS())
		if err != nil {
			return err
		}
		userID = sess.userID
		res, err := tx.Exec(ctx, `UPDATE accounts_users SET password_hash = $2 WHERE user_id = $1 AND NOT deactivated`,
			string(userID), hash)
		if err != nil {
			return fmt.Errorf("accounts: set password: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return httpx.UserDeactivated("This account has been deactivated")
		}
		if !logout {
			return nil
		}
		except := ""
		if d != nil {
			except = d.DeviceID // the spec: SHOULD NOT revoke the token of the request
		}
		deleted, err = deleteDevicesTx(ctx, tx, userID, nil, except)
		return err
	})
	if err != nil {
		return err
	}
	s.afterDevicesDeleted(r.Context(), userID, deleted)
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "changed password", slogUser(userID), slog.Int("devices_logged_out", len(deleted)))
	return httpx.WriteJSON(w, http.StatusOK, struct{}{})
}

// handleDeactivate serves POST /account/deactivate.
func (s *Service) handleDeactivate(w http.ResponseWriter, r *http.Request) error {
	d, err := s.optionalDevice(r)
	if err != nil {
		return err
	}
	if d != nil && d.IsGuest {
		return httpx.GuestAccessForbidden("Guest accounts cannot be deactivated")
	}
	var req struct {
		Auth     json.RawMessage `json:"auth"`
		IDServer string          `json:"id_server"`
		Erase    bool            `json:"erase"`
	}
	if err := httpx.DecodeJSON(r, 0, &req); err != nil {
		return err
	}
	auth, err := parseAuthDict(req.Auth)
	if err != nil {
		return err
	}
	erase := ""
	if req.Erase {
		erase = "erase"
	}
	ureq := uiaRequest{op: opDeactivate, userID: userOf(d), bind: bindDigest(opDeactivate, erase), flows: [][]string{{stagePassword}}}
	sid, done, err := s.runUIA(w, r, ureq, auth)
	if err != nil || !done {
		return err
	}
	if err := s.deactivate(r.Context(), req.Erase, func(ctx context.Context, tx *store.Tx) (id.UserID, error) {
		sess, err := consumeUIATx(ctx, tx, sid, ureq, s.nowMS())
		if err != nil {
			return "", err
		}
		return sess.userID, nil
	}); err != nil {
		return err
	}
	// This server binds no third-party identifiers, so there is nothing to
	// unbind, which the spec counts as success.
	return httpx.WriteJSON(w, http.StatusOK, map[string]string{"id_server_unbind_result": "success"})
}

// DeactivateUser deactivates a local account for the admin CLI, as POST
// /account/deactivate does, without User-Interactive Authentication.
func (s *Service) DeactivateUser(ctx context.Context, userID id.UserID, erase bool) error {
	return s.deactivate(ctx, erase, func(context.Context, *store.Tx) (id.UserID, error) { return userID, nil })
}

// deactivate marks the account that who (run in the transaction) names as
// deactivated, deletes its devices, tokens and sessions, and with erase its
// profile. The password hash is kept, so that the owner who logs in with
// the right password learns why it fails (M_USER_DEACTIVATED).
func (s *Service) deactivate(ctx context.Context, erase bool, who func(context.Context, *store.Tx) (id.UserID, error)) error {
	var userID id.UserID
	var deleted []DeviceChange
	err := s.db.Tx(ctx, func(ctx context.Context, tx *store.Tx) error {
		deleted = nil
		var err error
		if userID, err = who(ctx, tx); err != nil {
			return err
		}
		res, err := tx.Exec(ctx, `UPDATE accounts_users SET deactivated = $2 WHERE user_id = $1 AND NOT deactivated`, string(userID), true)
		if err != nil {
			return fmt.Errorf("accounts: deactivate: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return httpx.NotFound("No active account with this user ID")
		}
		if deleted, err = deleteDevicesTx(ctx, tx, userID, nil, ""); err != nil {
			return err
		}
		for _, q := range []string{
			`DELETE FROM accounts_login_tokens WHERE user_id = $1`,
			`DELETE FROM accounts_uia_sessions WHERE user_id = $1`,
		} {
			if _, err := tx.Exec(ctx, q, string(userID)); err != nil {
				return err
			}
		}
		if erase {
			return eraseProfileTx(ctx, tx, userID)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.cache.invalidateUser(userID)
	s.devicesDeleted(ctx, userID, deletedIDs(deleted))
	s.deviceListChanged(ctx, userID, deleted)
	if s.cfg.OnDeactivate != nil {
		s.hook(ctx, "deactivate", userID, func(ctx context.Context) error { return s.cfg.OnDeactivate(ctx, userID) })
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "deactivated account", slogUser(userID), slog.Bool("erase", erase))
	return nil
}

// handleThreePIDs serves GET /account/3pid. This server binds no
// third-party identifiers to accounts, so the list is always empty.
func (s *Service) handleThreePIDs(w http.ResponseWriter, r *http.Request, d *Device) error {
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"threepids": []any{}})
}
