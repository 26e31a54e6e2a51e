package accounts

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/id"
)

// Shared-secret registration is Synapse's admin API for creating accounts
// from scripts (register_new_matrix_user and compatible tools): GET gives a
// nonce; POST sends it back with the account and an HMAC-SHA1, keyed by the
// shared secret, over nonce NUL username NUL password NUL ("admin" |
// "notadmin") [NUL user_type]. Nonces are single-use (consumed by any
// attempt, right or wrong) and live adminNonceLifetime, in the database so
// that the POST may reach another worker than the GET.
const adminNonceLifetime = 60 * time.Second

func (s *Service) sharedSecretDisabled() error {
	if s.cfg.SharedSecret != "" {
		return nil
	}
	return httpx.Unrecognized("Shared-secret registration is not enabled on this server")
}

// handleAdminNonce serves GET /_synapse/admin/v1/register.
func (s *Service) handleAdminNonce(w http.ResponseWriter, r *http.Request) error {
	if err := s.sharedSecretDisabled(); err != nil {
		return err
	}
	b, err := s.randomBytes(16)
	if err != nil {
		return err
	}
	nonce := hex.EncodeToString(b)
	if _, err := s.db.Exec(r.Context(), `INSERT INTO accounts_admin_nonces (nonce, expires_at) VALUES ($1, $2)`,
		nonce, s.now().Add(adminNonceLifetime).UnixMilli()); err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]string{"nonce": nonce})
}

// adminMAC computes the MAC of a shared-secret registration.
func adminMAC(secret, nonce, username, password string, admin bool, userType *string) []byte {
	m := hmac.New(sha1.New, []byte(secret))
	role := "notadmin"
	if admin {
		role = "admin"
	}
	m.Write([]byte(strings.Join([]string{nonce, username, password, role}, "\x00")))
	if userType != nil {
		m.Write([]byte("\x00" + *userType))
	}
	return m.Sum(nil)
}

// handleAdminRegister serves POST /_synapse/admin/v1/register.
func (s *Service) handleAdminRegister(w http.ResponseWriter, r *http.Request) error {
	if err := s.sharedSecretDisabled(); err != nil {
		return err
	}
	ctx := r.Context()
	var req struct {
		Nonce       string  `json:"nonce"`
		Username    string  `json:"username"`
		Password    *string `json:"password"`
		Admin       bool    `json:"admin"`
		MAC         string  `json:"mac"`
		DisplayName *string `json:"displayname"`
		UserType    *string `json:"user_type"`
	}
	if err := httpx.DecodeJSON(r, 0, &req); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{{"nonce", req.Nonce}, {"username", req.Username}, {"mac", req.MAC}} {
		if f.v == "" {
			return httpx.MissingParam("'" + f.name + "' is required")
		}
	}
	if err := checkNewPassword(req.Password, "password"); err != nil {
		return err
	}
	if err := checkDisplayName(req.DisplayName, "displayname"); err != nil {
		return err
	}
	res, err := s.db.Exec(ctx, `DELETE FROM accounts_admin_nonces WHERE nonce = $1 AND expires_at > $2`, req.Nonce, s.nowMS())
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return httpx.InvalidParam("Unrecognised, expired or already used nonce")
	}
	got, err := hex.DecodeString(strings.ToLower(req.MAC))
	want := adminMAC(s.cfg.SharedSecret, req.Nonce, req.Username, *req.Password, req.Admin, req.UserType)
	if err != nil || !hmac.Equal(got, want) {
		s.log.LogAttrs(ctx, slog.LevelWarn, "shared-secret registration with a wrong MAC")
		return httpx.Forbidden("HMAC incorrect")
	}
	userID, err := s.checkNewLocalpart(ctx, req.Username)
	if err != nil {
		return err
	}
	hash, err := s.hashPassword(ctx, *req.Password)
	if err != nil {
		return err
	}
	resp, err := s.startSession(ctx, sessionRequest{}, func(ctx context.Context, tx *store.Tx) (id.UserID, error) {
		ok, err := insertUserTx(ctx, tx, userID, &hash, false, req.Admin, s.nowMS())
		if err == nil && !ok {
			err = errUserInUse()
		}
		if err == nil && req.DisplayName != nil && *req.DisplayName != "" {
			_, err = tx.Exec(ctx, `UPDATE accounts_users SET displayname = $2 WHERE user_id = $1`, string(userID), *req.DisplayName)
		}
		return userID, err
	})
	if err != nil {
		return err
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "registered user with the shared secret", slogUser(userID), slog.Bool("admin", req.Admin))
	return httpx.WriteJSON(w, http.StatusOK, resp)
}
