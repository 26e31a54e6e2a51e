package keys

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/axon-hs/axon/matrix/cjson"
)

func TestServerKeysDocument(t *testing.T) {
	cur := specKey(t)
	second, _ := Generate("two", bytes.NewReader(bytes.Repeat([]byte{2}, 32)))
	old, _ := Generate("old", bytes.NewReader(bytes.Repeat([]byte{3}, 32)))
	old.ExpiredTS = 1532645052628
	doc, err := ServerKeysDocument("example.org", []*SigningKey{cur, second, old}, 1652262000000)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := ParseServerKeys(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := sk.CheckSelfSigned(); err != nil {
		t.Fatal(err)
	}
	if sk.ServerName != "example.org" || sk.ValidUntilTS != 1652262000000 || len(sk.VerifyKeys) != 2 || len(sk.OldKeys) != 1 {
		t.Fatalf("parsed %+v", sk)
	}
	// Both keys in use sign; the old one does not.
	if sigs := doc.Path("signatures", "example.org"); sigs.Len() != 2 || sigs.Has(string(old.ID)) {
		t.Errorf("signatures = %s", sigs)
	}
	fetched := int64(1652262000000 - 30*24*3600*1000) // a month before valid_until_ts
	if vk, ok := sk.Lookup(cur.ID, fetched); !ok || !bytes.Equal(vk.Key, cur.Public()) || vk.ValidUntilTS != fetched+MaxKeyValidity {
		t.Errorf("Lookup(current) = %+v %v: validity not capped at a week", vk, ok)
	}
	if vk, ok := sk.Lookup(old.ID, fetched); !ok || vk.ValidUntilTS != old.ExpiredTS {
		t.Errorf("Lookup(old) = %+v %v", vk, ok)
	}
	if _, ok := sk.Lookup("ed25519:nope", fetched); ok {
		t.Error("Lookup of an unknown key succeeded")
	}

	// Any change to the signed content breaks the self-signature.
	for name, forged := range map[string]cjson.Value{
		"validity":   doc.With("valid_until_ts", cjson.IntValue(1952262000000)),
		"server":     doc.With("server_name", cjson.StringValue("evil.example")),
		"added key":  doc.With("verify_keys", doc.Get("verify_keys").With("ed25519:x", doc.Path("verify_keys", string(cur.ID)))),
		"old expiry": doc.With("old_verify_keys", doc.Get("old_verify_keys").With(string(old.ID), doc.Path("old_verify_keys", string(old.ID)).With("expired_ts", cjson.IntValue(1)))),
	} {
		sk, err := ParseServerKeys(forged)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := sk.CheckSelfSigned(); !errors.Is(err, ErrServerKeys) {
			t.Errorf("%s: CheckSelfSigned = %v, want an error", name, err)
		}
	}
	// Signed by a key it does not list: nothing to check it with.
	unsigned := doc.With("signatures", cjson.ObjectValue())
	resigned, _ := SignJSON(unsigned, "example.org", old)
	if sk, _ := ParseServerKeys(resigned); sk.CheckSelfSigned() == nil {
		t.Error("a document signed only by an old key passed")
	}
	if _, err := ServerKeysDocument("example.org", []*SigningKey{old}, 1); err == nil {
		t.Error("a document without a key in use was built")
	}
}

func TestParseServerKeysRejects(t *testing.T) {
	good := `"server_name":"example.org","valid_until_ts":1,"signatures":{}`
	key := `{"key":"` + specKey(t).PublicBase64() + `"}`
	for name, doc := range map[string]string{
		"array":              `[]`,
		"no server_name":     `{"valid_until_ts":1,"signatures":{},"verify_keys":{}}`,
		"no valid_until":     `{"server_name":"example.org","signatures":{},"verify_keys":{}}`,
		"string valid_until": `{"server_name":"example.org","valid_until_ts":"1","signatures":{},"verify_keys":{}}`,
		"no signatures":      `{"server_name":"example.org","valid_until_ts":1,"verify_keys":{}}`,
		"no verify_keys":     `{` + good + `}`,
		"bad key id":         `{` + good + `,"verify_keys":{"ed25519":` + key + `}}`,
		"short key":          `{` + good + `,"verify_keys":{"ed25519:a":{"key":"AAAA"}}}`,
		"key not string":     `{` + good + `,"verify_keys":{"ed25519:a":{"key":1}}}`,
		"old without ts":     `{` + good + `,"verify_keys":{},"old_verify_keys":{"ed25519:o":` + key + `}}`,
		"small-order key":    `{` + good + `,"verify_keys":{"ed25519:a":{"key":"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}}`,
	} {
		v, err := cjson.ParseString(doc, cjson.Strict)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := ParseServerKeys(v); !errors.Is(err, ErrServerKeys) {
			t.Errorf("%s: ParseServerKeys = %v, want ErrServerKeys", name, err)
		}
	}
	// Keys of unknown algorithms are skipped, not refused.
	v, _ := cjson.ParseString(`{`+good+`,"verify_keys":{"curve9:a":{"key":"anything"},"ed25519:b":`+key+`}}`, cjson.Strict)
	if sk, err := ParseServerKeys(v); err != nil || len(sk.VerifyKeys) != 1 {
		t.Errorf("unknown algorithm: %v %+v", err, sk)
	}
}

// The spec's example document has placeholder keys that are not 32 bytes:
// the shape is right, the keys are refused.
func TestParseServerKeysSpecExample(t *testing.T) {
	data, err := os.ReadFile("testdata/server_key_example.json")
	if err != nil {
		t.Fatal(err)
	}
	v, err := cjson.Parse(data, cjson.Strict)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseServerKeys(v); !errors.Is(err, ErrServerKeys) {
		t.Errorf("ParseServerKeys(spec example) = %v", err)
	}
	v = v.With("verify_keys", cjson.ObjectValue()).With("old_verify_keys", cjson.ObjectValue())
	if sk, err := ParseServerKeys(v); err != nil || sk.ServerName != "example.org" || sk.ValidUntilTS != 1652262000000 {
		t.Errorf("spec example without its keys: %v %+v", err, sk)
	}
}

func FuzzParseServerKeys(f *testing.F) {
	doc, _ := ServerKeysDocument("example.org", []*SigningKey{specKey(f)}, 1)
	f.Add(doc.Canonical())
	f.Add([]byte(`{"server_name":"a","valid_until_ts":1,"signatures":{},"verify_keys":{},"old_verify_keys":{"ed25519:x":{"key":"","expired_ts":1}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := cjson.Parse(data, cjson.Strict)
		if err != nil {
			return
		}
		sk, err := ParseServerKeys(v)
		if err != nil {
			return
		}
		_ = sk.CheckSelfSigned()
		for id := range sk.VerifyKeys {
			if _, ok := sk.Lookup(id, 0); !ok {
				t.Fatalf("Lookup(%s) failed for a listed key", id)
			}
		}
	})
}
