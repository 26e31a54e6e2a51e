package syncapi

import (
	"strconv"
	"strings"
)

// Token is a sync token: a tuple of stream positions. Its text form is
// "s<events>" followed by "_<pos>" per later stream; positions a token
// does not carry are zero, so tokens from older releases stay valid.
type Token struct {
	Events int64
}

// String encodes the token.
func (t Token) String() string { return "s" + strconv.FormatInt(t.Events, 10) }

// ParseToken decodes a sync token; ok is false when it is not one.
func ParseToken(s string) (Token, bool) {
	if !strings.HasPrefix(s, "s") {
		return Token{}, false
	}
	parts := strings.Split(s[1:], "_")
	var t Token
	for i, p := range parts {
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil || n < 0 {
			return Token{}, false
		}
		if i == 0 {
			t.Events = n
		}
	}
	return t, true
}
