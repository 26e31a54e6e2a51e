package id_test

import (
	"encoding/base64"
	"errors"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/axon-hs/axon/matrix/id"
)

// The fuzz targets compare the parsers with reference validators written
// straight from the spec's grammar with regular expressions, net/netip and
// encoding/base64, and check the properties of accepted values.

var (
	refServerRE = regexp.MustCompile(`^(?:\[([0-9A-Fa-f:.]{2,45})\]|([0-9A-Za-z.-]{1,255}))(?::([0-9]{1,5}))?$`)
	refIPv4RE   = regexp.MustCompile(`^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$`)
)

func refServerName(s string) bool {
	m := refServerRE.FindStringSubmatch(s)
	if m == nil {
		return false
	}
	if m[3] != "" {
		if p, _ := strconv.Atoi(m[3]); p > 65535 {
			return false
		}
	}
	if m[1] != "" {
		ip, err := netip.ParseAddr(m[1])
		return err == nil && ip.Is6() && ip.Zone() == ""
	}
	if q := refIPv4RE.FindStringSubmatch(m[2]); q != nil {
		for _, g := range q[1:] {
			if v, _ := strconv.Atoi(g); v > 255 {
				return false
			}
		}
	}
	return true
}

// refDomainID: sigil, localpart of valid UTF-8 without NUL up to the first
// ':', a valid server name, and at most 255 bytes.
func refDomainID(s string, sigil byte) bool {
	if len(s) == 0 || len(s) > 255 || s[0] != sigil {
		return false
	}
	local, server, ok := strings.Cut(s[1:], ":")
	return ok && utf8.ValidString(local) && !strings.ContainsRune(local, 0) && refServerName(server)
}

// refHash: sigil and the canonical unpadded base64 of exactly 32 bytes.
func refHash(s string, sigil byte, encs ...*base64.Encoding) bool {
	if len(s) != 44 || s[0] != sigil {
		return false
	}
	for _, enc := range encs {
		if b, err := enc.Strict().DecodeString(s[1:]); err == nil && len(b) == 32 {
			return true
		}
	}
	return false
}

// checkRejection asserts the shape of an error from a parser.
func checkRejection(t *testing.T, err error, kind id.Kind, in string) {
	t.Helper()
	var e *id.Error
	if !errors.As(err, &e) || e.Kind != kind || e.Input != in || e.Reason == "" || e.Err == nil {
		t.Fatalf("%q: malformed error %#v", in, err)
	}
	_ = err.Error()
	sentinels := []error{id.ErrEmpty, id.ErrTooLong, id.ErrSigil, id.ErrNoDomain, id.ErrInvalidChar,
		id.ErrInvalidUTF8, id.ErrIPLiteral, id.ErrPort, id.ErrHash, id.ErrWrongFormat}
	n := 0
	for _, s := range sentinels {
		if errors.Is(err, s) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%q: error %v matches %d sentinels, want 1", in, err, n)
	}
}

func addSeeds(f *testing.F, seeds ...string) {
	for _, s := range seeds {
		f.Add(s)
	}
}

var serverSeeds = []string{"matrix.org", "matrix.org:8888", "1.2.3.4", "1.2.3.4:1234", "[1234:5678::abcd]",
	"[1234:5678::abcd]:5678", "", ":", "a:", "1.2.3.256", "[::1%eth0]", "[1.2.3.4]", "a..b", "010.0.0.1:08448",
	"[::ffff:1.2.3.4]:65535", "ex.org:65536", "1234:5678::abcd"}

func FuzzParseServerName(f *testing.F) {
	addSeeds(f, serverSeeds...)
	f.Fuzz(func(t *testing.T, s string) {
		sn, err := id.ParseServerName(s)
		if ref := refServerName(s); (err == nil) != ref {
			t.Fatalf("ParseServerName(%q) error = %v, reference accepts = %v", s, err, ref)
		}
		host, port, hasPort := sn.Host(), uint16(0), false // accessors must not panic either way
		_, _ = id.ServerName(s).Port()
		_ = id.ServerName(s).IsIPLiteral()
		if err != nil {
			checkRejection(t, err, id.KindServerName, s)
			return
		}
		port, hasPort = sn.Port()
		if sn.String() != s || !strings.HasPrefix(s, host) {
			t.Fatalf("%q: String %q, Host %q", s, sn, host)
		}
		rest := s[len(host):]
		if hasPort {
			digits := strings.TrimLeft(rest[1:], "0")
			if digits == "" {
				digits = "0"
			}
			if rest[0] != ':' || strconv.Itoa(int(port)) != digits {
				t.Fatalf("%q: Host %q, Port %d", s, host, port)
			}
		} else if rest != "" {
			t.Fatalf("%q: Host %q and no port", s, host)
		}
		ip, ok := sn.IP()
		if ok != sn.IsIPLiteral() {
			t.Fatalf("%q: IP ok %v, IsIPLiteral %v", s, ok, sn.IsIPLiteral())
		}
		if strings.HasPrefix(host, "[") != (ok && ip.Is6()) {
			t.Fatalf("%q: bracketed host but IP() = %v, %v", s, ip, ok)
		}
		if ok && ip.Is4() && !refIPv4RE.MatchString(host) {
			t.Fatalf("%q: IPv4 %v from host %q", s, ip, host)
		}
	})
}

var userSeeds = []string{"@alice:example.org", "@:x", "@Alice:x", "@a b:[::1]:8448", "@a\x00:x", "@a:b:c", "@alice",
	"@\xed\xa0\x80:x", "@☃:1.2.3.4", "alice:x", "@a/b+c=d_e.f-g:matrix.org:8448", pad("@", 255, ":example.org")}

func FuzzParseUserID(f *testing.F) {
	addSeeds(f, userSeeds...)
	f.Fuzz(func(t *testing.T, s string) {
		u, err := id.ParseUserID(s)
		strictErr := id.ValidateUserIDStrict(s)
		if ref := refDomainID(s, '@'); (err == nil) != ref {
			t.Fatalf("ParseUserID(%q) error = %v, reference accepts = %v", s, err, ref)
		}
		_, _, _ = id.UserID(s).Localpart(), id.UserID(s).Server(), id.UserID(s).IsCompliant()
		if err != nil {
			checkRejection(t, err, id.KindUserID, s)
			if strictErr == nil {
				t.Fatalf("%q: strict validation accepts what ParseUserID rejects", s)
			}
			return
		}
		local, server := u.Localpart(), u.Server()
		if u.String() != s || "@"+local+":"+string(server) != s || len(s) > id.MaxIDLength {
			t.Fatalf("%q: String %q, Localpart %q, Server %q", s, u, local, server)
		}
		if strings.ContainsAny(local, ":\x00") || !utf8.ValidString(s) {
			t.Fatalf("%q: bad localpart %q accepted", s, local)
		}
		if _, err := id.ParseServerName(string(server)); err != nil {
			t.Fatalf("%q: Server() %q does not parse: %v", s, server, err)
		}
		strictRef := local != "" && strings.Trim(local, "abcdefghijklmnopqrstuvwxyz0123456789._=-/+") == ""
		if u.IsCompliant() != strictRef || (strictErr == nil) != strictRef {
			t.Fatalf("%q: IsCompliant %v, ValidateUserIDStrict %v, reference %v", s, u.IsCompliant(), strictErr, strictRef)
		}
		if strictErr != nil {
			checkRejection(t, strictErr, id.KindUserID, s)
		}
		if u2, err := id.NewUserID(local, server); err != nil || u2 != u {
			t.Fatalf("%q: NewUserID(Localpart, Server) = %q, %v", s, u2, err)
		}
	})
}

func FuzzParseRoomAlias(f *testing.F) {
	addSeeds(f, "#room:example.org", "#:x", "#a b:[::1]", "#a\x00:x", "#a:b:c", "#room", "room:x", "#\xff:x",
		pad("#", 255, ":example.org"), pad("#", 256, ":example.org"))
	f.Fuzz(func(t *testing.T, s string) {
		a, err := id.ParseRoomAlias(s)
		if ref := refDomainID(s, '#'); (err == nil) != ref {
			t.Fatalf("ParseRoomAlias(%q) error = %v, reference accepts = %v", s, err, ref)
		}
		_, _ = id.RoomAlias(s).Localpart(), id.RoomAlias(s).Server()
		if err != nil {
			checkRejection(t, err, id.KindRoomAlias, s)
			return
		}
		local, server := a.Localpart(), a.Server()
		if a.String() != s || "#"+local+":"+string(server) != s || len(s) > id.MaxIDLength {
			t.Fatalf("%q: String %q, Localpart %q, Server %q", s, a, local, server)
		}
		if _, err := id.ParseServerName(string(server)); err != nil {
			t.Fatalf("%q: Server() %q does not parse: %v", s, server, err)
		}
		if a2, err := id.NewRoomAlias(local, server); err != nil || a2 != a {
			t.Fatalf("%q: NewRoomAlias(Localpart, Server) = %q, %v", s, a2, err)
		}
	})
}

func FuzzParseRoomID(f *testing.F) {
	addSeeds(f, "!abc:example.org", "!:x", "!"+specV4EventID[1:], "!"+specV3EventID[1:], "!"+alnumHash,
		"!abc", "!a:b:c", "!"+alnumHash[:42]+"B", "!"+alnumHash[:42]+"=", pad("!", 255, ":example.org"))
	f.Fuzz(func(t *testing.T, s string) {
		r, err := id.ParseRoomID(s)
		ref := refDomainID(s, '!') || refHash(s, '!', base64.RawURLEncoding)
		if (err == nil) != ref {
			t.Fatalf("ParseRoomID(%q) error = %v, reference accepts = %v", s, err, ref)
		}
		_, _ = id.RoomID(s).Server()
		_, _ = id.RoomID(s).IsHashDerived(), id.RoomID(s).CreateEventID()
		if err != nil {
			checkRejection(t, err, id.KindRoomID, s)
			return
		}
		if r.String() != s || len(s) > id.MaxIDLength {
			t.Fatalf("%q: String %q", s, r)
		}
		server, hasServer := r.Server()
		if hasServer == r.IsHashDerived() {
			t.Fatalf("%q: Server ok %v, IsHashDerived %v", s, hasServer, r.IsHashDerived())
		}
		if hasServer {
			local, _, _ := strings.Cut(s[1:], ":")
			if "!"+local+":"+string(server) != s || r.CreateEventID() != "" {
				t.Fatalf("%q: Server %q, CreateEventID %q", s, server, r.CreateEventID())
			}
			return
		}
		c := r.CreateEventID()
		if c != "$"+s[1:] {
			t.Fatalf("%q: CreateEventID %q", s, c)
		}
		if err := id.ValidateEventIDForFormat(c, id.EventIDHashURLSafe); err != nil {
			t.Fatalf("%q: CreateEventID %q invalid: %v", s, c, err)
		}
		if back, err := id.RoomIDFromCreateEventID(c); err != nil || back != r {
			t.Fatalf("%q: RoomIDFromCreateEventID(CreateEventID) = %q, %v", s, back, err)
		}
	})
}

func FuzzParseEventID(f *testing.F) {
	addSeeds(f, "$abc:example.org", "$:x", specV3EventID, specV3EventID2, specV4EventID, "$"+alnumHash,
		"$abc", "$a:b:c", "$"+alnumHash[:40]+"+-A", "$"+alnumHash[:42]+"h", pad("$", 255, ":example.org"))
	formats := []id.EventIDFormat{id.EventIDWithDomain, id.EventIDHashStd, id.EventIDHashURLSafe}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := id.ParseEventID(s)
		isStd := refHash(s, '$', base64.RawStdEncoding)
		isURL := refHash(s, '$', base64.RawURLEncoding)
		isDomain := refDomainID(s, '$')
		if (err == nil) != (isDomain || isStd || isURL) {
			t.Fatalf("ParseEventID(%q) error = %v, reference: domain %v std %v url %v", s, err, isDomain, isStd, isURL)
		}
		for i, want := range []bool{isDomain, isStd, isURL} {
			ferr := id.ValidateEventIDForFormat(s, formats[i])
			if (ferr == nil) != want {
				t.Fatalf("ValidateEventIDForFormat(%q, %v) = %v, want ok %v", s, formats[i], ferr, want)
			}
			if ferr != nil {
				checkRejection(t, ferr, id.KindEventID, s)
				if errors.Is(ferr, id.ErrWrongFormat) != (err == nil) {
					t.Fatalf("ValidateEventIDForFormat(%q, %v) = %v but ParseEventID gives %v", s, formats[i], ferr, err)
				}
			}
		}
		_, _ = id.EventID(s).Server()
		_, _ = id.EventID(s).ReferenceHash()
		if err != nil {
			checkRejection(t, err, id.KindEventID, s)
			return
		}
		if e.String() != s || len(s) > id.MaxIDLength {
			t.Fatalf("%q: String %q", s, e)
		}
		server, hasServer := e.Server()
		hash, hasHash := e.ReferenceHash()
		if hasServer == e.IsHashDerived() || hasHash != e.IsHashDerived() {
			t.Fatalf("%q: Server ok %v, ReferenceHash ok %v, IsHashDerived %v", s, hasServer, hasHash, e.IsHashDerived())
		}
		if hasServer {
			local, _, _ := strings.Cut(s[1:], ":")
			if "$"+local+":"+string(server) != s {
				t.Fatalf("%q: Server %q", s, server)
			}
			return
		}
		if (isStd && id.EventIDFromHash(hash, id.EventIDHashStd) != e) ||
			(isURL && id.EventIDFromHash(hash, id.EventIDHashURLSafe) != e) {
			t.Fatalf("%q: ReferenceHash %x does not re-encode to the ID", s, hash)
		}
	})
}
