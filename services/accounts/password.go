package accounts

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/id"
)

// Passwords are stored as passwordScheme + bcrypt(base64(HMAC-SHA-256(
// prehashKey, password))). The pre-hash lets every byte of a long password
// count (bcrypt alone ignores all after the 72nd), and keying it keeps a
// leaked table of plain SHA-256 password hashes from being usable against
// ours. The scheme prefix leaves room for other schemes (imports) later.
const passwordScheme = "bcrypt-hmac-sha256:"

var prehashKey = []byte("axon password pre-hash v1")

// maxPasswordBytes bounds a password; more is surely not a password.
const maxPasswordBytes = 1024

func prehash(password string) []byte {
	m := hmac.New(sha256.New, prehashKey)
	m.Write([]byte(password))
	return []byte(base64.StdEncoding.EncodeToString(m.Sum(nil)))
}

// checkNewPassword validates a password that is about to be set.
func checkNewPassword(p *string, field string) error {
	if p == nil || *p == "" {
		return httpx.MissingParam("'" + field + "' is required")
	}
	if len(*p) > maxPasswordBytes {
		return httpx.InvalidParam(fmt.Sprintf("'%s' is longer than %d bytes", field, maxPasswordBytes))
	}
	return nil
}

// withHashSlot runs fn while holding one of the bcrypt slots, which bound
// the CPU that password hashing may take to GOMAXPROCS concurrent hashes.
func (s *Service) withHashSlot(ctx context.Context, fn func()) error {
	select {
	case s.hashSem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.hashSem }()
	fn()
	return nil
}

// hashPassword returns the stored form of a new password.
func (s *Service) hashPassword(ctx context.Context, password string) (string, error) {
	var h []byte
	var err error
	if serr := s.withHashSlot(ctx, func() { h, err = bcrypt.GenerateFromPassword(prehash(password), s.cfg.BcryptCost) }); serr != nil {
		return "", serr
	}
	if err != nil {
		return "", fmt.Errorf("accounts: hash password: %w", err)
	}
	return passwordScheme + string(h), nil
}

// verifyPassword reports whether password matches stored. An empty or
// unknown stored form never matches, but still costs a bcrypt comparison,
// so that timing does not tell an unknown user from a wrong password.
func (s *Service) verifyPassword(ctx context.Context, stored, password string) (bool, error) {
	h, ok := strings.CutPrefix(stored, passwordScheme)
	if !ok {
		h = s.dummy()
	}
	var err error
	if serr := s.withHashSlot(ctx, func() { err = bcrypt.CompareHashAndPassword([]byte(h), prehash(password)) }); serr != nil {
		return false, serr
	}
	return ok && err == nil, nil
}

func (s *Service) dummy() string {
	s.dummyOnce.Do(func() {
		b, err := s.randomBytes(16)
		if err == nil {
			var h []byte
			if h, err = bcrypt.GenerateFromPassword(b, s.cfg.BcryptCost); err == nil {
				s.dummyHash = string(h)
			}
		}
		if err != nil {
			s.dummyHash = "$2a$04$invalid" // compares quickly and never matches
		}
	})
	return s.dummyHash
}

// accountState is what a password check learns about an account.
type accountState struct {
	userID      id.UserID
	exists      bool
	deactivated bool
	isGuest     bool
}

// checkPassword verifies the password of the account userID names. If no
// account has exactly that ID and its localpart has upper-case letters,
// the lower-cased ID is tried, since new accounts are lower-case only and
// people type their names capitalised. ok is false for an unknown user, a
// wrong password, and an account without a password (guests). The slow
// comparison runs outside any transaction.
func (s *Service) checkPassword(ctx context.Context, userID id.UserID, password string) (st accountState, ok bool, err error) {
	var hash sql.NullString
	st, hash, err = lookupAccount(ctx, s.db, userID)
	if err == nil && !st.exists {
		if lower := strings.ToLower(userID.Localpart()); lower != userID.Localpart() {
			if u, perr := id.NewUserID(lower, userID.Server()); perr == nil {
				st, hash, err = lookupAccount(ctx, s.db, u)
			}
		}
	}
	if err != nil {
		return st, false, err
	}
	ok, err = s.verifyPassword(ctx, hash.String, password)
	return st, ok && st.exists, err
}

func lookupAccount(ctx context.Context, q store.Querier, userID id.UserID) (accountState, sql.NullString, error) {
	st := accountState{userID: userID}
	var hash sql.NullString
	err := q.QueryRow(ctx, `SELECT password_hash, deactivated, is_guest FROM accounts_users WHERE user_id = $1`,
		string(userID)).Scan(&hash, &st.deactivated, &st.isGuest)
	if errors.Is(err, store.ErrNoRows) {
		return st, hash, nil
	}
	if err != nil {
		return st, hash, fmt.Errorf("accounts: look up account: %w", err)
	}
	st.exists = true
	return st, hash, nil
}
