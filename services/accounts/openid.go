package accounts

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/id"
)

// OpenIDTokenLifetime is how long an OpenID token is honoured.
const OpenIDTokenLifetime = time.Hour

// openIDTokenPrefix names OpenID tokens (see tokens.go): one is never
// accepted as an access token, nor the other way round.
const openIDTokenPrefix = "axo_"

// handleOpenIDRequestToken serves POST /user/{userId}/openid/request_token:
// a token that a third party exchanges at the federation
// /openid/userinfo endpoint for the user's ID, and for nothing else.
func (s *Service) handleOpenIDRequestToken(w http.ResponseWriter, r *http.Request, d *Device) error {
	if r.PathValue("userId") != string(d.UserID) {
		return httpx.Forbidden("OpenID tokens can only be requested for the user of the access token")
	}
	if d.IsGuest {
		return httpx.GuestAccessForbidden("Guest accounts cannot request OpenID tokens")
	}
	var body map[string]any // "an empty object, reserved for future expansion"
	if err := httpx.DecodeJSON(r, 0, &body); err != nil {
		return err
	}
	if body == nil {
		return httpx.BadJSON("the request body must be a JSON object")
	}
	tok, err := s.newSecret(openIDTokenPrefix)
	if err != nil {
		return err
	}
	now := s.now()
	expires := now.Add(OpenIDTokenLifetime)
	if _, err := s.db.Exec(r.Context(), `INSERT INTO accounts_openid_tokens (token_hash, user_id, created_at, expires_at)
		VALUES ($1, $2, $3, $4)`, tok.hash[:], string(d.UserID), now.UnixMilli(), expires.UnixMilli()); err != nil {
		return fmt.Errorf("accounts: store OpenID token: %w", err)
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{
		"access_token":       tok.text,
		"token_type":         "Bearer",
		"matrix_server_name": string(s.cfg.ServerName),
		"expires_in":         int64(OpenIDTokenLifetime / time.Second),
	})
}

// OpenIDUser returns the user an OpenID token was issued to, or "" when
// the token is unknown, has expired, or its account has been deactivated
// since.
func (s *Service) OpenIDUser(ctx context.Context, token string) (id.UserID, error) {
	if token == "" {
		return "", nil
	}
	h := hashToken(token)
	var userID string
	err := s.db.QueryRow(ctx, `SELECT t.user_id FROM accounts_openid_tokens t
		JOIN accounts_users u ON u.user_id = t.user_id
		WHERE t.token_hash = $1 AND t.expires_at > $2 AND NOT u.deactivated`, h[:], s.nowMS()).Scan(&userID)
	if errors.Is(err, store.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("accounts: look up OpenID token: %w", err)
	}
	return id.UserID(userID), nil
}
