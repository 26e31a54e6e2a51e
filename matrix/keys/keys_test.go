package keys

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"

	"github.com/axon-hs/axon/matrix/cjson"
)

// The seed of the spec's cryptographic test vectors (appendix "Signing Key").
const specSeed = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"

func specKey(t testing.TB) *SigningKey {
	t.Helper()
	seed, err := DecodeBase64(specSeed)
	if err != nil {
		t.Fatal(err)
	}
	k, err := FromSeed("ed25519:1", seed)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestUnpaddedBase64(t *testing.T) {
	for in, want := range map[string]string{"": "", "f": "Zg", "fo": "Zm8", "foo": "Zm9v", "foob": "Zm9vYg", "fooba": "Zm9vYmE", "foobar": "Zm9vYmFy"} {
		if got := Base64([]byte(in)); got != want {
			t.Errorf("Base64(%q) = %q, want %q", in, got, want)
		}
		for _, enc := range []string{want, want + strings.Repeat("=", (4-len(want)%4)%4)} {
			if got, err := DecodeBase64(enc); err != nil || string(got) != in {
				t.Errorf("DecodeBase64(%q) = %q, %v", enc, got, err)
			}
		}
	}
	raw := []byte{0xfb, 0xff, 0xfe}
	if got := Base64URL(raw); got != "-__-" {
		t.Errorf("Base64URL = %q", got)
	}
	if got := Base64(raw); got != "+//+" {
		t.Errorf("Base64 = %q", got)
	}
	if got, err := DecodeBase64URL("-__-"); err != nil || !bytes.Equal(got, raw) {
		t.Errorf("DecodeBase64URL = %v, %v", got, err)
	}
}

// The JSON signing vectors of the spec's appendix.
func TestSpecJSONSigning(t *testing.T) {
	k := specKey(t)
	cases := []struct{ in, sig string }{
		{`{}`, "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"},
		{`{"one": 1, "two": "Two"}`, "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"},
	}
	for _, c := range cases {
		obj, err := cjson.ParseString(c.in, cjson.Strict)
		if err != nil {
			t.Fatal(err)
		}
		signed, err := SignJSON(obj, "domain", k)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := signed.Path("signatures", "domain", "ed25519:1").Str(); got != c.sig {
			t.Errorf("sign %s: got %s, want %s", c.in, got, c.sig)
		}
		lookup := func(signer string, id KeyID) (VerifyKey, bool) {
			if signer == "domain" && id == "ed25519:1" {
				return VerifyKey{Key: k.Public(), ValidUntilTS: NoExpiry}, true
			}
			return VerifyKey{}, false
		}
		if err := VerifyJSON(signed, "domain", lookup, VerifyOptions{}); err != nil {
			t.Errorf("verify %s: %v", c.in, err)
		}
		// Unsigned data is not covered.
		if err := VerifyJSON(signed.With("unsigned", cjson.IntValue(5)), "domain", lookup, VerifyOptions{}); err != nil {
			t.Errorf("verify with unsigned: %v", err)
		}
		tampered := signed.With("extra", cjson.BoolValue(true))
		if err := VerifyJSON(tampered, "domain", lookup, VerifyOptions{}); !errors.Is(err, ErrBadSignature) {
			t.Errorf("tampered object verified: %v", err)
		}
	}
}

func TestVerifyJSONRules(t *testing.T) {
	k := specKey(t)
	other, _ := Generate("2", bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	obj, _ := SignJSON(cjson.ObjectValue(cjson.Member{Key: "a", Value: cjson.IntValue(1)}), "srv", k)
	obj, _ = SignJSON(obj, "srv0", k)
	obj = AddSignature(obj, "srv", "curve25519:x", "AAAA") // unknown algorithm: ignored
	keysOf := map[KeyID]VerifyKey{"ed25519:1": {Key: k.Public(), ValidUntilTS: 1000}}
	lookup := func(signer string, id KeyID) (VerifyKey, bool) {
		vk, ok := keysOf[id]
		if signer == "srv0" {
			vk.ValidUntilTS = 0 // published without valid_until_ts
		}
		return vk, ok && (signer == "srv" || signer == "srv0")
	}
	cases := []struct {
		name   string
		obj    cjson.Value
		signer string
		opt    VerifyOptions
		want   error
	}{
		{"valid", obj, "srv", VerifyOptions{}, nil},
		{"valid within window", obj, "srv", VerifyOptions{AtTS: 1000}, nil},
		{"key expired before the event", obj, "srv", VerifyOptions{AtTS: 1001}, ErrNoKey},
		{"key without validity, room enforcing it", obj, "srv0", VerifyOptions{AtTS: 1}, ErrNoKey},
		{"key without validity, room not enforcing it", obj, "srv0", VerifyOptions{}, nil},
		{"no signature from signer", obj, "elsewhere", VerifyOptions{}, ErrNoSignature},
		{"only unknown keys", AddSignature(cjson.ObjectValue(), "srv", "ed25519:zz", Base64(make([]byte, 64))), "srv", VerifyOptions{}, ErrNoKey},
		{"garbage signature", AddSignature(obj, "srv", "ed25519:1", "!!"), "srv", VerifyOptions{}, ErrBadSignature},
		{"wrong key signed", func() cjson.Value {
			o, _ := SignJSON(cjson.ObjectValue(), "srv", &SigningKey{ID: "ed25519:1", Priv: other.Priv})
			return o
		}(), "srv", VerifyOptions{}, ErrBadSignature},
	}
	for _, c := range cases {
		err := VerifyJSON(c.obj, c.signer, lookup, c.opt)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}

func TestKeyFile(t *testing.T) {
	// The format of Synapse's signing.key: algorithm, version, unpadded base64 seed.
	file := []byte("ed25519 a_AbCd " + specSeed + "\n\ned25519 old1 " + specSeed + "\n")
	ks, err := ParseKeyFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != 2 || ks[0].ID != "ed25519:a_AbCd" || ks[1].ID.Version() != "old1" {
		t.Fatalf("keys = %+v", ks)
	}
	if ks[0].PublicBase64() != specKey(t).PublicBase64() {
		t.Errorf("public key differs from the seed's")
	}
	// The spec's seed has non-zero padding bits ("…XA1"); the canonical
	// encoding of the same 32 bytes ends in "XA0".
	canonSeed := specSeed[:len(specSeed)-1] + "0"
	if got := FormatKeyFile(ks...); !bytes.Equal(got, []byte("ed25519 a_AbCd "+canonSeed+"\ned25519 old1 "+canonSeed+"\n")) {
		t.Errorf("FormatKeyFile = %q", got)
	}
	for _, bad := range []string{"", "ed25519 1", "rsa 1 " + specSeed, "ed25519 a-b " + specSeed, "ed25519 1 !!!", "ed25519 1 Zm9v"} {
		if _, err := ParseKeyFile([]byte(bad)); !errors.Is(err, ErrKeyFile) {
			t.Errorf("ParseKeyFile(%q) = %v, want ErrKeyFile", bad, err)
		}
	}
	g, err := Generate("auto", bytes.NewReader(bytes.Repeat([]byte{1}, 32)))
	if err != nil || len(g.Priv) != ed25519.PrivateKeySize || g.ID != "ed25519:auto" {
		t.Fatalf("Generate = %v, %v", g, err)
	}
	back, err := ParseKeyFile(FormatKeyFile(g))
	if err != nil || !bytes.Equal(back[0].Priv, g.Priv) {
		t.Errorf("round trip: %v", err)
	}
}

func BenchmarkSignJSON(b *testing.B) {
	k := specKey(b)
	obj, _ := cjson.ParseString(`{"one":1,"two":"Two","three":{"a":[1,2,3]}}`, cjson.Strict)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SignJSON(obj, "domain", k); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyJSON(b *testing.B) {
	k := specKey(b)
	obj, _ := cjson.ParseString(`{"one":1,"two":"Two","three":{"a":[1,2,3]}}`, cjson.Strict)
	signed, _ := SignJSON(obj, "domain", k)
	lookup := func(string, KeyID) (VerifyKey, bool) { return VerifyKey{Key: k.Public(), ValidUntilTS: NoExpiry}, true }
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyJSON(signed, "domain", lookup, VerifyOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCapValidUntil(t *testing.T) {
	const day = 24 * 60 * 60 * 1000
	if got := CapValidUntil(1000+3*day, 1000); got != 1000+3*day {
		t.Errorf("short validity changed: %d", got)
	}
	if got := CapValidUntil(1000+400*day, 1000); got != 1000+7*day {
		t.Errorf("long validity not capped: %d", got)
	}
	if got := CapValidUntil(0, 1000); got != 0 {
		t.Errorf("missing validity became %d", got)
	}
}

func TestKeyFileOldKeys(t *testing.T) {
	canon := specSeed[:len(specSeed)-1] + "0"
	// An old key listed first still does not sign: the key in use comes first.
	ks, err := ParseKeyFile([]byte("ed25519 old " + specSeed + " 1532645052628\ned25519 new " + specSeed + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != 2 || ks[0].ID != "ed25519:new" || ks[0].ExpiredTS != 0 || ks[1].ID != "ed25519:old" || ks[1].ExpiredTS != 1532645052628 {
		t.Fatalf("keys = %+v", ks)
	}
	if got, want := string(FormatKeyFile(ks...)), "ed25519 new "+canon+"\ned25519 old "+canon+" 1532645052628\n"; got != want {
		t.Errorf("FormatKeyFile = %q, want %q", got, want)
	}
	for _, bad := range []string{
		"ed25519 old " + specSeed + " 1532645052628\n",               // nothing in use
		"ed25519 a " + specSeed + " 0\n",                             // expiry must be positive
		"ed25519 a " + specSeed + " soon\n",                          // not a number
		"ed25519 a " + specSeed + " 1 2\n",                           // too many fields
		"ed25519 a " + specSeed + "\ned25519 a " + specSeed + " 5\n", // the same key twice
	} {
		if _, err := ParseKeyFile([]byte(bad)); !errors.Is(err, ErrKeyFile) {
			t.Errorf("ParseKeyFile(%q) = %v, want ErrKeyFile", bad, err)
		}
	}
}
