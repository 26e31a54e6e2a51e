package accounts

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/id"
)

// Refresh tokens rotate. POST /refresh with refresh token R returns a new
// access token A' and refresh token R'. R (and the access token issued with
// it) stay valid until A' or R' is first used, as the spec asks, so a
// client that lost the response can refresh again with R; doing so revokes
// the A'/R' of the earlier attempt, so at most one successor of R is ever
// live. Refresh tokens themselves do not expire; they end with their device.

// handleRefresh serves POST /refresh.
func (s *Service) handleRefresh(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		RefreshToken *string `json:"refresh_token"`
	}
	if err := httpx.DecodeJSON(r, 0, &req); err != nil {
		return err
	}
	if req.RefreshToken == nil {
		return httpx.MissingParam("'refresh_token' is required")
	}
	unknown := httpx.UnknownToken("Unknown or already used refresh token", false)
	if !strings.HasPrefix(*req.RefreshToken, refreshTokenPrefix) {
		return unknown
	}
	h := hashToken(*req.RefreshToken)
	g, err := s.newGrant(true)
	if err != nil {
		return err
	}
	now := s.nowMS()
	var revoked []tokenHash
	err = s.db.Tx(r.Context(), func(ctx context.Context, tx *store.Tx) error {
		revoked = revoked[:0]
		var userID, deviceID string
		var accessHash, parent []byte
		var deactivated bool
		err := tx.QueryRow(ctx, `SELECT r.user_id, r.device_id, r.access_hash, r.parent_hash, u.deactivated
			FROM accounts_refresh_tokens r JOIN accounts_users u ON u.user_id = r.user_id
			WHERE r.token_hash = $1`, h[:]).Scan(&userID, &deviceID, &accessHash, &parent, &deactivated)
		if errors.Is(err, store.ErrNoRows) || (err == nil && deactivated) {
			return unknown
		}
		if err != nil {
			return fmt.Errorf("accounts: look up refresh token: %w", err)
		}
		if parent != nil {
			// Using R' for the first time revokes R.
			a, err := revokeRefreshTx(ctx, tx, parent)
			if err != nil {
				return err
			}
			revoked = append(revoked, a...)
			if err := clearReplacedTx(ctx, tx, accessHash, parent); err != nil {
				return err
			}
		}
		// Successors from an earlier attempt with this same token.
		children, err := childRefreshTokensTx(ctx, tx, h[:])
		if err != nil {
			return err
		}
		for _, c := range children {
			a, err := revokeRefreshTx(ctx, tx, c)
			if err != nil {
				return err
			}
			revoked = append(revoked, a...)
		}
		return insertGrantTx(ctx, tx, id.UserID(userID), deviceID, g, h[:], now)
	})
	if err != nil {
		return err
	}
	s.cache.invalidate(revoked...)
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{
		"access_token":  g.access.text,
		"refresh_token": g.refresh.text,
		"expires_in_ms": g.expiresInMS(now),
	})
}

// revokeReplaced runs when the access token newAccess, made by /refresh,
// is first seen: the refresh token it replaced goes, with its access token.
func (s *Service) revokeReplaced(ctx context.Context, newAccess tokenHash, oldRefresh []byte) error {
	var revoked []tokenHash
	err := s.db.Tx(ctx, func(ctx context.Context, tx *store.Tx) error {
		var err error
		if revoked, err = revokeRefreshTx(ctx, tx, oldRefresh); err != nil {
			return err
		}
		return clearReplacedTx(ctx, tx, newAccess[:], oldRefresh)
	})
	if err != nil {
		return err
	}
	s.cache.invalidate(revoked...)
	return nil
}

// clearReplacedTx forgets that oldRefresh is still to be revoked, once it
// has been: on the new access token and on the new refresh token.
func clearReplacedTx(ctx context.Context, tx *store.Tx, newAccess, oldRefresh []byte) error {
	if _, err := tx.Exec(ctx, `UPDATE accounts_access_tokens SET revokes_refresh = NULL WHERE token_hash = $1`, newAccess); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE accounts_refresh_tokens SET parent_hash = NULL WHERE parent_hash = $1`, oldRefresh)
	return err
}

// revokeRefreshTx deletes a refresh token and the access token issued with
// it, returning that access token's hash (none if the refresh token was
// already gone).
func revokeRefreshTx(ctx context.Context, tx *store.Tx, refresh []byte) ([]tokenHash, error) {
	var access []byte
	err := tx.QueryRow(ctx, `SELECT access_hash FROM accounts_refresh_tokens WHERE token_hash = $1`, refresh).Scan(&access)
	if errors.Is(err, store.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("accounts: look up refresh token: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM accounts_refresh_tokens WHERE token_hash = $1`, refresh); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM accounts_access_tokens WHERE token_hash = $1`, access); err != nil {
		return nil, err
	}
	var h tokenHash
	copy(h[:], access)
	return []tokenHash{h}, nil
}

func childRefreshTokensTx(ctx context.Context, tx *store.Tx, parent []byte) ([][]byte, error) {
	rows, err := tx.Query(ctx, `SELECT token_hash FROM accounts_refresh_tokens WHERE parent_hash = $1`, parent)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}
