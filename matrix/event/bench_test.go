package event

import (
	"testing"

	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/keys"
	"github.com/axon-hs/axon/matrix/roomversion"
)

func benchEvent(b *testing.B) (*Event, []byte) {
	v := roomversion.MustLookup(roomversion.Default)
	p := proto(v, cjson.Member{Key: "content", Value: cjson.ObjectValue(
		cjson.Member{Key: "body", Value: cjson.StringValue("Hello there, this is a fairly ordinary chat message with some text in it.")},
		cjson.Member{Key: "msgtype", Value: cjson.StringValue("m.text")},
		cjson.Member{Key: "m.mentions", Value: cjson.ObjectValue()},
	)}, cjson.Member{Key: "auth_events", Value: cjson.ArrayValue(refFor(v, 1), refFor(v, 2), refFor(v, 3))})
	e := build(b, v, p)
	return e, e.Canonical()
}

func BenchmarkContentHash(b *testing.B) {
	e, _ := benchEvent(b)
	b.ReportAllocs()
	for b.Loop() {
		_ = ContentHash(e.JSON())
	}
}

func BenchmarkSign(b *testing.B) {
	e, _ := benchEvent(b)
	k := testKey(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := HashAndSign(e.Version(), e.JSON(), "example.org", k); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParse measures decoding and validating a PDU including the
// event ID (reference hash).
func BenchmarkParse(b *testing.B) {
	e, wire := benchEvent(b)
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(e.Version(), wire); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEventID(b *testing.B) {
	e, _ := benchEvent(b)
	b.ReportAllocs()
	for b.Loop() {
		_ = ReferenceHash(e.Version(), e.JSON())
	}
}

// BenchmarkVerify measures signature verification plus the content hash.
func BenchmarkVerify(b *testing.B) {
	e, _ := benchEvent(b)
	lookup := lookupFor(map[string]*keys.SigningKey{"example.org": testKey(b)}, keys.NoExpiry)
	b.ReportAllocs()
	for b.Loop() {
		if err := e.Verify(lookup); err != nil {
			b.Fatal(err)
		}
	}
}
