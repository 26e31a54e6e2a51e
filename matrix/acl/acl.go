// Package acl decides whether a server may take part in a room under the
// room's m.room.server_acl event (spec "Server Access Control Lists").
// It is pure: callers find the room's current ACL and apply the answer to
// the requests of the federation API.
package acl

import (
	"strings"

	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/id"
)

// maxPatterns bounds the patterns read from one ACL, and maxPatternLen
// the length of each, so that a hostile ACL cannot make every request
// expensive.
const (
	maxPatterns   = 1000
	maxPatternLen = 255
)

// ACL is a parsed m.room.server_acl content.
type ACL struct {
	allowIPLiterals bool
	allow, deny     []string // lower-cased
}

// Parse reads an m.room.server_acl event's content. Fields of the wrong
// type take their defaults, as the spec says: allow_ip_literals true,
// allow and deny empty; entries that are not strings are skipped.
func Parse(content cjson.Value) *ACL {
	a := &ACL{allowIPLiterals: true}
	if b, ok := content.Get("allow_ip_literals").Bool(); ok {
		a.allowIPLiterals = b
	}
	a.allow = patterns(content.Get("allow"))
	a.deny = patterns(content.Get("deny"))
	return a
}

func patterns(v cjson.Value) []string {
	if v.Kind() != cjson.Array {
		return nil
	}
	var out []string
	for i := range min(v.Len(), maxPatterns) {
		if s, ok := v.Index(i).Str(); ok && len(s) <= maxPatternLen {
			out = append(out, strings.ToLower(s))
		}
	}
	return out
}

// Allows reports whether server may take part in the room. A nil ACL (the
// room has none) allows every server.
func (a *ACL) Allows(server string) bool {
	if a == nil {
		return true
	}
	sn := id.ServerName(server)
	host := strings.ToLower(sn.Host())
	if sn.IsIPLiteral() && !a.allowIPLiterals {
		return false
	}
	for _, p := range a.deny {
		if Glob(p, host) {
			return false
		}
	}
	for _, p := range a.allow {
		if Glob(p, host) {
			return true
		}
	}
	return false
}

// Glob reports whether s matches pattern, where '*' matches any run of
// characters and '?' exactly one (spec appendix "Glob-style matching").
// Matching is by character, not byte, and runs in O(len(pattern) ×
// len(s)) at worst.
func Glob(pattern, s string) bool {
	p, str := []rune(pattern), []rune(s)
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(str) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(p) && (p[pi] == '?' || p[pi] == str[si]):
			pi++
			si++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
