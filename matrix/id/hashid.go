package id

import (
	"strconv"
	"strings"
)

// HashLength is the length of a reference hash written in unpadded base64
// (32 bytes of SHA-256 make 43 characters), without the sigil.
const HashLength = 43

// EventIDFormat is the shape of event IDs a room version uses.
type EventIDFormat uint8

const (
	// EventIDWithDomain is "$opaque_id:server_name" (room versions 1 and 2).
	EventIDWithDomain EventIDFormat = iota + 1
	// EventIDHashStd is "$" + the reference hash in standard unpadded base64,
	// which may contain '+' and '/' (room version 3).
	EventIDHashStd
	// EventIDHashURLSafe is "$" + the reference hash in URL-safe unpadded
	// base64, which may contain '-' and '_' (room versions 4 and later).
	EventIDHashURLSafe
)

// String names the format.
func (f EventIDFormat) String() string {
	switch f {
	case EventIDWithDomain:
		return "$opaque:domain"
	case EventIDHashStd:
		return "standard base64 hash"
	case EventIDHashURLSafe:
		return "URL-safe base64 hash"
	}
	return "EventIDFormat(" + strconv.Itoa(int(f)) + ")"
}

// Base64 alphabets a hash may be written in.
const (
	alphaStd  = 1 << iota // '+' and '/'
	alphaURL              // '-' and '_'
	alphaBoth = alphaStd | alphaURL
)

// b64Table maps a byte to its 6-bit base64 value in the low bits and the
// alphabet(s) it belongs to in the high bits (alphaBoth<<6 for letters and
// digits, alphaStd<<6 for '+' and '/', alphaURL<<6 for '-' and '_', 0 for
// anything else). It is built once and never modified.
var b64Table = func() (t [256]uint8) {
	for i := range 64 {
		t[stdAlphabet[i]] |= uint8(i) | alphaStd<<6
		t[urlAlphabet[i]] |= uint8(i) | alphaURL<<6
	}
	return t
}()

// b64Value returns the 6-bit value of a base64 character, accepting both
// alphabets; alpha says which alphabet(s) c belongs to (0: neither).
func b64Value(c byte) (v byte, alpha int) {
	e := b64Table[c]
	return e & 63, int(e >> 6)
}

// checkHashID validates s (after checkFrame) as sigil + 43 characters of
// unpadded base64 in one of the allowed alphabets. The encoding must be
// canonical: the last character's two unused low bits must be zero, so that
// each 32-byte hash has exactly one ID.
func checkHashID(kind Kind, s string, allowed int) *Error {
	if len(s) != 1+HashLength {
		return newError(kind, s, ErrHash, "has no ':' before a server name, so it must be a "+
			strconv.Itoa(HashLength)+"-character base64 reference hash after the sigil, but it has "+
			strconv.Itoa(len(s)-1)+" bytes")
	}
	seen := 0
	for i := 1; i < len(s); i++ {
		_, alpha := b64Value(s[i])
		if alpha&allowed == 0 {
			reason := "reference hash contains " + describeChar(s, i) + " at byte " + strconv.Itoa(i)
			switch {
			case s[i] == '=':
				reason += " (padding is not allowed)"
			case alpha != 0 && allowed == alphaStd:
				reason += " (URL-safe base64; expected standard base64)"
			case alpha != 0 && allowed == alphaURL:
				reason += " (standard base64; expected URL-safe base64)"
			case allowed == alphaStd:
				reason += " (only A-Z, a-z, 0-9, '+' and '/' are allowed)"
			case allowed == alphaURL:
				reason += " (only A-Z, a-z, 0-9, '-' and '_' are allowed)"
			default:
				reason += " (not a base64 character)"
			}
			return newError(kind, s, ErrHash, reason)
		}
		if alpha != alphaBoth {
			seen |= alpha // records '+'/'/' (alphaStd) and '-'/'_' (alphaURL)
		}
	}
	if seen == alphaBoth {
		return newError(kind, s, ErrHash, "reference hash mixes standard ('+', '/') and URL-safe ('-', '_') base64")
	}
	if v, _ := b64Value(s[len(s)-1]); v&3 != 0 {
		return newError(kind, s, ErrHash, "reference hash is not canonical: its last character "+
			describeChar(s, len(s)-1)+" has non-zero unused bits")
	}
	return nil
}

// RoomID is a room ID: "!opaque_id:server_name" (room versions 1-11) or
// "!" + the URL-safe base64 reference hash of the room's m.room.create event
// (room version 12 and later).
//
// Values from [ParseRoomID] are valid; the accessors never panic on other
// values, but their results are then unspecified.
type RoomID string

// ParseRoomID validates a room ID in either form. An ID containing ':' is
// "!localpart:server_name" with the same localpart rules as a room alias
// (valid UTF-8 without NUL, possibly empty) and at most 255 bytes; otherwise
// it must be "!" followed by exactly 43 characters of canonical URL-safe
// unpadded base64. Whether the form suits the room's version is for the
// caller to check with [RoomID.IsHashDerived].
func ParseRoomID(s string) (RoomID, error) {
	if err := checkFrame(KindRoomID, s, SigilRoomID); err != nil {
		return "", err
	}
	if strings.IndexByte(s, ':') >= 0 {
		if err := checkDomainID(KindRoomID, s); err != nil {
			return "", err
		}
	} else if err := checkHashID(KindRoomID, s, alphaURL); err != nil {
		return "", err
	}
	return RoomID(s), nil
}

// RoomIDFromCreateEventID returns the room ID of a room whose m.room.create
// event has the given ID (room version 12 and later): the event ID with its
// '$' replaced by '!'. The event ID must be in the URL-safe hash format.
func RoomIDFromCreateEventID(eventID string) (RoomID, error) {
	if err := ValidateEventIDForFormat(eventID, EventIDHashURLSafe); err != nil {
		return "", err
	}
	return RoomID(string(SigilRoomID) + eventID[1:]), nil
}

// String returns the room ID.
func (r RoomID) String() string { return string(r) }

// Server returns the server name of a "!opaque:server_name" room ID; ok is
// false for hash-derived room IDs, which have none.
func (r RoomID) Server() (server ServerName, ok bool) { return domain(string(r)) }

// IsHashDerived reports whether the room ID is the domain-less form derived
// from the create event's reference hash (room version 12 and later).
func (r RoomID) IsHashDerived() bool {
	return len(r) == 1+HashLength && strings.IndexByte(string(r), ':') < 0
}

// CreateEventID returns the ID of the room's m.room.create event for a
// hash-derived room ID ('!' replaced by '$'), or "" when the room ID has a
// server name and so does not encode its create event.
func (r RoomID) CreateEventID() string {
	if !r.IsHashDerived() {
		return ""
	}
	return string(SigilEventID) + string(r[1:])
}

// EventID is an event ID: "$opaque_id:server_name" (room versions 1 and 2)
// or "$" + the event's reference hash in unpadded base64 (standard alphabet
// in room version 3, URL-safe from version 4).
//
// Values from [ParseEventID] are valid; the accessors never panic on other
// values, but their results are then unspecified.
type EventID string

// ParseEventID validates an event ID in any room version's format: with a
// ':', "$localpart:server_name" (localpart as for room IDs, at most 255
// bytes in all); without, "$" and exactly 43 characters of canonical
// unpadded base64 in either alphabet (but not a mixture of both). Use
// [ValidateEventIDForFormat] to insist on one room version's format.
func ParseEventID(s string) (EventID, error) {
	if err := checkFrame(KindEventID, s, SigilEventID); err != nil {
		return "", err
	}
	if strings.IndexByte(s, ':') >= 0 {
		if err := checkDomainID(KindEventID, s); err != nil {
			return "", err
		}
	} else if err := checkHashID(KindEventID, s, alphaBoth); err != nil {
		return "", err
	}
	return EventID(s), nil
}

// ValidateEventIDForFormat validates s like [ParseEventID] and also requires
// the given format. The error matches [ErrWrongFormat] exactly when s is a
// valid event ID of another format. A hash made only of letters and digits
// is valid in both hash formats.
func ValidateEventIDForFormat(s string, format EventIDFormat) error {
	if err := checkFrame(KindEventID, s, SigilEventID); err != nil {
		return err
	}
	colon := strings.IndexByte(s, ':')
	var allowed int
	switch format {
	case EventIDWithDomain:
		if colon < 0 && checkHashID(KindEventID, s, alphaBoth) == nil {
			return newError(KindEventID, s, ErrWrongFormat,
				"is a reference hash, but the room version uses $opaque:domain event IDs")
		}
		if err := checkDomainID(KindEventID, s); err != nil {
			return err
		}
		return nil
	case EventIDHashStd:
		allowed = alphaStd
	case EventIDHashURLSafe:
		allowed = alphaURL
	default:
		return newError(KindEventID, s, ErrWrongFormat, "unknown event ID format "+format.String())
	}
	if colon >= 0 {
		sentinel := ErrHash
		if checkDomainID(KindEventID, s) == nil {
			sentinel = ErrWrongFormat // a valid room version 1-2 event ID
		}
		return newError(KindEventID, s, sentinel, "contains ':' at byte "+strconv.Itoa(colon)+
			", but the room version uses "+format.String()+" event IDs (no server name)")
	}
	if err := checkHashID(KindEventID, s, allowed); err != nil {
		if checkHashID(KindEventID, s, alphaBoth) == nil {
			err.Err = ErrWrongFormat
		}
		return err
	}
	return nil
}

// String returns the event ID.
func (e EventID) String() string { return string(e) }

// Server returns the server name of a "$opaque:server_name" event ID; ok is
// false for hash event IDs, which have none.
func (e EventID) Server() (server ServerName, ok bool) { return domain(string(e)) }

// IsHashDerived reports whether the event ID is a reference hash (room
// version 3 and later) rather than "$opaque:server_name".
func (e EventID) IsHashDerived() bool {
	return len(e) == 1+HashLength && strings.IndexByte(string(e), ':') < 0
}

// ReferenceHash decodes the reference hash of a hash event ID. ok is false
// for IDs with a server name (and for strings that are not valid hashes).
func (e EventID) ReferenceHash() (hash [32]byte, ok bool) {
	if !e.IsHashDerived() {
		return hash, false
	}
	var acc uint32
	bits, n := 0, 0
	for i := 1; i < len(e); i++ {
		v, alpha := b64Value(e[i])
		if alpha == 0 {
			return [32]byte{}, false
		}
		acc = acc<<6 | uint32(v)
		bits += 6
		if bits >= 8 {
			bits -= 8
			hash[n] = byte(acc >> bits)
			n++
		}
	}
	if acc&(1<<bits-1) != 0 {
		return [32]byte{}, false // non-canonical trailing bits
	}
	return hash, true
}

const (
	stdAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	urlAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
)

// EventIDFromHash returns the event ID for a reference hash in the given
// hash format. It panics if format is not EventIDHashStd or
// EventIDHashURLSafe.
func EventIDFromHash(hash [32]byte, format EventIDFormat) EventID {
	var alphabet string
	switch format {
	case EventIDHashStd:
		alphabet = stdAlphabet
	case EventIDHashURLSafe:
		alphabet = urlAlphabet
	default:
		panic("id.EventIDFromHash: format " + format.String() + " is not a hash format")
	}
	var buf [1 + HashLength]byte
	buf[0] = SigilEventID
	var acc uint32
	bits, n := 0, 1
	for _, b := range hash {
		acc = acc<<8 | uint32(b)
		bits += 8
		for bits >= 6 {
			bits -= 6
			buf[n] = alphabet[acc>>bits&63]
			n++
		}
	}
	buf[n] = alphabet[acc<<(6-bits)&63] // 256 = 42*6 + 4: four bits remain
	return EventID(buf[:])
}
