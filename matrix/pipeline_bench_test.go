package matrix_test

import (
	"bytes"
	"crypto/ed25519"
	"testing"

	"github.com/axon-hs/axon/matrix/auth"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/keys"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// pipelineFixture builds a small room of the default version (create,
// alice's join, power levels, join rules, bob's join) and a message from
// bob, as a receiving server sees it.
func pipelineFixture(b *testing.B) (*event.Event, []byte, auth.MapState, keys.KeyLookup) {
	v := roomversion.MustLookup(roomversion.Default)
	key, err := keys.Generate("1", bytes.NewReader(bytes.Repeat([]byte{42}, 32)))
	if err != nil {
		b.Fatal(err)
	}
	state := auth.MapState{}
	var last *event.Event
	var roomID string
	ts := int64(1_700_000_000_000)
	mk := func(typ, sender string, stateKey *string, content string) *event.Event {
		c, err := cjson.ParseString(content, cjson.Strict)
		if err != nil {
			b.Fatal(err)
		}
		ts++
		p := cjson.ObjectValue(
			cjson.Member{Key: "type", Value: cjson.StringValue(typ)},
			cjson.Member{Key: "sender", Value: cjson.StringValue(sender)},
			cjson.Member{Key: "content", Value: c},
			cjson.Member{Key: "origin_server_ts", Value: cjson.IntValue(ts)},
			cjson.Member{Key: "depth", Value: cjson.IntValue(ts - 1_700_000_000_000)},
			cjson.Member{Key: "prev_events", Value: cjson.ArrayValue()},
			cjson.Member{Key: "auth_events", Value: cjson.ArrayValue()},
		)
		if stateKey != nil {
			p = p.With("state_key", cjson.StringValue(*stateKey))
		}
		if last != nil {
			p = p.With("room_id", cjson.StringValue(roomID)).With("prev_events", cjson.StringArray([]string{last.ID()}))
			probe, err := event.Build(v, p, "example.org", key)
			if err != nil {
				b.Fatal(err)
			}
			var ids []string
			for _, k := range auth.Selection(probe) {
				if e := state.Get(k.Type, k.StateKey); e != nil {
					ids = append(ids, e.ID())
				}
			}
			p = p.With("auth_events", cjson.StringArray(ids))
		}
		e, err := event.Build(v, p, "example.org", key)
		if err != nil {
			b.Fatal(err)
		}
		if err := auth.Check(e, state); err != nil {
			b.Fatalf("fixture event %s rejected: %v", typ, err)
		}
		if sk, ok := e.StateKey(); ok {
			state[auth.StateKey{Type: typ, StateKey: sk}] = e
		}
		last = e
		roomID = e.RoomID()
		return e
	}
	empty := ""
	alice, bob := "@alice:example.org", "@bob:example.org"
	mk("m.room.create", alice, &empty, `{"room_version":"`+v.ID+`"}`)
	mk("m.room.member", alice, &alice, `{"membership":"join","displayname":"Alice"}`)
	mk("m.room.power_levels", alice, &empty, `{"users":{},"users_default":0,"events_default":0,"state_default":50,"ban":50,"kick":50,"redact":50,"invite":0,"events":{"m.room.name":50,"m.room.power_levels":100}}`)
	mk("m.room.join_rules", alice, &empty, `{"join_rule":"public"}`)
	mk("m.room.history_visibility", alice, &empty, `{"history_visibility":"shared"}`)
	mk("m.room.member", bob, &bob, `{"membership":"join","displayname":"Bob"}`)
	msg := mk("m.room.message", bob, nil, `{"msgtype":"m.text","body":"Hello there, this is a fairly ordinary chat message with some text in it.","m.mentions":{}}`)
	lookup := func(signer string, id keys.KeyID) (keys.VerifyKey, bool) {
		if signer == "example.org" && id == key.ID {
			return keys.VerifyKey{Key: key.Public(), ValidUntilTS: keys.NoExpiry}, true
		}
		return keys.VerifyKey{}, false
	}
	return msg, msg.Canonical(), state, lookup
}

// BenchmarkVerifyHashAuth is the per-event cost of receiving a typical
// message: signature verification, content hash check and the auth rules.
func BenchmarkVerifyHashAuth(b *testing.B) {
	msg, _, state, lookup := pipelineFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := msg.Verify(lookup); err != nil {
			b.Fatal(err)
		}
		if err := auth.Check(msg, state); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseVerifyHashAuth adds decoding the PDU from the wire and
// computing its event ID.
func BenchmarkParseVerifyHashAuth(b *testing.B) {
	msg, wire, state, lookup := pipelineFixture(b)
	v := msg.Version()
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		e, err := event.Parse(v, wire)
		if err != nil {
			b.Fatal(err)
		}
		if err := e.Verify(lookup); err != nil {
			b.Fatal(err)
		}
		if err := auth.Check(e, state); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEd25519Verify is the floor: one bare ed25519 verification of a
// message of an event's size on this machine, for comparison.
func BenchmarkEd25519Verify(b *testing.B) {
	key, err := keys.Generate("1", bytes.NewReader(bytes.Repeat([]byte{42}, 32)))
	if err != nil {
		b.Fatal(err)
	}
	msg := bytes.Repeat([]byte("x"), 600)
	sig := key.Sign(msg)
	pub := key.Public()
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("bad signature")
		}
	}
}
