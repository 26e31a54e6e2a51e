package accounts

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/id"
)

// Profile limits: the spec's 64 KiB per profile and 255 bytes per key;
// displayname as for device names; avatar_url as an MXC URI can be.
const (
	maxProfileBytes    = 64 * 1024
	maxProfileKeyBytes = 255
	maxMediaIDBytes    = 255
)

const (
	fieldDisplayName = "displayname"
	fieldAvatarURL   = "avatar_url"
	fieldTimeZone    = "m.tz"
)

// Error codes of the profile API that httpx does not define (400).
const (
	codeProfileTooLarge = "M_PROFILE_TOO_LARGE"
	codeKeyTooLarge     = "M_KEY_TOO_LARGE"
)

// ErrUnknownUser is wrapped by the error Profile returns for a user that
// does not exist on this server.
var ErrUnknownUser = errors.New("accounts: unknown user")

var profileKeyRE = regexp.MustCompile(`^(avatar_url|displayname|m\.tz|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+)$`)

func checkProfileKey(key string) error {
	if len(key) > maxProfileKeyBytes {
		return httpx.New(codeKeyTooLarge, fmt.Sprintf("Profile keys are at most %d bytes", maxProfileKeyBytes))
	}
	if !profileKeyRE.MatchString(key) {
		return httpx.InvalidParam("Invalid profile key: use displayname, avatar_url, m.tz or a namespaced key such as com.example.field")
	}
	return nil
}

// profile is a local user's whole profile.
type profile struct {
	displayName, avatarURL sql.NullString
	fields                 map[string]json.RawMessage
}

func (p *profile) toMap() map[string]any {
	m := make(map[string]any, len(p.fields)+2)
	for k, v := range p.fields {
		m[k] = v
	}
	if p.displayName.Valid {
		m[fieldDisplayName] = p.displayName.String
	}
	if p.avatarURL.Valid {
		m[fieldAvatarURL] = p.avatarURL.String
	}
	return m
}

// loadProfile reads a local user's profile; ok is false for no such user.
func loadProfile(ctx context.Context, q store.Querier, userID id.UserID) (p profile, ok bool, err error) {
	err = q.QueryRow(ctx, `SELECT displayname, avatar_url FROM accounts_users WHERE user_id = $1`, string(userID)).
		Scan(&p.displayName, &p.avatarURL)
	if errors.Is(err, store.ErrNoRows) {
		return p, false, nil
	}
	if err != nil {
		return p, false, fmt.Errorf("accounts: load profile: %w", err)
	}
	rows, err := q.Query(ctx, `SELECT field, value FROM accounts_profile_fields WHERE user_id = $1`, string(userID))
	if err != nil {
		return p, false, fmt.Errorf("accounts: load profile fields: %w", err)
	}
	defer rows.Close()
	p.fields = map[string]json.RawMessage{}
	for rows.Next() {
		var k string
		var v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return p, false, err
		}
		p.fields[k] = v
	}
	return p, true, rows.Err()
}

// Profile returns the displayname and avatar_url of a local user ("" for
// unset), for m.room.member events. New accounts start with their localpart
// as displayname; a user who clears it has none. An unknown user is an
// *httpx.Error M_NOT_FOUND wrapping ErrUnknownUser.
func (s *Service) Profile(ctx context.Context, userID id.UserID) (displayName, avatarURL string, err error) {
	p, ok, err := loadProfile(ctx, s.db, userID)
	if err != nil {
		return "", "", err
	}
	if !ok {
		return "", "", httpx.NotFound("Profile not found").WithCause(ErrUnknownUser)
	}
	return p.displayName.String, p.avatarURL.String, nil
}

// profileOf answers a profile lookup for any user.
func (s *Service) profileOf(ctx context.Context, raw string) (map[string]any, error) {
	userID, err := id.ParseUserID(raw)
	if err != nil {
		return nil, httpx.InvalidParam("Invalid user ID").WithCause(err)
	}
	if userID.Server() != s.cfg.ServerName {
		if s.cfg.RemoteProfile == nil {
			return nil, httpx.NotFound("Profile not found")
		}
		return s.cfg.RemoteProfile(ctx, userID)
	}
	p, ok, err := loadProfile(ctx, s.db, userID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, httpx.NotFound("Profile not found")
	}
	return p.toMap(), nil
}

// handleGetProfile serves GET /profile/{userId}.
func (s *Service) handleGetProfile(w http.ResponseWriter, r *http.Request) error {
	m, err := s.profileOf(r.Context(), r.PathValue("userId"))
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, m)
}

// handleGetProfileField serves GET /profile/{userId}/{keyName}.
func (s *Service) handleGetProfileField(w http.ResponseWriter, r *http.Request) error {
	key := r.PathValue("keyName")
	if err := checkProfileKey(key); err != nil {
		return err
	}
	m, err := s.profileOf(r.Context(), r.PathValue("userId"))
	if err != nil {
		return err
	}
	v, ok := m[key]
	if !ok {
		return httpx.NotFound("The user has no '" + key + "' profile field")
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{key: v})
}

// checkOwnProfile is the permission check of the profile writes: own
// profile only, and guests only their displayname.
func checkOwnProfile(r *http.Request, d *Device, key string) error {
	if err := checkProfileKey(key); err != nil {
		return err
	}
	if r.PathValue("userId") != string(d.UserID) {
		return httpx.Forbidden("You can only change your own profile")
	}
	if d.IsGuest && key != fieldDisplayName {
		return httpx.GuestAccessForbidden("Guest accounts can only change their displayname")
	}
	return nil
}

// handlePutProfileField serves PUT /profile/{userId}/{keyName}.
func (s *Service) handlePutProfileField(w http.ResponseWriter, r *http.Request, d *Device) error {
	key := r.PathValue("keyName")
	if err := checkOwnProfile(r, d, key); err != nil {
		return err
	}
	var body map[string]json.RawMessage
	if err := httpx.DecodeJSON(r, 0, &body); err != nil {
		return err
	}
	raw, ok := body[key]
	if !ok {
		return httpx.MissingParam("The body must have a '" + key + "' property")
	}
	value, err := checkProfileValue(key, raw)
	if err != nil {
		return err
	}
	return s.setProfileField(w, r, d.UserID, key, value)
}

// handleDeleteProfileField serves DELETE /profile/{userId}/{keyName}.
func (s *Service) handleDeleteProfileField(w http.ResponseWriter, r *http.Request, d *Device) error {
	key := r.PathValue("keyName")
	if err := checkOwnProfile(r, d, key); err != nil {
		return err
	}
	return s.setProfileField(w, r, d.UserID, key, nil)
}

// checkProfileValue validates a new value and returns it in the form to
// store: compact JSON, or nil to remove the field (an empty displayname or
// avatar_url clears it).
func checkProfileValue(key string, raw json.RawMessage) (json.RawMessage, error) {
	switch key {
	case fieldDisplayName, fieldAvatarURL, fieldTimeZone:
		var v string
		if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) || json.Unmarshal(raw, &v) != nil {
			return nil, httpx.BadJSON("'" + key + "' must be a string")
		}
		if key == fieldDisplayName && utf8.RuneCountInString(v) > maxDisplayNameRunes {
			return nil, httpx.InvalidParam(fmt.Sprintf("'displayname' is longer than %d characters", maxDisplayNameRunes))
		}
		if key == fieldAvatarURL && v != "" && !validMXC(v) {
			return nil, httpx.InvalidParam("'avatar_url' must be an mxc:// URI (mxc://<server-name>/<media-id>) or empty")
		}
		if v == "" && key != fieldTimeZone {
			return nil, nil
		}
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, httpx.BadJSON("Invalid value").WithCause(err)
	}
	return buf.Bytes(), nil
}

// validMXC checks "mxc://<server-name>/<media-id>", the media ID being
// [A-Za-z0-9_-]+.
func validMXC(s string) bool {
	rest, ok := strings.CutPrefix(s, "mxc://")
	if !ok {
		return false
	}
	server, media, ok := strings.Cut(rest, "/")
	if !ok || media == "" || len(media) > maxMediaIDBytes {
		return false
	}
	if _, err := id.ParseServerName(server); err != nil {
		return false
	}
	for i := 0; i < len(media); i++ {
		c := media[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// setProfileField sets (value nil: removes) one field, keeping the whole
// profile under 64 KiB, and calls OnProfileChange if the displayname or
// avatar_url changed.
func (s *Service) setProfileField(w http.ResponseWriter, r *http.Request, userID id.UserID, key string, value json.RawMessage) error {
	var before, after profile
	err := s.db.Tx(r.Context(), func(ctx context.Context, tx *store.Tx) error {
		p, ok, err := loadProfile(ctx, tx, userID)
		if err != nil {
			return err
		}
		if !ok {
			return httpx.NotFound("Profile not found")
		}
		before = p
		after = profile{displayName: p.displayName, avatarURL: p.avatarURL, fields: make(map[string]json.RawMessage, len(p.fields)+1)}
		for k, v := range p.fields {
			after.fields[k] = v
		}
		var str sql.NullString
		if value != nil {
			_ = json.Unmarshal(value, &str.String)
			str.Valid = true
		}
		switch {
		case key == fieldDisplayName:
			after.displayName = str
		case key == fieldAvatarURL:
			after.avatarURL = str
		case value == nil:
			delete(after.fields, key)
		default:
			after.fields[key] = value
		}
		enc, err := json.Marshal(after.toMap())
		if err != nil {
			return err
		}
		if value != nil && len(enc) > maxProfileBytes {
			return httpx.New(codeProfileTooLarge, fmt.Sprintf("The profile would be larger than %d bytes", maxProfileBytes))
		}
		switch key {
		case fieldDisplayName:
			_, err = tx.Exec(ctx, `UPDATE accounts_users SET displayname = $2 WHERE user_id = $1`, string(userID), nullableString(str))
		case fieldAvatarURL:
			_, err = tx.Exec(ctx, `UPDATE accounts_users SET avatar_url = $2 WHERE user_id = $1`, string(userID), nullableString(str))
		default:
			if value == nil {
				_, err = tx.Exec(ctx, `DELETE FROM accounts_profile_fields WHERE user_id = $1 AND field = $2`, string(userID), key)
			} else {
				_, err = tx.Exec(ctx, `INSERT INTO accounts_profile_fields (user_id, field, value, updated_at)
					VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, field) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
					string(userID), key, []byte(value), s.nowMS())
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	if s.cfg.OnProfileChange != nil && (before.displayName != after.displayName || before.avatarURL != after.avatarURL) {
		s.hook(r.Context(), "profile_change", userID, func(ctx context.Context) error {
			return s.cfg.OnProfileChange(ctx, userID, after.displayName.String, after.avatarURL.String)
		})
	}
	return httpx.WriteJSON(w, http.StatusOK, struct{}{})
}

// eraseProfileTx removes every profile field of a user.
func eraseProfileTx(ctx context.Context, tx *store.Tx, userID id.UserID) error {
	if _, err := tx.Exec(ctx, `UPDATE accounts_users SET displayname = NULL, avatar_url = NULL WHERE user_id = $1`, string(userID)); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `DELETE FROM accounts_profile_fields WHERE user_id = $1`, string(userID))
	return err
}

func nullableString(s sql.NullString) any {
	if !s.Valid {
		return nil
	}
	return s.String
}
