package id_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/axon-hs/axon/matrix/id"
)

func TestValidateRoomVersionID(t *testing.T) {
	valid := []string{"1", "12", "1.2", "1.2-beta", "com.example.version", "org.matrix.msc2176",
		"-", ".", strings.Repeat("a", 32)}
	for _, s := range valid {
		if err := id.ValidateRoomVersionID(s); err != nil {
			t.Errorf("ValidateRoomVersionID(%q): %v", s, err)
		}
	}
	invalid := []struct {
		in   string
		want error
	}{
		{"", id.ErrEmpty},
		{strings.Repeat("a", 33), id.ErrTooLong},
		{strings.Repeat("é", 33), id.ErrTooLong},
		{strings.Repeat("é", 16), id.ErrInvalidChar}, // 32 bytes, 16 code points
		{strings.Repeat("é", 17), id.ErrInvalidChar}, // 34 bytes, 17 code points: not too long
		{"V1", id.ErrInvalidChar},
		{"1_2", id.ErrInvalidChar},
		{"1 2", id.ErrInvalidChar},
		{"1\x00", id.ErrInvalidChar},
		{"1/2", id.ErrInvalidChar},
	}
	for _, tt := range invalid {
		err := id.ValidateRoomVersionID(tt.in)
		if !errors.Is(err, tt.want) {
			t.Errorf("ValidateRoomVersionID(%q) = %v; want errors.Is %v", tt.in, err, tt.want)
			continue
		}
		checkError(t, err, id.KindRoomVersion, tt.in)
	}
}

func TestValidateNamespacedID(t *testing.T) {
	valid := []string{"a", "m.room.message", "com.example.foo_bar-baz", "m.login.password",
		"z0", "a..", strings.Repeat("a", 255)}
	for _, s := range valid {
		if err := id.ValidateNamespacedID(s); err != nil {
			t.Errorf("ValidateNamespacedID(%q): %v", s, err)
		}
	}
	invalid := []struct {
		in   string
		want error
	}{
		{"", id.ErrEmpty},
		{strings.Repeat("a", 256), id.ErrTooLong},
		{"M.room", id.ErrInvalidChar},
		{"1abc", id.ErrInvalidChar},
		{".abc", id.ErrInvalidChar},
		{"_abc", id.ErrInvalidChar},
		{"-abc", id.ErrInvalidChar},
		{"m.ROOM", id.ErrInvalidChar},
		{"m.room message", id.ErrInvalidChar},
		{"m.room:message", id.ErrInvalidChar},
		{"m.rööm", id.ErrInvalidChar},
		{"é", id.ErrInvalidChar},
	}
	for _, tt := range invalid {
		err := id.ValidateNamespacedID(tt.in)
		if !errors.Is(err, tt.want) {
			t.Errorf("ValidateNamespacedID(%q) = %v; want errors.Is %v", tt.in, err, tt.want)
			continue
		}
		checkError(t, err, id.KindNamespacedID, tt.in)
	}
}

func TestErrorMessages(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{errOf(id.ParseServerName("ex.org:99999")),
			`invalid server name "ex.org:99999": port 99999 is out of range (max 65535)`},
		{errOf(id.ParseServerName("ex_ample.org")),
			`invalid server name "ex_ample.org": hostname contains '_' at byte 2 (only A-Z, a-z, 0-9, '-' and '.' are allowed)`},
		{errOf(id.ParseServerName("1.2.3.256")),
			`invalid server name "1.2.3.256": IPv4 address component 256 is out of range (0-255)`},
		{errOf(id.ParseUserID("@a:ex.org:99999")),
			`invalid user ID "@a:ex.org:99999": server name "ex.org:99999": port 99999 is out of range (max 65535)`},
		{errOf(id.ParseUserID("@a\x00:ex.org")),
			`invalid user ID "@a\x00:ex.org": localpart contains NUL (U+0000) at byte 2`},
		{errOf(id.ParseUserID("@a\xed\xa0\x80:ex.org")),
			`invalid user ID "@a\xed\xa0\x80:ex.org": localpart contains invalid UTF-8 byte 0xed at byte 2 (surrogates and malformed sequences are not allowed)`},
		{errOf(id.ParseUserID("@alice")),
			`invalid user ID "@alice": no ':' separating the localpart from the server name`},
		{errOf(id.ParseUserID("alice")),
			`invalid user ID "alice": starts with 'a', not the sigil '@'`},
		{errOf(id.ParseRoomAlias("#" + strings.Repeat("a", 255) + ":x")),
			`invalid room alias "#` + strings.Repeat("a", 255) + `:x": length is 258 bytes (max 255)`},
		{errOf(id.ParseEventID("$abc")),
			`invalid event ID "$abc": has no ':' before a server name, so it must be a 43-character base64 reference hash after the sigil, but it has 3 bytes`},
		{id.ValidateRoomVersionID("1_2"),
			`invalid room version "1_2": contains '_' at byte 1 (only a-z, 0-9, '.' and '-' are allowed)`},
	}
	for _, tt := range tests {
		if tt.err == nil || tt.err.Error() != tt.want {
			t.Errorf("message:\n got %v\nwant %s", tt.err, tt.want)
		}
	}
}

func errOf[T any](_ T, err error) error { return err }

func TestErrorNesting(t *testing.T) {
	_, err := id.ParseUserID("@a:ex.org:99999")
	var e *id.Error
	if !errors.As(err, &e) || e.Kind != id.KindUserID {
		t.Fatalf("outer error: %#v", err)
	}
	var inner *id.Error
	if !errors.As(e.Err, &inner) || inner.Kind != id.KindServerName || inner.Input != "ex.org:99999" {
		t.Fatalf("inner error: %#v", e.Err)
	}
	if !errors.Is(err, id.ErrPort) {
		t.Error("errors.Is(err, ErrPort) = false through the nested server name error")
	}
	if errors.Is(err, id.ErrTooLong) {
		t.Error("errors.Is(err, ErrTooLong) = true")
	}
}

func TestErrorMessageTruncatesHugeInput(t *testing.T) {
	huge := "@" + strings.Repeat("é", 100000) + ":x"
	_, err := id.ParseUserID(huge)
	if !errors.Is(err, id.ErrTooLong) {
		t.Fatalf("err = %v", err)
	}
	msg := err.Error()
	if len(msg) > 1000 || !strings.Contains(msg, "(200003 bytes)") || !strings.Contains(msg, "length is 200003 bytes (max 255)") {
		t.Errorf("message not shortened as expected: %d bytes, %.200q", len(msg), msg)
	}
	var e *id.Error
	if errors.As(err, &e); e.Input != huge {
		t.Error("Input was modified")
	}
}

func TestKindString(t *testing.T) {
	kinds := map[id.Kind]string{
		id.KindServerName: "server name", id.KindUserID: "user ID", id.KindRoomID: "room ID",
		id.KindRoomAlias: "room alias", id.KindEventID: "event ID", id.KindRoomVersion: "room version",
		id.KindNamespacedID: "namespaced identifier", id.Kind(0): "identifier",
	}
	for k, want := range kinds {
		if k.String() != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, k.String(), want)
		}
	}
}

// Parsing valid identifiers must not allocate.
func TestParseDoesNotAllocate(t *testing.T) {
	v12RoomID := "!" + specV4EventID[1:]
	checks := map[string]func(){
		"ParseServerName": func() { _, _ = id.ParseServerName("[1234:5678::abcd]:5678") },
		"ParseUserID":     func() { _, _ = id.ParseUserID("@alice☃:matrix.org:8448") },
		"Strict":          func() { _ = id.ValidateUserIDStrict("@alice:matrix.org") },
		"ParseRoomID":     func() { _, _ = id.ParseRoomID(v12RoomID) },
		"ParseRoomAlias":  func() { _, _ = id.ParseRoomAlias("#room:1.2.3.4") },
		"ParseEventID":    func() { _, _ = id.ParseEventID(specV3EventID) },
		"ForFormat":       func() { _ = id.ValidateEventIDForFormat(specV4EventID, id.EventIDHashURLSafe) },
		"ReferenceHash":   func() { _, _ = id.EventID(specV4EventID).ReferenceHash() },
		"RoomVersion":     func() { _ = id.ValidateRoomVersionID("org.matrix.msc1234") },
		"Namespaced":      func() { _ = id.ValidateNamespacedID("m.room.message") },
		"Accessors": func() {
			s := id.ServerName("[::1]:8448")
			_, _, _, _ = s.Host(), s.IsIPLiteral(), id.UserID("@a:b").Server(), id.UserID("@a:b").Localpart()
			_, _ = s.Port()
		},
	}
	for name, f := range checks {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocations per run", name, n)
		}
	}
}
