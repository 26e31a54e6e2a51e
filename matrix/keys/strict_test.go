package keys

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"

	"filippo.io/edwards25519"

	"github.com/axon-hs/axon/matrix/cjson"
)

// TestSmallOrderBlocklist derives the blocklist instead of trusting it: the
// eight points of small order are the multiples of a point of order 8, and
// every canonical encoding of them (either sign) must be caught, and every
// blocklisted encoding that decodes must be a point of small order.
func TestSmallOrderBlocklist(t *testing.T) {
	var order8 *edwards25519.Point
	for _, e := range smallOrder {
		for _, sign := range []byte{0, 0x80} {
			enc := e
			enc[31] |= sign
			p, err := new(edwards25519.Point).SetBytes(enc[:])
			if err != nil {
				continue // not on the curve with this sign
			}
			if new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) != 1 {
				t.Errorf("blocklisted %x is not of small order", enc)
			}
			if order8 == nil {
				q := new(edwards25519.Point).Add(p, p)
				q.Add(q, q)
				if q.Equal(edwards25519.NewIdentityPoint()) != 1 {
					order8 = p
				}
			}
		}
	}
	if order8 == nil {
		t.Fatal("no point of order 8 in the blocklist")
	}
	p := edwards25519.NewIdentityPoint()
	seen := map[[32]byte]bool{}
	for range 8 {
		enc := [32]byte(p.Bytes())
		seen[enc] = true
		if !hasSmallOrder(enc[:]) {
			t.Errorf("small-order point %x is not blocklisted", enc)
		}
		p = new(edwards25519.Point).Add(p, order8)
	}
	if len(seen) != 8 {
		t.Errorf("%d distinct small-order points, want 8", len(seen))
	}
	// An ordinary key is fine.
	k := specKey(t)
	if !CheckPublicKey(k.Public()) || hasSmallOrder(k.Public()) {
		t.Errorf("ordinary key refused")
	}
}

func TestCheckPublicKeyCanonical(t *testing.T) {
	k := specKey(t)
	if !isCanonical(k.Public()) {
		t.Fatal("ordinary key not canonical")
	}
	for low := 0xed; low <= 0xff; low++ {
		enc := fieldEnc(byte(low))
		if low >= 0xed && isCanonical(enc[:]) {
			t.Errorf("y = p + %d accepted as canonical", low-0xed)
		}
	}
	below := fieldEnc(0xec)
	if !isCanonical(below[:]) {
		t.Errorf("p-1 refused")
	}
}

// A small-order key with a signature whose R and S are trivial verifies
// under Go's crypto/ed25519, and must not here.
func TestSmallOrderKeyForgeryRefused(t *testing.T) {
	pub := make([]byte, 32)
	pub[0] = 1 // the identity point
	sig := make([]byte, 64)
	sig[0] = 1 // R = identity, S = 0
	msg := []byte(`{"anything":"at all"}`)
	if !ed25519.Verify(pub, msg, sig) {
		t.Skip("this Go's crypto/ed25519 refuses the forgery itself")
	}
	if verifyStrict(pub, msg, sig) {
		t.Fatal("forged signature by a small-order key verified")
	}
	obj := AddSignature(cjson.ObjectValue(cjson.Member{Key: "anything", Value: cjson.StringValue("at all")}), "evil.example", "ed25519:x", Base64(sig))
	lookup := func(string, KeyID) (VerifyKey, bool) { return VerifyKey{Key: pub, ValidUntilTS: NoExpiry}, true }
	if err := VerifyJSON(obj, "evil.example", lookup, VerifyOptions{}); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("VerifyJSON = %v", err)
	}
}

func TestDecodeBase64EitherAlphabet(t *testing.T) {
	raw := []byte{0xfb, 0xff, 0xfe, 0x01}
	for _, enc := range []string{"+//+AQ", "-__-AQ", "+_/-AQ", "-__-AQ=="} {
		got, err := DecodeBase64(enc)
		if err != nil || !bytes.Equal(got, raw) {
			t.Errorf("DecodeBase64(%q) = %x, %v", enc, got, err)
		}
	}
	if _, err := DecodeBase64URL("+//+AQ"); err == nil {
		t.Errorf("DecodeBase64URL accepted the standard alphabet")
	}
	if _, err := DecodeBase64("!!"); err == nil {
		t.Errorf("DecodeBase64 accepted garbage")
	}
}
