package accounts

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/id"
)

// Token prefixes. The random part is 32 bytes from the configured source in
// unpadded URL-safe base64; the prefix names the kind so that a leaked token
// is recognisable (secret scanners, logs) and a token of one kind is never
// accepted as another.
const (
	accessTokenPrefix  = "axa_"
	refreshTokenPrefix = "axr_"
	loginTokenPrefix   = "axl_"
)

// deviceIDAlphabet and deviceIDLength shape generated device IDs.
const (
	deviceIDAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	deviceIDLength   = 10
)

// errDeviceIDClash: a generated device ID is already one of the user's
// devices; the caller generates another and retries.
var errDeviceIDClash = errors.New("accounts: generated device ID already in use")

func hashToken(token string) tokenHash { return sha256.Sum256([]byte(token)) }

type secretToken struct {
	text string
	hash tokenHash
}

func (s *Service) newSecret(prefix string) (secretToken, error) {
	b, err := s.randomBytes(32)
	if err != nil {
		return secretToken{}, err
	}
	t := prefix + base64.RawURLEncoding.EncodeToString(b)
	return secretToken{text: t, hash: hashToken(t)}, nil
}

// grant is the tokens of one login or refresh, generated before the
// transaction that stores them (so that a retried transaction stores the
// same ones).
type grant struct {
	access    secretToken
	refresh   *secretToken // nil: the client does not support refresh tokens
	expiresAt int64        // ms; 0 = never (only without a refresh token)
}

func (s *Service) newGrant(withRefresh bool) (grant, error) {
	var g grant
	var err error
	if g.access, err = s.newSecret(accessTokenPrefix); err != nil {
		return g, err
	}
	if withRefresh {
		r, err := s.newSecret(refreshTokenPrefix)
		if err != nil {
			return g, err
		}
		g.refresh = &r
		g.expiresAt = s.now().Add(s.cfg.AccessTokenLifetime).UnixMilli()
	}
	return g, nil
}

func (g grant) expiresInMS(now int64) int64 {
	if g.expiresAt == 0 {
		return 0
	}
	return max(g.expiresAt-now, 1)
}

// insertGrantTx stores g's tokens for the device. revokes is the refresh
// token that g replaces (see the accounts_access_tokens comment), or nil.
func insertGrantTx(ctx context.Context, tx *store.Tx, userID id.UserID, deviceID string, g grant, revokes []byte, now int64) error {
	var refreshHash []byte
	if g.refresh != nil {
		refreshHash = g.refresh.hash[:]
	}
	if _, err := tx.Exec(ctx, `INSERT INTO accounts_access_tokens
		(token_hash, user_id, device_id, created_at, expires_at, refresh_hash, revokes_refresh)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		g.access.hash[:], string(userID), deviceID, now, g.expiresAt, nullBytes(refreshHash), nullBytes(revokes)); err != nil {
		return fmt.Errorf("insert access token: %w", err)
	}
	if g.refresh == nil {
		return nil
	}
	if _, err := tx.Exec(ctx, `INSERT INTO accounts_refresh_tokens
		(token_hash, user_id, device_id, created_at, access_hash, parent_hash)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		g.refresh.hash[:], string(userID), deviceID, now, g.access.hash[:], nullBytes(revokes)); err != nil {
		return fmt.Errorf("insert refresh token: %w", err)
	}
	return nil
}

// deleteDeviceTokensTx revokes every access and refresh token of a device.
func deleteDeviceTokensTx(ctx context.Context, tx *store.Tx, userID id.UserID, deviceID string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM accounts_access_tokens WHERE user_id = $1 AND device_id = $2`, string(userID), deviceID); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `DELETE FROM accounts_refresh_tokens WHERE user_id = $1 AND device_id = $2`, string(userID), deviceID)
	return err
}

// sessionRequest is what a login or registration asks for its new session.
type sessionRequest struct {
	deviceID    string // "" = generate one
	displayName *string
	refresh     bool // the client supports refresh tokens
	inhibit     bool // create no device and no tokens (registration's inhibit_login)
}

// loginResponse is the body of a successful /login or /register.
type loginResponse struct {
	UserID       id.UserID     `json:"user_id"`
	AccessToken  string        `json:"access_token,omitempty"`
	RefreshToken string        `json:"refresh_token,omitempty"`
	ExpiresInMS  int64         `json:"expires_in_ms,omitempty"`
	DeviceID     string        `json:"device_id,omitempty"`
	HomeServer   id.ServerName `json:"home_server"`
}

// startSession runs fn, which decides the user (creating it, consuming a
// UIA session or a login token …), and stores a new device session for
// that user in the same transaction. A device ID the client chose is
// reused if the user has that device: its old tokens are revoked and its
// display name kept, and the device list is unchanged. A new device is a
// device-list change (Config.OnDeviceListChange, after the commit). A
// generated device ID that clashes is generated anew.
func (s *Service) startSession(ctx context.Context, req sessionRequest, fn func(ctx context.Context, tx *store.Tx) (id.UserID, error)) (*loginResponse, error) {
	for attempt := 0; ; attempt++ {
		deviceID := req.deviceID
		generated := deviceID == ""
		if generated {
			var err error
			if deviceID, err = s.randomString(deviceIDLength, deviceIDAlphabet); err != nil {
				return nil, err
			}
		}
		var g grant
		if !req.inhibit {
			var err error
			if g, err = s.newGrant(req.refresh); err != nil {
				return nil, err
			}
		}
		var userID id.UserID
		var changes []DeviceChange
		now := s.nowMS()
		err := s.db.Tx(ctx, func(ctx context.Context, tx *store.Tx) error {
			changes = nil
			var err error
			if userID, err = fn(ctx, tx); err != nil {
				return err
			}
			if req.inhibit {
				return nil
			}
			res, err := tx.Exec(ctx, `INSERT INTO accounts_devices (user_id, device_id, display_name, created_at)
				VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, device_id) DO NOTHING`,
				string(userID), deviceID, nullString(req.displayName), now)
			if err != nil {
				return fmt.Errorf("insert device: %w", err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				if generated {
					return errDeviceIDClash
				}
				if err := deleteDeviceTokensTx(ctx, tx, userID, deviceID); err != nil {
					return err
				}
			} else {
				changes = []DeviceChange{{DeviceID: deviceID}}
				if req.displayName != nil {
					changes[0].DisplayName = *req.displayName
				}
				if err := countDeviceChangesTx(ctx, tx, userID, changes); err != nil {
					return err
				}
			}
			return insertGrantTx(ctx, tx, userID, deviceID, g, nil, now)
		})
		if errors.Is(err, errDeviceIDClash) && attempt < 3 {
			continue
		}
		if err != nil {
			return nil, err
		}
		resp := &loginResponse{UserID: userID, HomeServer: s.cfg.ServerName}
		if req.inhibit {
			return resp, nil
		}
		s.cache.invalidateUser(userID, deviceID)
		s.deviceListChanged(ctx, userID, changes)
		resp.AccessToken = g.access.text
		resp.DeviceID = deviceID
		if g.refresh != nil {
			resp.RefreshToken = g.refresh.text
			resp.ExpiresInMS = g.expiresInMS(now)
		}
		return resp, nil
	}
}

// nullBytes binds a nil slice as SQL NULL on every driver.
func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// nullString binds a nil pointer as SQL NULL.
func nullString(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}
