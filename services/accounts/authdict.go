package accounts

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/matrix/id"
)

// Identifier types (spec "Identifier types").
const (
	identifierUser       = "m.id.user"
	identifierThirdParty = "m.id.thirdparty"
	identifierPhone      = "m.id.phone"
)

// userIdentifier is a user identifier object.
type userIdentifier struct {
	Type    string `json:"type"`
	User    string `json:"user"`
	Medium  string `json:"medium"`
	Address string `json:"address"`
	Country string `json:"country"`
	Phone   string `json:"phone"`
}

// passwordCreds are the fields of a /login request or an m.login.password
// auth dict that name a user and prove who they are.
type passwordCreds struct {
	Identifier *userIdentifier `json:"identifier"`
	// Deprecated top-level forms, still accepted.
	User    string `json:"user"`
	Medium  string `json:"medium"`
	Address string `json:"address"`

	Password *string `json:"password"`
}

// authDict is the "auth" object of a request to an endpoint that uses
// User-Interactive Authentication.
type authDict struct {
	Type    string `json:"type"`
	Session string `json:"session"`
	passwordCreds
	// Token is the registration token of m.login.registration_token.
	Token string `json:"token"`
}

// parseAuthDict parses a request's "auth" value. An absent or null value
// is no auth (nil, nil). Anything else that is not an object of the right
// shape is M_BAD_JSON.
func parseAuthDict(raw json.RawMessage) (*authDict, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	if raw[0] != '{' {
		return nil, httpx.BadJSON("'auth' must be an object")
	}
	var a authDict
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, httpx.BadJSON("Invalid 'auth': " + describeJSONError(err)).WithCause(err)
	}
	return &a, nil
}

// parseIdentifier parses a /login request's "identifier" value; absent or
// null is nil.
func parseIdentifier(raw json.RawMessage) (*userIdentifier, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	if raw[0] != '{' {
		return nil, httpx.BadJSON("'identifier' must be an object")
	}
	var u userIdentifier
	if err := json.Unmarshal(raw, &u); err != nil {
		return nil, httpx.BadJSON("Invalid 'identifier': " + describeJSONError(err)).WithCause(err)
	}
	return &u, nil
}

func describeJSONError(err error) string {
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		field := te.Field
		if field == "" {
			field = "value"
		}
		return "field '" + field + "' must be of type " + te.Type.String() + ", not JSON " + te.Value
	}
	return "wrong shape"
}

// errBadCredentials is the one answer to a wrong user or password, so that
// it does not tell which one was wrong.
func errBadCredentials() *httpx.Error {
	return httpx.Forbidden("Invalid username or password")
}

// identifiedUser returns the user ID that c names on this server. It
// does not check that the user exists. Third-party identifiers are
// answered 403 as the spec requires for an unknown 3PID: this server binds
// none to accounts.
func (s *Service) identifiedUser(c passwordCreds) (id.UserID, error) {
	var user string
	switch {
	case c.Identifier != nil:
		switch c.Identifier.Type {
		case identifierUser:
			if c.Identifier.User == "" {
				return "", httpx.MissingParam("'identifier.user' is required for " + identifierUser)
			}
			user = c.Identifier.User
		case identifierThirdParty, identifierPhone:
			return "", httpx.Forbidden("No account is bound to this third-party identifier: this server does not support third-party identifiers")
		case "":
			return "", httpx.MissingParam("'identifier.type' is required")
		default:
			return "", httpx.InvalidParam("Unknown identifier type '" + truncate(c.Identifier.Type, 64) + "'")
		}
	case c.User != "":
		user = c.User
	case c.Medium != "" || c.Address != "":
		return "", httpx.Forbidden("No account is bound to this third-party identifier: this server does not support third-party identifiers")
	default:
		return "", httpx.MissingParam("'identifier' is required")
	}
	if strings.HasPrefix(user, "@") {
		u, err := id.ParseUserID(user)
		if err != nil || u.Server() != s.cfg.ServerName {
			return "", errBadCredentials()
		}
		return u, nil
	}
	u, err := id.NewUserID(user, s.cfg.ServerName)
	if err != nil {
		return "", errBadCredentials()
	}
	return u, nil
}

// truncate shortens s to at most n bytes (on a UTF-8 boundary) for error
// messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
