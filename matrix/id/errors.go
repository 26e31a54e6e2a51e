package id

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind names the sort of identifier an [Error] is about.
type Kind uint8

// The kinds of identifier this package validates.
const (
	KindServerName Kind = iota + 1
	KindUserID
	KindRoomID
	KindRoomAlias
	KindEventID
	KindRoomVersion
	KindNamespacedID
)

// String returns the kind as used in error messages, e.g. "user ID".
func (k Kind) String() string {
	switch k {
	case KindServerName:
		return "server name"
	case KindUserID:
		return "user ID"
	case KindRoomID:
		return "room ID"
	case KindRoomAlias:
		return "room alias"
	case KindEventID:
		return "event ID"
	case KindRoomVersion:
		return "room version"
	case KindNamespacedID:
		return "namespaced identifier"
	}
	return "identifier"
}

// Sentinel errors. Every [*Error] matches exactly one of them with
// errors.Is, naming the class of problem; the message of the *Error gives
// the details. Errors about the server name inside a user ID, room ID, room
// alias or event ID wrap the server name's own *Error, so errors.Is(err,
// ErrPort) also works for "@a:example.org:99999".
var (
	ErrEmpty       = errors.New("empty")
	ErrTooLong     = errors.New("too long")
	ErrSigil       = errors.New("wrong or missing sigil")
	ErrNoDomain    = errors.New("missing ':' before the server name")
	ErrInvalidChar = errors.New("character not allowed")
	ErrInvalidUTF8 = errors.New("invalid UTF-8")
	ErrIPLiteral   = errors.New("invalid IP address literal")
	ErrPort        = errors.New("invalid port")
	ErrHash        = errors.New("invalid reference hash")
	ErrWrongFormat = errors.New("wrong identifier format for the room version")
)

// Error reports an identifier that failed validation.
type Error struct {
	Kind   Kind   // what the input was supposed to be
	Input  string // the rejected input, unmodified
	Reason string // what is wrong with it, e.g. "port 99999 is out of range (max 65535)"
	Err    error  // a sentinel (ErrTooLong, ...) or, for a bad server name inside an ID, the server name's *Error
}

// Error returns a message of the form
// `invalid user ID "@Bob:ex.org": localpart contains 'B' at byte 1 (...)`.
// Very long inputs are shortened in the message (not in Input).
func (e *Error) Error() string {
	var b strings.Builder
	b.Grow(len("invalid : ") + 24 + min(len(e.Input), maxQuoted) + 2 + len(e.Reason))
	b.WriteString("invalid ")
	b.WriteString(e.Kind.String())
	b.WriteByte(' ')
	writeQuoted(&b, e.Input)
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

// Unwrap returns the sentinel or nested server name error.
func (e *Error) Unwrap() error { return e.Err }

// maxQuoted is how many bytes of the input an error message shows.
const maxQuoted = 300

// writeQuoted writes s as a Go string literal, shortened when very long.
func writeQuoted(b *strings.Builder, s string) {
	if len(s) <= maxQuoted {
		b.WriteString(strconv.Quote(s))
		return
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	b.WriteString(strconv.Quote(s[:cut]))
	b.WriteString("... (")
	b.WriteString(strconv.Itoa(len(s)))
	b.WriteString(" bytes)")
}

func newError(kind Kind, input string, sentinel error, reason string) *Error {
	return &Error{Kind: kind, Input: input, Reason: reason, Err: sentinel}
}

// wrapServerName reports a bad server name inside an identifier.
func wrapServerName(kind Kind, input string, inner *Error) *Error {
	var b strings.Builder
	b.WriteString("server name ")
	writeQuoted(&b, inner.Input)
	b.WriteString(": ")
	b.WriteString(inner.Reason)
	return &Error{Kind: kind, Input: input, Reason: b.String(), Err: inner}
}

// describeChar names the character starting at s[i] for a message: 'B',
// '\x00', 'é', or "invalid UTF-8 byte 0xff".
func describeChar(s string, i int) string {
	r, size := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && size <= 1 {
		return "invalid UTF-8 byte 0x" + strconv.FormatUint(uint64(s[i]), 16)
	}
	return strconv.QuoteRune(r)
}

// tooLong reports an input longer than limit (length and limit in unit,
// "bytes" or "code points").
func tooLong(kind Kind, input string, length, limit int, unit string) *Error {
	return newError(kind, input, ErrTooLong, "length is "+strconv.Itoa(length)+" "+unit+
		" (max "+strconv.Itoa(limit)+")")
}
