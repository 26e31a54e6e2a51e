package acl

import (
	"strings"
	"testing"

	"github.com/axon-hs/axon/matrix/cjson"
)

func TestGlob(t *testing.T) {
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"*", "", true},
		{"*", "evil.com", true},
		{"evil.com", "evil.com", true},
		{"evil.com", "evil.co", false},
		{"*.evil.com", "sub.evil.com", true},
		{"*.evil.com", "evil.com", false},
		{"ev?l.com", "evil.com", true},
		{"ev?l.com", "evl.com", false},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"**", "x", true},
		{"?", "é", true}, // one character, two bytes
		{"a*", "a*b", true},
		{"*", "*", true},
		{"*x", strings.Repeat("a", 5000), false},
	} {
		if got := Glob(c.p, c.s); got != c.want {
			t.Errorf("Glob(%q, %q) = %v", c.p, c.s, got)
		}
	}
}

func TestAllows(t *testing.T) {
	parse := func(s string) *ACL {
		v, err := cjson.ParseString(s, cjson.Strict)
		if err != nil {
			t.Fatal(err)
		}
		return Parse(v)
	}
	for _, c := range []struct {
		acl    string
		server string
		want   bool
	}{
		{`{"allow":["*"]}`, "anything.org", true},
		{`{"allow":["*"],"deny":["evil.com"]}`, "evil.com", false},
		{`{"allow":["*"],"deny":["evil.com"]}`, "evil.com:8448", false}, // the port is not considered
		{`{"allow":["*"],"deny":["evil.com"]}`, "EVIL.com", false},      // case-insensitive
		{`{"allow":["*"],"deny":["*.evil.com"]}`, "a.evil.com:1234", false},
		{`{"allow":["*"],"deny":["*.evil.com"]}`, "good.com", true},
		{`{"deny":["evil.com"]}`, "good.com", false}, // no allow: nobody
		{`{}`, "good.com", false},                    // an empty ACL denies all
		{`{"allow":["*"]}`, "1.2.3.4", true},         // IP literals allowed by default
		{`{"allow":["*"],"allow_ip_literals":false}`, "1.2.3.4:8448", false},
		{`{"allow":["*"],"allow_ip_literals":false}`, "[::1]", false},
		{`{"allow":["*"],"allow_ip_literals":"no"}`, "1.2.3.4", true},     // not a boolean: the default
		{`{"allow":"*"}`, "good.com", false},                              // not a list: empty
		{`{"allow":[1,"good.com"]}`, "good.com", true},                    // non-strings skipped
		{`{"allow":["good.*"],"deny":["good.evil"]}`, "good.evil", false}, // deny before allow
	} {
		if got := parse(c.acl).Allows(c.server); got != c.want {
			t.Errorf("%s allows %s = %v, want %v", c.acl, c.server, got, c.want)
		}
	}
	var none *ACL
	if !none.Allows("anyone.org") {
		t.Error("a room without an ACL denied a server")
	}
}

func FuzzGlob(f *testing.F) {
	f.Add("*.evil.com", "a.evil.com")
	f.Add("a?c*", "abcdef")
	f.Fuzz(func(t *testing.T, p, s string) {
		if !strings.ContainsAny(p, "*?") && Glob(p, s) != (p == s) && string([]rune(p)) == p && string([]rune(s)) == s {
			t.Fatalf("a pattern without wildcards must match only itself: %q %q", p, s)
		}
		if Glob("*", s) != true {
			t.Fatal("* must match everything")
		}
	})
}
