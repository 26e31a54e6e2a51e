package xmatrix

import (
	"errors"
	"testing"
)

// FuzzParseHeader checks that ParseHeader never panics, that every error
// matches ErrMalformedHeader, and that what it accepts survives a round trip
// through String.
func FuzzParseHeader(f *testing.F) {
	for _, s := range []string{
		`X-Matrix origin="origin.hs.example.com",destination="destination.hs.example.com",key="ed25519:key1",sig="ABCDEF"`,
		`x-matrix ORIGIN=a.b:8448 , key = ed25519:k ,sig="AA+/",foo="b\"a\\r"`,
		"X-Matrix \t,origin=\"[::1]:1\",,key=\"e\\\"d:1\",sig=\"AB-_==\"\t",
		`X-Matrix origin="a.b",origin="a.b"`,
		`X-Matrix origin="a.b`,
		`Bearer x`,
		"X-Matrix origin=\"a\x80b\"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		h, err := ParseHeader(in)
		if err != nil {
			if !errors.Is(err, ErrMalformedHeader) {
				t.Fatalf("error %v does not match ErrMalformedHeader", err)
			}
			if h != (Header{}) {
				t.Fatalf("partial result %+v with error %v", h, err)
			}
			return
		}
		if h.Origin == "" || h.Key == "" || h.Sig == "" {
			t.Fatalf("accepted %q with a required field empty: %+v", in, h)
		}
		s := h.String()
		back, err := ParseHeader(s)
		if err != nil {
			t.Fatalf("String() of %q = %q does not parse: %v", in, s, err)
		}
		if back != h {
			t.Fatalf("round trip of %q via %q: got %+v, want %+v", in, s, back, h)
		}
	})
}
