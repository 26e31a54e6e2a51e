package ratelimit

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("fd00::/8"),
	}
	tests := []struct {
		name    string
		remote  string
		xff     []string // one element per header line
		trusted []netip.Prefix
		want    string
	}{
		{"direct client", "203.0.113.7:5555", nil, trusted, "203.0.113.7"},
		{"untrusted peer's XFF ignored", "203.0.113.7:5555", []string{"198.51.100.1"}, trusted, "203.0.113.7"},
		{"no trusted proxies: XFF ignored", "10.0.0.1:80", []string{"198.51.100.1"}, nil, "10.0.0.1"},
		{"one trusted proxy", "10.0.0.1:80", []string{"198.51.100.1"}, trusted, "198.51.100.1"},
		{"trusted proxy without header", "10.0.0.1:80", nil, trusted, "10.0.0.1"},
		{"spoofed left entries ignored", "10.0.0.1:80", []string{"1.1.1.1, 8.8.8.8, 198.51.100.1"}, trusted, "198.51.100.1"},
		{"client forges a trusted address", "10.0.0.1:80", []string{"10.9.9.9, 198.51.100.1"}, trusted, "198.51.100.1"},
		{"chain of trusted proxies", "10.0.0.1:80", []string{"198.51.100.1, 10.0.0.3, 10.0.0.2"}, trusted, "198.51.100.1"},
		{"header split over lines", "10.0.0.1:80", []string{"6.6.6.6, 198.51.100.1", "10.0.0.3", "10.0.0.2"}, trusted, "198.51.100.1"},
		{"all trusted: left-most", "10.0.0.1:80", []string{"10.0.0.3, 10.0.0.2"}, trusted, "10.0.0.3"},
		{"garbage right-most: peer", "10.0.0.1:80", []string{"198.51.100.1, not-an-ip"}, trusted, "10.0.0.1"},
		{"garbage behind trusted hop", "10.0.0.1:80", []string{"198.51.100.1, bogus, 10.0.0.2"}, trusted, "10.0.0.2"},
		{"empty entry stops", "10.0.0.1:80", []string{"198.51.100.1, "}, trusted, "10.0.0.1"},
		{"entry with port", "10.0.0.1:80", []string{"198.51.100.1:4711"}, trusted, "198.51.100.1"},
		{"IPv6 entry with port", "10.0.0.1:80", []string{"[2001:db8::1]:4711"}, trusted, "2001:db8::1"},
		{"IPv6 proxy and client", "[fd00::1]:443", []string{"2001:db8::2"}, trusted, "2001:db8::2"},
		{"IPv4-mapped peer is unmapped", "[::ffff:10.0.0.1]:80", []string{"198.51.100.1"}, trusted, "198.51.100.1"},
		{"IPv4-mapped client is unmapped", "[::ffff:203.0.113.7]:1", nil, trusted, "203.0.113.7"},
		{"zone dropped", "[fe80::1%eth0]:1", nil, trusted, "fe80::1"},
		{"remote without port", "203.0.113.7", nil, trusted, "203.0.113.7"},
		{"unix socket peer", "@", []string{"198.51.100.1"}, trusted, ""},
		{"empty remote", "", nil, trusted, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := ClientIP(r, tt.trusted); got != tt.want {
				t.Fatalf("ClientIP = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestIPKey(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		remote, xff string
		want        string
		ok          bool
	}{
		{"203.0.113.7:1", "", "203.0.113.7", true},
		{"[2001:db8:1:2:3:4:5:6]:1", "", "2001:db8:1:2::/64", true},
		{"[2001:db8:1:2:ffff::9]:1", "", "2001:db8:1:2::/64", true},
		{"10.0.0.1:1", "2001:db8:aa:bb::1", "2001:db8:aa:bb::/64", true},
		{"[::ffff:203.0.113.7]:1", "", "203.0.113.7", true},
		{"@", "", "", false},
	}
	key := IPKey(trusted)
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		if tt.xff != "" {
			r.Header.Set("X-Forwarded-For", tt.xff)
		}
		got, ok := key(r)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s %q: key = %q, %v; want %q, %v", tt.remote, tt.xff, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.1:80", "1.2.3.4, 10.0.0.2")
	f.Add("10.0.0.1:80", "[::1]:80,,x")
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", xff)
		got := ClientIP(r, trusted)
		if got == "" {
			return
		}
		a, err := netip.ParseAddr(got)
		if err != nil || a.Zone() != "" || a.Is4In6() {
			t.Fatalf("ClientIP = %q: not a canonical address", got)
		}
	})
}
