package stateres

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/axon-hs/axon/matrix/auth"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/roomversion"
)

func seededRNG(seed uint64) *rand.Rand {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return rand.New(rand.NewChaCha8(s))
}

// randomRoom grows a DAG of n events with concurrent branches: each event
// follows one tip, merges two tips, or forks from an older event, and is a
// power level change, a membership change (join, leave, invite, kick, ban,
// rename), a join rules change, a topic or a message by a random member.
// Many are rejected by the auth rules; the harness records that. It
// returns the room and its tips (the forward extremities).
func randomRoom(tb testing.TB, version string, seed uint64, n int) (*room, []string) {
	r := newRoom(tb, version)
	rng := seededRNG(seed)
	alice := user("alice")
	people := []string{alice, user("bob"), user("carol"), user("dave"), user("eve"), user("frank")}
	r.setup(map[string]int64{user("bob"): 100, user("carol"): 50}, []string{"bob", "carol", "dave", "eve"})
	tips := []string{r.last}
	var all []string
	for i := range n {
		var prevs []string
		switch x := rng.IntN(10); {
		case x < 3 && len(tips) >= 2:
			a := rng.IntN(len(tips))
			b := (a + 1 + rng.IntN(len(tips)-1)) % len(tips)
			prevs = []string{tips[a], tips[b]}
		case x < 5 && len(all) > 0:
			prevs = []string{all[rng.IntN(len(all))]}
		default:
			prevs = []string{tips[rng.IntN(len(tips))]}
		}
		name := fmt.Sprintf("e%d", i)
		sender := people[rng.IntN(len(people))]
		target := people[rng.IntN(len(people))]
		switch rng.IntN(9) {
		case 0:
			levels := map[string]int64{}
			for _, p := range people[1:4] {
				levels[p] = []int64{0, 50, 100}[rng.IntN(3)]
			}
			r.powerLevels(name, sender, r.creatorLevels(alice, levels), prevs...)
		case 1:
			r.joinRules(name, sender, []string{"public", "invite"}[rng.IntN(2)], prevs...)
		case 2:
			r.member(name, sender, sender, []string{"join", "leave"}[rng.IntN(2)], prevs...)
		case 3:
			r.member(name, sender, target, []string{"invite", "leave", "ban"}[rng.IntN(3)], prevs...)
		case 4:
			r.rename(name, sender, name, prevs...)
		case 5, 6:
			r.topic(name, sender, name, prevs...)
		default:
			r.message(name, sender, prevs...)
		}
		for _, p := range prevs {
			tips = slices.DeleteFunc(tips, func(t string) bool { return t == p })
		}
		tips = append(tips, name)
		all = append(all, name)
	}
	return r, tips
}

// shuffled returns the states in a random order, each rebuilt by inserting
// its entries in a random order.
func shuffled(rng *rand.Rand, states []StateMap) []StateMap {
	out := make([]StateMap, len(states))
	for i, j := range rng.Perm(len(states)) {
		keys := slices.Collect(maps.Keys(states[j]))
		slices.SortFunc(keys, compareKeys)
		rng.Shuffle(len(keys), func(a, b int) { keys[a], keys[b] = keys[b], keys[a] })
		m := make(StateMap)
		for _, k := range keys {
			m[k] = states[j][k]
		}
		out[i] = m
	}
	return out
}

// TestProperties checks on random DAGs, for each algorithm, that the
// resolution does not depend on the order of the states or of their
// entries, that resolving a state with itself gives it back, that a
// resolved state resolves to itself, and that keys every state agrees on
// keep their value.
func TestProperties(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 8
	}
	for _, version := range []string{"1", "10", "12"} {
		t.Run("v"+version, func(t *testing.T) {
			for seed := range uint64(seeds) {
				r, tips := randomRoom(t, version, seed, 45)
				rng := seededRNG(seed + 1000)
				states := make([]StateMap, len(tips))
				for i, tip := range tips {
					states[i] = r.after[tip]
				}
				// Also resolve states that were never after the same DAG
				// point: a few older events' states with the tips.
				for range 2 {
					states = append(states, r.after[fmt.Sprintf("e%d", rng.IntN(45))])
				}
				want, err := Resolve(r.v, states, r.src)
				if err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
				for range 6 {
					got, err := Resolve(r.v, shuffled(rng, states), r.src)
					if err != nil {
						t.Fatalf("seed %d: %v", seed, err)
					}
					if !maps.Equal(got, want) {
						t.Fatalf("seed %d: resolution depends on the order of the states:\n%v\n%v", seed, diff(r, want, got), states)
					}
				}
				for _, s := range append(states, want) {
					for _, in := range [][]StateMap{{s}, {s, s}, {s, maps.Clone(s), s}} {
						got, err := Resolve(r.v, in, r.src)
						if err != nil {
							t.Fatalf("seed %d: %v", seed, err)
						}
						if !maps.Equal(got, s) {
							t.Fatalf("seed %d: resolving a state with itself changed it: %v", seed, diff(r, s, got))
						}
					}
				}
				for k, id := range states[0] {
					agreed := true
					for _, s := range states[1:] {
						agreed = agreed && s[k] == id
					}
					if agreed && want[k] != id {
						t.Fatalf("seed %d: unconflicted %v changed from %s to %s", seed, k, r.nameOf(id), r.nameOf(want[k]))
					}
				}
			}
		})
	}
}

func diff(r *room, a, b StateMap) string {
	var out string
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, compareKeys)
	for _, k := range keys {
		if a[k] != b[k] {
			out += fmt.Sprintf("  %v: %s vs %s\n", k, r.nameOf(a[k]), r.nameOf(b[k]))
		}
	}
	return out
}

// TestErrors checks that unknown events, states naming events under the
// wrong key and cycles in auth events are errors naming the event.
func TestErrors(t *testing.T) {
	for _, version := range []string{"1", "10", "12"} {
		t.Run("v"+version, func(t *testing.T) {
			r := newRoom(t, version)
			bob := user("bob")
			r.setup(map[string]int64{bob: 50}, []string{"bob"})
			r.rename("bob-rename", bob, "Bob")
			r.topic("t1", bob, "one", "bob-rename")
			r.topic("t2", user("alice"), "two", "bob-rename")
			r.mustAccept("t1", "t2")
			a, b := r.after["t1"], r.after["t2"]

			// A state names an event the source does not know.
			ghost := maps.Clone(b)
			ghostID := "$ghost:example.org"
			if r.v.HashEventIDs() {
				ghostID = "$Z2hvc3Q"
			}
			ghost[auth.StateKey{Type: "m.room.name"}] = ghostID
			_, err := Resolve(r.v, []StateMap{a, ghost}, r.src)
			var missing *MissingEventError
			if !errors.As(err, &missing) || missing.EventID != ghostID || !errors.Is(err, ErrMissingEvent) {
				t.Errorf("unknown state event: got %v", err)
			}

			// An event under another key.
			wrong := r.with(b, "m.room.name", "", "t2")
			if _, err := Resolve(r.v, []StateMap{a, wrong}, r.src); !errors.Is(err, ErrInvalidState) {
				t.Errorf("event under the wrong key: got %v", err)
			}

			// An event of another room.
			other := newRoom(t, version)
			other.roomID = "!other:example.org"
			other.ts += 1000 // a different create event in room version 12
			other.setup(nil, nil)
			other.topic("elsewhere", user("alice"), "x")
			for _, ev := range other.src.Events {
				if r.src.Events[ev.ID()] == nil {
					r.src.Add(ev, false)
				}
			}
			mixed := maps.Clone(b)
			mixed[auth.StateKey{Type: "m.room.topic"}] = other.id("elsewhere")
			if _, err := Resolve(r.v, []StateMap{a, mixed}, r.src); !errors.Is(err, ErrInvalidState) {
				t.Errorf("event of another room: got %v", err)
			}

			// An auth event the source lacks (v2 walks auth chains).
			if version != "1" {
				partial := NewMapSource()
				for id, ev := range r.src.Events {
					if id != r.id("bob-join") {
						partial.Add(ev, false)
					}
				}
				_, err := Resolve(r.v, []StateMap{a, b}, partial)
				if !errors.As(err, &missing) || missing.EventID != r.id("bob-join") || missing.ReferencedBy == "" {
					t.Errorf("unknown auth event: got %v", err)
				}
				if _, err := AuthChain(partial, []string{r.id("t1")}); !errors.Is(err, ErrMissingEvent) {
					t.Errorf("AuthChain with an unknown auth event: got %v", err)
				}
			}
		})
	}
}

// TestAuthCycle builds room version 2 events (event IDs chosen by the
// sender) whose auth events point at each other; resolution must fail.
func TestAuthCycle(t *testing.T) {
	r := newRoom(t, "2")
	fork := r.setup(nil, []string{"bob"})
	r.topic("t1", user("bob"), "one", fork)
	mk := func(id, authOf string) *event.Event {
		ev, err := event.Build(r.v, obj(
			"event_id", id, "type", "m.room.name", "state_key", "", "sender", user("alice"),
			"room_id", r.roomID, "content", obj("name", id), "origin_server_ts", 1, "depth", 9,
			"prev_events", cjson.ArrayValue(),
			"auth_events", cjson.ArrayValue(r.ref(authOf), r.ref(r.id("create")))), "example.org", r.key)
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	x, y := mk("$x:example.org", "$y:example.org"), mk("$y:example.org", "$x:example.org")
	r.src.Add(x, false)
	r.src.Add(y, false)
	b := maps.Clone(r.after["t1"])
	b[auth.StateKey{Type: "m.room.name"}] = x.ID()
	_, err := Resolve(r.v, []StateMap{r.after[fork], b}, r.src)
	if !errors.Is(err, ErrAuthCycle) {
		t.Fatalf("got %v, want a cycle error", err)
	}
	t.Log(err)
}

// TestTrivial checks the inputs that need no events.
func TestTrivial(t *testing.T) {
	r := newRoom(t, "12")
	r.setup(nil, []string{"bob"})
	s := r.after[r.last]
	for _, v := range []string{"1", "10", "12"} {
		ver := roomversion.MustLookup(v)
		got, err := Resolve(ver, nil, nil)
		if err != nil || got == nil || len(got) != 0 {
			t.Errorf("v%s: no states: %v %v", v, got, err)
		}
		got, err = Resolve(ver, []StateMap{s, s}, nil)
		if err != nil || !maps.Equal(got, s) {
			t.Errorf("v%s: identical states without a source: %v %v", v, got, err)
		}
		got[keyCreate] = "changed"
		if s[keyCreate] == "changed" {
			t.Fatal("Resolve returned its input map")
		}
	}
	// nil maps are empty states.
	for _, v := range []string{"1", "10", "12"} {
		ver := roomversion.MustLookup(v)
		inputs := [][]StateMap{{nil}, {nil, nil}}
		if v == "12" { // s holds room version 12 events
			inputs = append(inputs, []StateMap{nil, s}, []StateMap{s, nil})
		}
		for _, in := range inputs {
			got, err := Resolve(ver, in, r.src)
			if err != nil || got == nil {
				t.Errorf("v%s: %d states with nil maps: %v %v", v, len(in), got, err)
			}
		}
	}
	if _, err := Resolve(nil, nil, nil); err == nil {
		t.Error("no room version: no error")
	}
}

// TestAuthChain checks AuthChain against the definition: the auth events,
// theirs, and so on, without the starting events themselves.
func TestAuthChain(t *testing.T) {
	r := newRoom(t, "10")
	bob := user("bob")
	r.setup(map[string]int64{bob: 50}, []string{"bob"})
	r.topic("t", bob, "x")
	got, err := AuthChain(r.src, []string{r.id("t")})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, n := range []string{"create", "alice-join", "pl1", "jr-public", "bob-join"} {
		want = append(want, r.id(n))
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("AuthChain = %v, want %v", got, want)
	}
}

// TestRejectedAuthEventsIgnored: the iterative auth checks read a key the
// partial state lacks from the event's auth events only if that auth event
// was not rejected. In room version 12 the replay starts empty, so bob's
// join rules changes (see TestScenarioV2VersusV21 (a)) need bob's
// membership from their auth events; when the source says bob's join was
// rejected, both fail and the room is left without join rules.
func TestRejectedAuthEventsIgnored(t *testing.T) {
	r := newRoom(t, "12")
	bob := user("bob")
	r.setup(map[string]int64{bob: 100}, []string{"bob", "carol"})
	r.joinRules("jr-invite", bob, "invite")
	r.joinRules("jr-public2", bob, "public")
	r.member("bob-leave", bob, bob, "leave")
	good := r.after["bob-leave"]
	bad := r.with(good, "m.room.join_rules", "", "jr-invite")
	r.expect(r.resolveStates(good, bad), "m.room.join_rules", "", "jr-public2")
	r.src.Add(r.events["bob-join"], true)
	r.expect(r.resolveStates(good, bad), "m.room.join_rules", "", "")
}

// TestResolverRollback: a Resolver whose resolution failed on an unknown
// auth event forgets what it loaded, and once the event is known resolves
// as a fresh Resolve does.
func TestResolverRollback(t *testing.T) {
	for _, version := range []string{"10", "12"} {
		r, tips := randomRoom(t, version, 7, 40)
		states := make([]StateMap, len(tips))
		for i, tip := range tips {
			states[i] = r.after[tip]
		}
		want, err := Resolve(r.v, states, r.src)
		if err != nil {
			t.Fatal(err)
		}
		partial := NewMapSource()
		for id, ev := range r.src.Events {
			if id != r.id("alice-join") {
				partial.Add(ev, r.src.Rejected(id))
			}
		}
		res := NewResolver(r.v)
		if _, err := res.Resolve(states, partial); !errors.Is(err, ErrMissingEvent) {
			t.Fatalf("v%s: got %v, want a missing event error", version, err)
		}
		if len(res.g.evs) != 0 || len(res.g.idx) != 0 || len(res.g.order) != 0 || len(res.g.authOff) != 1 {
			t.Fatalf("v%s: the failed resolution left %d nodes", version, len(res.g.evs))
		}
		got, err := res.Resolve(states, r.src)
		if err != nil || !maps.Equal(got, want) {
			t.Fatalf("v%s: after the failure: %v\n%s", version, err, diff(r, want, got))
		}
	}
}
