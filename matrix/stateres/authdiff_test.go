package stateres

import (
	"testing"

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
