package keys

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"math"

	"github.com/axon-hs/axon/matrix/cjson"
)

// SignJSON signs a JSON object as the entity `signer` (a server name or a
// user ID): it encodes the object without `signatures` and `unsigned` in
// canonical form, signs it, and returns the object with the signature added
// under signatures[signer][key ID], keeping any existing signatures.
func SignJSON(obj cjson.Value, signer string, key *SigningKey) (cjson.Value, error) {
	if obj.Kind() != cjson.Object {
		return cjson.Value{}, fmt.Errorf("sign: want a JSON object, got %s", obj.Kind())
	}
	msg := obj.AppendCanonicalWithout(nil, "signatures", "unsigned")
	sig := Base64(key.Sign(msg))
	return AddSignature(obj, signer, key.ID, sig), nil
}

// AddSignature returns obj with signatures[signer][keyID] = sig.
func AddSignature(obj cjson.Value, signer string, keyID KeyID, sig string) cjson.Value {
	sigs := obj.Get("signatures")
	if sigs.Kind() != cjson.Object {
		sigs = cjson.ObjectValue()
	}
	mine := sigs.Get(signer)
	if mine.Kind() != cjson.Object {
		mine = cjson.ObjectValue()
	}
	mine = mine.With(string(keyID), cjson.StringValue(sig))
	return obj.With("signatures", sigs.With(signer, mine))
}

// Errors of VerifyJSON, matched with errors.Is.
var (
	ErrNoSignature  = errors.New("no signature from the signer")
	ErrNoKey        = errors.New("no usable verification key for any of the signer's signatures")
	ErrBadSignature = errors.New("signature does not verify")
)

// NoExpiry is the ValidUntilTS of keys that do not expire (our own).
const NoExpiry = math.MaxInt64

// VerifyKey is a public key known for an entity, with its validity window.
type VerifyKey struct {
	Key ed25519.PublicKey
	// ValidUntilTS is the last millisecond timestamp at which signatures by
	// this key are accepted, when the room version enforces key validity.
	// A key a server published without valid_until_ts has 0: it is expired
	// for such rooms. Our own keys use NoExpiry.
	ValidUntilTS int64
}

// KeyLookup finds a verification key for an entity and key ID. It returns
// ok=false when the key is unknown.
type KeyLookup func(signer string, id KeyID) (VerifyKey, bool)

// VerifyOptions tune VerifyJSON.
type VerifyOptions struct {
	// AtTS, when non-zero, is the time (ms) at which the signature must have
	// been valid: keys whose ValidUntilTS is before it are skipped (room
	// versions 5 and later, key validity windows).
	AtTS int64
}

// VerifyJSON checks that obj carries at least one valid ed25519 signature
// from signer by a known key (spec appendix "Checking for a Signature"),
// and that every such signature by a known, unexpired key verifies.
// Signatures of unknown algorithms and unknown or expired keys are skipped.
func VerifyJSON(obj cjson.Value, signer string, lookup KeyLookup, opt VerifyOptions) error {
	return VerifyCanonical(nil, obj, signer, lookup, opt)
}

// VerifyCanonical is VerifyJSON for a caller that already holds the
// canonical encoding of obj without signatures and unsigned (msg); when msg
// is nil it is computed.
func VerifyCanonical(msg []byte, obj cjson.Value, signer string, lookup KeyLookup, opt VerifyOptions) error {
	mine := obj.Path("signatures", signer)
	if mine.Kind() != cjson.Object || mine.Len() == 0 {
		return fmt.Errorf("%w %q", ErrNoSignature, signer)
	}
	checked := 0
	for _, m := range mine.Members() {
		id := KeyID(m.Key)
		if id.Algorithm() != AlgorithmEd25519 {
			continue
		}
		vk, ok := lookup(signer, id)
		if !ok || len(vk.Key) != ed25519.PublicKeySize {
			continue
		}
		if opt.AtTS != 0 && vk.ValidUntilTS < opt.AtTS {
			continue
		}
		s, isStr := m.Value.Str()
		if !isStr {
			return fmt.Errorf("%w: %s %s: signature is not a string", ErrBadSignature, signer, id)
		}
		sig, err := DecodeBase64(s)
		if err != nil || len(sig) != ed25519.SignatureSize {
			return fmt.Errorf("%w: %s %s: signature is not 64 bytes of base64", ErrBadSignature, signer, id)
		}
		if msg == nil {
			msg = obj.AppendCanonicalWithout(nil, "signatures", "unsigned")
		}
		if !verifyStrict(vk.Key, msg, sig) {
			return fmt.Errorf("%w: %s %s", ErrBadSignature, signer, id)
		}
		checked++
	}
	if checked == 0 {
		return fmt.Errorf("%w %q", ErrNoKey, signer)
	}
	return nil
}

// MaxKeyValidity is how far into the future a fetched key's valid_until_ts
// is trusted (room versions 5+): a key published as valid for years must
// still be refetched within a week, so that its owner can revoke it.
const MaxKeyValidity = 7 * 24 * 60 * 60 * 1000 // milliseconds

// CapValidUntil returns the validity to use for a key fetched at fetchedTS
// (ms) whose server said valid_until_ts: the lesser of that and fetchedTS +
// MaxKeyValidity.
func CapValidUntil(validUntilTS, fetchedTS int64) int64 {
	return min(validUntilTS, fetchedTS+MaxKeyValidity)
}
