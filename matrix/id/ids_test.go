package id_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/axon-hs/axon/matrix/id"
)

// pad returns prefix + n 'x' + suffix, making IDs of an exact length.
func pad(prefix string, total int, suffix string) string {
	return prefix + strings.Repeat("x", total-len(prefix)-len(suffix)) + suffix
}

func TestParseUserIDValid(t *testing.T) {
	tests := []struct {
		in, local, server string
		compliant         bool
	}{
		{"@alice:example.org", "alice", "example.org", true},
		{"@a.b_c=d-e/f+g0:matrix.org:8448", "a.b_c=d-e/f+g0", "matrix.org:8448", true},
		{"@bob:1.2.3.4:1234", "bob", "1.2.3.4:1234", true},
		{"@bob:[1234:5678::abcd]:5678", "bob", "[1234:5678::abcd]:5678", true},
		{"@bob:[::1]", "bob", "[::1]", true},
		// Historical localparts.
		{"@:example.org", "", "example.org", false},
		{"@Alice:example.org", "Alice", "example.org", false},
		{"@a b:example.org", "a b", "example.org", false},
		{"@a\x01\x7f:example.org", "a\x01\x7f", "example.org", false},
		{"@!#$%*@:example.org", "!#$%*@", "example.org", false},
		{"@☃é:example.org", "☃é", "example.org", false},
		{"@\ufffd:x", "\ufffd", "x", false},             // U+FFFD itself is a valid character
		{"@\ud7ff\ue000:x", "\ud7ff\ue000", "x", false}, // neighbours of the surrogate range
		{"@\U0010ffff:x", "\U0010ffff", "x", false},
		// Length: exactly 255 bytes.
		{pad("@", 255, ":example.org"), strings.Repeat("x", 255-1-12), "example.org", true},
		{"@a:" + strings.Repeat("b", 252), "a", strings.Repeat("b", 252), true},
	}
	for _, tt := range tests {
		u, err := id.ParseUserID(tt.in)
		if err != nil {
			t.Errorf("ParseUserID(%q): %v", tt.in, err)
			continue
		}
		if u.String() != tt.in || u.Localpart() != tt.local || string(u.Server()) != tt.server {
			t.Errorf("ParseUserID(%q) = %q, Localpart %q, Server %q", tt.in, u, u.Localpart(), u.Server())
		}
		if u.IsCompliant() != tt.compliant {
			t.Errorf("%q.IsCompliant() = %v", tt.in, u.IsCompliant())
		}
		if err := id.ValidateUserIDStrict(tt.in); (err == nil) != tt.compliant {
			t.Errorf("ValidateUserIDStrict(%q) = %v, want compliant %v", tt.in, err, tt.compliant)
		}
	}
}

func TestParseUserIDInvalid(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{"", id.ErrEmpty},
		{"alice:example.org", id.ErrSigil},
		{"#alice:example.org", id.ErrSigil},
		{" @alice:example.org", id.ErrSigil},
		{"@", id.ErrNoDomain},
		{"@alice", id.ErrNoDomain},
		{"@alice:", id.ErrEmpty},
		{"@alice::8448", id.ErrEmpty},
		{"@a\x00b:example.org", id.ErrInvalidChar},
		{"@\x00:example.org", id.ErrInvalidChar},
		{"@a:b:c", id.ErrPort}, // ':' splits at the first one: server "b:c"
		{"@a:example.org:99999", id.ErrPort},
		{"@a:example.org:", id.ErrPort},
		{"@a:exa mple.org", id.ErrInvalidChar},
		{"@a:1.2.3.300", id.ErrIPLiteral},
		{"@a:[::1", id.ErrIPLiteral},
		{"@a:example.org\x00", id.ErrInvalidChar},
		{"@a:bücher.de", id.ErrInvalidChar},
		// Invalid UTF-8, including surrogates encoded WTF-8 style.
		{"@\xff:x", id.ErrInvalidUTF8},
		{"@\xe2\x98:x", id.ErrInvalidUTF8},     // truncated sequence
		{"@\xc0\x80:x", id.ErrInvalidUTF8},     // overlong NUL
		{"@\xed\xa0\x80:x", id.ErrInvalidUTF8}, // U+D800
		{"@\xed\xbf\xbf:x", id.ErrInvalidUTF8}, // U+DFFF
		{"@\xed\xa0\xbd\xed\xb8\x80:x", id.ErrInvalidUTF8},
		{"@\xf4\x90\x80\x80:x", id.ErrInvalidUTF8}, // above U+10FFFF
		// Length: 256 bytes.
		{pad("@", 256, ":example.org"), id.ErrTooLong},
		{"@a:" + strings.Repeat("b", 253), id.ErrTooLong},
		{strings.Repeat("@", 100000), id.ErrTooLong},
	}
	for _, tt := range tests {
		u, err := id.ParseUserID(tt.in)
		if err == nil {
			t.Errorf("ParseUserID(%q) = %q, want error", tt.in, u)
			continue
		}
		if !errors.Is(err, tt.want) {
			t.Errorf("ParseUserID(%q): %v; want errors.Is %v", tt.in, err, tt.want)
		}
		checkError(t, err, id.KindUserID, tt.in)
		if err2 := id.ValidateUserIDStrict(tt.in); err2 == nil || err2.Error() != err.Error() {
			t.Errorf("ValidateUserIDStrict(%q) = %v, want the same error as ParseUserID", tt.in, err2)
		}
	}
}

// The spec's historical-ID rule is about non-surrogate code points; Go
// strings can carry surrogates encoded in the UTF-8 style ("WTF-8"), and the
// standard library treats them as invalid UTF-8, which is what the parsers
// rely on.
func TestSurrogatesAreInvalidUTF8(t *testing.T) {
	for r := rune(0xD800); r <= 0xDFFF; r++ {
		wtf8 := string([]byte{0xED, byte(0x80 | (r>>6)&0x3F), byte(0x80 | r&0x3F)})
		if utf8.ValidString(wtf8) {
			t.Fatalf("utf8.ValidString accepts the encoded surrogate U+%04X", r)
		}
		if _, err := id.ParseUserID("@" + wtf8 + ":x"); !errors.Is(err, id.ErrInvalidUTF8) {
			t.Fatalf("surrogate U+%04X: %v", r, err)
		}
	}
	if string(rune(0xD800)) != "\ufffd" {
		t.Fatal("converting a surrogate rune does not give U+FFFD")
	}
}

func TestValidateUserIDStrict(t *testing.T) {
	tests := []struct {
		in   string
		want error
		msg  string
	}{
		{"@alice:example.org", nil, ""},
		{"@0.9_=-/+:example.org", nil, ""},
		{"@Bob:ex.org", id.ErrInvalidChar,
			`invalid user ID "@Bob:ex.org": localpart contains 'B' at byte 1 (only a-z, 0-9 and ._=-/+ are allowed)`},
		{"@:ex.org", id.ErrEmpty, `invalid user ID "@:ex.org": localpart is empty`},
		{"@aé:x", id.ErrInvalidChar,
			`invalid user ID "@aé:x": localpart contains 'é' at byte 2 (only a-z, 0-9 and ._=-/+ are allowed)`},
		{"@a b:x", id.ErrInvalidChar, ""},
		{"@a!:x", id.ErrInvalidChar, ""},
		{"@a\x01:x", id.ErrInvalidChar,
			`invalid user ID "@a\x01:x": localpart contains '\x01' at byte 2 (only a-z, 0-9 and ._=-/+ are allowed)`},
		{"@a:x:0x", id.ErrPort, ""},
	}
	for _, tt := range tests {
		err := id.ValidateUserIDStrict(tt.in)
		if tt.want == nil {
			if err != nil {
				t.Errorf("ValidateUserIDStrict(%q): %v", tt.in, err)
			}
			continue
		}
		if !errors.Is(err, tt.want) {
			t.Errorf("ValidateUserIDStrict(%q) = %v; want errors.Is %v", tt.in, err, tt.want)
			continue
		}
		checkError(t, err, id.KindUserID, tt.in)
		if tt.msg != "" && err.Error() != tt.msg {
			t.Errorf("ValidateUserIDStrict(%q):\n got %s\nwant %s", tt.in, err, tt.msg)
		}
	}
}

func TestNewUserIDAndAlias(t *testing.T) {
	u, err := id.NewUserID("alice", "example.org:8448")
	if err != nil || u != "@alice:example.org:8448" {
		t.Errorf("NewUserID = %q, %v", u, err)
	}
	if u, err := id.NewUserID("", "x"); err != nil || u != "@:x" {
		t.Errorf("NewUserID with empty localpart = %q, %v", u, err)
	}
	if _, err := id.NewUserID("a:b", "example.org"); !errors.Is(err, id.ErrInvalidChar) {
		t.Errorf("NewUserID with ':' in the localpart: %v", err)
	}
	if _, err := id.NewUserID("a", "bad name"); !errors.Is(err, id.ErrInvalidChar) {
		t.Errorf("NewUserID with a bad server: %v", err)
	}
	if _, err := id.NewUserID(strings.Repeat("a", 250), "example.org"); !errors.Is(err, id.ErrTooLong) {
		t.Errorf("NewUserID too long: %v", err)
	}
	a, err := id.NewRoomAlias("room", "example.org")
	if err != nil || a != "#room:example.org" {
		t.Errorf("NewRoomAlias = %q, %v", a, err)
	}
	if _, err := id.NewRoomAlias("a:b", "example.org"); !errors.Is(err, id.ErrInvalidChar) {
		t.Errorf("NewRoomAlias with ':' in the localpart: %v", err)
	}
}

func TestParseRoomAlias(t *testing.T) {
	valid := []struct{ in, local, server string }{
		{"#room:example.org", "room", "example.org"},
		{"#:example.org", "", "example.org"},
		{"#Room With Spaces!:example.org:8448", "Room With Spaces!", "example.org:8448"},
		{"#☃:[::1]", "☃", "[::1]"},
		{pad("#", 255, ":example.org"), strings.Repeat("x", 255-1-12), "example.org"},
	}
	for _, tt := range valid {
		a, err := id.ParseRoomAlias(tt.in)
		if err != nil {
			t.Errorf("ParseRoomAlias(%q): %v", tt.in, err)
			continue
		}
		if a.String() != tt.in || a.Localpart() != tt.local || string(a.Server()) != tt.server {
			t.Errorf("ParseRoomAlias(%q) = %q, Localpart %q, Server %q", tt.in, a, a.Localpart(), a.Server())
		}
	}
	invalid := []struct {
		in   string
		want error
	}{
		{"", id.ErrEmpty},
		{"room:example.org", id.ErrSigil},
		{"!room:example.org", id.ErrSigil},
		{"#room", id.ErrNoDomain},
		{"#room:", id.ErrEmpty},
		{"#a\x00:example.org", id.ErrInvalidChar},
		{"#\xed\xa0\x80:example.org", id.ErrInvalidUTF8},
		{"#a:b:c", id.ErrPort},
		{pad("#", 256, ":example.org"), id.ErrTooLong},
	}
	for _, tt := range invalid {
		a, err := id.ParseRoomAlias(tt.in)
		if err == nil {
			t.Errorf("ParseRoomAlias(%q) = %q, want error", tt.in, a)
			continue
		}
		if !errors.Is(err, tt.want) {
			t.Errorf("ParseRoomAlias(%q): %v; want errors.Is %v", tt.in, err, tt.want)
		}
		checkError(t, err, id.KindRoomAlias, tt.in)
	}
}

func TestAccessorsOnUncheckedValues(t *testing.T) {
	for _, s := range []string{"", "@", ":", "@:", "x", "!", "$", "#a", "@a:b:c"} {
		_ = id.UserID(s).Localpart()
		_ = id.UserID(s).Server()
		_ = id.UserID(s).IsCompliant()
		_ = id.RoomAlias(s).Localpart()
		_ = id.RoomAlias(s).Server()
		_, _ = id.RoomID(s).Server()
		_ = id.RoomID(s).CreateEventID()
		_, _ = id.EventID(s).Server()
		_, _ = id.EventID(s).ReferenceHash()
	}
	if id.UserID("").IsCompliant() || id.UserID("@:x").IsCompliant() {
		t.Error("an empty localpart is not compliant")
	}
}

func TestValidateOverlong(t *testing.T) {
	long := "@" + strings.Repeat("é", 200) + ":example.org" // 213 code points, 413 bytes
	if _, err := id.ParseUserID(long); !errors.Is(err, id.ErrTooLong) {
		t.Fatalf("id.ParseUserID(%d bytes) = %v", len(long), err)
	}
	if err := id.ValidateOverlong(id.KindUserID, long); err != nil {
		t.Errorf("overlong but within code points: %v", err)
	}
	if err := id.ValidateOverlong(id.KindUserID, "@"+strings.Repeat("é", 250)+":example.org"); !errors.Is(err, id.ErrTooLong) {
		t.Errorf("over 255 code points: %v", err)
	}
	if err := id.ValidateOverlong(id.KindUserID, "@"+strings.Repeat("é", 200)+"\x00:example.org"); !errors.Is(err, id.ErrInvalidChar) {
		t.Errorf("NUL: %v", err)
	}
	if err := id.ValidateOverlong(id.KindRoomID, "!"+strings.Repeat("é", 200)+":example.org"); err != nil {
		t.Errorf("room ID: %v", err)
	}
	if err := id.ValidateOverlong(id.KindRoomID, "@"+strings.Repeat("é", 200)+":example.org"); !errors.Is(err, id.ErrSigil) {
		t.Errorf("wrong sigil: %v", err)
	}
	if err := id.ValidateOverlong(id.KindRoomAlias, "#a:b"); !errors.Is(err, id.ErrWrongFormat) {
		t.Errorf("alias: %v", err)
	}
}
