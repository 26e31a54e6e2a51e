package accounts

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/matrix/id"
)

func TestParseAuthDict(t *testing.T) {
	s := &Service{cfg: Config{ServerName: testServer}}
	for _, tc := range []struct {
		raw     string
		nilAuth bool
		user    id.UserID
		errcode string // of parsing, then of identifiedUser
	}{
		{raw: ``, nilAuth: true},
		{raw: `null`, nilAuth: true},
		{raw: `"x"`, errcode: "M_BAD_JSON"},
		{raw: `[]`, errcode: "M_BAD_JSON"},
		{raw: `{"type": 1}`, errcode: "M_BAD_JSON"},
		{raw: `{"identifier": "alice"}`, errcode: "M_BAD_JSON"},
		{raw: `{"identifier": {"type": "m.id.user", "user": 5}}`, errcode: "M_BAD_JSON"},
		{raw: `{"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"}}`, user: "@alice:test.example"},
		{raw: `{"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "@bob:test.example"}}`, user: "@bob:test.example"},
		{raw: `{"type": "m.login.password", "user": "carol"}`, user: "@carol:test.example"},
		{raw: `{"identifier": {"type": "m.id.user", "user": "@bob:other.example"}}`, errcode: "M_FORBIDDEN"},
		{raw: `{"identifier": {"type": "m.id.thirdparty", "medium": "email", "address": "a@b"}}`, errcode: "M_FORBIDDEN"},
		{raw: `{"identifier": {"type": "x"}}`, errcode: "M_INVALID_PARAM"},
		{raw: `{"identifier": {}}`, errcode: "M_MISSING_PARAM"},
		{raw: `{}`, errcode: "M_MISSING_PARAM"},
	} {
		a, err := parseAuthDict(json.RawMessage(tc.raw))
		if err == nil && a == nil {
			if !tc.nilAuth {
				t.Errorf("%s: no auth", tc.raw)
			}
			continue
		}
		var u id.UserID
		if err == nil {
			u, err = s.identifiedUser(a.passwordCreds)
		}
		if httpx.CodeOf(err) != tc.errcode || u != tc.user {
			t.Errorf("%s: user %q, error %v; want %q, %q", tc.raw, u, err, tc.user, tc.errcode)
		}
	}
}

// FuzzAuthDict: any "auth" value either parses or is a 4xx *httpx.Error,
// and so is resolving the user it names; nothing panics.
func FuzzAuthDict(f *testing.F) {
	for _, s := range []string{
		`{"type":"m.login.password","session":"abc","identifier":{"type":"m.id.user","user":"alice"},"password":"pw"}`,
		`{"type":"m.login.registration_token","token":"tok"}`,
		`{"user":"@bob:test.example"}`, `{"medium":"email","address":"x"}`,
		`{"identifier":{"type":"m.id.phone","country":"GB","phone":"1"}}`,
		`null`, `[]`, `{"identifier":5}`, `{"password":null}`, `{"user":"@\u0000:x"}`, `{`,
	} {
		f.Add(s)
	}
	s := &Service{cfg: Config{ServerName: testServer}}
	check := func(t *testing.T, raw string, err error) {
		if err == nil {
			return
		}
		e, ok := errors.AsType[*httpx.Error](err)
		if !ok || e.Status < 400 || e.Status >= 500 || e.Message == "" {
			t.Fatalf("%q: %v", raw, err)
		}
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if !json.Valid([]byte(raw)) {
			return // httpx.DecodeJSON rejects the whole body first
		}
		a, err := parseAuthDict(json.RawMessage(raw))
		check(t, raw, err)
		if a == nil {
			return
		}
		u, err := s.identifiedUser(a.passwordCreds)
		check(t, raw, err)
		if err == nil && u.Server() != testServer {
			t.Fatalf("%q: resolved to another server's user %q", raw, u)
		}
		_, err = parseIdentifier(json.RawMessage(raw))
		check(t, raw, err)
	})
}
