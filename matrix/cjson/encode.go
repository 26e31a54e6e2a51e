package cjson

import (
	"encoding/json"
	"strconv"
)

const hexDigits = "0123456789abcdef"

// AppendCanonical appends the canonical JSON encoding of v to dst.
// An absent value encodes as null.
func (v Value) AppendCanonical(dst []byte) []byte {
	switch v.kind {
	case Null, Invalid:
		return append(dst, "null"...)
	case Bool:
		if v.flag == 1 {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case Number:
		if v.flag == 1 {
			return strconv.AppendInt(dst, v.num, 10)
		}
		return append(dst, v.str...)
	case String:
		return AppendString(dst, v.str)
	case Array:
		dst = append(dst, '[')
		for i, m := range v.items {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = m.Value.AppendCanonical(dst)
		}
		return append(dst, ']')
	case Object:
		return appendMembers(dst, v.items, nil)
	}
	return dst
}

func appendMembers(dst []byte, items []Member, skip func(string) bool) []byte {
	dst = append(dst, '{')
	first := true
	for _, m := range items {
		if skip != nil && skip(m.Key) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = AppendString(dst, m.Key)
		dst = append(dst, ':')
		dst = m.Value.AppendCanonical(dst)
	}
	return append(dst, '}')
}

// AppendCanonicalWithout appends the canonical encoding of object v leaving
// out the members with the given top-level keys. It is how signing and
// hashing encode an event without copying it.
func (v Value) AppendCanonicalWithout(dst []byte, keys ...string) []byte {
	if v.kind != Object {
		return v.AppendCanonical(dst)
	}
	return appendMembers(dst, v.items, func(k string) bool {
		for _, s := range keys {
			if s == k {
				return true
			}
		}
		return false
	})
}

// Canonical returns the canonical JSON encoding of v.
func (v Value) Canonical() []byte { return v.AppendCanonical(nil) }

// String returns the canonical encoding as a string (for logs and tests).
func (v Value) String() string { return string(v.AppendCanonical(nil)) }

// MarshalJSON implements json.Marshaler with the canonical encoding.
func (v Value) MarshalJSON() ([]byte, error) { return v.AppendCanonical(nil), nil }

// UnmarshalJSON implements json.Unmarshaler with the Strict rules. Do not
// use it for room events, whose rules depend on the room version (v1–5
// allow floats): keep them as raw bytes and parse them with event.Parse.
func (v *Value) UnmarshalJSON(data []byte) error {
	p, err := Parse(data, Strict)
	if err != nil {
		return err
	}
	*v = p
	return nil
}

var (
	_ json.Marshaler   = Value{}
	_ json.Unmarshaler = (*Value)(nil)
)

// AppendString appends s as a canonical JSON string: only `"` and `\` and
// control characters are escaped; everything else is written as UTF-8.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"':
			dst = append(dst, '\\', '"')
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\r':
			dst = append(dst, '\\', 'r')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// CanonicalLen returns the length of the canonical encoding of v without
// building it.
func (v Value) CanonicalLen() int {
	switch v.kind {
	case Null, Invalid:
		return 4
	case Bool:
		if v.flag == 1 {
			return 4
		}
		return 5
	case Number:
		if v.flag == 1 {
			var buf [24]byte
			return len(strconv.AppendInt(buf[:0], v.num, 10))
		}
		return len(v.str)
	case String:
		return stringLen(v.str)
	case Array, Object:
		n := 2
		if len(v.items) > 1 {
			n += len(v.items) - 1 // commas
		}
		for _, m := range v.items {
			if v.kind == Object {
				n += stringLen(m.Key) + 1
			}
			n += m.Value.CanonicalLen()
		}
		return n
	}
	return 0
}

func stringLen(s string) int {
	n := len(s) + 2
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\' || c == '\b' || c == '\t' || c == '\n' || c == '\f' || c == '\r':
			n++
		case c < 0x20:
			n += 5
		}
	}
	return n
}
