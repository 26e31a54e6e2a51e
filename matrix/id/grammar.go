package id

import (
	"strconv"
	"unicode/utf8"
)

// Length limits of the plain-ASCII grammars.
const (
	MaxRoomVersionLength  = 32  // code points
	MaxNamespacedIDLength = 255 // characters
)

// ValidateRoomVersionID checks the room version grammar: 1 to 32 code
// points, each one of a-z, 0-9, '.' and '-'. It says nothing about whether
// the version is known or supported.
func ValidateRoomVersionID(s string) error {
	if s == "" {
		return newError(KindRoomVersion, s, ErrEmpty, "empty string")
	}
	if len(s) > MaxRoomVersionLength {
		if n := utf8.RuneCountInString(s); n > MaxRoomVersionLength {
			return tooLong(KindRoomVersion, s, n, MaxRoomVersionLength, "code points")
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isLowerAlnum(c) && c != '.' && c != '-' {
			return newError(KindRoomVersion, s, ErrInvalidChar, "contains "+describeChar(s, i)+
				" at byte "+strconv.Itoa(i)+" (only a-z, 0-9, '.' and '-' are allowed)")
		}
	}
	return nil
}

// ValidateNamespacedID checks the Common Namespaced Identifier Grammar:
// 1 to 255 characters, starting with a-z and made of a-z, 0-9, '-', '_'
// and '.'. It does not check the namespacing conventions (the reserved
// "m." prefix, reverse-DNS names), which depend on who defines the
// identifier.
func ValidateNamespacedID(s string) error {
	if s == "" {
		return newError(KindNamespacedID, s, ErrEmpty, "empty string")
	}
	if len(s) > MaxNamespacedIDLength {
		if n := utf8.RuneCountInString(s); n > MaxNamespacedIDLength {
			return tooLong(KindNamespacedID, s, n, MaxNamespacedIDLength, "characters")
		}
	}
	if c := s[0]; c < 'a' || c > 'z' {
		return newError(KindNamespacedID, s, ErrInvalidChar, "starts with "+describeChar(s, 0)+
			" (must start with a-z)")
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isLowerAlnum(c) && c != '-' && c != '_' && c != '.' {
			return newError(KindNamespacedID, s, ErrInvalidChar, "contains "+describeChar(s, i)+
				" at byte "+strconv.Itoa(i)+" (only a-z, 0-9, '-', '_' and '.' are allowed)")
		}
	}
	return nil
}

func isLowerAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9'
}
