package event

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/id"
	"github.com/axon-hs/axon/matrix/keys"
	"github.com/axon-hs/axon/matrix/roomversion"
)

func base64Std(b []byte) string { return keys.Base64(b) }
func base64URL(b []byte) string { return keys.Base64URL(b) }

// HashAndSign adds the content hash and a signature by origin to an event
// object (spec "Adding hashes and signatures to outgoing events"): the
// content hash covers the whole event; the signature covers the redacted
// event, so it survives redaction. It does not validate the format.
func HashAndSign(v *roomversion.Version, obj cjson.Value, origin string, key *keys.SigningKey) (cjson.Value, error) {
	if obj.Kind() != cjson.Object {
		return cjson.Value{}, fmt.Errorf("sign event: want an object, got %s", obj.Kind())
	}
	if v.HashEventIDs() {
		// Not part of the format: the ID is the reference hash. Signing it
		// would make an event whose signature fails once it is dropped.
		obj = obj.Without("event_id")
	}
	h := ContentHash(obj)
	obj = obj.With("hashes", cjson.ObjectValue(cjson.Member{Key: "sha256", Value: cjson.StringValue(keys.Base64(h[:]))}))
	msg := Redact(v.Redact, obj).AppendCanonicalWithout(nil, "signatures", "unsigned")
	return keys.AddSignature(obj, origin, key.ID, keys.Base64(key.Sign(msg))), nil
}

// Build completes a prototype event built by this server: it hashes and
// signs it as origin and validates the result as a PDU of the room version.
// In room versions 1 and 2 the prototype must carry its event_id.
func Build(v *roomversion.Version, proto cjson.Value, origin string, key *keys.SigningKey) (*Event, error) {
	signed, err := HashAndSign(v, proto, origin, key)
	if err != nil {
		return nil, err
	}
	return FromValue(v, signed)
}

// Sign returns the event with an additional signature by server (as a
// resident server does for send_join, or an invitee's server for invites).
func (e *Event) Sign(server string, key *keys.SigningKey) *Event {
	msg := Redact(e.ver.Redact, e.obj).AppendCanonicalWithout(nil, "signatures", "unsigned")
	r := *e
	r.obj = keys.AddSignature(e.obj, server, key.ID, keys.Base64(key.Sign(msg)))
	r.size = r.obj.CanonicalLen()
	return &r
}

// ErrContentHash is returned by Verify when the signatures are good but the
// content hash does not match: the spec says to keep the event, redacted.
var ErrContentHash = errors.New("content hash mismatch")

// RequiredSigners lists the servers whose signatures an event must carry
// (spec "Validating hashes and signatures on received events"):
//   - the sender's server, except for an invite made from a third-party
//     invite, which the server of the invited user or of the inviter may
//     have made (the auth rules check its signed block instead);
//   - in room versions 1–2, the server of the event ID if it differs;
//   - for restricted joins (v8+), the server of the user in
//     join_authorised_via_users_server, as auth rule "validly signed by the
//     homeserver of the user ID denoted by the key" requires.
func (e *Event) RequiredSigners() []string {
	var out []string
	add := func(s string) {
		for _, x := range out {
			if x == s {
				return
			}
		}
		out = append(out, s)
	}
	if !(e.typ == "m.room.member" && e.Membership() == "invite" && e.content.Has("third_party_invite")) {
		add(serverOfUser(e.sender))
	}
	if !e.ver.HashEventIDs() {
		if eid, err := id.ParseEventID(e.id); err == nil {
			if s, ok := eid.Server(); ok {
				add(string(s))
			}
		}
	}
	if e.ver.RestrictedJoins && e.typ == "m.room.member" && e.Membership() == "join" {
		if via, ok := e.content.Get("join_authorised_via_users_server").Str(); ok {
			if s := serverOfUser(via); s != "" {
				add(s)
			}
		}
	}
	return out
}

func serverOfUser(u string) string {
	uid, err := id.ParseUserID(u)
	if err != nil {
		return ""
	}
	return string(uid.Server())
}

// Verify checks an event received from another server: signatures by every
// required signer (see RequiredSigners) over the redacted event, with the
// key validity rule of room versions 5+, then the content hash. It returns
// nil when both hold; an error wrapping ErrContentHash when only the hash
// fails (the caller must then use e.Redacted()); any other error means the
// event must be dropped.
func (e *Event) Verify(lookup keys.KeyLookup) error {
	red := Redact(e.ver.Redact, e.obj)
	msg := red.AppendCanonicalWithout(make([]byte, 0, 1024), "signatures", "unsigned")
	opt := keys.VerifyOptions{}
	if e.ver.EnforceKeyValidity {
		opt.AtTS = e.ts
	}
	for _, server := range e.RequiredSigners() {
		if err := keys.VerifyCanonical(msg, red, server, lookup, opt); err != nil {
			return fmt.Errorf("event %s: %w", e.id, err)
		}
	}
	if !e.ContentHashValid() {
		return fmt.Errorf("event %s: %w", e.id, ErrContentHash)
	}
	return nil
}

// ContentHashValid reports whether hashes.sha256 matches the content hash.
func (e *Event) ContentHashValid() bool {
	s, _ := e.obj.Path("hashes", "sha256").Str()
	want, err := keys.DecodeBase64(s)
	if err != nil || len(want) != sha256.Size {
		return false
	}
	got := ContentHash(e.obj)
	return subtle.ConstantTimeCompare(got[:], want) == 1
}
