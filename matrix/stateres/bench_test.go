package stateres

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/axon-hs/axon/matrix/auth"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// chain appends signed events to one line of history, keeping the state
// after the last event. Auth events are chosen from that state by
// auth.Selection's rules; every event must pass the auth rules.
type chain struct {
	tb     testing.TB
	v      *roomversion.Version
	src    *MapSource
	roomID string
	state  StateMap
	prev   string
	depth  int64
	ts     *int64
	n      *int
}

func (c *chain) fork() *chain {
	d := *c
	d.state = maps.Clone(c.state)
	return &d
}

type stateView struct {
	m   StateMap
	src *MapSource
}

func (s stateView) Get(t, k string) *event.Event {
	return s.src.Events[s.m[auth.StateKey{Type: t, StateKey: k}]]
}

func (c *chain) add(sender, typ string, stateKey *string, content cjson.Value) *event.Event {
	*c.ts++
	*c.n++
	var authIDs []string
	pick := func(t, k string) {
		if id, ok := c.state[auth.StateKey{Type: t, StateKey: k}]; ok {
			authIDs = append(authIDs, id)
		}
	}
	if typ != "m.room.create" {
		if !c.v.RoomIDFromCreate {
			pick("m.room.create", "")
		}
		pick("m.room.power_levels", "")
		pick("m.room.member", sender)
		if typ == "m.room.member" {
			if *stateKey != sender {
				pick("m.room.member", *stateKey)
			}
			if m, _ := content.Get("membership").Str(); m == "join" || m == "invite" {
				pick("m.room.join_rules", "")
			}
		}
	}
	ms := []cjson.Member{
		{Key: "type", Value: cjson.StringValue(typ)},
		{Key: "sender", Value: cjson.StringValue(sender)},
		{Key: "content", Value: content},
		{Key: "origin_server_ts", Value: cjson.IntValue(*c.ts)},
		{Key: "depth", Value: cjson.IntValue(c.depth + 1)},
		{Key: "prev_events", Value: cjson.StringArray(nonEmpty(c.prev))},
		{Key: "auth_events", Value: cjson.StringArray(authIDs)},
	}
	if stateKey != nil {
		ms = append(ms, cjson.Member{Key: "state_key", Value: cjson.StringValue(*stateKey)})
	}
	if typ != "m.room.create" || !c.v.RoomIDFromCreate {
		ms = append(ms, cjson.Member{Key: "room_id", Value: cjson.StringValue(c.roomID)})
	}
	ev, err := event.Build(c.v, cjson.ObjectValue(ms...), "example.org", testKey)
	if err != nil {
		c.tb.Fatal(err)
	}
	if typ == "m.room.create" && c.v.RoomIDFromCreate {
		c.roomID = ev.RoomID()
	}
	if err := auth.Check(ev, stateView{c.state, c.src}); err != nil {
		c.tb.Fatalf("fixture event %d (%s by %s) rejected: %v", *c.n, typ, sender, err)
	}
	c.src.Add(ev, false)
	if stateKey != nil {
		c.state[auth.StateKey{Type: typ, StateKey: *stateKey}] = ev.ID()
	}
	c.prev, c.depth = ev.ID(), c.depth+1
	return ev
}

func nonEmpty(s string) []string {
	if s == "" {
		return []string{}
	}
	return []string{s}
}

func plContent(v *roomversion.Version, users map[string]int64) cjson.Value {
	var us []cjson.Member
	for u, l := range users {
		us = append(us, cjson.Member{Key: u, Value: cjson.IntValue(l)})
	}
	return obj("users", cjson.ObjectValue(us...), "events", obj("org.example.status", 0))
}

type fixture struct {
	v          *roomversion.Version
	src        *MapSource
	states     []StateMap
	events     int
	conflicted int // entries of the conflicted state set
}

// buildFixture makes a room of about 30,000 events: per user a join, a
// display name change and an org.example.status state event, with the
// power levels changing every 2,000 events; then two branches of 600
// events: display name changes of 520 users each (260 of them on both
// sides), kicks in one and bans in the other, and changes of the power
// levels, join rules and topic on each side.
func buildFixture(tb testing.TB, version string) *fixture {
	const users = 9600
	v := roomversion.MustLookup(version)
	ts, n := int64(1_600_000_000_000), 0
	c := &chain{tb: tb, v: v, src: NewMapSource(), roomID: "!bench:example.org", state: StateMap{}, ts: &ts, n: &n}
	alice, bob, carol := user("alice"), user("bob"), user("carol")
	u := func(i int) string { return user(fmt.Sprintf("u%05d", i)) }
	create := obj("room_version", v.ID)
	if v.CreatorInContent {
		create = obj("room_version", v.ID, "creator", alice)
	}
	c.add(alice, "m.room.create", str(""), create)
	c.add(alice, "m.room.member", &alice, obj("membership", "join"))
	levels := map[string]int64{bob: 50, carol: 100}
	if !v.PrivilegedCreators {
		levels[alice] = 100
	}
	c.add(alice, "m.room.power_levels", str(""), plContent(v, levels))
	c.add(alice, "m.room.join_rules", str(""), obj("join_rule", "public"))
	for _, p := range []string{bob, carol} {
		c.add(p, "m.room.member", &p, obj("membership", "join"))
	}
	for i := range users {
		id := u(i)
		c.add(id, "m.room.member", &id, obj("membership", "join"))
		c.add(id, "m.room.member", &id, obj("membership", "join", "displayname", fmt.Sprintf("User %d", i)))
		c.add(id, "org.example.status", &id, obj("status", "here"))
		if i%667 == 0 {
			levels[u(i)] = 10
			c.add(alice, "m.room.power_levels", str(""), plContent(v, levels))
		}
	}

	a, b := c.fork(), c.fork()
	la, lb := maps.Clone(levels), maps.Clone(levels)
	la[u(1)] = 50
	a.add(alice, "m.room.power_levels", str(""), plContent(v, la))
	a.add(alice, "m.room.join_rules", str(""), obj("join_rule", "invite"))
	for i := range 520 {
		id := u(i)
		a.add(id, "m.room.member", &id, obj("membership", "join", "displayname", fmt.Sprintf("A %d", i)))
		if i%13 == 0 {
			t := u(9000 + i/13)
			a.add(bob, "m.room.member", &t, obj("membership", "leave"))
		}
	}
	a.add(alice, "m.room.topic", str(""), obj("topic", "A"))

	lb[u(2)] = 50
	b.add(carol, "m.room.power_levels", str(""), plContent(v, lb))
	b.add(carol, "m.room.join_rules", str(""), obj("join_rule", "public"))
	for i := 260; i < 780; i++ {
		id := u(i)
		b.add(id, "m.room.member", &id, obj("membership", "join", "displayname", fmt.Sprintf("B %d", i)))
		if i%13 == 0 {
			t := u(9100 + i/13)
			b.add(carol, "m.room.member", &t, obj("membership", "ban"))
		}
	}
	b.add(carol, "m.room.topic", str(""), obj("topic", "B"))

	f := &fixture{v: v, src: c.src, states: []StateMap{a.state, b.state}, events: n}
	for k := range conflictedKeys(f.states, false) {
		f.conflicted += len(eventIDsOf(f.states, k))
	}
	return f
}

// BenchmarkResolve30k resolves the two branches of a 30,000 event room:
// "fresh" with Resolve, which loads the whole auth DAG each time; "reused"
// with a Resolver that has already resolved the same room once (as a
// server resolving the state before each new event does).
func BenchmarkResolve30k(b *testing.B) {
	for _, version := range []string{"11", "12"} {
		var f *fixture
		for _, mode := range []string{"fresh", "reused"} {
			b.Run("v"+version+"/"+mode, func(b *testing.B) {
				if f == nil {
					start := time.Now()
					f = buildFixture(b, version)
					b.Logf("room version %s: %d events, %d state keys, %d conflicted state set entries (built in %v)",
						version, f.events, len(f.states[0]), f.conflicted, time.Since(start).Round(time.Millisecond))
				}
				resolve := func() (StateMap, error) { return Resolve(f.v, f.states, f.src) }
				if mode == "reused" {
					res := NewResolver(f.v)
					if _, err := res.Resolve(f.states, f.src); err != nil {
						b.Fatal(err)
					}
					resolve = func() (StateMap, error) { return res.Resolve(f.states, f.src) }
				}
				b.ReportAllocs()
				var out StateMap
				for b.Loop() {
					var err error
					if out, err = resolve(); err != nil {
						b.Fatal(err)
					}
				}
				if len(out) < len(f.states[0]) {
					b.Fatalf("resolved state has %d keys, fewer than %d", len(out), len(f.states[0]))
				}
			})
		}
	}
}
