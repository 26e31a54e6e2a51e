package event

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/keys"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// roomIDFor returns a room ID in the format of the version.
func roomIDFor(v *roomversion.Version) string {
	if v.RoomIDFromCreate {
		return "!" + strings.Repeat("A", 43)
	}
	return "!room:example.org"
}

func refFor(v *roomversion.Version, n int) cjson.Value {
	switch v.Format {
	case roomversion.FormatV1:
		return cjson.ArrayValue(cjson.StringValue(fmt.Sprintf("$e%d:example.org", n)),
			cjson.ObjectValue(cjson.Member{Key: "sha256", Value: cjson.StringValue("abc")}))
	case roomversion.FormatV3:
		return cjson.StringValue("$" + strings.Repeat("+/", 21) + string("AEIMQUYcgkosw048"[n%16]))
	default:
		return cjson.StringValue("$" + strings.Repeat("-_", 21) + string("AEIMQUYcgkosw048"[n%16]))
	}
}

// proto returns a message-like prototype event of the version with the
// given overrides (an absent value deletes the key).
func proto(v *roomversion.Version, over ...cjson.Member) cjson.Value {
	m := cjson.ObjectValue(
		cjson.Member{Key: "type", Value: cjson.StringValue("m.room.message")},
		cjson.Member{Key: "sender", Value: cjson.StringValue("@alice:example.org")},
		cjson.Member{Key: "room_id", Value: cjson.StringValue(roomIDFor(v))},
		cjson.Member{Key: "content", Value: cjson.ObjectValue(cjson.Member{Key: "body", Value: cjson.StringValue("hi")})},
		cjson.Member{Key: "origin_server_ts", Value: cjson.IntValue(1700000000000)},
		cjson.Member{Key: "depth", Value: cjson.IntValue(5)},
		cjson.Member{Key: "prev_events", Value: cjson.ArrayValue(refFor(v, 1))},
		cjson.Member{Key: "auth_events", Value: cjson.ArrayValue(refFor(v, 2), refFor(v, 3))},
	)
	if !v.HashEventIDs() {
		m = m.With("event_id", cjson.StringValue("$abc:example.org"))
	}
	for _, o := range over {
		m = m.With(o.Key, o.Value)
	}
	return m
}

func testKey(t testing.TB) *keys.SigningKey {
	t.Helper()
	return specKey(t)
}

func build(t testing.TB, v *roomversion.Version, p cjson.Value) *Event {
	t.Helper()
	e, err := Build(v, p, "example.org", testKey(t))
	if err != nil {
		t.Fatalf("v%s Build: %v", v.ID, err)
	}
	return e
}

func TestParseEveryVersion(t *testing.T) {
	for _, v := range roomversion.All() {
		e := build(t, v, proto(v))
		if e.Type() != "m.room.message" || e.Sender() != "@alice:example.org" || e.Depth() != 5 ||
			e.OriginServerTS() != 1700000000000 || len(e.PrevEvents()) != 1 || len(e.AuthEvents()) != 2 {
			t.Errorf("v%s: fields wrong: %+v", v.ID, e)
		}
		switch {
		case !v.HashEventIDs():
			if e.ID() != "$abc:example.org" || e.PrevEvents()[0] != "$e1:example.org" {
				t.Errorf("v%s: id %s prev %v", v.ID, e.ID(), e.PrevEvents())
			}
		default:
			h := ReferenceHash(v, e.JSON())
			want := "$" + keys.Base64(h[:])
			if v.URLSafeEventIDs() {
				want = "$" + keys.Base64URL(h[:])
			}
			if e.ID() != want || len(e.ID()) != 44 {
				t.Errorf("v%s: id %s, want %s", v.ID, e.ID(), want)
			}
		}
		// Parsing the wire form gives the same event.
		p, err := Parse(v, e.Canonical())
		if err != nil {
			t.Fatalf("v%s: Parse(own output): %v", v.ID, err)
		}
		if p.ID() != e.ID() || string(p.Canonical()) != string(e.Canonical()) {
			t.Errorf("v%s: reparse differs", v.ID)
		}
	}
}

func TestEventIDCharacters(t *testing.T) {
	// Find content that makes the hash contain '+' or '/' so that the v3/v4
	// difference is visible.
	v3, v4 := roomversion.MustLookup("3"), roomversion.MustLookup("4")
	for i := 0; i < 200; i++ {
		c := cjson.ObjectValue(cjson.Member{Key: "n", Value: cjson.IntValue(int64(i))})
		e3 := build(t, v3, proto(v3, cjson.Member{Key: "content", Value: c}))
		e4 := build(t, v4, proto(v4, cjson.Member{Key: "content", Value: c}))
		if strings.ContainsAny(e3.ID(), "-_") || strings.ContainsAny(e4.ID(), "+/") {
			t.Fatalf("wrong alphabet: v3 %s v4 %s", e3.ID(), e4.ID())
		}
		if strings.ContainsAny(e3.ID(), "+/") {
			return
		}
	}
	t.Fatal("no event ID with + or / in 200 tries")
}

func TestV12CreateEventDerivesRoomID(t *testing.T) {
	v := roomversion.MustLookup("12")
	create := proto(v,
		cjson.Member{Key: "type", Value: cjson.StringValue("m.room.create")},
		cjson.Member{Key: "state_key", Value: cjson.StringValue("")},
		cjson.Member{Key: "room_id", Value: cjson.Value{}},
		cjson.Member{Key: "prev_events", Value: cjson.ArrayValue()},
		cjson.Member{Key: "auth_events", Value: cjson.ArrayValue()},
		cjson.Member{Key: "content", Value: cjson.ObjectValue(cjson.Member{Key: "room_version", Value: cjson.StringValue("12")})},
	)
	e := build(t, v, create)
	if e.RoomID() != "!"+e.ID()[1:] {
		t.Errorf("room ID %s, event ID %s", e.RoomID(), e.ID())
	}
	if _, err := Build(v, create.With("room_id", cjson.StringValue(e.RoomID())), "example.org", testKey(t)); !errors.Is(err, ErrFormat) {
		t.Errorf("v12 create with a room_id: %v", err)
	}
	if _, err := Build(v, proto(v, cjson.Member{Key: "room_id", Value: cjson.StringValue("!room:example.org")}), "example.org", testKey(t)); !errors.Is(err, ErrFormat) {
		t.Errorf("v12 event with a domain room ID: %v", err)
	}
	v11 := roomversion.MustLookup("11")
	if _, err := Build(v11, proto(v11, cjson.Member{Key: "room_id", Value: cjson.StringValue(e.RoomID())}), "example.org", testKey(t)); !errors.Is(err, ErrFormat) {
		t.Errorf("v11 event with a hash room ID: %v", err)
	}
}

func TestRedactsLocation(t *testing.T) {
	target := "$" + strings.Repeat("x", 43)
	v10, v11 := roomversion.MustLookup("10"), roomversion.MustLookup("11")
	e10 := build(t, v10, proto(v10, cjson.Member{Key: "type", Value: cjson.StringValue("m.room.redaction")},
		cjson.Member{Key: "redacts", Value: cjson.StringValue(target)}))
	e11 := build(t, v11, proto(v11, cjson.Member{Key: "type", Value: cjson.StringValue("m.room.redaction")},
		cjson.Member{Key: "content", Value: cjson.ObjectValue(cjson.Member{Key: "redacts", Value: cjson.StringValue(target)})}))
	if e10.Redacts() != target || e11.Redacts() != target {
		t.Errorf("redacts: v10 %q v11 %q", e10.Redacts(), e11.Redacts())
	}
	if e10.Redacted().Redacts() != "" || e11.Redacted().Redacts() != target {
		t.Errorf("redacts after redaction: v10 %q v11 %q", e10.Redacted().Redacts(), e11.Redacted().Redacts())
	}
	// A redacts that is not a string names nothing but is not invalid.
	odd := build(t, v10, proto(v10, cjson.Member{Key: "type", Value: cjson.StringValue("m.room.redaction")},
		cjson.Member{Key: "redacts", Value: cjson.IntValue(1)}))
	if odd.Redacts() != "" {
		t.Errorf("non-string redacts read as %q", odd.Redacts())
	}
}

func TestFormatErrors(t *testing.T) {
	long := strings.Repeat("x", 256)
	many := func(n int, v *roomversion.Version) cjson.Value {
		items := make([]cjson.Value, n)
		for i := range items {
			items[i] = refFor(v, i)
		}
		return cjson.ArrayValue(items...)
	}
	v1, v3, v4, v10 := roomversion.MustLookup("1"), roomversion.MustLookup("3"), roomversion.MustLookup("4"), roomversion.MustLookup("10")
	cases := []struct {
		name  string
		v     *roomversion.Version
		over  []cjson.Member
		field string
	}{
		{"no type", v10, []cjson.Member{{Key: "type", Value: cjson.Value{}}}, "type"},
		{"type not string", v10, []cjson.Member{{Key: "type", Value: cjson.IntValue(1)}}, "type"},
		{"type too long", v10, []cjson.Member{{Key: "type", Value: cjson.StringValue(long)}}, "type"},
		{"state_key too long", v10, []cjson.Member{{Key: "state_key", Value: cjson.StringValue(long)}}, "state_key"},
		{"bad sender", v10, []cjson.Member{{Key: "sender", Value: cjson.StringValue("alice")}}, "sender"},
		{"bad room", v10, []cjson.Member{{Key: "room_id", Value: cjson.StringValue("room")}}, "room_id"},
		{"no room", v10, []cjson.Member{{Key: "room_id", Value: cjson.Value{}}}, "room_id"},
		{"content not object", v10, []cjson.Member{{Key: "content", Value: cjson.StringValue("x")}}, "content"},
		{"no depth", v10, []cjson.Member{{Key: "depth", Value: cjson.Value{}}}, "depth"},
		{"negative depth", v10, []cjson.Member{{Key: "depth", Value: cjson.IntValue(-1)}}, "depth"},
		{"ts not integer", v10, []cjson.Member{{Key: "origin_server_ts", Value: cjson.StringValue("1")}}, "origin_server_ts"},
		{"21 prev events", v10, []cjson.Member{{Key: "prev_events", Value: many(21, v10)}}, "prev_events"},
		{"11 auth events", v10, []cjson.Member{{Key: "auth_events", Value: many(11, v10)}}, "auth_events"},
		{"v1 ref not a pair", v1, []cjson.Member{{Key: "prev_events", Value: cjson.StringArray([]string{"$a:b"})}}, "prev_events[0]"},
		{"v1 no event_id", v1, []cjson.Member{{Key: "event_id", Value: cjson.Value{}}}, "event_id"},
		{"v1 hash event_id", v1, []cjson.Member{{Key: "event_id", Value: cjson.StringValue("$" + strings.Repeat("a", 43))}}, "event_id"},
		{"v3 url-safe ref", v3, []cjson.Member{{Key: "prev_events", Value: cjson.ArrayValue(refFor(v4, 1))}}, "prev_events[0]"},
		{"v4 standard ref", v4, []cjson.Member{{Key: "auth_events", Value: cjson.ArrayValue(refFor(v3, 1))}}, "auth_events[0]"},
		{"v4 domain ref", v4, []cjson.Member{{Key: "auth_events", Value: cjson.StringArray([]string{"$a:b"})}}, "auth_events[0]"},
		{"too big", v10, []cjson.Member{{Key: "content", Value: cjson.ObjectValue(cjson.Member{Key: "body", Value: cjson.StringValue(strings.Repeat("x", MaxEventSize))})}}, "event"},
	}
	for _, c := range cases {
		_, err := Build(c.v, proto(c.v, c.over...), "example.org", testKey(t))
		var fe *FormatError
		if !errors.As(err, &fe) || !errors.Is(err, ErrFormat) {
			t.Errorf("%s: got %v, want a FormatError", c.name, err)
			continue
		}
		if fe.Field != c.field {
			t.Errorf("%s: field %q, want %q (%v)", c.name, fe.Field, c.field, err)
		}
	}
	// Without hashes or signatures (not built by Build).
	for _, drop := range []string{"hashes", "signatures"} {
		e := build(t, v10, proto(v10))
		if _, err := FromValue(v10, e.JSON().Without(drop)); !errors.Is(err, ErrFormat) {
			t.Errorf("without %s: %v", drop, err)
		}
	}
}

func TestCanonicalJSONRulesPerVersion(t *testing.T) {
	for _, v := range roomversion.All() {
		e := build(t, v, proto(v))
		wire := strings.Replace(string(e.Canonical()), `"depth":5`, `"depth":5,"x":1.5,"y":9007199254740993`, 1)
		_, err := Parse(v, []byte(wire))
		if v.StrictCanonicalJSON && !errors.Is(err, cjson.ErrNumber) {
			t.Errorf("v%s accepted a float: %v", v.ID, err)
		}
		if !v.StrictCanonicalJSON && err != nil {
			t.Errorf("v%s rejected a float: %v", v.ID, err)
		}
	}
}

func TestEventIDIgnoredInHashedVersions(t *testing.T) {
	v := roomversion.MustLookup("10")
	e := build(t, v, proto(v))
	withID := e.JSON().With("event_id", cjson.StringValue("$spoof:evil.example"))
	p, err := FromValue(v, withID)
	if err != nil {
		t.Fatal(err)
	}
	if p.ID() != e.ID() || p.JSON().Has("event_id") {
		t.Errorf("event_id in the body changed the ID: %s vs %s", p.ID(), e.ID())
	}
}

// Unsigned data is not signed: relaying servers can change it, so it must
// never make an event invalid, and only the keys a PDU may carry are kept.
func TestUnsignedIsSanitised(t *testing.T) {
	v := roomversion.MustLookup("10")
	e := build(t, v, proto(v))
	wire := string(e.Canonical())
	cases := []struct{ unsigned, want string }{
		{`5`, ``},
		{`{"age":12,"redacted_because":{"x":1.5},"prev_content":{},"junk":"` + strings.Repeat("x", 70000) + `"}`, `{"age":12}`},
		{`{"invite_room_state":[],"knock_room_state":[],"transaction_id":"t"}`, `{"invite_room_state":[],"knock_room_state":[]}`},
	}
	for _, c := range cases {
		in := strings.TrimSuffix(wire, "}") + `,"unsigned":` + c.unsigned + "}"
		p, err := Parse(v, []byte(in))
		if err != nil {
			t.Errorf("unsigned %.40s: %v", c.unsigned, err)
			continue
		}
		if got := p.Unsigned(); c.want == "" && got.Exists() || c.want != "" && got.String() != c.want {
			t.Errorf("unsigned %.40s kept as %s, want %s", c.unsigned, got, c.want)
		}
		if p.ID() != e.ID() {
			t.Errorf("unsigned data changed the event ID")
		}
	}
	// A kept key must still follow the number rules, as elsewhere.
	in := strings.TrimSuffix(wire, "}") + `,"unsigned":{"age":1.5}}`
	if _, err := Parse(v, []byte(in)); !errors.Is(err, cjson.ErrNumber) {
		t.Errorf("float age in v10: %v", err)
	}
}

func TestContentHashIgnoresTransitKeys(t *testing.T) {
	v := roomversion.MustLookup("4")
	e := build(t, v, proto(v))
	lookup := lookupFor(map[string]*keys.SigningKey{"example.org": testKey(t)}, keys.NoExpiry)
	for _, k := range []string{"age_ts", "outlier", "destinations"} {
		p, err := FromValue(v, e.JSON().With(k, cjson.BoolValue(false)))
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Verify(lookup); err != nil {
			t.Errorf("%s at the top level broke verification: %v", k, err)
		}
	}
}

func TestV12CreateNeedsEmptyStateKey(t *testing.T) {
	v := roomversion.MustLookup("12")
	// A non-state m.room.create is an ordinary event: it needs a room_id.
	if _, err := Build(v, proto(v, cjson.Member{Key: "type", Value: cjson.StringValue("m.room.create")},
		cjson.Member{Key: "room_id", Value: cjson.Value{}}), "example.org", testKey(t)); !errors.Is(err, ErrFormat) {
		t.Errorf("non-state create without room_id: %v", err)
	}
	// m.room.create with another state key is not the create event either.
	e, err := Build(v, proto(v, cjson.Member{Key: "type", Value: cjson.StringValue("m.room.create")},
		cjson.Member{Key: "state_key", Value: cjson.StringValue("x")}), "example.org", testKey(t))
	if err != nil || e.RoomID() != roomIDFor(v) {
		t.Errorf("create with state key x: %v, room %s", err, e.RoomID())
	}
}

func TestHashAndSignDropsEventIDInHashedVersions(t *testing.T) {
	lookup := lookupFor(map[string]*keys.SigningKey{"example.org": testKey(t)}, keys.NoExpiry)
	for _, v := range roomversion.All() {
		p := proto(v)
		if v.HashEventIDs() {
			p = p.With("event_id", cjson.StringValue("$made:up.example"))
		}
		e := build(t, v, p)
		if err := e.Verify(lookup); err != nil {
			t.Errorf("v%s: %v", v.ID, err)
		}
	}
}

// Room versions 1–10 keep events whose fields are over 255 bytes but within
// 255 code points, as rejected; from 11 they are invalid.
func TestByteLimitsPerVersion(t *testing.T) {
	wide := strings.Repeat("é", 200)    // 400 bytes, 200 code points
	tooWide := strings.Repeat("é", 300) // 300 code points
	for _, v := range roomversion.All() {
		for _, c := range []struct {
			name, field string
			val         string
		}{
			{"type", "type", wide},
			{"state_key", "state_key", wide},
			{"sender", "sender", "@" + wide + ":example.org"},
		} {
			e, err := Build(v, proto(v, cjson.Member{Key: c.field, Value: cjson.StringValue(c.val)}), "example.org", testKey(t))
			if v.StrictByteLimits {
				if !errors.Is(err, ErrFormat) {
					t.Errorf("v%s: %s over 255 bytes: %v", v.ID, c.name, err)
				}
				continue
			}
			if err != nil || e.LimitViolation() == nil {
				t.Errorf("v%s: %s over 255 bytes within 255 code points: err %v, violation %v", v.ID, c.name, err, e)
			}
		}
		if _, err := Build(v, proto(v, cjson.Member{Key: "type", Value: cjson.StringValue(tooWide)}), "example.org", testKey(t)); !errors.Is(err, ErrFormat) {
			t.Errorf("v%s: type over 255 code points: %v", v.ID, err)
		}
		if e := build(t, v, proto(v)); e.LimitViolation() != nil {
			t.Errorf("v%s: ordinary event has a violation: %v", v.ID, e.LimitViolation())
		}
	}
}
