package stateres

import (
	"testing"

	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// TestAuthDifferenceCountsStateEvents pins which events form the full
// conflicted set when an unconflicted event is cited by the events of only
// one state.
//
//	create ← alice-join ← pl1 ← jr-public ─┬─ bob-join   (cites jr-public)
//	                                        └─ bob-ban    (alice bans bob, who
//	                                                       never joined on this
//	                                                       side: cites no join rules)
//
// jr-public is in both states, unconflicted. Taking each state's full auth
// chain to include the state's own events, as the reference implementation
// does, it is in both chains and so not in the auth difference; by the
// spec's literal wording (only the events' auth chains) it would be in the
// first chain only and be replayed. The conflicted events are in the full
// conflicted set either way.
func TestAuthDifferenceCountsStateEvents(t *testing.T) {
	forVersions(t, []string{"10", "12"}, func(t *testing.T, r *room) {
		alice, bob := user("alice"), user("bob")
		fork := r.setup(nil, nil)
		r.member("bob-join", bob, bob, "join", fork)
		r.member("bob-ban", alice, bob, "ban", fork)
		r.mustAccept("bob-join", "bob-ban")

		states := []StateMap{r.after["bob-join"], r.after["bob-ban"]}
		g := newGraph(r.v, 16)
		cp := g.begin(r.src)
		conflicted := conflictedKeys(states, false)
		if err := loadStates(g, cp, states, conflicted); err != nil {
			t.Fatal(err)
		}
		flags, _ := fullConflicted(g, states, conflicted, r.v.StateRes == roomversion.StateResV21)
		full := map[string]bool{}
		for x, f := range flags {
			if f&fFull != 0 {
				full[r.nameOf(g.evs[x].ID())] = true
			}
		}
		if len(full) != 2 || !full["bob-join"] || !full["bob-ban"] {
			t.Errorf("full conflicted set %v, want exactly bob-join and bob-ban", full)
		}
	})
}

// TestV1NoConflictingEventPasses covers a gap in the v1 text: when no event
// of an ordinary conflicted key passes the auth rules in R, the oldest one
// (the last the algorithm tries) is kept rather than dropping the key, as
// the reference implementation does.
//
//	… ← fork ─┬─ t1 (bob's topic, depth d+1)
//	          └─ m ← t2 (bob's topic, depth d+2)
//
// bob has power 0 and topics need 50, so both topics fail; states claiming
// them (a faulty server's) still have to resolve deterministically.
func TestV1NoConflictingEventPasses(t *testing.T) {
	forVersions(t, []string{"1"}, func(t *testing.T, r *room) {
		bob := user("bob")
		fork := r.setup(nil, []string{"bob"})
		r.topic("t1", bob, "one", fork)
		r.message("m", bob, fork)
		r.topic("t2", bob, "two", "m")
		if r.reject["t1"] == nil || r.reject["t2"] == nil {
			t.Fatal("bob's topics should fail the auth rules")
		}
		base := r.after[fork]
		st := r.resolveStates(r.with(base, "m.room.topic", "", "t1"), r.with(base, "m.room.topic", "", "t2"))
		r.expect(st, "m.room.topic", "", "t1")
	})
}

// TestRejectedEventsStayOut: an event the Source reports as rejected never
// enters the resolved state, even when it would pass the auth rules
// against the partially resolved state (a faulty or hostile server's state
// map can name it).
//
//	… ← fork ─┬─ t2 (alice's topic, older)
//	          └─ t1 (alice's topic, newer; marked rejected)
func TestRejectedEventsStayOut(t *testing.T) {
	forVersions(t, []string{"10", "12"}, func(t *testing.T, r *room) {
		alice := user("alice")
		fork := r.setup(nil, nil)
		r.topic("t2", alice, "two", fork)
		r.topic("t1", alice, "one", fork)
		r.mustAccept("t1", "t2")
		st := r.resolve("t1", "t2")
		r.expect(st, "m.room.topic", "", "t1") // the newer wins while t1 is good
		r.src.RejectedIDs[r.id("t1")] = true
		r.res = NewResolver(r.v) // forget what was loaded with t1 accepted
		st = r.resolve("t1", "t2")
		r.expect(st, "m.room.topic", "", "t2")
	})
}

func TestIsPowerEvent(t *testing.T) {
	r := newRoom(t, "10")
	alice, bob := user("alice"), user("bob")
	r.setup(nil, []string{"bob"})
	cases := []struct {
		ev   string
		want bool
	}{
		{"create", true}, {"pl1", true}, {"jr-public", true}, {"alice-join", false},
	}
	r.powerLevels("pl-x", alice, nil)
	for _, c := range cases {
		if got := IsPowerEvent(r.events[c.ev]); got != c.want {
			t.Errorf("%s: %v, want %v", c.ev, got, c.want)
		}
	}
	plx := r.build("pl-other-key", alice, "m.room.power_levels", str("x"), obj("users", cjson.ObjectValue()))
	jrx := r.build("jr-other-key", alice, "m.room.join_rules", str("x"), obj("join_rule", "public"))
	kick := r.member("kick", alice, bob, "leave")
	for _, c := range []struct {
		ev   *event.Event
		want bool
	}{{plx, false}, {jrx, false}, {kick, true}} {
		if got := IsPowerEvent(c.ev); got != c.want {
			k, _ := c.ev.StateKey()
			t.Errorf("%s %q: %v, want %v", c.ev.Type(), k, got, c.want)
		}
	}
}

// TestV1MemberKeysResolveIndependently: in v1 every conflicted member key
// is checked against R as it was before the member keys, as the reference
// implementation does, so one member key's result never depends on
// another's (nor on the order of their state keys).
//
//	… ← fork ─┬─ m2 (amod changes display name: amod's key conflicted)
//	          └─ k  (amod kicks bob: bob's key conflicted)
//
// amod's membership is conflicted, so it is absent from R while the member
// keys are resolved: the kick is not allowed and bob stays joined.
func TestV1MemberKeysResolveIndependently(t *testing.T) {
	forVersions(t, []string{"1"}, func(t *testing.T, r *room) {
		amod, bob := user("amod"), user("bob")
		fork := r.setup(map[string]int64{amod: 50}, []string{"amod", "bob"})
		r.rename("m2", amod, "Mod", fork)
		r.member("k", amod, bob, "leave", fork)
		r.mustAccept("m2", "k")
		st := r.resolve("m2", "k")
		r.expect(st, "m.room.member", amod, "m2")
		r.expect(st, "m.room.member", bob, "bob-join")
	})
}

// TestStep1WalkStaysInFullConflictedSet: step 1 adds to the power events
// the events of their auth chains that are in the full conflicted set,
// following auth edges only between events of that set (as the reference
// implementation builds its graph). An unconflicted event breaks the chain.
//
//	… ← j1 (bob joins) ─┬─ j2 (bob renames; an earlier origin_server_ts)
//	                    └─ pl2 (bob re-sends power levels; cites j1) ← p (alice kicks carol)
//
// The states are after p, and after j2 with pl2 (a state a server can
// claim): pl2 is unconflicted, bob's membership (j1 / j2) and carol's
// (carol-join / p) are conflicted. p is a power event whose auth chain
// reaches j1 only through pl2, outside the full conflicted set, so j1 is
// not replayed with the power events: j1 and j2 go through mainline order
// (j2 first, by timestamp), and j1 ends up in the state (v2; see below for
// v2.1).
func TestStep1WalkStaysInFullConflictedSet(t *testing.T) {
	forVersions(t, []string{"10", "12"}, func(t *testing.T, r *room) {
		alice, bob, carol := user("alice"), user("bob"), user("carol")
		levels := map[string]int64{bob: 100}
		r.setup(levels, []string{"carol"})
		r.member("j1", bob, bob, "join")
		r.nextTS = r.ts - 1000
		r.rename("j2", bob, "Bob", "j1")
		r.powerLevels("pl2", bob, r.creatorLevels(alice, levels), "j1")
		r.member("p", alice, carol, "leave", "pl2")
		r.mustAccept("j1", "j2", "pl2", "p")
		st := r.resolveStates(r.after["p"], r.with(r.after["j2"], "m.room.power_levels", "", "pl2"))
		if r.v.StateRes == roomversion.StateResV21 {
			// v2.1: pl2 lies on the auth path p → pl2 → j1 between two
			// conflicted events, so it is in the conflicted state subgraph
			// and the walk does reach j1: j1 is replayed with the power
			// events and j2, replayed after it, stays.
			r.expect(st, "m.room.member", bob, "j2")
		} else {
			r.expect(st, "m.room.member", bob, "j1")
		}
		r.expect(st, "m.room.member", carol, "p")
	})
}
