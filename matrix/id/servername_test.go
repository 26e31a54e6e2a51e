package id_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/axon-hs/axon/matrix/id"
)

func TestParseServerNameValid(t *testing.T) {
	tests := []struct {
		in      string
		host    string
		port    uint16
		hasPort bool
		ip      string // "" for DNS names
	}{
		// The spec's examples.
		{in: "matrix.org", host: "matrix.org"},
		{in: "matrix.org:8888", host: "matrix.org", port: 8888, hasPort: true},
		{in: "1.2.3.4", host: "1.2.3.4", ip: "1.2.3.4"},
		{in: "1.2.3.4:1234", host: "1.2.3.4", port: 1234, hasPort: true, ip: "1.2.3.4"},
		{in: "[1234:5678::abcd]", host: "[1234:5678::abcd]", ip: "1234:5678::abcd"},
		{in: "[1234:5678::abcd]:5678", host: "[1234:5678::abcd]", port: 5678, hasPort: true, ip: "1234:5678::abcd"},
		// DNS names.
		{in: "localhost", host: "localhost"},
		{in: "a", host: "a"},
		{in: "MATRIX.ORG", host: "MATRIX.ORG"}, // case preserved
		{in: "xn--bcher-kva.example", host: "xn--bcher-kva.example"},
		{in: "a..b", host: "a..b"}, // label conventions are not enforced
		{in: "-x-.", host: "-x-."},
		{in: "1.2.3", host: "1.2.3"},         // digits and dots, not a dotted quad
		{in: "1.2.3.4.5", host: "1.2.3.4.5"}, // likewise
		{in: "1234", host: "1234"},
		{in: "1.2.3.4.", host: "1.2.3.4."},
		{in: strings.Repeat("a", 255), host: strings.Repeat("a", 255)},
		{in: strings.Repeat("a", 255) + ":1", host: strings.Repeat("a", 255), port: 1, hasPort: true},
		// IPv4 edge values.
		{in: "0.0.0.0", host: "0.0.0.0", ip: "0.0.0.0"},
		{in: "255.255.255.255", host: "255.255.255.255", ip: "255.255.255.255"},
		{in: "010.001.000.9", host: "010.001.000.9", ip: "10.1.0.9"}, // leading zeros are decimal
		// IPv6 forms.
		{in: "[::]", host: "[::]", ip: "::"},
		{in: "[::1]:8448", host: "[::1]", port: 8448, hasPort: true, ip: "::1"},
		{in: "[ABCD:ef01::1]", host: "[ABCD:ef01::1]", ip: "abcd:ef01::1"},
		{in: "[::ffff:1.2.3.4]", host: "[::ffff:1.2.3.4]", ip: "::ffff:1.2.3.4"},
		{in: "[1:2:3:4:5:6:7:8]", host: "[1:2:3:4:5:6:7:8]", ip: "1:2:3:4:5:6:7:8"},
		{in: "[0000:0000:0000:0000:0000:ffff:255.255.255.255]", host: "[0000:0000:0000:0000:0000:ffff:255.255.255.255]",
			ip: "::ffff:255.255.255.255"}, // exactly 45 characters
		// Ports.
		{in: "example.org:65535", host: "example.org", port: 65535, hasPort: true},
		{in: "example.org:0", host: "example.org", port: 0, hasPort: true},
		{in: "example.org:00080", host: "example.org", port: 80, hasPort: true},
	}
	for _, tt := range tests {
		sn, err := id.ParseServerName(tt.in)
		if err != nil {
			t.Errorf("ParseServerName(%q): %v", tt.in, err)
			continue
		}
		if sn.String() != tt.in {
			t.Errorf("ParseServerName(%q) = %q", tt.in, sn)
		}
		if got := sn.Host(); got != tt.host {
			t.Errorf("%q.Host() = %q, want %q", tt.in, got, tt.host)
		}
		port, ok := sn.Port()
		if port != tt.port || ok != tt.hasPort {
			t.Errorf("%q.Port() = %d, %v; want %d, %v", tt.in, port, ok, tt.port, tt.hasPort)
		}
		ip, ok := sn.IP()
		if tt.ip == "" {
			if ok || sn.IsIPLiteral() {
				t.Errorf("%q: IP() = %v, %v and IsIPLiteral() = %v; want a DNS name", tt.in, ip, ok, sn.IsIPLiteral())
			}
			continue
		}
		if want := netip.MustParseAddr(tt.ip); !ok || ip != want || !sn.IsIPLiteral() {
			t.Errorf("%q: IP() = %v, %v and IsIPLiteral() = %v; want %v", tt.in, ip, ok, sn.IsIPLiteral(), want)
		}
	}
}

func TestParseServerNameInvalid(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{"", id.ErrEmpty},
		{":8448", id.ErrEmpty},
		{"example.org:", id.ErrPort},
		{"example.org:65536", id.ErrPort},
		{"example.org:99999", id.ErrPort},
		{"example.org:123456", id.ErrPort},
		{"example.org:000001", id.ErrPort}, // six digits, even though the value is small
		{"example.org:-1", id.ErrPort},
		{"example.org:+80", id.ErrPort},
		{"example.org:8a", id.ErrPort},
		{"example.org: 80", id.ErrPort},
		{"example.org:80:80", id.ErrPort},
		{"1234:5678::abcd", id.ErrPort}, // IPv6 without brackets
		{"1.2.3.256", id.ErrIPLiteral},
		{"256.0.0.0", id.ErrIPLiteral},
		{"999.999.999.999:80", id.ErrIPLiteral},
		{"1.2.3.4:", id.ErrPort},
		{"[1234:5678::abcd", id.ErrIPLiteral},
		{"[", id.ErrIPLiteral},
		{"[]", id.ErrIPLiteral},
		{"[1]", id.ErrIPLiteral},
		{"[:]", id.ErrIPLiteral},
		{"[1.2.3.4]", id.ErrIPLiteral},
		{"[::1%eth0]", id.ErrIPLiteral},
		{"[::1%25eth0]", id.ErrIPLiteral},
		{"[12345::1]", id.ErrIPLiteral},
		{"[1:2:3:4:5:6:7:8:9]", id.ErrIPLiteral},
		{"[1::2::3]", id.ErrIPLiteral},
		{"[g::1]", id.ErrIPLiteral},
		{"[ ::1]", id.ErrIPLiteral},
		{"[0000:0000:0000:0000:0000:ffff:255.255.255.2550]", id.ErrIPLiteral}, // 46 characters
		{"[::1]x", id.ErrInvalidChar},
		{"[::1]]", id.ErrInvalidChar},
		{"[::1]:", id.ErrPort},
		{"[::1]:70000", id.ErrPort},
		{"[::1]:80a", id.ErrPort},
		{"exa mple.org", id.ErrInvalidChar},
		{"example.org/", id.ErrInvalidChar},
		{"exa_mple.org", id.ErrInvalidChar},
		{"bücher.de", id.ErrInvalidChar}, // no IDNA: must be punycode
		{"a\x00b", id.ErrInvalidChar},
		{"a\xffb", id.ErrInvalidChar},
		{"example.org]", id.ErrInvalidChar},
		{"@example.org", id.ErrInvalidChar},
		{strings.Repeat("a", 256), id.ErrTooLong},
		{strings.Repeat("a", 256) + ":80", id.ErrTooLong},
	}
	for _, tt := range tests {
		sn, err := id.ParseServerName(tt.in)
		if err == nil {
			t.Errorf("ParseServerName(%q) = %q, want error", tt.in, sn)
			continue
		}
		if !errors.Is(err, tt.want) {
			t.Errorf("ParseServerName(%q): %v; want errors.Is %v", tt.in, err, tt.want)
		}
		checkError(t, err, id.KindServerName, tt.in)
	}
}

func TestServerNameAccessorsOnUncheckedValues(t *testing.T) {
	// Accessors must not panic on values that were never validated.
	for _, s := range []string{"", "[", "[::1", "]", ":", "::", "[x]:", "a:99999", "a:1:2", "[::1]:x", "1.2.3.999"} {
		sn := id.ServerName(s)
		_ = sn.Host()
		if p, ok := sn.Port(); ok {
			t.Errorf("ServerName(%q).Port() = %d, true", s, p)
		}
		if sn.IsIPLiteral() && s != "[::1]:x" {
			t.Errorf("ServerName(%q).IsIPLiteral() = true", s)
		}
	}
}

func TestServerNameCaseSensitive(t *testing.T) {
	a, _ := id.ParseServerName("matrix.org")
	b, _ := id.ParseServerName("MATRIX.ORG")
	if a == b {
		t.Fatal("server names must compare case-sensitively")
	}
}

// checkError asserts that err is an *id.Error describing input as kind,
// with a message naming both.
func checkError(t *testing.T, err error, kind id.Kind, input string) {
	t.Helper()
	var e *id.Error
	if !errors.As(err, &e) {
		t.Errorf("error %v (%T) is not an *id.Error", err, err)
		return
	}
	if e.Kind != kind || e.Input != input {
		t.Errorf("error %v has Kind %v, Input %q; want %v, %q", err, e.Kind, e.Input, kind, input)
	}
	if e.Reason == "" || e.Err == nil {
		t.Errorf("error %v has empty Reason or Err", err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "invalid "+kind.String()+" ") {
		t.Errorf("message %q does not start with %q", msg, "invalid "+kind.String())
	}
}
