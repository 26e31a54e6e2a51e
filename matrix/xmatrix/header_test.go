package xmatrix

import (
	"errors"
	"strings"
	"testing"
)

const testSig = "0g4ASZCa2HlvRDkZnRrc6winZUBYoLrA7zjyuymY9La539P0X2QnLtDmIKWRRYcynZL+4ZNpUuWkngOy/J+wCQ"

func TestParseHeader(t *testing.T) {
	full := Header{Origin: "origin.example.org", Destination: "dest.example.org", Key: "ed25519:key1", Sig: "ABCdef+/"}
	cases := []struct {
		name string
		in   string
		want Header
	}{
		{"as senders write it", `X-Matrix origin="origin.example.org",destination="dest.example.org",key="ed25519:key1",sig="ABCdef+/"`, full},
		{"scheme in lower case", `x-matrix origin="origin.example.org",destination="dest.example.org",key="ed25519:key1",sig="ABCdef+/"`, full},
		{"scheme in upper case", `X-MATRIX origin="origin.example.org",destination="dest.example.org",key="ed25519:key1",sig="ABCdef+/"`, full},
		{"parameter names in mixed case", `X-Matrix Origin="origin.example.org",DESTINATION="dest.example.org",kEy="ed25519:key1",SIG="ABCdef+/"`, full},
		{"any order", `X-Matrix sig="ABCdef+/",key="ed25519:key1",destination="dest.example.org",origin="origin.example.org"`, full},
		{"spaces and tabs around commas and '='", "X-Matrix   origin = \"origin.example.org\" ,\tdestination=\"dest.example.org\"\t, key\t=\t\"ed25519:key1\" ,sig=\"ABCdef+/\"", full},
		{"surrounding whitespace", " \tX-Matrix origin=\"origin.example.org\",destination=\"dest.example.org\",key=\"ed25519:key1\",sig=\"ABCdef+/\" \t", full},
		{"empty list elements", `X-Matrix ,origin="origin.example.org",,destination="dest.example.org", ,key="ed25519:key1",sig="ABCdef+/",`, full},
		{"unquoted tokens with colons", `X-Matrix origin=origin.example.org,destination=dest.example.org,key=ed25519:key1,sig="ABCdef+/"`, full},
		{"backslash escapes", `X-Matrix origin="origin\.example.org",destination="dest.ex\ample.org",key="ed25519\:key1",sig="ABC\def+/"`, full},
		{"unknown parameters ignored", `X-Matrix realm="a, b=\"c\"",origin="origin.example.org",foo=bar,destination="dest.example.org",key="ed25519:key1",Origin2=x,sig="ABCdef+/"`, full},
		{"no destination", `X-Matrix origin="origin.example.org",key="ed25519:key1",sig="ABCdef+/"`,
			Header{Origin: "origin.example.org", Key: "ed25519:key1", Sig: "ABCdef+/"}},
		{"ports and IP literals", `X-Matrix origin="[2001:db8::1]:8448",destination=10.0.0.1:8008,key="ed25519:a_B_0",sig="` + testSig + `"`,
			Header{Origin: "[2001:db8::1]:8448", Destination: "10.0.0.1:8008", Key: "ed25519:a_B_0", Sig: testSig}},
		{"unknown key algorithm is parsed", `X-Matrix origin=a.b,key="x25519:1",sig=AAAA`,
			Header{Origin: "a.b", Key: "x25519:1", Sig: "AAAA"}},
		{"url-safe and padded signature", `X-Matrix origin=a.b,key="ed25519:1",sig="AB-_=="`,
			Header{Origin: "a.b", Key: "ed25519:1", Sig: "AB-_=="}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseHeader(c.in)
			if err != nil {
				t.Fatalf("ParseHeader(%q): %v", c.in, err)
			}
			if got != c.want {
				t.Fatalf("ParseHeader(%q)\n got %+v\nwant %+v", c.in, got, c.want)
			}
		})
	}
}

func TestParseHeaderErrors(t *testing.T) {
	const rest = `,key="ed25519:key1",sig="ABCdef"`
	cases := []struct{ name, in, why string }{
		{"empty", ``, "expected the scheme"},
		{"other scheme", `Bearer abc`, `"Bearer" is not X-Matrix`},
		{"scheme only", `X-Matrix`, "expected a space"},
		{"scheme and spaces only", `X-Matrix   `, "missing the origin"},
		{"no space after scheme", `X-Matrixorigin="a.b"` + rest, "is not X-Matrix"},
		{"tab after scheme", "X-Matrix\torigin=\"a.b\"" + rest, "expected a space"},
		{"token68", `X-Matrix abc==`, `expected a token or a quoted string, found '=' at byte 13 (parameter "abc")`},
		{"missing origin", `X-Matrix destination="a.b"` + rest, "missing the origin"},
		{"missing key", `X-Matrix origin="a.b",sig="ABCdef"`, "missing the key"},
		{"missing sig", `X-Matrix origin="a.b",key="ed25519:key1"`, "missing the sig"},
		{"signature is not sig", `X-Matrix origin="a.b",key="ed25519:key1",signature="ABCdef"`, "missing the sig"},
		{"duplicate origin", `X-Matrix origin="a.b",origin="a.b"` + rest, `"origin" at byte 22 appears twice`},
		{"duplicate in other case", `X-Matrix origin="a.b",ORIGIN="c.d"` + rest, "appears twice"},
		{"duplicate destination", `X-Matrix origin="a.b",destination=c.d,destination=c.d` + rest, "appears twice"},
		{"duplicate sig", `X-Matrix origin="a.b"` + rest + `,sig=x`, "appears twice"},
		{"duplicate unknown", `X-Matrix foo=1,origin="a.b",Foo=2` + rest, `"Foo" at byte 28 appears twice`},
		{"unterminated quote", `X-Matrix key="ed25519:k",sig=AA,origin="a.b`, "quoted string opened at byte 39 is not closed"},
		{"lone backslash", `X-Matrix origin="a.b\`, "lone backslash"},
		{"escaped control character", "X-Matrix origin=\"a.b\\\x01\"" + rest, "cannot be escaped"},
		{"control character in quotes", "X-Matrix origin=\"a\x00b\"" + rest, "not allowed in a quoted string"},
		{"newline in quotes", "X-Matrix origin=\"a.b\n\"" + rest, "not allowed in a quoted string"},
		{"unquoted slash", `X-Matrix origin=a.b,key="ed25519:key1",sig=AB/cd`, "expected ','"},
		{"unquoted padding", `X-Matrix origin=a.b,key="ed25519:key1",sig=ABcd==`, "expected ','"},
		{"unquoted empty value", `X-Matrix origin=,key="ed25519:key1",sig="ABCdef"`, "expected a token or a quoted string"},
		{"value missing at end", `X-Matrix origin="a.b",key=`, "expected a value"},
		{"missing '='", `X-Matrix origin "a.b"` + rest, "expected '='"},
		{"missing comma", `X-Matrix origin="a.b" key="ed25519:key1",sig="ABCdef"`, "expected ','"},
		{"garbage after quoted value", `X-Matrix origin="a.b"x` + rest, "expected ','"},
		{"two challenges", `X-Matrix origin="a.b"` + rest + `, X-Matrix origin="c.d"`, "expected '='"},
		{"bad origin", `X-Matrix origin="exa mple.org"` + rest, "origin"},
		{"origin with bad port", `X-Matrix origin="example.org:99999"` + rest, "origin"},
		{"origin with path", `X-Matrix origin="example.org/x"` + rest, "origin"},
		{"empty origin", `X-Matrix origin=""` + rest, "origin"},
		{"bad destination", `X-Matrix origin="a.b",destination="[::1"` + rest, "destination"},
		{"empty destination", `X-Matrix origin="a.b",destination=""` + rest, "destination is empty"},
		{"key without version", `X-Matrix origin="a.b",key="ed25519",sig="ABCdef"`, "key"},
		{"key with bad version", `X-Matrix origin="a.b",key="ed25519:a-b",sig="ABCdef"`, "key"},
		{"empty sig", `X-Matrix origin="a.b",key="ed25519:k",sig=""`, "sig is empty"},
		{"sig not base64", `X-Matrix origin="a.b",key="ed25519:k",sig="AB CD"`, "not a base64 character"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, err := ParseHeader(c.in)
			if err == nil {
				t.Fatalf("ParseHeader(%q) = %+v, want an error", c.in, h)
			}
			if !errors.Is(err, ErrMalformedHeader) {
				t.Errorf("error %v does not match ErrMalformedHeader", err)
			}
			if !strings.Contains(err.Error(), c.why) {
				t.Errorf("error %q does not say %q", err, c.why)
			}
			if h != (Header{}) {
				t.Errorf("partial result %+v", h)
			}
		})
	}
}

func TestHeaderString(t *testing.T) {
	cases := []struct {
		h    Header
		want string
	}{
		{Header{Origin: "origin.hs.example.com", Destination: "destination.hs.example.com", Key: "ed25519:key1", Sig: "ABCDEF"},
			`X-Matrix origin="origin.hs.example.com",destination="destination.hs.example.com",key="ed25519:key1",sig="ABCDEF"`},
		{Header{Origin: "[::1]:8448", Key: "ed25519:k", Sig: "AA"},
			`X-Matrix origin="[::1]:8448",key="ed25519:k",sig="AA"`},
		{Header{Origin: "a.b", Key: `e"d\25519:k`, Sig: "AA"},
			`X-Matrix origin="a.b",key="e\"d\\25519:k",sig="AA"`},
	}
	for _, c := range cases {
		if got := c.h.String(); got != c.want {
			t.Errorf("String() = %s\nwant %s", got, c.want)
		}
		back, err := ParseHeader(c.want)
		if err != nil {
			t.Errorf("ParseHeader(%s): %v", c.want, err)
		} else if back != c.h {
			t.Errorf("round trip: got %+v, want %+v", back, c.h)
		}
	}
}

func TestHeaderStringRoundTrip(t *testing.T) {
	for _, in := range []string{
		`x-matrix ORIGIN=a.b:1 , key = "ed25519:x" , sig = "A\B" , destination = "[::1]"`,
		"X-Matrix origin=\"a.b\",key=\"\\\"\\\\ \t\x80:k\",sig=AA, foo=\"bar\"",
		`X-Matrix origin=1.2.3.4,key=ed25519:1,sig="AB-_=="`,
	} {
		h, err := ParseHeader(in)
		if err != nil {
			t.Fatalf("ParseHeader(%q): %v", in, err)
		}
		s := h.String()
		back, err := ParseHeader(s)
		if err != nil {
			t.Fatalf("ParseHeader(String() = %q): %v", s, err)
		}
		if back != h {
			t.Fatalf("round trip of %q via %q: got %+v, want %+v", in, s, back, h)
		}
	}
}
