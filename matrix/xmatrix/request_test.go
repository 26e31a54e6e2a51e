package xmatrix

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/axon-hs/axon/matrix/keys"
)

const (
	origin = "origin.hs.example.com"
	dest   = "destination.hs.example.com"
)

// fixedLookup knows one key per (signer, key ID).
type fixedLookup map[string]map[keys.KeyID]keys.VerifyKey

func (f fixedLookup) lookup(signer string, id keys.KeyID) (keys.VerifyKey, bool) {
	k, ok := f[signer][id]
	return k, ok
}

func lookupFor(k *keys.SigningKey, signer string) keys.KeyLookup {
	return fixedLookup{signer: {k.ID: {Key: k.Public(), ValidUntilTS: keys.NoExpiry}}}.lookup
}

type vectorFile struct {
	Seed      string `json:"seed"`
	KeyID     string `json:"key_id"`
	PublicKey string `json:"public_key"`
	Vectors   []struct {
		Name        string `json:"name"`
		Method      string `json:"method"`
		URI         string `json:"uri"`
		Origin      string `json:"origin"`
		Destination string `json:"destination"`
		Body        string `json:"body"`
		Canonical   string `json:"canonical"`
		Sig         string `json:"sig"`
	} `json:"vectors"`
}

// TestVectors checks the golden vectors in testdata, signed outside this
// code base with OpenSSL (see the file's comment).
func TestVectors(t *testing.T) {
	data, err := os.ReadFile("testdata/request_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vf vectorFile
	if err := json.Unmarshal(data, &vf); err != nil {
		t.Fatal(err)
	}
	seed, err := keys.DecodeBase64(vf.Seed)
	if err != nil {
		t.Fatal(err)
	}
	key, err := keys.FromSeed(keys.KeyID(vf.KeyID), seed)
	if err != nil {
		t.Fatal(err)
	}
	if got := key.PublicBase64(); got != vf.PublicKey {
		t.Fatalf("public key %s, want %s", got, vf.PublicKey)
	}
	if len(vf.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range vf.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			body := []byte(v.Body)
			obj, err := RequestJSON(v.Method, v.URI, v.Origin, v.Destination, body)
			if err != nil {
				t.Fatal(err)
			}
			if got := obj.String(); got != v.Canonical {
				t.Errorf("canonical form\n got %s\nwant %s", got, v.Canonical)
			}
			h, err := Sign(v.Method, v.URI, v.Origin, v.Destination, body, key)
			if err != nil {
				t.Fatal(err)
			}
			want := Header{Origin: v.Origin, Destination: v.Destination, Key: key.ID, Sig: v.Sig}
			if h != want {
				t.Errorf("Sign = %+v\nwant %+v", h, want)
			}
			if err := Verify(want, v.Method, v.URI, v.Destination, body, lookupFor(key, v.Origin), 1); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

func TestRequestJSON(t *testing.T) {
	cases := []struct {
		name, method, uri, origin, dest, body string
		want                                  string
	}{
		{"no body", "GET", "/_matrix/key/v2/server", "a.b", "c.d", "",
			`{"destination":"c.d","method":"GET","origin":"a.b","uri":"/_matrix/key/v2/server"}`},
		{"body is canonicalised", "PUT", "/_matrix/x?b=1&a=2", "a.b", "c.d", " {\"z\": [1, \"\\u00e9\"], \"a\": {\"y\": null, \"x\": true}} ",
			`{"content":{"a":{"x":true,"y":null},"z":[1,"é"]},"destination":"c.d","method":"PUT","origin":"a.b","uri":"/_matrix/x?b=1&a=2"}`},
		{"non-object body", "POST", "/_matrix/x", "a.b", "c.d", `["x"]`,
			`{"content":["x"],"destination":"c.d","method":"POST","origin":"a.b","uri":"/_matrix/x"}`},
		{"null body is no content", "POST", "/_matrix/x", "a.b", "c.d", `null`,
			`{"destination":"c.d","method":"POST","origin":"a.b","uri":"/_matrix/x"}`},
		{"numbers of old room versions", "PUT", "/_matrix/x", "a.b", "c.d", `{"depth":12345678901234567890,"f":1.0}`,
			`{"content":{"depth":12345678901234567890,"f":1.0},"destination":"c.d","method":"PUT","origin":"a.b","uri":"/_matrix/x"}`},
		{"escapes in the uri", "GET", "/_matrix/x/%22\"\\", "[::1]:8448", "c.d:443", "",
			`{"destination":"c.d:443","method":"GET","origin":"[::1]:8448","uri":"/_matrix/x/%22\"\\"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			obj, err := RequestJSON(c.method, c.uri, c.origin, c.dest, []byte(c.body))
			if err != nil {
				t.Fatal(err)
			}
			if got := obj.String(); got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
	if obj, err := RequestJSON("GET", "/x", "a.b", "c.d", nil); err != nil || obj.Has("content") {
		t.Errorf("nil body: %s, %v", obj, err)
	}
}

func TestRequestJSONErrors(t *testing.T) {
	cases := []struct {
		name, method, uri, origin, dest, body string
		want                                  error
	}{
		{"body not JSON", "PUT", "/x", "a.b", "c.d", `{"a":`, ErrContentNotJSON},
		{"body with trailing data", "PUT", "/x", "a.b", "c.d", `{} {}`, ErrContentNotJSON},
		{"whitespace-only body", "PUT", "/x", "a.b", "c.d", " \n", ErrContentNotJSON},
		{"body invalid UTF-8", "PUT", "/x", "a.b", "c.d", "\"\xff\"", ErrContentNotJSON},
		{"empty method", "", "/x", "a.b", "c.d", "", ErrInvalidRequest},
		{"method with space", "GE T", "/x", "a.b", "c.d", "", ErrInvalidRequest},
		{"uri without slash", "GET", "_matrix/x", "a.b", "c.d", "", ErrInvalidRequest},
		{"absolute uri", "GET", "https://c.d/_matrix/x", "a.b", "c.d", "", ErrInvalidRequest},
		{"uri invalid UTF-8", "GET", "/x\xff", "a.b", "c.d", "", ErrInvalidRequest},
		{"bad origin", "GET", "/x", "a b", "c.d", "", ErrInvalidRequest},
		{"empty destination", "GET", "/x", "a.b", "", "", ErrInvalidRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := RequestJSON(c.method, c.uri, c.origin, c.dest, []byte(c.body))
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

func newKey(t testing.TB, version string) *keys.SigningKey {
	t.Helper()
	k, err := keys.Generate(version, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const (
	method = "PUT"
	uri    = "/_matrix/federation/v1/send/1700000000000?x=1"
	body   = `{"origin":"origin.hs.example.com","origin_server_ts":1700000000000,"pdus":[],"edus":[{"edu_type":"m.typing","content":{"room_id":"!r:origin.hs.example.com","user_id":"@a:origin.hs.example.com","typing":true}}]}`
)

func TestSignVerify(t *testing.T) {
	key := newKey(t, "a1")
	h, err := Sign(method, uri, origin, dest, []byte(body), key)
	if err != nil {
		t.Fatal(err)
	}
	if h.Origin != origin || h.Destination != dest || h.Key != "ed25519:a1" || h.Sig == "" {
		t.Fatalf("Sign = %+v", h)
	}
	parsed, err := ParseHeader(h.String())
	if err != nil || parsed != h {
		t.Fatalf("ParseHeader(String()) = %+v, %v", parsed, err)
	}
	lookup := lookupFor(key, origin)
	if err := Verify(parsed, method, uri, dest, []byte(body), lookup, 1700000000000); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	// The body is signed as parsed JSON, not as bytes.
	if err := Verify(parsed, method, uri, dest, []byte(" \n"+body+"\t"), lookup, 0); err != nil {
		t.Errorf("Verify with reformatted body: %v", err)
	}

	// Without a body.
	h2, err := Sign("GET", "/_matrix/federation/v1/version", origin, dest, nil, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(h2, "GET", "/_matrix/federation/v1/version", dest, nil, lookup, 0); err != nil {
		t.Errorf("Verify GET: %v", err)
	}
	if err := Verify(h2, "GET", "/_matrix/federation/v1/version", dest, []byte("{}"), lookup, 0); !errors.Is(err, ErrBadSignature) {
		t.Errorf("Verify GET with an added body: %v, want ErrBadSignature", err)
	}
}

func TestVerifyTampered(t *testing.T) {
	key := newKey(t, "a1")
	h, err := Sign(method, uri, origin, dest, []byte(body), key)
	if err != nil {
		t.Fatal(err)
	}
	// The lookup answers the same key for any signer, so that a changed
	// origin is caught by the signature and not by the key lookup.
	pub := keys.VerifyKey{Key: key.Public(), ValidUntilTS: keys.NoExpiry}
	anySigner := func(_ string, id keys.KeyID) (keys.VerifyKey, bool) { return pub, id == key.ID }

	flip := func(s string) string {
		b := []byte(s)
		if b[3] == 'A' {
			b[3] = 'B'
		} else {
			b[3] = 'A'
		}
		return string(b)
	}
	noDest := h
	noDest.Destination = ""
	cases := []struct {
		name            string
		h               Header
		method, uri, to string
		body            string
	}{
		{"method", h, "POST", uri, dest, body},
		{"method case", h, "put", uri, dest, body},
		{"uri path", h, method, "/_matrix/federation/v1/send/1700000000001?x=1", dest, body},
		{"uri query", h, method, "/_matrix/federation/v1/send/1700000000000?x=2", dest, body},
		{"uri without query", h, method, "/_matrix/federation/v1/send/1700000000000", dest, body},
		{"origin", Header{Origin: "evil.example.com", Destination: dest, Key: h.Key, Sig: h.Sig}, method, uri, dest, body},
		{"destination in header and request", Header{Origin: origin, Destination: "other.example.com", Key: h.Key, Sig: h.Sig}, method, uri, "other.example.com", body},
		{"destination missing from header, other receiver", noDest, method, uri, "other.example.com", body},
		{"content value", h, method, uri, dest, `{"origin":"origin.hs.example.com","origin_server_ts":1700000000001,"pdus":[],"edus":[]}`},
		{"content removed", h, method, uri, dest, ""},
		{"content null", h, method, uri, dest, "null"},
		{"sig", Header{Origin: origin, Destination: dest, Key: h.Key, Sig: flip(h.Sig)}, method, uri, dest, body},
		{"sig truncated", Header{Origin: origin, Destination: dest, Key: h.Key, Sig: h.Sig[:len(h.Sig)-4]}, method, uri, dest, body},
		{"sig of another request", Header{Origin: origin, Destination: dest, Key: h.Key, Sig: mustSign(t, key).Sig}, method, uri, dest, body},
	}
	if err := Verify(h, method, uri, dest, []byte(body), anySigner, 0); err != nil {
		t.Fatalf("untampered: %v", err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Verify(c.h, c.method, c.uri, c.to, []byte(c.body), anySigner, 0)
			if !errors.Is(err, ErrBadSignature) {
				t.Fatalf("err = %v, want ErrBadSignature", err)
			}
		})
	}
}

func mustSign(t *testing.T, key *keys.SigningKey) Header {
	t.Helper()
	h, err := Sign("GET", "/_matrix/federation/v1/version", origin, dest, nil, key)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestVerifyDestination(t *testing.T) {
	key := newKey(t, "a1")
	lookup := lookupFor(key, origin)
	h, err := Sign(method, uri, origin, dest, []byte(body), key)
	if err != nil {
		t.Fatal(err)
	}
	// A header naming another server is refused before anything else.
	err = Verify(h, method, uri, "other.example.com", []byte(body), lookup, 0)
	if !errors.Is(err, ErrWrongDestination) {
		t.Errorf("other receiver: %v, want ErrWrongDestination", err)
	}
	// Server names are compared exactly.
	err = Verify(h, method, uri, "Destination.hs.example.com", []byte(body), lookup, 0)
	if !errors.Is(err, ErrWrongDestination) {
		t.Errorf("receiver in other case: %v, want ErrWrongDestination", err)
	}
	// A header without destination (older senders) verifies against the
	// receiver's own name.
	h.Destination = ""
	if err := Verify(h, method, uri, dest, []byte(body), lookup, 0); err != nil {
		t.Errorf("no destination in header: %v", err)
	}
}

func TestVerifyUnknownKey(t *testing.T) {
	key := newKey(t, "a1")
	other := newKey(t, "a2")
	h, err := Sign(method, uri, origin, dest, []byte(body), key)
	if err != nil {
		t.Fatal(err)
	}
	const now = 1700000000000
	cases := []struct {
		name   string
		h      Header
		lookup keys.KeyLookup
	}{
		{"other key ID known", h, lookupFor(other, origin)},
		{"key known for another server", h, lookupFor(key, "elsewhere.example.com")},
		{"header names another key ID", Header{Origin: origin, Destination: dest, Key: "ed25519:a2", Sig: h.Sig}, lookupFor(key, origin)},
		{"unknown algorithm", Header{Origin: origin, Destination: dest, Key: "curve25519:a1", Sig: h.Sig},
			func(string, keys.KeyID) (keys.VerifyKey, bool) {
				return keys.VerifyKey{Key: key.Public(), ValidUntilTS: keys.NoExpiry}, true
			}},
		{"expired at the time of receipt", h, fixedLookup{origin: {key.ID: {Key: key.Public(), ValidUntilTS: now - 1}}}.lookup},
		{"malformed public key", h, fixedLookup{origin: {key.ID: {Key: key.Public()[:31], ValidUntilTS: keys.NoExpiry}}}.lookup},
		{"nil lookup", h, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Verify(c.h, method, uri, dest, []byte(body), c.lookup, now)
			if !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("err = %v, want ErrUnknownKey", err)
			}
		})
	}
	// The same key valid exactly until now is accepted.
	valid := fixedLookup{origin: {key.ID: {Key: key.Public(), ValidUntilTS: now}}}.lookup
	if err := Verify(h, method, uri, dest, []byte(body), valid, now); err != nil {
		t.Errorf("key valid until now: %v", err)
	}
	// A key of the right ID but the wrong value is a bad signature.
	wrong := fixedLookup{origin: {key.ID: {Key: other.Public(), ValidUntilTS: keys.NoExpiry}}}.lookup
	if err := Verify(h, method, uri, dest, []byte(body), wrong, now); !errors.Is(err, ErrBadSignature) {
		t.Errorf("wrong public key: %v, want ErrBadSignature", err)
	}
}

// Verify checks the one signature named by the header and asks for no
// other key, even when the origin has several.
func TestVerifyOnlyNamedKey(t *testing.T) {
	k1, k2 := newKey(t, "k1"), newKey(t, "k2")
	h, err := Sign(method, uri, origin, dest, []byte(body), k2)
	if err != nil {
		t.Fatal(err)
	}
	var asked []keys.KeyID
	lookup := func(signer string, id keys.KeyID) (keys.VerifyKey, bool) {
		asked = append(asked, id)
		switch id {
		case k1.ID:
			return keys.VerifyKey{Key: k1.Public(), ValidUntilTS: keys.NoExpiry}, true
		case k2.ID:
			return keys.VerifyKey{Key: k2.Public(), ValidUntilTS: keys.NoExpiry}, true
		}
		return keys.VerifyKey{}, false
	}
	if err := Verify(h, method, uri, dest, []byte(body), lookup, 0); err != nil {
		t.Fatal(err)
	}
	if len(asked) != 1 || asked[0] != k2.ID {
		t.Errorf("looked up %v, want only %s", asked, k2.ID)
	}
}

func TestVerifyErrorsBeforeSignature(t *testing.T) {
	key := newKey(t, "a1")
	lookup := lookupFor(key, origin)
	h, err := Sign(method, uri, origin, dest, []byte(body), key)
	if err != nil {
		t.Fatal(err)
	}
	bad := h
	bad.Origin = "bad origin"
	if err := Verify(bad, method, uri, dest, []byte(body), lookup, 0); !errors.Is(err, ErrMalformedHeader) {
		t.Errorf("bad origin: %v, want ErrMalformedHeader", err)
	}
	bad = h
	bad.Sig = ""
	if err := Verify(bad, method, uri, dest, []byte(body), lookup, 0); !errors.Is(err, ErrMalformedHeader) {
		t.Errorf("empty sig: %v, want ErrMalformedHeader", err)
	}
	if err := Verify(h, method, uri, dest, []byte(`{"a"`), lookup, 0); !errors.Is(err, ErrContentNotJSON) {
		t.Errorf("body not JSON: %v, want ErrContentNotJSON", err)
	}
}

func TestSignErrors(t *testing.T) {
	key := newKey(t, "a1")
	cases := []struct {
		name string
		key  *keys.SigningKey
		to   string
		want error
	}{
		{"nil key", nil, dest, ErrInvalidRequest},
		{"short private key", &keys.SigningKey{ID: "ed25519:a", Priv: key.Priv[:32]}, dest, ErrInvalidRequest},
		{"bad key ID", &keys.SigningKey{ID: "ed25519:a-b", Priv: key.Priv}, dest, ErrInvalidRequest},
		{"other algorithm", &keys.SigningKey{ID: "curve25519:a", Priv: key.Priv}, dest, ErrInvalidRequest},
		{"bad destination", key, "", ErrInvalidRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Sign(method, uri, origin, c.to, []byte(body), c.key); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	if _, err := Sign(method, uri, origin, dest, []byte("{"), key); !errors.Is(err, ErrContentNotJSON) {
		t.Errorf("body not JSON: %v", err)
	}
}
