package id_test

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/axon-hs/axon/matrix/id"
)

// Event IDs from the spec's room version pages.
const (
	specV3EventID  = "$acR1l0raoZnm60CBwAVgqbZqoO/mYU81xysh1u7XcJk"
	specV3EventID2 = "$CD66HAED5npg6074c6pDtLKalHjVfYb2q4Q3LZgrW6o"
	specV4EventID  = "$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg"
	alnumHash      = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg" // valid in both alphabets
)

func TestParseRoomIDValid(t *testing.T) {
	v12 := "!" + specV4EventID[1:]
	tests := []struct {
		in     string
		server string // "" for hash-derived
	}{
		{"!abcdefg:example.org", "example.org"},
		{"!OpaqueID123:matrix.org:8448", "matrix.org:8448"},
		{"!:example.org", "example.org"},
		{"!room\x01☃:[::1]", "[::1]"},
		{"!abc:1.2.3.4:1234", "1.2.3.4:1234"},
		{pad("!", 255, ":example.org"), "example.org"},
		{v12, ""},
		{"!" + alnumHash, ""},
		{"!" + strings.Repeat("_", 42) + "A", ""},
		{"!" + base64.RawURLEncoding.EncodeToString(make([]byte, 32)), ""},
	}
	for _, tt := range tests {
		r, err := id.ParseRoomID(tt.in)
		if err != nil {
			t.Errorf("ParseRoomID(%q): %v", tt.in, err)
			continue
		}
		if r.String() != tt.in {
			t.Errorf("ParseRoomID(%q) = %q", tt.in, r)
		}
		server, ok := r.Server()
		if string(server) != tt.server || ok != (tt.server != "") {
			t.Errorf("%q.Server() = %q, %v", tt.in, server, ok)
		}
		if r.IsHashDerived() != (tt.server == "") {
			t.Errorf("%q.IsHashDerived() = %v", tt.in, r.IsHashDerived())
		}
		if tt.server != "" {
			if c := r.CreateEventID(); c != "" {
				t.Errorf("%q.CreateEventID() = %q, want \"\"", tt.in, c)
			}
			continue
		}
		c := r.CreateEventID()
		if c != "$"+tt.in[1:] {
			t.Errorf("%q.CreateEventID() = %q", tt.in, c)
		}
		back, err := id.RoomIDFromCreateEventID(c)
		if err != nil || back != r {
			t.Errorf("RoomIDFromCreateEventID(%q) = %q, %v; want %q", c, back, err, r)
		}
	}
}

func TestParseRoomIDInvalid(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{"", id.ErrEmpty},
		{"abc:example.org", id.ErrSigil},
		{specV4EventID, id.ErrSigil},
		{"#abc:example.org", id.ErrSigil},
		{"!", id.ErrHash},
		{"!abc", id.ErrHash}, // neither a server name nor a hash
		{"!" + alnumHash[:42], id.ErrHash},
		{"!" + alnumHash + "A", id.ErrHash},
		{"!" + alnumHash[:42] + "=", id.ErrHash},
		{"!" + base64.StdEncoding.EncodeToString(make([]byte, 32)), id.ErrHash}, // padded
		{"!" + specV3EventID[1:], id.ErrHash},                                   // '/' is not URL-safe
		{"!" + alnumHash[:42] + "B", id.ErrHash},                                // non-canonical last character
		{"!" + alnumHash[:42] + "_", id.ErrHash},
		{"!" + alnumHash[:20] + "\n" + alnumHash[21:], id.ErrHash},
		{"!a\x00:example.org", id.ErrInvalidChar},
		{"!\xed\xb0\x80:example.org", id.ErrInvalidUTF8},
		{"!abc:", id.ErrEmpty},
		{"!abc:example.org:", id.ErrPort},
		{"!a:b:c", id.ErrPort},
		{pad("!", 256, ":example.org"), id.ErrTooLong},
	}
	for _, tt := range tests {
		r, err := id.ParseRoomID(tt.in)
		if err == nil {
			t.Errorf("ParseRoomID(%q) = %q, want error", tt.in, r)
			continue
		}
		if !errors.Is(err, tt.want) {
			t.Errorf("ParseRoomID(%q): %v; want errors.Is %v", tt.in, err, tt.want)
		}
		checkError(t, err, id.KindRoomID, tt.in)
	}
}

func TestRoomIDFromCreateEventID(t *testing.T) {
	r, err := id.RoomIDFromCreateEventID(specV4EventID)
	if err != nil || string(r) != "!"+specV4EventID[1:] {
		t.Fatalf("RoomIDFromCreateEventID(%q) = %q, %v", specV4EventID, r, err)
	}
	for _, in := range []string{specV3EventID, "$abc:example.org"} {
		if _, err := id.RoomIDFromCreateEventID(in); !errors.Is(err, id.ErrWrongFormat) {
			t.Errorf("RoomIDFromCreateEventID(%q): %v; want ErrWrongFormat", in, err)
		}
	}
	for _, in := range []string{"", "!" + specV4EventID[1:], "$abc"} {
		if _, err := id.RoomIDFromCreateEventID(in); err == nil || errors.Is(err, id.ErrWrongFormat) {
			t.Errorf("RoomIDFromCreateEventID(%q): %v; want a validation error", in, err)
		}
	}
}

func TestParseEventIDValid(t *testing.T) {
	tests := []struct {
		in     string
		server string // "" for hashes
	}{
		{"$1234567890abcdef:matrix.org", "matrix.org"},
		{"$abc:example.org:8448", "example.org:8448"},
		{"$:example.org", "example.org"},
		{"$ünïcödé/+=:[1234:5678::abcd]:5678", "[1234:5678::abcd]:5678"},
		{pad("$", 255, ":example.org"), "example.org"},
		{specV3EventID, ""},
		{specV3EventID2, ""},
		{specV4EventID, ""},
		{"$" + alnumHash, ""},
	}
	for _, tt := range tests {
		e, err := id.ParseEventID(tt.in)
		if err != nil {
			t.Errorf("ParseEventID(%q): %v", tt.in, err)
			continue
		}
		if e.String() != tt.in {
			t.Errorf("ParseEventID(%q) = %q", tt.in, e)
		}
		server, ok := e.Server()
		if string(server) != tt.server || ok != (tt.server != "") {
			t.Errorf("%q.Server() = %q, %v", tt.in, server, ok)
		}
		if e.IsHashDerived() != (tt.server == "") {
			t.Errorf("%q.IsHashDerived() = %v", tt.in, e.IsHashDerived())
		}
		hash, ok := e.ReferenceHash()
		if ok != (tt.server == "") {
			t.Errorf("%q.ReferenceHash() ok = %v", tt.in, ok)
		}
		if ok {
			enc := base64.RawURLEncoding
			if strings.ContainsAny(tt.in, "+/") {
				enc = base64.RawStdEncoding
			}
			if got := "$" + enc.EncodeToString(hash[:]); got != tt.in {
				t.Errorf("%q.ReferenceHash() re-encodes to %q", tt.in, got)
			}
		}
	}
}

func TestParseEventIDInvalid(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{"", id.ErrEmpty},
		{"$", id.ErrHash},
		{"$abc", id.ErrHash},
		{specV4EventID[1:], id.ErrSigil},
		{"!" + specV4EventID[1:], id.ErrSigil},
		{"$" + alnumHash[:42], id.ErrHash},
		{"$" + alnumHash + "A", id.ErrHash},
		{"$" + alnumHash[:41] + "=", id.ErrHash},
		{"$" + base64.StdEncoding.EncodeToString(make([]byte, 32)), id.ErrHash},
		{"$" + alnumHash[:40] + "+-A", id.ErrHash}, // mixed alphabets
		{"$/" + alnumHash[:40] + "_A", id.ErrHash},
		{"$" + alnumHash[:42] + "h", id.ErrHash}, // non-canonical
		{"$" + alnumHash[:42] + "/", id.ErrHash},
		{"$" + alnumHash[:42] + "-", id.ErrHash},
		{"$" + alnumHash[:42] + ".", id.ErrHash},
		{"$" + alnumHash[:42] + "\x00", id.ErrHash},
		{"$a\x00:example.org", id.ErrInvalidChar},
		{"$a\xed\xa0\x80:example.org", id.ErrInvalidUTF8},
		{"$abc:", id.ErrEmpty},
		{"$abc:ex ample.org", id.ErrInvalidChar},
		{"$a:b:c", id.ErrPort},
		{pad("$", 256, ":example.org"), id.ErrTooLong},
	}
	for _, tt := range tests {
		e, err := id.ParseEventID(tt.in)
		if err == nil {
			t.Errorf("ParseEventID(%q) = %q, want error", tt.in, e)
			continue
		}
		if !errors.Is(err, tt.want) {
			t.Errorf("ParseEventID(%q): %v; want errors.Is %v", tt.in, err, tt.want)
		}
		checkError(t, err, id.KindEventID, tt.in)
		for _, f := range []id.EventIDFormat{id.EventIDWithDomain, id.EventIDHashStd, id.EventIDHashURLSafe} {
			if err := id.ValidateEventIDForFormat(tt.in, f); err == nil {
				t.Errorf("ValidateEventIDForFormat(%q, %v) accepts an invalid ID", tt.in, f)
			}
		}
	}
}

func TestValidateEventIDForFormat(t *testing.T) {
	const (
		ok    = 0
		wrong = 1 // ErrWrongFormat
	)
	tests := []struct {
		in                  string
		domain, std, urlSaf int
	}{
		{"$abc:example.org", ok, wrong, wrong},
		{specV3EventID, wrong, ok, wrong},
		{specV4EventID, wrong, wrong, ok},
		{"$" + alnumHash, wrong, ok, ok},
	}
	for _, tt := range tests {
		for f, want := range map[id.EventIDFormat]int{
			id.EventIDWithDomain: tt.domain, id.EventIDHashStd: tt.std, id.EventIDHashURLSafe: tt.urlSaf,
		} {
			err := id.ValidateEventIDForFormat(tt.in, f)
			switch {
			case want == ok && err != nil:
				t.Errorf("ValidateEventIDForFormat(%q, %v): %v", tt.in, f, err)
			case want == wrong && !errors.Is(err, id.ErrWrongFormat):
				t.Errorf("ValidateEventIDForFormat(%q, %v) = %v; want ErrWrongFormat", tt.in, f, err)
			case err != nil:
				checkError(t, err, id.KindEventID, tt.in)
			}
		}
	}
	if err := id.ValidateEventIDForFormat("$abc", id.EventIDWithDomain); !errors.Is(err, id.ErrNoDomain) {
		t.Errorf("domain format without ':' = %v; want ErrNoDomain", err)
	}
	if err := id.ValidateEventIDForFormat(specV4EventID, id.EventIDFormat(0)); !errors.Is(err, id.ErrWrongFormat) {
		t.Errorf("unknown format = %v; want ErrWrongFormat", err)
	}
	want := `invalid event ID "` + specV3EventID + `": reference hash contains '/' at byte 27 ` +
		`(standard base64; expected URL-safe base64)`
	if err := id.ValidateEventIDForFormat(specV3EventID, id.EventIDHashURLSafe); err == nil || err.Error() != want {
		t.Errorf("message:\n got %v\nwant %s", err, want)
	}
}

func TestEventIDFromHash(t *testing.T) {
	for i := range 200 {
		h := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		for f, enc := range map[id.EventIDFormat]*base64.Encoding{
			id.EventIDHashStd: base64.RawStdEncoding, id.EventIDHashURLSafe: base64.RawURLEncoding,
		} {
			e := id.EventIDFromHash(h, f)
			if want := "$" + enc.EncodeToString(h[:]); string(e) != want {
				t.Fatalf("EventIDFromHash(%x, %v) = %q, want %q", h, f, e, want)
			}
			if err := id.ValidateEventIDForFormat(string(e), f); err != nil {
				t.Fatalf("EventIDFromHash result invalid: %v", err)
			}
			if got, ok := e.ReferenceHash(); !ok || got != h {
				t.Fatalf("%q.ReferenceHash() = %x, %v; want %x", e, got, ok, h)
			}
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("EventIDFromHash with EventIDWithDomain did not panic")
		}
	}()
	id.EventIDFromHash([32]byte{}, id.EventIDWithDomain)
}
