package auth

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// cite returns the state events at the keys (skipping absent ones).
func (r *room) cite(keys ...StateKey) []*event.Event {
	var out []*event.Event
	for _, k := range keys {
		if e := r.state[k]; e != nil {
			out = append(out, e)
		}
	}
	return out
}

// selected returns the current state events for ev's selection.
func (r *room) selected(ev *event.Event) []*event.Event { return r.cite(Selection(ev)...) }

// authCase is a row of the CheckAuthEvents table.
type authCase struct {
	rules map[string]string
	desc  string
	allow bool
	// setup returns the event, its auth events and the rejected predicate.
	setup func(r *room) (*event.Event, []*event.Event, func(string) bool)
}

func TestCheckAuthEvents(t *testing.T) {
	at5 := at("v1 v3 v6 v7 v8 v10 v11:2.5", "v12:3.5")
	// msg builds bob's message citing auths (chosen from the state by keys
	// when auths is nil).
	msgWith := func(r *room, auths []*event.Event) *event.Event {
		r.join(bob)
		return r.msg(bob, withAuth(auths...))
	}
	usual := func(r *room) []*event.Event {
		r.join(bob)
		return r.selected(r.msg(bob))
	}
	cases := []authCase{
		{rules: at("v1 v3 v6 v7 v8 v10 v11:2", "v12:3"), desc: "message citing its selection allowed", allow: true,
			setup: func(r *room) (*event.Event, []*event.Event, func(string) bool) {
				a := usual(r)
				return msgWith(r, a), a, nil
			}},
		{rules: at("v1 v3 v6 v7 v8 v10 v11:2", "v12:3"), desc: "join citing its selection allowed", allow: true,
			setup: func(r *room) (*event.Event, []*event.Event, func(string) bool) {
				r.setMember(bob, "invite")
				a := r.selected(r.member(bob, bob, "join", ""))
				return r.member(bob, bob, "join", "", withAuth(a...)), a, nil
			}},
		{rules: at("v8 v10 v11:2", "v12:3"), desc: "restricted join citing the authorising member allowed", allow: true,
			setup: func(r *room) (*event.Event, []*event.Event, func(string) bool) {
				r.setJoinRule("restricted")
				r.join(carol)
				via := `"join_authorised_via_users_server":"` + carol + `"`
				a := r.selected(r.member(bob, bob, "join", via))
				if len(a) != 4-btoi(r.v.RoomIDFromCreate) { // create?, power levels, join rules, carol
					t.Fatalf("selected %d events", len(a))
				}
				return r.member(bob, bob, "join", via, withAuth(a...)), a, nil
			}},
		{rules: at("v1 v3 v6 v7 v8 v10 v11:2", "v12:3"), desc: "third-party invite citing the m.room.third_party_invite allowed", allow: true,
			setup: func(r *room) (*event.Event, []*event.Event, func(string) bool) {
				r.put(r.tpiEvent(alice, idKey, nil))
				tpi := withSigned(signedBlock(carol, "tok", idKey))
				a := r.selected(r.tpInvite(alice, tpi))
				ev := r.stateEv("m.room.member", carol, alice, r.tpInvite(alice, tpi).Content().String(), withAuth(a...))
				return ev, a, nil
			}},
		{rules: at("v1 v3 v6 v7 v8 v10 v11:2.1", "v12:3.1"), desc: "two power levels events rejected",
			setup: func(r *room) (*event.Event, []*event.Event, func(string) bool) {
				a := append(usual(r), r.newPL(alice, `"@x:example.org":1`, ""))
				return msgWith(r, a), a, nil
			}},
		{rules: at("v1 v3 v6 v7 v8 v10 v11:2.1", "v12:3.1"), desc: "the same event listed twice rejected",
			setup: func(r *room) (*event.Event, []*event.Event, func(string) bool) {
				a := usual(r)
				ev := msgWith(r, append(a, a[0]))
				return ev, a, nil
			}},
		{rules: at("v1 v3 v6 v7 v8 v10 v11:2.1", "v12:3.1"), desc: "duplicates are found before unselected entries",
			setup: func(r *room) (*event.Event, []*event.Event, func(string) bool) {
				a := append(usual(r), r.state[StateKey{"m.room.join_rules", ""}], r.newPL(alice, "", `"ban":3`))
				return msgWith(r, a), a, nil
			}},
		{rules: at("v1 v3 v6 v7 v8 v10 v11:2.2", "v12:3.2"), desc: "join rules cited by a message rejected",
			setup: func(r *room) (*event.Event, []*event.Event, func(string) bool) {
				a := append(usual(r), r.state[StateKey{"m.room.join_rules", ""}])
				return msgWith(r, a), a, nil
			}},
		{rules: at("v1 v3 v6 v7 v8 v10 v11:2.2", "v12:3.2"), desc: "another user's membership cited by a message rejected",
			setup: func(r *room) (*event.Event, []*event.Event, func(string) bool) {
				a := append(usual(r), r.state[StateKey{"m.room.member", alice}])
				return msgWith(r, a), a, nil
			}},
		{rules: at("v1 v3 v6 v7 v8 v10 v11:2.2", "v12:3.2"), desc: "a non-state auth event rejected",
			setup: func(r *room) (*event.Event, []*event.Event, func(string) bool) {
				a := append(usual(r), r.msg(alice))
				return msgWith(r, a), a, nil
			}},
		{rules: at("v12:3.2"), desc: "the create event cited rejected",
			setup: func(r *room) (*event.Event, []*event.Event, func(string) bool) {
				a := append(usual(r), r.create)
				return msgWith(r, a), a, nil
			}},
		{rules: at("v1 v3 v6 v7 v8 v10 v11:2.3", "v12:3.3"), desc: "a rejected auth event rejected",
			setup: func(r *room) (*event.Event, []*event.Event, func(string) bool) {
				a := usual(r)
				pl := r.state[StateKey{"m.room.power_levels", ""}].ID()
				return msgWith(r, a), a, func(id string) bool { return id == pl }
			}},
		{rules: at("v1 v3 v6 v7 v8 v10 v11:2.3", "v12:3.3"), desc: "auth events none of which was rejected allowed", allow: true,
			setup: func(r *room) (*event.Event, []*event.Event, func(string) bool) {
				a := usual(r)
				return msgWith(r, a), a, func(id string) bool { return id == "$other:example.org" }
			}},
		{rules: at("v1 v3 v6 v7 v8 v10 v11:2.4"), desc: "no create event rejected",
			setup: func(r *room) (*event.Event, []*event.Event, func(string) bool) {
				a := usual(r)[1:]
				return msgWith(r, a), a, nil
			}},
		{rules: at5, desc: "an auth event of another room rejected",
			setup: func(r *room) (*event.Event, []*event.Event, func(string) bool) {
				other := "!other:example.org"
				if r.v.RoomIDFromCreate {
					other = "!" + strings.Repeat("A", 43)
				}
				a := usual(r)
				for i, e := range a {
					if e.Type() == "m.room.power_levels" {
						a[i] = r.stateEv("m.room.power_levels", "", alice, e.Content().String(), withRoomID(other))
					}
				}
				return msgWith(r, a), a, nil
			}},
	}
	for _, c := range cases {
		for _, fam := range familyOrder {
			rule, ok := c.rules[fam]
			if !ok {
				continue
			}
			countCase(fam)
			for _, vid := range families[fam] {
				t.Run(fmt.Sprintf("v%s/%s %s", vid, rule, c.desc), func(t *testing.T) {
					r := newRoom(t, roomversion.MustLookup(vid), "")
					ev, auths, rejected := c.setup(r)
					expect(t, CheckAuthEvents(ev, auths, rejected), c.allow, vid, rule)
				})
			}
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestCheckAuthEventsCallerErrors(t *testing.T) {
	for _, v := range roomversion.All() {
		r := newRoom(t, v, "")
		r.join(bob)
		a := r.selected(r.msg(bob))
		ev := r.msg(bob, withAuth(a...))
		if err := CheckAuthEvents(ev, a[1:], nil); !errors.Is(err, ErrAuthEventsMismatch) || errors.Is(err, ErrRejected) {
			t.Errorf("v%s: missing auth event: got %v", v.ID, err)
		}
		if err := CheckAuthEvents(ev, append(slices.Clone(a), r.create, r.msg(alice)), nil); !errors.Is(err, ErrAuthEventsMismatch) {
			t.Errorf("v%s: extra event: got %v", v.ID, err)
		}
		if err := CheckAuthEvents(ev, append(slices.Clone(a), nil), nil); !errors.Is(err, ErrAuthEventsMismatch) {
			t.Errorf("v%s: nil event: got %v", v.ID, err)
		}
		// The create event is decided by rule 1 alone.
		if err := CheckAuthEvents(r.create, []*event.Event{r.create}, nil); err != nil {
			t.Errorf("v%s: create: got %v", v.ID, err)
		}
	}
}

func TestSelection(t *testing.T) {
	key := func(typ, sk string) StateKey { return StateKey{Type: typ, StateKey: sk} }
	for _, v := range roomversion.All() {
		r := newRoom(t, v, "")
		var base []StateKey
		if !v.RoomIDFromCreate {
			base = append(base, key("m.room.create", ""))
		}
		base = append(base, key("m.room.power_levels", ""))
		with := func(keys ...StateKey) []StateKey { return append(slices.Clone(base), keys...) }
		jr := key("m.room.join_rules", "")
		via := `"join_authorised_via_users_server":"` + carol + `"`
		viaKeys := []StateKey{key("m.room.member", bob), jr}
		if v.RestrictedJoins {
			viaKeys = append(viaKeys, key("m.room.member", carol))
		}
		cases := []struct {
			name string
			ev   *event.Event
			want []StateKey
		}{
			{"create", r.create, nil},
			{"message", r.msg(bob), with(key("m.room.member", bob))},
			{"state event", r.stateEv("m.room.topic", "", bob, `{"topic":"t"}`), with(key("m.room.member", bob))},
			{"join", r.member(bob, bob, "join", ""), with(key("m.room.member", bob), jr)},
			{"join via an authorising user", r.member(bob, bob, "join", via), with(viaKeys...)},
			{"join with a non-string authorising user", r.member(bob, bob, "join", `"join_authorised_via_users_server":1`),
				with(key("m.room.member", bob), jr)},
			{"invite", r.member(alice, bob, "invite", ""), with(key("m.room.member", alice), key("m.room.member", bob), jr)},
			{"third-party invite", r.tpInvite(alice, withSigned(signedBlock(carol, "tok", idKey))),
				with(key("m.room.member", alice), key("m.room.member", carol), jr, key("m.room.third_party_invite", "tok"))},
			{"third-party invite without token", r.tpInvite(alice, js(`{"signed":{}}`)),
				with(key("m.room.member", alice), key("m.room.member", carol), jr)},
			{"invite carrying join_authorised_via_users_server", r.member(alice, bob, "invite", via),
				with(key("m.room.member", alice), key("m.room.member", bob), jr)},
			{"leave", r.member(bob, bob, "leave", ""), with(key("m.room.member", bob))},
			{"kick", r.member(alice, bob, "leave", ""), with(key("m.room.member", alice), key("m.room.member", bob))},
			{"ban", r.member(alice, bob, "ban", ""), with(key("m.room.member", alice), key("m.room.member", bob))},
			{"knock", r.member(bob, bob, "knock", ""), with(key("m.room.member", bob), jr)},
			{"member without state_key", r.build("m.room.member", bob, nil, `{"membership":"join"}`),
				with(key("m.room.member", bob), jr)},
		}
		for _, c := range cases {
			got := Selection(c.ev)
			if !slices.Equal(got, c.want) {
				t.Errorf("v%s %s: got %v, want %v", v.ID, c.name, got, c.want)
			}
			sk, isState := c.ev.StateKey()
			if got := SelectionFor(v, c.ev.Type(), c.ev.Sender(), sk, isState, c.ev.Content()); !slices.Equal(got, c.want) {
				t.Errorf("v%s %s: SelectionFor got %v, want %v", v.ID, c.name, got, c.want)
			}
		}
	}
}
