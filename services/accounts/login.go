package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/id"
)

// Login types.
const (
	loginPassword = "m.login.password"
	loginToken    = "m.login.token"
)

// loginTokenLifetime is the lifetime of tokens from POST /login/get_token
// (the spec's recommended default).
const loginTokenLifetime = 2 * time.Minute

// handleLoginFlows serves GET /login.
func (s *Service) handleLoginFlows(w http.ResponseWriter, r *http.Request) error {
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"flows": []map[string]any{
		{"type": loginPassword},
		{"type": loginToken, "get_login_token": true},
	}})
}

type loginRequest struct {
	Type                     string          `json:"type"`
	Identifier               json.RawMessage `json:"identifier"`
	User                     string          `json:"user"`
	Medium                   string          `json:"medium"`
	Address                  string          `json:"address"`
	Password                 *string         `json:"password"`
	Token                    string          `json:"token"`
	DeviceID                 *string         `json:"device_id"`
	InitialDeviceDisplayName *string         `json:"initial_device_display_name"`
	RefreshToken             bool            `json:"refresh_token"`
}

// handleLogin serves POST /login.
func (s *Service) handleLogin(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var req loginRequest
	if err := httpx.DecodeJSON(r, 0, &req); err != nil {
		return err
	}
	if err := checkDeviceID(req.DeviceID); err != nil {
		return err
	}
	if err := checkDisplayName(req.InitialDeviceDisplayName, "initial_device_display_name"); err != nil {
		return err
	}
	sreq := sessionRequest{displayName: req.InitialDeviceDisplayName, refresh: req.RefreshToken}
	if req.DeviceID != nil {
		sreq.deviceID = *req.DeviceID
	}
	var resp *loginResponse
	switch req.Type {
	case loginPassword:
		ident, err := parseIdentifier(req.Identifier)
		if err != nil {
			return err
		}
		userID, err := s.identifiedUser(passwordCreds{Identifier: ident, User: req.User, Medium: req.Medium, Address: req.Address})
		if err != nil {
			return err
		}
		if req.Password == nil || *req.Password == "" {
			return httpx.MissingParam("'password' is required for " + loginPassword)
		}
		st, ok, err := s.checkPassword(ctx, userID, *req.Password)
		if err != nil {
			return err
		}
		if !ok {
			return errBadCredentials()
		}
		if st.deactivated {
			return httpx.UserDeactivated("This account has been deactivated")
		}
		resp, err = s.startSession(ctx, sreq, func(ctx context.Context, tx *store.Tx) (id.UserID, error) {
			// Deactivation may have committed since the password check.
			return st.userID, checkActiveTx(ctx, tx, st.userID)
		})
		if err != nil {
			return err
		}
	case loginToken:
		if req.Token == "" {
			return httpx.MissingParam("'token' is required for " + loginToken)
		}
		var err error
		resp, err = s.startSession(ctx, sreq, func(ctx context.Context, tx *store.Tx) (id.UserID, error) {
			return s.consumeLoginTokenTx(ctx, tx, req.Token)
		})
		if err != nil {
			return err
		}
	case "":
		return httpx.MissingParam("'type' is required")
	default:
		return httpx.New(httpx.CodeUnknown, "Unknown login type '"+truncate(req.Type, 64)+"'").WithStatus(http.StatusBadRequest)
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "logged in", slogUser(resp.UserID),
		slog.String("device_id", resp.DeviceID), slog.String("login_type", req.Type))
	return httpx.WriteJSON(w, http.StatusOK, resp)
}

func checkActiveTx(ctx context.Context, tx *store.Tx, userID id.UserID) error {
	var deactivated bool
	err := tx.QueryRow(ctx, `SELECT deactivated FROM accounts_users WHERE user_id = $1`, string(userID)).Scan(&deactivated)
	if errors.Is(err, store.ErrNoRows) {
		return errBadCredentials()
	}
	if err != nil {
		return err
	}
	if deactivated {
		return httpx.UserDeactivated("This account has been deactivated")
	}
	return nil
}

// consumeLoginTokenTx uses up a login token and returns its user.
func (s *Service) consumeLoginTokenTx(ctx context.Context, tx *store.Tx, token string) (id.UserID, error) {
	bad := httpx.Forbidden("Invalid or expired login token")
	if !strings.HasPrefix(token, loginTokenPrefix) {
		return "", bad
	}
	h := hashToken(token)
	var userID string
	err := tx.QueryRow(ctx, `SELECT user_id FROM accounts_login_tokens WHERE token_hash = $1 AND expires_at > $2`,
		h[:], s.nowMS()).Scan(&userID)
	if errors.Is(err, store.ErrNoRows) {
		return "", bad
	}
	if err != nil {
		return "", fmt.Errorf("accounts: look up login token: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM accounts_login_tokens WHERE token_hash = $1`, h[:]); err != nil {
		return "", err
	}
	return id.UserID(userID), checkActiveTx(ctx, tx, id.UserID(userID))
}

// handleGetLoginToken serves POST /login/get_token. Every call needs a
// fresh password stage: UIA sessions are single-use here as everywhere.
func (s *Service) handleGetLoginToken(w http.ResponseWriter, r *http.Request, d *Device) error {
	if d.IsGuest {
		return httpx.GuestAccessForbidden("Guest accounts cannot make login tokens")
	}
	var req struct {
		Auth json.RawMessage `json:"auth"`
	}
	if err := decodeOptionalJSON(r, &req); err != nil {
		return err
	}
	auth, err := parseAuthDict(req.Auth)
	if err != nil {
		return err
	}
	ureq := uiaRequest{op: opGetLoginToken, userID: d.UserID, bind: bindDigest(opGetLoginToken), flows: [][]string{{stagePassword}}}
	sid, done, err := s.runUIA(w, r, ureq, auth)
	if err != nil || !done {
		return err
	}
	tok, err := s.newSecret(loginTokenPrefix)
	if err != nil {
		return err
	}
	now := s.now()
	err = s.db.Tx(r.Context(), func(ctx context.Context, tx *store.Tx) error {
		if _, err := consumeUIATx(ctx, tx, sid, ureq, now.UnixMilli()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO accounts_login_tokens (token_hash, user_id, created_at, expires_at)
			VALUES ($1, $2, $3, $4)`, tok.hash[:], string(d.UserID), now.UnixMilli(), now.Add(loginTokenLifetime).UnixMilli())
		return err
	})
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{
		"login_token":   tok.text,
		"expires_in_ms": loginTokenLifetime.Milliseconds(),
	})
}

// handleLogout serves POST /logout: the device and its tokens go. An
// expired access token may still log out, so that a client can clean up.
func (s *Service) handleLogout(w http.ResponseWriter, r *http.Request) error {
	d, err := s.authenticate(r, true)
	if err != nil {
		return err
	}
	if err := s.deleteDevices(r.Context(), d.UserID, []string{d.DeviceID}, ""); err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, struct{}{})
}

// handleLogoutAll serves POST /logout/all: every device of the user goes.
func (s *Service) handleLogoutAll(w http.ResponseWriter, r *http.Request, d *Device) error {
	if err := s.deleteDevices(r.Context(), d.UserID, nil, ""); err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, struct{}{})
}

// handleWhoami serves GET /account/whoami.
func (s *Service) handleWhoami(w http.ResponseWriter, r *http.Request, d *Device) error {
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{
		"user_id":   d.UserID,
		"device_id": d.DeviceID,
		"is_guest":  d.IsGuest,
	})
}

// decodeOptionalJSON decodes a body that clients may leave empty (an empty
// body is {}).
func decodeOptionalJSON(r *http.Request, v any) error {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil
	}
	return httpx.DecodeJSON(r, 0, v)
}
