package xmatrix

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/id"
	"github.com/axon-hs/axon/matrix/keys"
)

// Errors of RequestJSON, Sign and Verify, matched with errors.Is.
var (
	// ErrWrongDestination: the header names a destination other than the
	// receiving server. The spec requires a 401 response.
	ErrWrongDestination = errors.New("X-Matrix destination is not this server")
	// ErrUnknownKey: the key named by the header is not known for the
	// origin (or not valid at the time given), or is not an ed25519 key.
	ErrUnknownKey = errors.New("X-Matrix signing key is unknown")
	// ErrBadSignature: the signature does not verify with the named key.
	ErrBadSignature = errors.New("X-Matrix signature does not verify")
	// ErrContentNotJSON: the request body is not valid JSON.
	ErrContentNotJSON = errors.New("request body is not valid JSON")
	// ErrInvalidRequest: the method, URI or a server name passed in is not
	// well-formed, or the signing key is unusable.
	ErrInvalidRequest = errors.New("invalid request to sign or verify")
)

// RequestJSON builds the JSON object that a request's signature covers:
// method, uri, origin, destination and, when the request has a body,
// content. uri is the request target exactly as sent: the path starting
// with /_matrix/ and any query string, without scheme or host.
//
// content is the raw request body; nil or empty means the request has none
// and the object has no content member. A body of JSON null is treated the
// same way, as in the spec's example code, where a parsed body of None is
// left out. Numbers in the body are read under cjson's Lenient rules,
// because bodies carry events of room versions 1-5 whose numbers break the
// canonical rules; the signature covers them as re-encoded by cjson.
func RequestJSON(method, uri, origin, destination string, content []byte) (cjson.Value, error) {
	if method == "" || !isToken(method) {
		return cjson.Value{}, fmt.Errorf("%w: method %q is not an HTTP token", ErrInvalidRequest, method)
	}
	if uri == "" || uri[0] != '/' {
		return cjson.Value{}, fmt.Errorf("%w: uri %q does not start with '/'", ErrInvalidRequest, uri)
	}
	if !utf8.ValidString(uri) {
		return cjson.Value{}, fmt.Errorf("%w: uri %q is not valid UTF-8", ErrInvalidRequest, uri)
	}
	if _, err := id.ParseServerName(origin); err != nil {
		return cjson.Value{}, fmt.Errorf("%w: origin: %w", ErrInvalidRequest, err)
	}
	if _, err := id.ParseServerName(destination); err != nil {
		return cjson.Value{}, fmt.Errorf("%w: destination: %w", ErrInvalidRequest, err)
	}
	members := make([]cjson.Member, 0, 5)
	if len(content) > 0 {
		body, err := cjson.Parse(content, cjson.Lenient)
		if err != nil {
			return cjson.Value{}, fmt.Errorf("%w: %w", ErrContentNotJSON, err)
		}
		if !body.IsNull() {
			members = append(members, cjson.Member{Key: "content", Value: body})
		}
	}
	members = append(members,
		cjson.Member{Key: "destination", Value: cjson.StringValue(destination)},
		cjson.Member{Key: "method", Value: cjson.StringValue(method)},
		cjson.Member{Key: "origin", Value: cjson.StringValue(origin)},
		cjson.Member{Key: "uri", Value: cjson.StringValue(uri)},
	)
	return cjson.ObjectValue(members...), nil
}

// Sign signs an outbound request as origin with key and returns the header
// to send. The arguments are those of RequestJSON.
func Sign(method, uri, origin, destination string, content []byte, key *keys.SigningKey) (Header, error) {
	if key == nil || len(key.Priv) != ed25519.PrivateKeySize {
		return Header{}, fmt.Errorf("%w: no usable ed25519 signing key", ErrInvalidRequest)
	}
	if _, err := keys.ParseKeyID(string(key.ID)); err != nil || key.ID.Algorithm() != keys.AlgorithmEd25519 {
		return Header{}, fmt.Errorf("%w: signing key ID %q is not an ed25519 key ID", ErrInvalidRequest, key.ID)
	}
	obj, err := RequestJSON(method, uri, origin, destination, content)
	if err != nil {
		return Header{}, err
	}
	signed, err := keys.SignJSON(obj, origin, key)
	if err != nil {
		return Header{}, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	sig, _ := signed.Path("signatures", origin, string(key.ID)).Str()
	return Header{Origin: origin, Destination: destination, Key: key.ID, Sig: sig}, nil
}

// Verify checks an inbound request's header. destination is the receiving
// server's own name: when h.Destination is set and differs, the request is
// refused with ErrWrongDestination; when it is empty, destination is what
// the signature must cover. method, uri and content are as for RequestJSON.
//
// Only the signature named by the header is checked, with the key lookup
// returns for (h.Origin, h.Key). atTS is the time of receipt in
// milliseconds: a key whose ValidUntilTS is earlier counts as unknown (the
// caller may refetch it and try again); 0 skips that check.
func Verify(h Header, method, uri, destination string, content []byte, lookup keys.KeyLookup, atTS int64) error {
	if err := h.check(); err != nil {
		return err
	}
	if h.Destination != "" && h.Destination != destination {
		return fmt.Errorf("%w: header names %q, this server is %q", ErrWrongDestination, h.Destination, destination)
	}
	obj, err := RequestJSON(method, uri, h.Origin, destination, content)
	if err != nil {
		return err
	}
	if h.Key.Algorithm() != keys.AlgorithmEd25519 || lookup == nil {
		return fmt.Errorf("%w: %s of %s", ErrUnknownKey, h.Key, h.Origin)
	}
	obj = keys.AddSignature(obj, h.Origin, h.Key, h.Sig)
	err = keys.VerifyJSON(obj, h.Origin, lookup, keys.VerifyOptions{AtTS: atTS})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, keys.ErrBadSignature):
		return fmt.Errorf("%w: %w", ErrBadSignature, err)
	default: // keys.ErrNoKey: unknown, malformed or expired at atTS
		return fmt.Errorf("%w: %s of %s: %w", ErrUnknownKey, h.Key, h.Origin, err)
	}
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return false
		}
	}
	return true
}
