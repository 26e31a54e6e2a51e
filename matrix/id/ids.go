package id

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxIDLength is the limit, in bytes and including the sigil and the server
// name, on user IDs, room IDs, room aliases and event IDs.
const MaxIDLength = 255

// Sigils of the common identifier format.
const (
	SigilUserID    = '@'
	SigilRoomID    = '!'
	SigilEventID   = '$'
	SigilRoomAlias = '#'
)

// checkFrame checks what every sigil identifier needs: non-empty, at most
// MaxIDLength bytes, and starting with sigil.
func checkFrame(kind Kind, s string, sigil byte) *Error {
	if s == "" {
		return newError(kind, s, ErrEmpty, "empty string")
	}
	if len(s) > MaxIDLength {
		return tooLong(kind, s, len(s), MaxIDLength, "bytes")
	}
	if s[0] != sigil {
		return newError(kind, s, ErrSigil, "starts with "+describeChar(s, 0)+
			", not the sigil "+strconv.QuoteRune(rune(sigil)))
	}
	return nil
}

// checkDomainID validates the "&localpart:server_name" form (after
// checkFrame). The localpart ends at the first ':' and may hold any valid
// UTF-8 except NUL; Go's UTF-8 decoder rejects encoded surrogates
// (U+D800-U+DFFF), so they are refused as invalid UTF-8.
func checkDomainID(kind Kind, s string) *Error {
	// One pass finds the ':' and checks the localpart before it. A UTF-8
	// sequence cannot contain ':', so decoding never runs past it.
	i := 1
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if c == ':' {
				if err := checkServerName(s[i+1:]); err != nil {
					return wrapServerName(kind, s, err)
				}
				return nil
			}
			if c == 0 {
				return newError(kind, s, ErrInvalidChar, "localpart contains NUL (U+0000) at byte "+strconv.Itoa(i))
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return newError(kind, s, ErrInvalidUTF8, "localpart contains "+describeChar(s, i)+
				" at byte "+strconv.Itoa(i)+" (surrogates and malformed sequences are not allowed)")
		}
		i += size
	}
	return newError(kind, s, ErrNoDomain, "no ':' separating the localpart from the server name")
}

// localpart returns the text between the sigil and the first ':' (all of it
// after the sigil when there is no ':').
func localpart(s string) string {
	switch i := strings.IndexByte(s, ':'); {
	case i > 0:
		return s[1:i]
	case i < 0 && s != "":
		return s[1:]
	}
	return ""
}

// domain returns the text after the first ':' and whether there is one.
func domain(s string) (ServerName, bool) {
	if i := strings.IndexByte(s, ':'); i >= 0 {
		return ServerName(s[i+1:]), true
	}
	return "", false
}

// compose builds sigil+localpart+":"+server for the New* constructors,
// refusing a localpart with ':' (which would otherwise be misread as the
// separator).
func compose(kind Kind, sigil byte, local string, server ServerName) (string, *Error) {
	s := string(sigil) + local + ":" + string(server)
	if i := strings.IndexByte(local, ':'); i >= 0 {
		return "", newError(kind, s, ErrInvalidChar, "localpart contains ':' at byte "+strconv.Itoa(i+1))
	}
	return s, nil
}

// UserID is a Matrix user ID, "@localpart:server_name".
//
// Values from [ParseUserID] are valid; the accessors never panic on other
// values, but their results are then unspecified.
type UserID string

// ParseUserID validates a user ID, accepting the historical localparts that
// servers must still accept: any Unicode scalar values except ':' and NUL,
// including control characters, upper case and the empty string. The whole
// ID must be valid UTF-8, at most 255 bytes, and end in a valid server name
// after the first ':'. Use [ValidateUserIDStrict] or [UserID.IsCompliant]
// for the current grammar (required when creating users).
func ParseUserID(s string) (UserID, error) {
	if err := checkUserID(s); err != nil {
		return "", err
	}
	return UserID(s), nil
}

func checkUserID(s string) *Error {
	if err := checkFrame(KindUserID, s, SigilUserID); err != nil {
		return err
	}
	return checkDomainID(KindUserID, s)
}

// NewUserID builds "@"+localpart+":"+server and validates it like
// [ParseUserID] (historical localparts are accepted; check
// [UserID.IsCompliant] before creating a new user).
func NewUserID(localpart string, server ServerName) (UserID, error) {
	s, err := compose(KindUserID, SigilUserID, localpart, server)
	if err != nil {
		return "", err
	}
	return ParseUserID(s)
}

// ValidateUserIDStrict validates s against the current user ID grammar: as
// [ParseUserID], and in addition the localpart must be non-empty and made
// only of a-z, 0-9, '.', '_', '=', '-', '/' and '+'.
func ValidateUserIDStrict(s string) error {
	if err := checkUserID(s); err != nil {
		return err
	}
	local := localpart(s)
	if local == "" {
		return newError(KindUserID, s, ErrEmpty, "localpart is empty")
	}
	for i := 0; i < len(local); i++ {
		if !isStrictLocalpartChar(local[i]) {
			return newError(KindUserID, s, ErrInvalidChar, "localpart contains "+describeChar(s, i+1)+
				" at byte "+strconv.Itoa(i+1)+" (only a-z, 0-9 and ._=-/+ are allowed)")
		}
	}
	return nil
}

func isStrictLocalpartChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '.', '_', '=', '-', '/', '+':
		return true
	}
	return false
}

// String returns the user ID.
func (u UserID) String() string { return string(u) }

// Localpart returns the part between '@' and the first ':'.
func (u UserID) Localpart() string { return localpart(string(u)) }

// Server returns the server name after the first ':'.
func (u UserID) Server() ServerName {
	s, _ := domain(string(u))
	return s
}

// IsCompliant reports whether the localpart follows the current grammar
// (non-empty, only a-z, 0-9 and ._=-/+). Historical user IDs accepted by
// [ParseUserID] may not. It checks only the localpart; the rest is assumed
// to be valid. This is stricter than the spec's narrower use of
// "non-compliant" (a localpart that is empty or has characters outside
// U+0021-U+007E), which decides what servers should not forward to
// clients: "@Bob:x" is not compliant here but is not such an ID there.
func (u UserID) IsCompliant() bool {
	local := u.Localpart()
	if local == "" {
		return false
	}
	for i := 0; i < len(local); i++ {
		if !isStrictLocalpartChar(local[i]) {
			return false
		}
	}
	return true
}

// RoomAlias is a room alias, "#localpart:server_name".
type RoomAlias string

// ParseRoomAlias validates a room alias: the localpart (up to the first ':')
// may hold any Unicode scalar values except ':' and NUL, and may be empty;
// the rest must be a valid server name; the whole alias must be valid UTF-8
// and at most 255 bytes.
func ParseRoomAlias(s string) (RoomAlias, error) {
	if err := checkFrame(KindRoomAlias, s, SigilRoomAlias); err != nil {
		return "", err
	}
	if err := checkDomainID(KindRoomAlias, s); err != nil {
		return "", err
	}
	return RoomAlias(s), nil
}

// NewRoomAlias builds "#"+localpart+":"+server and validates it like
// [ParseRoomAlias].
func NewRoomAlias(localpart string, server ServerName) (RoomAlias, error) {
	s, err := compose(KindRoomAlias, SigilRoomAlias, localpart, server)
	if err != nil {
		return "", err
	}
	return ParseRoomAlias(s)
}

// String returns the alias.
func (a RoomAlias) String() string { return string(a) }

// Localpart returns the part between '#' and the first ':'.
func (a RoomAlias) Localpart() string { return localpart(string(a)) }

// Server returns the server name after the first ':'.
func (a RoomAlias) Server() ServerName {
	s, _ := domain(string(a))
	return s
}

// ValidateOverlong checks a user ID, a room ID with a server name, or an
// event ID with a server name that is longer than MaxIDLength bytes but at
// most MaxIDLength code points: every rule applies except the byte limit.
// Room versions 1–10 keep events naming such IDs (as rejected events)
// instead of dropping them, because the reference implementation counted
// code points there; the event package uses this to tell those apart.
func ValidateOverlong(kind Kind, s string) error {
	if n := utf8.RuneCountInString(s); n > MaxIDLength {
		return tooLong(kind, s, n, MaxIDLength, "code points")
	}
	var sigil byte
	switch kind {
	case KindUserID:
		sigil = SigilUserID
	case KindRoomID:
		sigil = SigilRoomID
	case KindEventID:
		sigil = SigilEventID
	default:
		return newError(kind, s, ErrWrongFormat, "only user, room and event IDs with a server name can be overlong")
	}
	if s == "" || s[0] != sigil {
		return newError(kind, s, ErrSigil, "does not start with the sigil "+strconv.QuoteRune(rune(sigil)))
	}
	if err := checkDomainID(kind, s); err != nil {
		return err
	}
	return nil
}
