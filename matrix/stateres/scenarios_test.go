package stateres

import (
	"bytes"
	"crypto/sha1"
	"testing"
)

// forVersions runs f as a subtest per room version: "1" uses state
// resolution v1, "10" and "11" v2, "12" v2.1.
func forVersions(t *testing.T, versions []string, f func(t *testing.T, r *room)) {
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) { f(t, newRoom(t, v)) })
	}
}

// Scenario 1: a ban racing a power level change.
//
//	create─alice-join─pl1─jr-public─bob-join─carol-join─eve-join
//	                                                       ├── ban   bob (50) bans eve      (ts T)
//	                                                       └── pl2   alice sets bob 50 → 0  (ts T+1)
//
// pl1 gives bob 50 (alice has 100; in v12 she is the creator, infinite).
// Both branches are power events, so both are in X with eve-join and pl1
// (their auth chains within the full conflicted set). The reverse
// topological power ordering is pl1 (the auth event of the others), then
// pl2 (alice is more powerful than eve, whose join must also precede the
// ban that cites it), eve-join, ban. Under pl2 bob has 0 < ban level 50,
// so the ban is rejected and eve stays joined, although it is the older
// event: power decides before time does. v1 agrees: pl1 then pl2 is
// allowed, and the ban, checked against R holding pl2, fails.
//
// In the second DAG alice's concurrent change promotes carol instead
// (pl2b): bob keeps 50, the ban passes, eve is banned.
func TestScenarioBanVsPowerLevels(t *testing.T) {
	forVersions(t, []string{"1", "10", "12"}, func(t *testing.T, r *room) {
		alice, bob, eve := user("alice"), user("bob"), user("eve")
		fork := r.setup(map[string]int64{bob: 50}, []string{"bob", "carol", "eve"})
		r.member("ban", bob, eve, "ban", fork)
		r.powerLevels("pl2", alice, r.creatorLevels(alice, map[string]int64{bob: 0}), fork)
		r.powerLevels("pl2b", alice, r.creatorLevels(alice, map[string]int64{bob: 50, user("carol"): 50}), fork)
		r.mustAccept("pl2", "ban", "pl2b")

		st := r.resolve("pl2", "ban")
		r.expect(st, "m.room.power_levels", "", "pl2")
		r.expect(st, "m.room.member", eve, "eve-join")

		st = r.resolve("pl2b", "ban")
		r.expect(st, "m.room.power_levels", "", "pl2b")
		r.expect(st, "m.room.member", eve, "ban")
	})
}

// Scenario 2: a topic set by a user who is concurrently demoted.
//
//	create─…─bob-join─carol-join─topic-1 (alice)
//	                                ├── pl2      alice sets bob 50 → 0
//	                                └── topic-2  bob (50) sets the topic
//
// pl1 and pl2 are the power events, replayed first: pl2 stands. topic-1
// and topic-2 are then ordered by mainline position based on pl2: both
// cite pl1 (position 1), so the earlier origin_server_ts goes first.
// topic-1 (alice, 100) passes; topic-2 fails since bob has 0 under pl2,
// below state_default 50. The topic from before the fork returns. v1 takes
// the deepest topic that passes auth in R (with pl2): again topic-1.
func TestScenarioTopicResetAfterDemotion(t *testing.T) {
	forVersions(t, []string{"1", "10", "12"}, func(t *testing.T, r *room) {
		alice, bob := user("alice"), user("bob")
		r.setup(map[string]int64{bob: 50}, []string{"bob", "carol"})
		r.topic("topic-1", alice, "alice's topic")
		r.powerLevels("pl2", alice, r.creatorLevels(alice, map[string]int64{bob: 0}), "topic-1")
		r.topic("topic-2", bob, "bob's topic", "topic-1")
		r.mustAccept("pl2", "topic-2")

		st := r.resolve("pl2", "topic-2")
		r.expect(st, "m.room.power_levels", "", "pl2")
		r.expect(st, "m.room.topic", "", "topic-1")

		// The next event after both branches sees the same state.
		r.message("merge", alice, "pl2", "topic-2")
		r.expect(r.after["merge"], "m.room.topic", "", "topic-1")
	})
}

// Scenario 3: the room turns invite-only while someone joins.
//
//	create─alice-join─pl1─jr-public─bob-join
//	                                  ├── eve-join   eve joins (public then)  (ts T)
//	                                  └── jr-invite  alice: public → invite   (ts T+1)
//
// v2/v2.1: the join rules events are power events, replayed first (both by
// alice, so jr-public, the earlier, then jr-invite). eve's join is not a
// power event and comes afterwards in mainline order even though it is
// older; checked against
// join_rule invite with no invite for eve, it is rejected: eve is not in
// the room. v1 only resolves keys for which two states hold different
// events; eve's member key is held by one state only, so v1 keeps her
// join (one of the v1 flaws v2 fixed).
func TestScenarioJoinRulesRace(t *testing.T) {
	forVersions(t, []string{"1", "10", "12"}, func(t *testing.T, r *room) {
		alice, eve := user("alice"), user("eve")
		fork := r.setup(nil, []string{"bob"})
		r.member("eve-join", eve, eve, "join", fork)
		r.joinRules("jr-invite", alice, "invite", fork)
		r.mustAccept("jr-invite", "eve-join")

		st := r.resolve("jr-invite", "eve-join")
		r.expect(st, "m.room.join_rules", "", "jr-invite")
		if r.v.ID == "1" {
			r.expect(st, "m.room.member", eve, "eve-join")
		} else {
			r.expect(st, "m.room.member", eve, "")
		}
	})
}

// Scenario 4: two admins change the power levels at the same time.
//
//	create─…─pl1 (bob 100, carol 100)─…─dave-join─eve-join
//	                                         ├── pl-bob    bob gives dave 50   (ts T)
//	                                         └── pl-carol  carol gives eve 50  (ts T+1)
//
// Both are power events with senders of equal power (100), so the reverse
// topological power ordering falls back to origin_server_ts: pl-bob, then
// pl-carol. Both pass (each sender may change levels below 100), so the
// later, pl-carol, is the result. With equal timestamps the event ID
// decides: the greater ID is applied last and wins. v1 sorts by depth
// (equal) then descending sha1(event_id): the event with the smaller sha1
// comes last and wins.
func TestScenarioConcurrentPowerLevels(t *testing.T) {
	forVersions(t, []string{"1", "10", "12"}, func(t *testing.T, r *room) {
		alice, bob, carol := user("alice"), user("bob"), user("carol")
		dave, eve := user("dave"), user("eve")
		admins := map[string]int64{bob: 100, carol: 100}
		fork := r.setup(admins, []string{"bob", "carol", "dave", "eve"})
		lv := func(extra string) map[string]int64 {
			return r.creatorLevels(alice, map[string]int64{bob: 100, carol: 100, extra: 50})
		}
		r.powerLevels("pl-bob", bob, lv(dave), fork)
		r.powerLevels("pl-carol", carol, lv(eve), fork)
		r.nextTS = 1_800_000_000_000
		r.powerLevels("pl-bob-same-ts", bob, lv(dave), fork)
		r.nextTS = 1_800_000_000_000
		r.powerLevels("pl-carol-same-ts", carol, lv(eve), fork)
		r.mustAccept("pl-bob", "pl-carol", "pl-bob-same-ts", "pl-carol-same-ts")

		winner := func(a, b string) string {
			if r.v.ID == "1" {
				ha, hb := sha1.Sum([]byte(r.id(a))), sha1.Sum([]byte(r.id(b)))
				if bytes.Compare(ha[:], hb[:]) < 0 {
					return a
				}
				return b
			}
			if r.id(a) > r.id(b) {
				return a
			}
			return b
		}
		want := "pl-carol"
		if r.v.ID == "1" {
			want = winner("pl-bob", "pl-carol")
		}
		r.expect(r.resolve("pl-bob", "pl-carol"), "m.room.power_levels", "", want)
		r.expect(r.resolve("pl-carol", "pl-bob"), "m.room.power_levels", "", want)
		want = winner("pl-bob-same-ts", "pl-carol-same-ts")
		r.expect(r.resolve("pl-bob-same-ts", "pl-carol-same-ts"), "m.room.power_levels", "", want)
	})
}

// Scenario 5: a server that was offline merges back.
//
//	…─t0 (alice's topic)
//	   ├── A: a-msg1, a1-rename, pl-a (a1 → 50), t-a1 (a1), a-msg2, a3-join,
//	   │      a3-rename, name-a (alice), t-a2 (a1), a-msg3, a2-rename, a-msg4
//	   └── B (b.example, cut off): b-msg1, b1-rename, b2-rename, ban-a1 (bob
//	          bans a1), b3-join, b-msg2, custom (bob), t-b (bob), b-msg3,
//	          b1-rename2, b-msg4
//	merge (alice) after a-msg4 and b-msg4
//
// Power events: pl1 (held by branch B), pl-a and ban-a1. pl-a comes first
// (alice: equal power to bob and earlier, or infinite in v12), so bob's
// ban of a1, now at 50 < 100, passes. The remaining events go by mainline
// position based on pl-a: branch B's events cite pl1 (position 1) and come
// before branch A's that cite pl-a (position 0). a1 is banned, so a1's
// rename and t-a2 fail; bob's t-b stands. Keys changed on one side only
// take that side's latest value: name-a, a2-rename, a3-rename, b1-rename2,
// b2-rename, b3-join, custom. v1 reaches the same state: pl-a, then the
// ban checked against it; a1's topic fails, bob's passes.
func TestScenarioOfflineServerMerges(t *testing.T) {
	forVersions(t, []string{"1", "11", "12"}, func(t *testing.T, r *room) {
		alice, bob := user("alice"), user("bob@b.example")
		a1, a2, a3 := user("a1@a.example"), user("a2@a.example"), user("a3@a.example")
		b1, b2, b3 := user("b1@b.example"), user("b2@b.example"), user("b3@b.example")
		r.setup(map[string]int64{bob: 100}, []string{"bob@b.example", "a1@a.example", "a2@a.example", "b1@b.example", "b2@b.example"})
		r.topic("t0", alice, "before the split")

		r.message("a-msg1", a1, "t0")
		r.rename("a1-rename", a1, "A One")
		r.powerLevels("pl-a", alice, r.creatorLevels(alice, map[string]int64{bob: 100, a1: 50}))
		r.topic("t-a1", a1, "a1's first topic")
		r.message("a-msg2", a2)
		r.member("a3-join", a3, a3, "join")
		r.rename("a3-rename", a3, "A Three")
		r.build("name-a", alice, "m.room.name", str(""), obj("name", "A side"))
		r.topic("t-a2", a1, "a1's second topic")
		r.message("a-msg3", a2)
		r.rename("a2-rename", a2, "A Two")
		r.message("a-msg4", a1)

		r.message("b-msg1", b1, "t0")
		r.rename("b1-rename", b1, "B One")
		r.rename("b2-rename", b2, "B Two")
		r.member("ban-a1", bob, a1, "ban")
		r.member("b3-join", b3, b3, "join")
		r.message("b-msg2", b3)
		r.build("custom", bob, "org.example.b", str(""), obj("set", "by bob"))
		r.topic("t-b", bob, "bob's topic")
		r.message("b-msg3", b2)
		r.rename("b1-rename2", b1, "B One again")
		r.message("b-msg4", b2)
		for n := range r.ids {
			r.mustAccept(n)
		}

		r.message("merge", alice, "a-msg4", "b-msg4")
		st := r.after["merge"]
		r.expect(st, "m.room.power_levels", "", "pl-a")
		r.expect(st, "m.room.member", a1, "ban-a1")
		r.expect(st, "m.room.topic", "", "t-b")
		r.expect(st, "m.room.name", "", "name-a")
		r.expect(st, "m.room.member", a2, "a2-rename")
		r.expect(st, "m.room.member", a3, "a3-rename")
		r.expect(st, "m.room.member", b1, "b1-rename2")
		r.expect(st, "m.room.member", b2, "b2-rename")
		r.expect(st, "m.room.member", b3, "b3-join")
		r.expect(st, "org.example.b", "", "custom")
		r.expect(st, "m.room.join_rules", "", "jr-public")
		r.expect(st, "m.room.create", "", "create")
	})
}

// Scenario 6: room version 12 creators.
//
//	create (alice; additional_creators carol)─alice-join─pl1 (bob 100)─…
//	─bob-join─carol-join─dave-join
//	   ├── pl-demote  carol (creator, infinite) sets bob 100 → 0
//	   └── ban-dave   bob (100) bans dave
//
// (a) carol is a creator through additional_creators, so her power is
// infinite: she may demote bob although bob has 100, and in the reverse
// topological power ordering her event precedes bob's ban. Under
// pl-demote the ban fails: dave stays.
// (b) A faulty server's state claims bob banned alice (ban-alice, which
// the auth rules rejected when it was sent: a creator can't be
// out-powered). Replayed in resolution it fails again: alice stays joined.
// (c) A faulty state claims power levels pl-bad that list the creator
// carol in users. Rule 10.4 rejects it during the replay; pl1 stays.
func TestScenarioV12Creators(t *testing.T) {
	r := newRoom(t, "12")
	alice, bob, carol, dave := user("alice"), user("bob"), user("carol"), user("dave")
	fork := r.setup(map[string]int64{bob: 100}, []string{"bob", "carol", "dave"}, carol)
	r.powerLevels("pl-demote", carol, map[string]int64{bob: 0}, fork)
	r.member("ban-dave", bob, dave, "ban", fork)
	r.mustAccept("pl-demote", "ban-dave")
	st := r.resolve("pl-demote", "ban-dave")
	r.expect(st, "m.room.power_levels", "", "pl-demote")
	r.expect(st, "m.room.member", dave, "dave-join")

	r.member("ban-alice", bob, alice, "ban", fork)
	r.powerLevels("pl-bad", bob, map[string]int64{bob: 100, carol: 50}, fork)
	if r.reject["ban-alice"] == nil || r.reject["pl-bad"] == nil {
		t.Fatalf("the auth rules accepted ban-alice (%v) or pl-bad (%v)", r.reject["ban-alice"], r.reject["pl-bad"])
	}
	good := r.after[fork]
	st = r.resolveStates(good, r.with(good, "m.room.member", alice, "ban-alice"))
	r.expect(st, "m.room.member", alice, "alice-join")
	st = r.resolveStates(good, r.with(good, "m.room.power_levels", "", "pl-bad"))
	r.expect(st, "m.room.power_levels", "", "pl1")
}

// Scenario 7: where v2.1 (room version 12) differs from v2, the two state
// resets the spec's v2.1 changes were made for.
//
// (a) Conflicting events unauthorised by the unconflicted state.
//
//	…─bob-join─carol-join─jr-invite (bob)─jr-public2 (bob)─bob-leave
//
// The state after bob-leave holds jr-public2; a second state, obtained
// from a faulty partial /state response, holds the outdated jr-invite and
// is otherwise the same. Both agree bob has left. v2 replays the join
// rules on top of the unconflicted state, where bob is not joined: both
// fail and the room ends up with no join rules at all. v2.1 starts the
// replay from an empty state, so bob's membership comes from each event's
// own auth events (joined): jr-invite then jr-public2 pass, jr-public2
// stands.
//
// (b) Conflicting events that need events between them.
//
//	…─pl1─…─bob-join─carol-join─pl2 (alice: bob 100)─pl3 (bob: carol 50)─topic (carol)
//
// A faulty state claims pl1 while holding carol's topic, which cites pl3.
// Both full auth chains contain pl1, pl2 and pl3, so the auth difference
// is empty and v2 replays only pl1 and pl3: pl3, checked against pl1 where
// bob has 0, fails and the power levels reset to pl1. v2.1 adds the
// conflicted state subgraph (pl2 and bob-join lie on auth paths from pl3
// to pl1), replays pl1, pl2, bob-join, pl3, and pl3 stands.
//
// (c) As (a) with topics, which are not power events and are replayed in
// step 4 on top of the partially resolved state:
//
//	…─bob-join─carol-join─topic-1 (bob)─topic-2 (bob)─bob-leave
//
// with a faulty state holding topic-1. In v2 the partial state contains
// the unconflicted bob-leave, so both topics fail and the room loses its
// topic; in v2.1 it does not (the replay started empty and nothing put
// bob's membership in it), bob's membership comes from each topic's auth
// events, and topic-2 stands.
func TestScenarioV2VersusV21(t *testing.T) {
	forVersions(t, []string{"11", "12"}, func(t *testing.T, r *room) {
		bob := user("bob")
		r.setup(map[string]int64{bob: 100}, []string{"bob", "carol"})
		r.joinRules("jr-invite", bob, "invite")
		r.joinRules("jr-public2", bob, "public")
		r.member("bob-leave", bob, bob, "leave")
		r.mustAccept("jr-invite", "jr-public2", "bob-leave")
		good := r.after["bob-leave"]
		st := r.resolveStates(good, r.with(good, "m.room.join_rules", "", "jr-invite"))
		if r.v.ID == "12" {
			r.expect(st, "m.room.join_rules", "", "jr-public2")
		} else {
			r.expect(st, "m.room.join_rules", "", "")
		}
		r.expect(st, "m.room.member", bob, "bob-leave")
	})
	forVersions(t, []string{"11", "12"}, func(t *testing.T, r *room) {
		alice, bob, carol := user("alice"), user("bob"), user("carol")
		r.setup(nil, []string{"bob", "carol"})
		r.powerLevels("pl2", alice, r.creatorLevels(alice, map[string]int64{bob: 100}))
		r.powerLevels("pl3", bob, r.creatorLevels(alice, map[string]int64{bob: 100, carol: 50}))
		r.topic("topic", carol, "carol's topic")
		r.mustAccept("pl2", "pl3", "topic")
		good := r.after["topic"]
		st := r.resolveStates(good, r.with(good, "m.room.power_levels", "", "pl1"))
		if r.v.ID == "12" {
			r.expect(st, "m.room.power_levels", "", "pl3")
		} else {
			r.expect(st, "m.room.power_levels", "", "pl1")
		}
		r.expect(st, "m.room.topic", "", "topic")
	})
	forVersions(t, []string{"11", "12"}, func(t *testing.T, r *room) {
		bob := user("bob")
		r.setup(map[string]int64{bob: 100}, []string{"bob", "carol"})
		r.topic("topic-1", bob, "one")
		r.topic("topic-2", bob, "two")
		r.member("bob-leave", bob, bob, "leave")
		r.mustAccept("topic-1", "topic-2", "bob-leave")
		good := r.after["bob-leave"]
		st := r.resolveStates(good, r.with(good, "m.room.topic", "", "topic-1"))
		if r.v.ID == "12" {
			r.expect(st, "m.room.topic", "", "topic-2")
		} else {
			r.expect(st, "m.room.topic", "", "")
		}
	})
}

// Scenario 8: an event of the auth difference must be replayed.
//
//	…─frank-join0─frank-leave0─fork
//	                             ├── topic-b      bob sets the topic               (ts T)
//	                             └── frank-join2  frank rejoins                    (ts T+1)
//	                                 └── topic-f  frank sets the topic (cites frank-join2)
//	                                     └── frank-leave2
//
// The states disagree on frank (frank-leave0 / frank-leave2) and on the
// topic (topic-b / topic-f). frank-join2 is in no state, but it is in the
// auth chain of the second state only: it belongs to the auth difference
// and is replayed between frank-leave0 and topic-f (same mainline
// position, ordered by time). Without it frank would count as having left
// when topic-f is checked; with it topic-f, the later topic, stands.
// v1 replays no auth chain: frank-leave2 is checked against frank-leave0
// and fails, so does frank's topic, and topic-b stays.
func TestScenarioAuthDifference(t *testing.T) {
	forVersions(t, []string{"1", "10", "12"}, func(t *testing.T, r *room) {
		bob, frank := user("bob"), user("frank")
		r.setup(map[string]int64{bob: 100, frank: 50}, []string{"bob", "frank"})
		r.member("frank-leave0", frank, frank, "leave")
		r.message("fork", bob)
		r.topic("topic-b", bob, "bob's topic", "fork")
		r.member("frank-join2", frank, frank, "join", "fork")
		r.topic("topic-f", frank, "frank's topic")
		r.member("frank-leave2", frank, frank, "leave")
		r.mustAccept("frank-leave0", "topic-b", "frank-join2", "topic-f", "frank-leave2")

		st := r.resolve("topic-b", "frank-leave2")
		if r.v.ID == "1" {
			r.expect(st, "m.room.topic", "", "topic-b")
			r.expect(st, "m.room.member", frank, "frank-leave0")
		} else {
			r.expect(st, "m.room.topic", "", "topic-f")
			r.expect(st, "m.room.member", frank, "frank-leave2")
		}
	})
}

// Room version 1 specifics.
//
//	…─pl1 (bob 50)─carol-join─dave-join
//	   ├── pl-x        alice gives carol 50                      (depth d+1)
//	   ├── m1─pl-y     bob gives dave 50                         (depth d+2)
//	   └── m2─m3─pl-z  alice gives dave 10                       (depth d+3)
//	   ├── t-deep: m4─m5─m6─t-deep (alice)                       (depth d+4)
//	   └── t-shallow (alice, later origin_server_ts)             (depth d+1)
//
// Power levels: the list by ascending depth is pl-x, pl-y, pl-z. pl-x is
// taken; pl-y, checked against R holding pl-x, fails (it drops carol's 50,
// which bob at 50 may not) and the spec says to stop there: pl-z is never
// considered although it would pass. Topics: the deepest event that
// passes wins, whatever the timestamps.
func TestV1Specifics(t *testing.T) {
	r := newRoom(t, "1")
	alice, bob, carol, dave := user("alice"), user("bob"), user("carol"), user("dave")
	fork := r.setup(map[string]int64{bob: 50}, []string{"bob", "carol", "dave"})
	r.powerLevels("pl-x", alice, map[string]int64{alice: 100, bob: 50, carol: 50}, fork)
	r.message("m1", bob, fork)
	r.powerLevels("pl-y", bob, map[string]int64{alice: 100, bob: 50, dave: 50})
	r.message("m2", bob, fork)
	r.message("m3", bob)
	r.powerLevels("pl-z", alice, map[string]int64{alice: 100, bob: 50, dave: 10})
	r.message("m4", bob, fork)
	r.message("m5", bob)
	r.message("m6", bob)
	r.nextTS = 1_600_000_000_000
	r.topic("t-deep", alice, "deep")
	r.topic("t-shallow", alice, "shallow", fork)
	r.mustAccept("pl-x", "pl-y", "pl-z", "t-deep", "t-shallow")

	r.expect(r.resolve("pl-x", "pl-y", "pl-z"), "m.room.power_levels", "", "pl-x")
	r.expect(r.resolve("pl-z", "pl-y"), "m.room.power_levels", "", "pl-z")
	r.expect(r.resolve("t-shallow", "t-deep"), "m.room.topic", "", "t-deep")
}
