package stateres

import (
	"bytes"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/axon-hs/axon/matrix/auth"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/keys"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// room builds a room DAG out of real signed events and keeps, for every
// event, the state after it as the spec defines it: the state before an
// event is the resolution of the states after its prev_events; the state
// after a state event that passes the auth rules against the state before
// it is that state with the event in its slot; a message, or an event the
// auth rules reject, leaves the state as it was (rejected events are
// recorded as such in the source).
type room struct {
	tb     testing.TB
	v      *roomversion.Version
	key    *keys.SigningKey
	src    *MapSource
	res    *Resolver // one Resolver for the whole room: exercises its cache
	roomID string
	ids    map[string]string // name → event ID
	events map[string]*event.Event
	after  map[string]StateMap // name → state after the event
	reject map[string]error    // name → why the auth rules rejected it
	last   string              // the last event built
	ts     int64
	nextTS int64 // when non-zero, the origin_server_ts of the next event
}

var testKey = func() *keys.SigningKey {
	k, err := keys.Generate("1", bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	if err != nil {
		panic(err)
	}
	return k
}()

func newRoom(tb testing.TB, version string) *room {
	return &room{
		tb: tb, v: roomversion.MustLookup(version), key: testKey, src: NewMapSource(),
		res:    NewResolver(roomversion.MustLookup(version)),
		roomID: "!room:example.org",
		ids:    map[string]string{}, events: map[string]*event.Event{},
		after: map[string]StateMap{}, reject: map[string]error{},
		ts: 1_700_000_000_000,
	}
}

// user returns the user ID of a local part; "x@server" names another server.
func user(local string) string {
	if l, s, ok := strings.Cut(local, "@"); ok {
		return "@" + l + ":" + s
	}
	return "@" + local + ":example.org"
}

func (r *room) id(name string) string {
	id, ok := r.ids[name]
	if !ok {
		r.tb.Fatalf("no event named %q", name)
	}
	return id
}

func (r *room) ref(id string) cjson.Value {
	if r.v.HashEventIDs() {
		return cjson.StringValue(id)
	}
	return cjson.ArrayValue(cjson.StringValue(id), cjson.ObjectValue(cjson.Member{Key: "sha256", Value: cjson.StringValue("AAAA")}))
}

func (r *room) refs(ids []string) cjson.Value {
	out := make([]cjson.Value, len(ids))
	for i, id := range ids {
		out[i] = r.ref(id)
	}
	return cjson.ArrayValue(out...)
}

// stateBefore is the state before an event whose prev_events are prevs.
func (r *room) stateBefore(prevs ...string) StateMap {
	states := make([]StateMap, len(prevs))
	for i, p := range prevs {
		s, ok := r.after[p]
		if !ok {
			r.tb.Fatalf("no event named %q", p)
		}
		states[i] = s
	}
	return r.resolveStates(states...)
}

func (r *room) stateOf(st StateMap) auth.MapState {
	out := make(auth.MapState, len(st))
	for k, id := range st {
		out[k] = r.src.Event(id)
	}
	return out
}

// build creates, signs and records an event. stateKey nil makes a message.
// prevs nil means "after the last event built".
func (r *room) build(name, sender, typ string, stateKey *string, content cjson.Value, prevs ...string) *event.Event {
	r.tb.Helper()
	if _, dup := r.ids[name]; dup {
		r.tb.Fatalf("event name %q used twice", name)
	}
	if prevs == nil && r.last != "" {
		prevs = []string{r.last}
	}
	var before StateMap
	var prevIDs []string
	depth := int64(0)
	if typ == "m.room.create" {
		before = StateMap{}
	} else {
		before = r.stateBefore(prevs...)
	}
	for _, p := range prevs {
		prevIDs = append(prevIDs, r.id(p))
		depth = max(depth, r.events[p].Depth())
	}
	r.ts++
	ts := r.ts
	if r.nextTS != 0 {
		ts, r.nextTS = r.nextTS, 0
	}
	members := []cjson.Member{
		{Key: "type", Value: cjson.StringValue(typ)},
		{Key: "sender", Value: cjson.StringValue(sender)},
		{Key: "content", Value: content},
		{Key: "origin_server_ts", Value: cjson.IntValue(ts)},
		{Key: "depth", Value: cjson.IntValue(depth + 1)},
		{Key: "prev_events", Value: r.refs(prevIDs)},
	}
	if stateKey != nil {
		members = append(members, cjson.Member{Key: "state_key", Value: cjson.StringValue(*stateKey)})
	}
	if !(r.v.RoomIDFromCreate && typ == "m.room.create") {
		members = append(members, cjson.Member{Key: "room_id", Value: cjson.StringValue(r.roomID)})
	}
	if !r.v.HashEventIDs() {
		members = append(members, cjson.Member{Key: "event_id", Value: cjson.StringValue("$" + name + ":example.org")})
	}
	// A draft without auth events tells which keys the auth events come from.
	draft, err := event.FromValue(r.v, cjson.ObjectValue(append(slices.Clone(members),
		cjson.Member{Key: "auth_events", Value: cjson.ArrayValue()},
		cjson.Member{Key: "hashes", Value: cjson.ObjectValue(cjson.Member{Key: "sha256", Value: cjson.StringValue("x")})},
		cjson.Member{Key: "signatures", Value: cjson.ObjectValue()})...))
	if err != nil {
		r.tb.Fatalf("draft of %s: %v", name, err)
	}
	var authIDs []string
	for _, k := range auth.Selection(draft) {
		if id, ok := before[k]; ok {
			authIDs = append(authIDs, id)
		}
	}
	members = append(members, cjson.Member{Key: "auth_events", Value: r.refs(authIDs)})
	ev, err := event.Build(r.v, cjson.ObjectValue(members...), "example.org", r.key)
	if err != nil {
		r.tb.Fatalf("build %s: %v", name, err)
	}
	if typ == "m.room.create" && r.v.RoomIDFromCreate {
		r.roomID = ev.RoomID()
	}
	rejected := auth.Check(ev, r.stateOf(before))
	r.src.Add(ev, rejected != nil)
	r.ids[name], r.events[name], r.last = ev.ID(), ev, name
	after := before
	if rejected != nil {
		r.reject[name] = rejected
	} else if sk, ok := ev.StateKey(); ok {
		after = maps.Clone(before)
		after[auth.StateKey{Type: typ, StateKey: sk}] = ev.ID()
	}
	r.after[name] = after
	return ev
}

func str(s string) *string { return &s }

func obj(kv ...any) cjson.Value {
	var ms []cjson.Member
	for i := 0; i < len(kv); i += 2 {
		var v cjson.Value
		switch x := kv[i+1].(type) {
		case string:
			v = cjson.StringValue(x)
		case int:
			v = cjson.IntValue(int64(x))
		case int64:
			v = cjson.IntValue(x)
		case []string:
			v = cjson.StringArray(x)
		case cjson.Value:
			v = x
		default:
			panic("obj: unsupported value")
		}
		ms = append(ms, cjson.Member{Key: kv[i].(string), Value: v})
	}
	return cjson.ObjectValue(ms...)
}

// create makes the m.room.create event, sent by creator.
func (r *room) create(creator string, additional ...string) *event.Event {
	c := []any{"room_version", r.v.ID}
	if r.v.CreatorInContent {
		c = append(c, "creator", creator)
	}
	if len(additional) > 0 {
		c = append(c, "additional_creators", additional)
	}
	return r.build("create", creator, "m.room.create", str(""), obj(c...))
}

func (r *room) member(name, sender, target, membership string, prevs ...string) *event.Event {
	return r.build(name, sender, "m.room.member", &target, obj("membership", membership), prevs...)
}

// rename is a join→join membership change setting a display name.
func (r *room) rename(name, sender, display string, prevs ...string) *event.Event {
	return r.build(name, sender, "m.room.member", &sender, obj("membership", "join", "displayname", display), prevs...)
}

// powerLevels sends m.room.power_levels with the given users (creators of
// room version 12 must be left out by the caller) and default levels.
func (r *room) powerLevels(name, sender string, users map[string]int64, prevs ...string) *event.Event {
	var us []cjson.Member
	for u, l := range users {
		us = append(us, cjson.Member{Key: u, Value: cjson.IntValue(l)})
	}
	return r.build(name, sender, "m.room.power_levels", str(""), obj("users", cjson.ObjectValue(us...)), prevs...)
}

func (r *room) joinRules(name, sender, rule string, prevs ...string) *event.Event {
	return r.build(name, sender, "m.room.join_rules", str(""), obj("join_rule", rule), prevs...)
}

func (r *room) topic(name, sender, text string, prevs ...string) *event.Event {
	return r.build(name, sender, "m.room.topic", str(""), obj("topic", text), prevs...)
}

func (r *room) message(name, sender string, prevs ...string) *event.Event {
	return r.build(name, sender, "m.room.message", nil, obj("body", name, "msgtype", "m.text"), prevs...)
}

// creatorLevels returns users with the creator at 100 before room version
// 12; in version 12 creators have infinite power and must not be listed.
func (r *room) creatorLevels(creator string, users map[string]int64) map[string]int64 {
	out := maps.Clone(users)
	if out == nil {
		out = map[string]int64{}
	}
	if !r.v.PrivilegedCreators {
		out[creator] = 100
	}
	return out
}

// mustAccept fails the test when one of the named events was rejected.
func (r *room) mustAccept(names ...string) {
	r.tb.Helper()
	for _, n := range names {
		if err := r.reject[n]; err != nil {
			r.tb.Fatalf("event %s was rejected: %v", n, err)
		}
	}
}

// resolve resolves the states after the named events.
func (r *room) resolve(names ...string) StateMap {
	r.tb.Helper()
	states := make([]StateMap, len(names))
	for i, n := range names {
		states[i] = r.after[n]
	}
	return r.resolveStates(states...)
}

// resolveStates resolves explicit states (also for states a faulty server
// claims, which the DAG walk cannot produce), both with a fresh Resolve and
// with the room's long-lived Resolver, which must agree.
func (r *room) resolveStates(states ...StateMap) StateMap {
	r.tb.Helper()
	st, err := Resolve(r.v, states, r.src)
	if err != nil {
		r.tb.Fatalf("Resolve: %v", err)
	}
	cached, err := r.res.Resolve(states, r.src)
	if err != nil {
		r.tb.Fatalf("Resolver.Resolve: %v", err)
	}
	if !maps.Equal(st, cached) {
		r.tb.Fatalf("Resolver.Resolve differs from Resolve:\n%s", diff(r, st, cached))
	}
	return st
}

// expect checks that st holds the named event at (typ, stateKey), or
// nothing when want is "".
func (r *room) expect(st StateMap, typ, stateKey, want string) {
	r.tb.Helper()
	got, ok := st[auth.StateKey{Type: typ, StateKey: stateKey}]
	switch {
	case want == "" && ok:
		r.tb.Errorf("room %s: (%s, %q) = %s, want nothing", r.v.ID, typ, stateKey, r.nameOf(got))
	case want != "" && got != r.id(want):
		r.tb.Errorf("room %s: (%s, %q) = %s, want %s", r.v.ID, typ, stateKey, r.nameOf(got), want)
	}
}

func (r *room) nameOf(id string) string {
	if id == "" {
		return "nothing"
	}
	for n, x := range r.ids {
		if x == id {
			return n
		}
	}
	return id
}

// with returns a copy of st with (typ, stateKey) set to the named event.
func (r *room) with(st StateMap, typ, stateKey, name string) StateMap {
	out := maps.Clone(st)
	out[auth.StateKey{Type: typ, StateKey: stateKey}] = r.id(name)
	return out
}

// setup builds the common start of the scenarios: alice creates the room
// (with the additional creators given, v12) and joins, sets power levels
// (alice 100 before v12, plus levels), makes the room public, and the
// members join in order. It returns the name of the last event.
func (r *room) setup(levels map[string]int64, members []string, additional ...string) string {
	alice := user("alice")
	r.create(alice, additional...)
	r.member("alice-join", alice, alice, "join")
	r.powerLevels("pl1", alice, r.creatorLevels(alice, levels))
	r.joinRules("jr-public", alice, "public")
	for _, m := range members {
		local, _, _ := strings.Cut(m, "@")
		r.member(local+"-join", user(m), user(m), "join")
	}
	r.mustAccept(slices.Collect(maps.Keys(r.ids))...)
	return r.last
}
