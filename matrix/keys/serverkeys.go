package keys

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/axon-hs/axon/matrix/cjson"
)

// ErrServerKeys is matched by every error about a server keys document.
var ErrServerKeys = errors.New("invalid server keys")

// OldVerifyKey is a key a server no longer uses, with when it stopped.
type OldVerifyKey struct {
	Key       ed25519.PublicKey
	ExpiredTS int64
}

// ServerKeys is a server's published keys document (the response of
// GET /_matrix/key/v2/server, and each element of a notary's answer).
type ServerKeys struct {
	ServerName   string
	ValidUntilTS int64
	VerifyKeys   map[KeyID]ed25519.PublicKey
	OldKeys      map[KeyID]OldVerifyKey
	// Raw is the document as received, signatures included: a notary
	// serves it again with its own signature added.
	Raw cjson.Value
}

// ParseServerKeys reads a keys document. It checks the shape (every
// required field with its type, keys that are 32 bytes of base64 and are
// not weak) but not the signatures: see ServerKeys.CheckSelfSigned.
func ParseServerKeys(v cjson.Value) (*ServerKeys, error) {
	if v.Kind() != cjson.Object {
		return nil, fmt.Errorf("%w: not a JSON object", ErrServerKeys)
	}
	sk := &ServerKeys{Raw: v, VerifyKeys: map[KeyID]ed25519.PublicKey{}, OldKeys: map[KeyID]OldVerifyKey{}}
	var ok bool
	if sk.ServerName, ok = v.Get("server_name").Str(); !ok || sk.ServerName == "" {
		return nil, fmt.Errorf("%w: server_name is missing or not a string", ErrServerKeys)
	}
	if sk.ValidUntilTS, ok = v.Get("valid_until_ts").Int(); !ok {
		return nil, fmt.Errorf("%w: valid_until_ts is missing or not an integer", ErrServerKeys)
	}
	if v.Get("signatures").Kind() != cjson.Object {
		return nil, fmt.Errorf("%w: signatures is missing or not an object", ErrServerKeys)
	}
	vks := v.Get("verify_keys")
	if vks.Kind() != cjson.Object {
		return nil, fmt.Errorf("%w: verify_keys is missing or not an object", ErrServerKeys)
	}
	for _, m := range vks.Members() {
		id, key, err := parseVerifyKey(m)
		if err != nil {
			return nil, fmt.Errorf("%w: verify_keys: %w", ErrServerKeys, err)
		}
		if id != "" {
			sk.VerifyKeys[id] = key
		}
	}
	if old := v.Get("old_verify_keys"); old.Exists() {
		if old.Kind() != cjson.Object {
			return nil, fmt.Errorf("%w: old_verify_keys is not an object", ErrServerKeys)
		}
		for _, m := range old.Members() {
			id, key, err := parseVerifyKey(m)
			if err != nil {
				return nil, fmt.Errorf("%w: old_verify_keys: %w", ErrServerKeys, err)
			}
			ts, ok := m.Value.Get("expired_ts").Int()
			if !ok {
				return nil, fmt.Errorf("%w: old_verify_keys: %s: expired_ts is missing or not an integer", ErrServerKeys, m.Key)
			}
			if id != "" {
				sk.OldKeys[id] = OldVerifyKey{Key: key, ExpiredTS: ts}
			}
		}
	}
	return sk, nil
}

// parseVerifyKey reads one entry of verify_keys or old_verify_keys. Keys
// of algorithms other than ed25519 are skipped (id ""): nothing can check
// them, and a server may publish them.
func parseVerifyKey(m cjson.Member) (KeyID, ed25519.PublicKey, error) {
	id, err := ParseKeyID(m.Key)
	if err != nil {
		return "", nil, fmt.Errorf("%q: %w", m.Key, err)
	}
	if m.Value.Kind() != cjson.Object {
		return "", nil, fmt.Errorf("%s: not an object", id)
	}
	s, ok := m.Value.Get("key").Str()
	if !ok {
		return "", nil, fmt.Errorf("%s: key is missing or not a string", id)
	}
	if id.Algorithm() != AlgorithmEd25519 {
		return "", nil, nil
	}
	raw, err := DecodeBase64(s)
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return "", nil, fmt.Errorf("%s: key is not 32 bytes of base64", id)
	}
	if !CheckPublicKey(raw) {
		return "", nil, fmt.Errorf("%s: key is a weak or non-canonical ed25519 point", id)
	}
	return id, ed25519.PublicKey(raw), nil
}

// CheckSelfSigned checks that the document is signed by its own server
// with the keys it lists under verify_keys (every such signature must
// verify, and there must be at least one).
func (sk *ServerKeys) CheckSelfSigned() error {
	err := VerifyJSON(sk.Raw, sk.ServerName, func(signer string, id KeyID) (VerifyKey, bool) {
		k, ok := sk.VerifyKeys[id]
		return VerifyKey{Key: k, ValidUntilTS: NoExpiry}, ok
	}, VerifyOptions{})
	if err != nil {
		return fmt.Errorf("%w: %s's own signature: %w", ErrServerKeys, sk.ServerName, err)
	}
	return nil
}

// Lookup returns the key id of the document's server with the time up to
// which it verifies signatures (room versions 5 and later): for a key in
// use, valid_until_ts capped at MaxKeyValidity after fetchedTS; for an old
// key, its expired_ts.
func (sk *ServerKeys) Lookup(id KeyID, fetchedTS int64) (VerifyKey, bool) {
	if k, ok := sk.VerifyKeys[id]; ok {
		return VerifyKey{Key: k, ValidUntilTS: CapValidUntil(sk.ValidUntilTS, fetchedTS)}, true
	}
	if o, ok := sk.OldKeys[id]; ok {
		return VerifyKey{Key: o.Key, ValidUntilTS: o.ExpiredTS}, true
	}
	return VerifyKey{}, false
}

// ServerKeysDocument builds and signs this server's keys document: the
// keys in use under verify_keys (each of them signs it), those with an
// expiry under old_verify_keys.
func ServerKeysDocument(serverName string, ks []*SigningKey, validUntilTS int64) (cjson.Value, error) {
	verify := cjson.ObjectValue()
	old := cjson.ObjectValue()
	var signers []*SigningKey
	for _, k := range ks {
		entry := cjson.ObjectValue(cjson.Member{Key: "key", Value: cjson.StringValue(k.PublicBase64())})
		if k.ExpiredTS > 0 {
			old = old.With(string(k.ID), entry.With("expired_ts", cjson.IntValue(k.ExpiredTS)))
			continue
		}
		verify = verify.With(string(k.ID), entry)
		signers = append(signers, k)
	}
	if len(signers) == 0 {
		return cjson.Value{}, fmt.Errorf("%w: no key in use", ErrServerKeys)
	}
	doc := cjson.ObjectValue(
		cjson.Member{Key: "server_name", Value: cjson.StringValue(serverName)},
		cjson.Member{Key: "valid_until_ts", Value: cjson.IntValue(validUntilTS)},
		cjson.Member{Key: "verify_keys", Value: verify},
		cjson.Member{Key: "old_verify_keys", Value: old},
	)
	var err error
	for _, k := range signers {
		if doc, err = SignJSON(doc, serverName, k); err != nil {
			return cjson.Value{}, err
		}
	}
	return doc, nil
}
