package ratelimit

import (
	"net/http"
	"net/netip"
	"strings"
)

// ClientIP returns the address of the client that sent r, in canonical form
// (an IPv4-mapped IPv6 address as IPv4, without zone), or "" if the peer is
// not an IP endpoint (for example a Unix socket).
//
// The immediate peer is r.RemoteAddr. X-Forwarded-For is consulted only if
// that peer is inside one of trustedProxies; otherwise the header is
// ignored, since anyone can send it. When it is consulted, all
// X-Forwarded-For lines are read as one list and walked from the right:
// each trusted proxy appends the address it received the request from, so
// the right-most entry that is not itself a trusted proxy is the client.
// Everything to the left of it was written by the client and may be forged,
// and is never looked at. The walk stops early, returning the last trusted
// hop it reached, at an entry that is not an IP address (entries may carry a
// port, "1.2.3.4:5678" or "[2001:db8::1]:80"); if every entry is a trusted
// proxy, the left-most one is returned. Either way the result is an address
// that a trusted proxy vouched for, never one the client chose.
//
// Addresses are compared after unmapping, so list IPv4 proxies as IPv4
// prefixes. The RFC 7239 Forwarded header is not read. List proxies
// narrowly: a prefix that also covers clients lets those clients choose
// their address.
func ClientIP(r *http.Request, trustedProxies []netip.Prefix) string {
	a, ok := clientAddr(r, trustedProxies)
	if !ok {
		return ""
	}
	return a.String()
}

// IPKey returns a key function for [Middleware] that keys requests by
// [ClientIP], with IPv6 clients grouped by their /64 (a single host
// commonly has a whole /64 to choose addresses from). Requests whose peer
// is not an IP endpoint are not limited.
func IPKey(trustedProxies []netip.Prefix) func(*http.Request) (string, bool) {
	return func(r *http.Request) (string, bool) {
		a, ok := clientAddr(r, trustedProxies)
		if !ok {
			return "", false
		}
		if a.Is6() {
			p, _ := a.Prefix(64)
			return p.String(), true
		}
		return a.String(), true
	}
}

func clientAddr(r *http.Request, trusted []netip.Prefix) (netip.Addr, bool) {
	peer, ok := parseAddr(r.RemoteAddr)
	if !ok {
		return netip.Addr{}, false
	}
	if !isTrusted(peer, trusted) {
		return peer, true
	}
	last := peer // the nearest hop a trusted proxy vouched for
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		v := values[i]
		for {
			j := strings.LastIndexByte(v, ',')
			a, ok := parseAddr(strings.TrimSpace(v[j+1:]))
			if !ok {
				return last, true
			}
			if !isTrusted(a, trusted) {
				return a, true
			}
			last = a
			if j < 0 {
				break
			}
			v = v[:j]
		}
	}
	return last, true
}

// parseAddr parses "ip" or "ip:port" ("[ip6]:port").
func parseAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone(""), true
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
