package event

import (
	"bytes"
	"errors"
	"testing"

	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/keys"
	"github.com/axon-hs/axon/matrix/roomversion"
)

func lookupFor(servers map[string]*keys.SigningKey, validUntil int64) keys.KeyLookup {
	return func(signer string, id keys.KeyID) (keys.VerifyKey, bool) {
		k, ok := servers[signer]
		if !ok || k.ID != id {
			return keys.VerifyKey{}, false
		}
		return keys.VerifyKey{Key: k.Public(), ValidUntilTS: validUntil}, true
	}
}

func TestVerify(t *testing.T) {
	k := testKey(t)
	other, _ := keys.Generate("o", bytes.NewReader(bytes.Repeat([]byte{3}, 32)))
	for _, v := range roomversion.All() {
		e := build(t, v, proto(v))
		good := lookupFor(map[string]*keys.SigningKey{"example.org": k}, keys.NoExpiry)
		if err := e.Verify(good); err != nil {
			t.Errorf("v%s: %v", v.ID, err)
		}
		// A redacted copy keeps valid signatures but fails the content hash.
		if err := e.Redacted().Verify(good); !errors.Is(err, ErrContentHash) {
			t.Errorf("v%s: redacted copy: %v", v.ID, err)
		}
		// Tampering with the content: signature still fine (it covers the
		// redacted form), hash fails.
		tampered, _ := FromValue(v, e.JSON().With("content", cjson.ObjectValue(cjson.Member{Key: "body", Value: cjson.StringValue("bye")})))
		if err := tampered.Verify(good); !errors.Is(err, ErrContentHash) {
			t.Errorf("v%s: tampered content: %v", v.ID, err)
		}
		// Tampering with a protected field breaks the signature.
		forged, _ := FromValue(v, e.JSON().With("depth", cjson.IntValue(99)))
		if err := forged.Verify(good); !errors.Is(err, keys.ErrBadSignature) {
			t.Errorf("v%s: forged depth: %v", v.ID, err)
		}
		// Unknown key for the sender's server.
		if err := e.Verify(lookupFor(map[string]*keys.SigningKey{"example.org": other}, keys.NoExpiry)); !errors.Is(err, keys.ErrNoKey) {
			t.Errorf("v%s: unknown key: %v", v.ID, err)
		}
		// Key expired before the event: only enforced from v5.
		err := e.Verify(lookupFor(map[string]*keys.SigningKey{"example.org": k}, e.OriginServerTS()-1))
		if v.EnforceKeyValidity && !errors.Is(err, keys.ErrNoKey) || !v.EnforceKeyValidity && err != nil {
			t.Errorf("v%s: expired key: %v", v.ID, err)
		}
	}
}

func TestRequiredSigners(t *testing.T) {
	v1, v8, v7 := roomversion.MustLookup("1"), roomversion.MustLookup("8"), roomversion.MustLookup("7")
	member := func(v *roomversion.Version, content string) *Event {
		c, _ := cjson.ParseString(content, cjson.Strict)
		return build(t, v, proto(v, cjson.Member{Key: "type", Value: cjson.StringValue("m.room.member")},
			cjson.Member{Key: "state_key", Value: cjson.StringValue("@alice:example.org")},
			cjson.Member{Key: "content", Value: c}))
	}
	e1 := build(t, v1, proto(v1, cjson.Member{Key: "event_id", Value: cjson.StringValue("$x:other.org")}))
	cases := []struct {
		name string
		e    *Event
		want []string
	}{
		{"v1 event id from another server", e1, []string{"example.org", "other.org"}},
		{"v8 restricted join", member(v8, `{"membership":"join","join_authorised_via_users_server":"@bob:resident.org"}`), []string{"example.org", "resident.org"}},
		{"v7 has no restricted joins", member(v7, `{"membership":"join","join_authorised_via_users_server":"@bob:resident.org"}`), []string{"example.org"}},
		{"third-party invite: no server required", member(v8, `{"membership":"invite","third_party_invite":{"signed":{"mxid":"@carol:invitee.org","token":"t"}}}`), []string{}},
		{"v1 third-party invite: the event ID's server", func() *Event {
			c, _ := cjson.ParseString(`{"membership":"invite","third_party_invite":{"signed":{"mxid":"@carol:invitee.org","token":"t"}}}`, cjson.Strict)
			return build(t, v1, proto(v1, cjson.Member{Key: "type", Value: cjson.StringValue("m.room.member")},
				cjson.Member{Key: "state_key", Value: cjson.StringValue("@carol:invitee.org")},
				cjson.Member{Key: "content", Value: c}))
		}(), []string{"example.org"}},
	}
	for _, c := range cases {
		got := c.e.RequiredSigners()
		if len(got) != len(c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s: %v, want %v", c.name, got, c.want)
			}
		}
	}
	// A restricted join without the resident server's signature fails.
	j := member(v8, `{"membership":"join","join_authorised_via_users_server":"@bob:resident.org"}`)
	resident, _ := keys.Generate("r", bytes.NewReader(bytes.Repeat([]byte{9}, 32)))
	servers := map[string]*keys.SigningKey{"example.org": testKey(t), "resident.org": resident}
	if err := j.Verify(lookupFor(servers, keys.NoExpiry)); !errors.Is(err, keys.ErrNoSignature) {
		t.Errorf("unsigned by resident: %v", err)
	}
	if err := j.Sign("resident.org", resident).Verify(lookupFor(servers, keys.NoExpiry)); err != nil {
		t.Errorf("signed by resident: %v", err)
	}
}
