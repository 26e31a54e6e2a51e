package accounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/store"
)

// maxRegistrationTokenLength is the spec's limit on registration tokens.
const maxRegistrationTokenLength = 64

// ErrRegistrationTokenExists is returned by CreateRegistrationToken for a
// token that already exists.
var ErrRegistrationTokenExists = errors.New("accounts: registration token already exists")

// validOpaqueID reports whether s follows the Opaque Identifier Grammar
// with at most maxLen characters.
func validOpaqueID(s string, maxLen int) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c == '-', c == '.', c == '_', c == '~':
		default:
			return false
		}
	}
	return true
}

// RegistrationToken describes a registration token.
type RegistrationToken struct {
	Token       string
	UsesAllowed *int       // nil: unlimited
	Completed   int        // registrations that used it
	ExpiresAt   *time.Time // nil: never
}

// CreateRegistrationToken creates a token for token-authenticated
// registration, usable usesAllowed times (nil: unlimited) until expiresAt
// (nil: forever). The token must follow the Opaque Identifier Grammar and
// be at most 64 characters long.
func (s *Service) CreateRegistrationToken(ctx context.Context, token string, usesAllowed *int, expiresAt *time.Time) error {
	if !validOpaqueID(token, maxRegistrationTokenLength) {
		return fmt.Errorf("accounts: registration token must be 1–%d characters of A-Z, a-z, 0-9, '-', '.', '_' and '~'", maxRegistrationTokenLength)
	}
	var uses, exp any
	if usesAllowed != nil {
		if *usesAllowed < 0 {
			return errors.New("accounts: registration token uses must not be negative")
		}
		uses = int64(*usesAllowed)
	}
	if expiresAt != nil {
		exp = expiresAt.UnixMilli()
	}
	res, err := s.db.Exec(ctx, `INSERT INTO accounts_registration_tokens (token, uses_allowed, completed, expires_at, created_at)
		VALUES ($1, $2, 0, $3, $4) ON CONFLICT (token) DO NOTHING`, token, uses, exp, s.nowMS())
	if err != nil {
		return fmt.Errorf("accounts: create registration token: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return ErrRegistrationTokenExists
	}
	return nil
}

// DeleteRegistrationToken deletes a token; deleting an unknown one is not
// an error. Sessions that already passed the token stage fail when they
// try to register.
func (s *Service) DeleteRegistrationToken(ctx context.Context, token string) error {
	_, err := s.db.Exec(ctx, `DELETE FROM accounts_registration_tokens WHERE token = $1`, token)
	return err
}

// RegistrationTokens lists every registration token, for the admin CLI.
func (s *Service) RegistrationTokens(ctx context.Context) ([]RegistrationToken, error) {
	rows, err := s.db.Query(ctx, `SELECT token, uses_allowed, completed, expires_at
		FROM accounts_registration_tokens ORDER BY token`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []RegistrationToken
	for rows.Next() {
		var t RegistrationToken
		var uses, exp sql.NullInt64
		if err := rows.Scan(&t.Token, &uses, &t.Completed, &exp); err != nil {
			return nil, err
		}
		if uses.Valid {
			n := int(uses.Int64)
			t.UsesAllowed = &n
		}
		if exp.Valid {
			at := time.UnixMilli(exp.Int64)
			t.ExpiresAt = &at
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// registrationTokenValid reports whether token can register an account now.
func (s *Service) registrationTokenValid(ctx context.Context, q store.Querier, token string) (bool, error) {
	if !validOpaqueID(token, maxRegistrationTokenLength) {
		return false, nil
	}
	var n int
	err := q.QueryRow(ctx, `SELECT count(*) FROM accounts_registration_tokens
		WHERE token = $1 AND (expires_at IS NULL OR expires_at > $2)
		AND (uses_allowed IS NULL OR completed < uses_allowed)`, token, s.nowMS()).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("accounts: check registration token: %w", err)
	}
	return n > 0, nil
}

// useRegistrationTokenTx counts one registration against token, inside the
// registration's transaction, and fails if the token is no longer valid:
// a token is never used more often than allowed, whatever the number of
// sessions that passed its stage.
func (s *Service) useRegistrationTokenTx(ctx context.Context, tx *store.Tx, token string) error {
	res, err := tx.Exec(ctx, `UPDATE accounts_registration_tokens SET completed = completed + 1
		WHERE token = $1 AND (expires_at IS NULL OR expires_at > $2)
		AND (uses_allowed IS NULL OR completed < uses_allowed)`, token, s.nowMS())
	if err != nil {
		return fmt.Errorf("accounts: use registration token: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return httpx.Forbidden("The registration token expired or was used up during registration; start again with another token")
	}
	return nil
}

// handleTokenValidity serves GET /register/m.login.registration_token/validity.
func (s *Service) handleTokenValidity(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Registration == RegistrationClosed {
		return httpx.Forbidden("Registration is not enabled on this homeserver")
	}
	q := r.URL.Query()
	if !q.Has("token") {
		return httpx.MissingParam("The 'token' query parameter is required")
	}
	ok, err := s.registrationTokenValid(r.Context(), s.db, q.Get("token"))
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]bool{"valid": ok})
}
