package syncapi

import (
	"strconv"
	"strings"
)

// Token is a sync token: a tuple of stream positions. Its text form is
// "s<events>_<userdata>_<typing>"; positions a token does not carry are
// zero, so shorter tokens (of older releases) stay valid.
type Token struct {
	Events   int64 // ROOM_EVENTS stream position (the sync index)
	UserData int64 // account data, receipts, to-device, presence
	Typing   int64 // typing (per process; see services/userdata)
}

// String encodes the token.
func (t Token) String() string {
	return "s" + strconv.FormatInt(t.Events, 10) + "_" + strconv.FormatInt(t.UserData, 10) + "_" + strconv.FormatInt(t.Typing, 10)
}

// ParseToken decodes a sync token; ok is false when it is not one.
func ParseToken(s string) (Token, bool) {
	if !strings.HasPrefix(s, "s") {
		return Token{}, false
	}
	parts := strings.Split(s[1:], "_")
	if len(parts) > 3 {
		return Token{}, false
	}
	var t Token
	for i, p := range parts {
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil || n < 0 {
			return Token{}, false
		}
		switch i {
		case 0:
			t.Events = n
		case 1:
			t.UserData = n
		case 2:
			t.Typing = n
		}
	}
	return t, true
}
