package discovery

import (
	"errors"
	"slices"
	"strconv"
	"testing"

	"github.com/axon-hs/axon/matrix/id"
)

// TestResolve walks every step of the spec's algorithm with the test
// world's DNS, well-known server and certificates.
func TestResolve(t *testing.T) {
	e := newEnv(t)
	r := e.resolver(nil)
	X, D, S, L := e.x.port, e.d.port, e.s.port, e.l.port
	xp := strconv.Itoa(int(X))
	v4 := func(p uint16) []string { return []string{addr(lo4, p)} }
	v6 := func(p uint16) []string { return []string{addr("::1", p)} }

	// fallback is what a hostname without a usable well-known and without
	// SRV records resolves to (step 6).
	fallback := func(host string) Result {
		return Result{Method: MethodDefault, Addrs: v4(D), Host: host, TLSName: host}
	}
	tests := []struct {
		name   string
		server string
		want   Result // ServerName is filled in from server
		ipv6   bool
	}{
		// Step 1: IP literals.
		{"ipv4", lo4, Result{Method: MethodIPLiteral, Addrs: v4(D), Host: lo4, TLSName: lo4}, false},
		{"ipv4 port", lo4 + ":" + xp, Result{Method: MethodIPLiteral, Addrs: v4(X), Host: lo4 + ":" + xp, TLSName: lo4}, false},
		{"ipv4 leading zeros", "127.000.000.001:" + xp, Result{Method: MethodIPLiteral, Addrs: v4(X), Host: "127.000.000.001:" + xp, TLSName: lo4}, false},
		{"ipv6", "[::1]", Result{Method: MethodIPLiteral, Addrs: v6(D), Host: "[::1]", TLSName: "::1"}, true},
		{"ipv6 port", "[::1]:" + xp, Result{Method: MethodIPLiteral, Addrs: v6(X), Host: "[::1]:" + xp, TLSName: "::1"}, true},
		{"ipv6 long form", "[0:0:0:0:0:0:0:1]:" + xp, Result{Method: MethodIPLiteral, Addrs: v6(X), Host: "[0:0:0:0:0:0:0:1]:" + xp, TLSName: "::1"}, true},

		// Step 2: hostname with a port; no well-known even if one exists.
		{"hostname port", "port.test:" + xp, Result{Method: MethodExplicitPort, Addrs: v4(X), Host: "port.test:" + xp, TLSName: "port.test"}, false},
		{"hostname port AAAA", "v6only.test:" + xp, Result{Method: MethodExplicitPort, Addrs: v6(X), Host: "v6only.test:" + xp, TLSName: "v6only.test"}, true},
		{"hostname port dual stack", "dual.test:" + xp, Result{Method: MethodExplicitPort, Addrs: []string{addr("::1", X), addr(lo4, X)}, Host: "dual.test:" + xp, TLSName: "dual.test"}, true},

		// Step 3: well-known delegation.
		{"wk ip", "wk-ip.test", Result{Method: MethodWellKnownIP, Delegated: id.ServerName(lo4 + ":" + xp), Addrs: v4(X), Host: lo4 + ":" + xp, TLSName: lo4}, false},
		{"wk ip no port", "wk-ip-noport.test", Result{Method: MethodWellKnownIP, Delegated: lo4, Addrs: v4(D), Host: lo4, TLSName: lo4}, false},
		{"wk ipv6", "wk-ip6.test", Result{Method: MethodWellKnownIP, Delegated: id.ServerName("[::1]:" + xp), Addrs: v6(X), Host: "[::1]:" + xp, TLSName: "::1"}, true},
		{"wk ipv6 no port", "wk-ip6-noport.test", Result{Method: MethodWellKnownIP, Delegated: "[::1]", Addrs: v6(D), Host: "[::1]", TLSName: "::1"}, true},
		{"wk hostname port", "wk-port.test", Result{Method: MethodWellKnownPort, Delegated: id.ServerName("deleg.test:" + xp), Addrs: v4(X), Host: "deleg.test:" + xp, TLSName: "deleg.test"}, false},
		{"wk srv", "wk-srv.test", Result{Method: MethodWellKnownSRV, Delegated: "deleg-srv.test", Addrs: v4(S), Host: "deleg-srv.test", TLSName: "deleg-srv.test"}, false},
		{"wk legacy srv", "wk-legacy.test", Result{Method: MethodWellKnownLegacySRV, Delegated: "deleg-legacy.test", Addrs: v4(L), Host: "deleg-legacy.test", TLSName: "deleg-legacy.test"}, false},
		{"wk default port", "wk-plain.test", Result{Method: MethodWellKnownDefault, Delegated: "deleg.test", Addrs: v4(D), Host: "deleg.test", TLSName: "deleg.test"}, false},
		{"wk to itself", "wk-self.test", Result{Method: MethodWellKnownDefault, Delegated: "wk-self.test", Addrs: v4(D), Host: "wk-self.test", TLSName: "wk-self.test"}, false},
		{"wk text/plain", "wk-text.test", Result{Method: MethodWellKnownPort, Delegated: id.ServerName("deleg.test:" + xp), Addrs: v4(X), Host: "deleg.test:" + xp, TLSName: "deleg.test"}, false},
		{"wk extra keys", "wk-extra.test", Result{Method: MethodWellKnownPort, Delegated: id.ServerName("deleg.test:" + xp), Addrs: v4(X), Host: "deleg.test:" + xp, TLSName: "deleg.test"}, false},
		{"wk redirect", "wk-redirect.test", Result{Method: MethodWellKnownPort, Delegated: id.ServerName("deleg.test:" + xp), Addrs: v4(X), Host: "deleg.test:" + xp, TLSName: "deleg.test"}, false},
		{"wk two redirects", "wk-redirect2.test", Result{Method: MethodWellKnownPort, Delegated: id.ServerName("deleg.test:" + xp), Addrs: v4(X), Host: "deleg.test:" + xp, TLSName: "deleg.test"}, false},

		// Invalid well-known: go on with step 4.
		{"wk redirect loop", "wk-loop.test", fallback("wk-loop.test"), false},
		{"wk redirect to http", "wk-insecure.test", fallback("wk-insecure.test"), false},
		{"wk bad json", "wk-badjson.test", fallback("wk-badjson.test"), false},
		{"wk array", "wk-array.test", fallback("wk-array.test"), false},
		{"wk null", "wk-null.test", fallback("wk-null.test"), false},
		{"wk string", "wk-string.test", fallback("wk-string.test"), false},
		{"wk m.server number", "wk-number.test", fallback("wk-number.test"), false},
		{"wk m.server object", "wk-objname.test", fallback("wk-objname.test"), false},
		{"wk no m.server", "wk-empty.test", fallback("wk-empty.test"), false},
		{"wk m.server empty", "wk-emptyname.test", fallback("wk-emptyname.test"), false},
		{"wk m.server bad name", "wk-badname.test", fallback("wk-badname.test"), false},
		{"wk m.server bad port", "wk-badport.test", fallback("wk-badport.test"), false},
		{"wk m.server bad ipv6", "wk-badip6.test", fallback("wk-badip6.test"), false},
		{"wk m.server invalid utf-8", "wk-utf8.test", fallback("wk-utf8.test"), false},
		{"wk key case", "wk-upper.test", fallback("wk-upper.test"), false},
		{"wk trailing data", "wk-trailing.test", fallback("wk-trailing.test"), false},
		{"wk 404", "wk-404.test", fallback("wk-404.test"), false},
		{"wk 500", "wk-500.test", fallback("wk-500.test"), false},
		{"wk too big", "wk-big.test", fallback("wk-big.test"), false},
		{"wk timeout", "wk-slow.test", fallback("wk-slow.test"), false},
		{"wk untrusted certificate", "wk-untrusted.test", fallback("wk-untrusted.test"), false},

		// Steps 4-6: no well-known.
		{"srv", "srv.test", Result{Method: MethodSRV, Addrs: v4(S), Host: "srv.test", TLSName: "srv.test"}, false},
		{"srv after wk 404", "wk-srv-after.test", Result{Method: MethodSRV, Addrs: v4(S), Host: "wk-srv-after.test", TLSName: "wk-srv-after.test"}, false},
		{"legacy srv", "legacy.test", Result{Method: MethodLegacySRV, Addrs: v4(L), Host: "legacy.test", TLSName: "legacy.test"}, false},
		{"srv before legacy", "both.test", Result{Method: MethodSRV, Addrs: v4(S), Host: "both.test", TLSName: "both.test"}, false},
		{"srv priorities", "multi.test", Result{Method: MethodSRV, Addrs: []string{addr(lo4, S), addr("127.0.0.2", S)}, Host: "multi.test", TLSName: "multi.test"}, false},
		{"srv dead first", "failover.test", Result{Method: MethodSRV, Addrs: []string{addr(lo4, e.deadPort), addr(lo4, S)}, Host: "failover.test", TLSName: "failover.test"}, false},
		{"srv target dot", "dot.test", fallback("dot.test"), false},
		{"default", "plain.test", fallback("plain.test"), false},
		{"default AAAA", "v6only.test", Result{Method: MethodDefault, Addrs: v6(D), Host: "v6only.test", TLSName: "v6only.test"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.ipv6 && !e.hasV6 {
				t.Skip("no IPv6 loopback")
			}
			got, err := r.Resolve(t.Context(), tt.server)
			if err != nil {
				t.Fatalf("Resolve(%q): %v", tt.server, err)
			}
			want := tt.want
			want.ServerName = id.ServerName(tt.server)
			if !equalResult(got, want) {
				t.Errorf("Resolve(%q)\n got %+v\nwant %+v", tt.server, got, want)
			}
		})
	}
	if n := e.fetchCount("port.test"); n != 0 {
		t.Errorf("well-known of port.test fetched %d times; a name with a port has none", n)
	}
}

func equalResult(a, b Result) bool {
	return a.ServerName == b.ServerName && a.Delegated == b.Delegated && a.Method == b.Method &&
		a.Host == b.Host && a.TLSName == b.TLSName && slices.Equal(a.Addrs, b.Addrs)
}

func TestResolveErrors(t *testing.T) {
	e := newEnv(t)
	r := e.resolver(nil)
	tests := []struct {
		name    string
		server  string
		invalid bool // ErrInvalidServerName
		noAddr  bool // ErrNoAddress
	}{
		{"empty", "", true, false},
		{"space", "bad name.test", true, false},
		{"unicode", "héllo.test", true, false},
		{"port too big", "plain.test:99999", true, false},
		{"empty port", "plain.test:", true, false},
		{"port not digits", "plain.test:84a", true, false},
		{"unclosed ipv6", "[::1", true, false},
		{"ipv4 in brackets", "[127.0.0.1]", true, false},
		{"ipv6 zone", "[fe80::1%25lo]", true, false},
		{"unbracketed ipv6", "::1", true, false},
		{"ipv4 out of range", "256.0.0.1", true, false},
		{"url", "https://plain.test", true, false},
		{"path", "plain.test/x", true, false},
		{"nxdomain", "nx.test", false, false},
		{"nxdomain with port", "nx.test:8448", false, false},
		{"port 0", "plain.test:0", false, true},
		{"ip port 0", "127.0.0.1:0", false, true},
		{"srv target missing", "srv-nxtarget.test", false, false},
		{"srv servfail", "srv-servfail.test", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.Resolve(t.Context(), tt.server)
			if err == nil {
				t.Fatalf("Resolve(%q) = %+v; want an error", tt.server, got)
			}
			if errors.Is(err, ErrInvalidServerName) != tt.invalid {
				t.Errorf("Resolve(%q) error %v; ErrInvalidServerName: %v, want %v", tt.server, err, !tt.invalid, tt.invalid)
			}
			if tt.invalid {
				if _, ok := errors.AsType[*id.Error](err); !ok {
					t.Errorf("Resolve(%q) error %v does not wrap the *id.Error", tt.server, err)
				}
			}
			if tt.noAddr && !errors.Is(err, ErrNoAddress) {
				t.Errorf("Resolve(%q) error %v; want ErrNoAddress", tt.server, err)
			}
		})
	}
}

func TestMethodString(t *testing.T) {
	seen := map[string]bool{}
	for m := MethodIPLiteral; m <= MethodDefault; m++ {
		s := m.String()
		if seen[s] || s == "" {
			t.Errorf("Method(%d).String() = %q, empty or repeated", m, s)
		}
		seen[s] = true
	}
	if got := Method(0).String(); got != "method(0)" {
		t.Errorf("Method(0).String() = %q", got)
	}
}
