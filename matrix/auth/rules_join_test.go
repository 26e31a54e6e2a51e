package auth

import (
	"testing"

	"github.com/axon-hs/axon/matrix/event"
)

// The start of the m.room.member rule (missing fields, the
// join_authorised_via_users_server signature) and its join sub-rule.
func TestRulesMemberJoin(t *testing.T) {
	bare := func(r *room) {
		for k := range r.state {
			if k.Type != "m.room.create" {
				delete(r.state, k)
			}
		}
	}
	// restricted prepares a restricted (or knock_restricted) room in which
	// carol (of other.org) is joined.
	restricted := func(r *room, rule string) {
		r.setJoinRule(rule)
		r.join(carol)
	}
	via := `"join_authorised_via_users_server":"` + carol + `"`
	runRuleCases(t, []ruleCase{
		// .1: state_key and membership are required.
		{rules: at("v1 v3 v12:5.1", "v6 v7 v8 v10 v11:4.1"), desc: "member without membership rejected", setup: func(r *room) *event.Event {
			r.setJoinRule("public")
			return r.stateEv("m.room.member", bob, bob, `{"displayname":"Bob"}`)
		}},
		{rules: at("v1 v3 v12:5.1", "v6 v7 v8 v10 v11:4.1"), desc: "member without state_key rejected", setup: func(r *room) *event.Event {
			r.setJoinRule("public")
			return r.build("m.room.member", bob, nil, `{"membership":"join"}`)
		}},

		// v8+ .2: join_authorised_via_users_server must be signed by its server.
		{rules: at("v8 v10 v11:4.2.1", "v12:5.2.1"), desc: "join_authorised_via_users_server not signed by its server rejected",
			setup: func(r *room) *event.Event {
				restricted(r, "restricted")
				return r.member(bob, bob, "join", via)
			}},
		{rules: at("v8 v10 v11:4.2.1", "v12:5.2.1"), desc: "join_authorised_via_users_server that is not a user ID rejected",
			setup: func(r *room) *event.Event {
				restricted(r, "restricted")
				return r.member(bob, bob, "join", `"join_authorised_via_users_server":"carol"`, signedBy("other.org"))
			}},
		{rules: at("v8 v10 v11:4.2.1", "v12:5.2.1"), desc: "join_authorised_via_users_server that is not a string rejected",
			setup: func(r *room) *event.Event {
				restricted(r, "restricted")
				return r.member(bob, bob, "join", `"join_authorised_via_users_server":7`)
			}},
		// The spec checks the key on every membership; the reference
		// implementation only on joins, and we follow it (see doc.go).
		{rules: at("v8 v10 v11:4.5.1", "v12:5.5.1"), desc: "join_authorised_via_users_server on a leave is not checked", allow: true,
			setup: func(r *room) *event.Event {
				r.join(bob)
				return r.member(bob, bob, "leave", via)
			}},
		{rules: at("v8 v10 v11:4.2.1", "v12:5.2.1"), desc: "join_authorised_via_users_server signed by its server allowed", allow: true,
			setup: func(r *room) *event.Event {
				restricted(r, "restricted")
				return r.member(bob, bob, "join", via, signedBy("other.org"))
			}},
		{rules: at("v1 v3:5.2.5", "v6 v7:4.2.5"), desc: "unsigned join_authorised_via_users_server ignored before v8", allow: true,
			setup: func(r *room) *event.Event {
				r.setJoinRule("public")
				return r.member(bob, bob, "join", via)
			}},

		// join .1: the creator's first join.
		{rules: at("v1 v3:5.2.1", "v6 v7:4.2.1", "v8 v10 v11:4.3.1", "v12:5.3.1"), desc: "creator's join right after the create event allowed", allow: true,
			setup: func(r *room) *event.Event {
				bare(r)
				return r.member(alice, alice, "join", "", withPrev(r.create.ID()))
			}},
		{rules: at("v1 v3:5.2.6", "v6 v7:4.2.6", "v8 v10 v11:4.3.7", "v12:5.3.7"), desc: "non-creator's join right after the create event rejected",
			setup: func(r *room) *event.Event {
				bare(r)
				return r.member(bob, bob, "join", "", withPrev(r.create.ID()))
			}},
		{rules: at("v1 v3:5.2.6", "v6 v7:4.2.6", "v8 v10 v11:4.3.7", "v12:5.3.7"), desc: "creator's join after another event is not the creator rule",
			setup: func(r *room) *event.Event {
				bare(r)
				return r.member(alice, alice, "join", "")
			}},
		{rules: at("v12:5.3.7"), desc: "additional creator's join right after the create event rejected",
			createExtra: `"additional_creators":["` + bob + `"]`, setup: func(r *room) *event.Event {
				bare(r)
				return r.member(bob, bob, "join", "", withPrev(r.create.ID()))
			}},

		// join .2, .3.
		{rules: at("v1 v3:5.2.2", "v6 v7:4.2.2", "v8 v10 v11:4.3.2", "v12:5.3.2"), desc: "join by someone else rejected",
			setup: func(r *room) *event.Event {
				r.setJoinRule("public")
				return r.member(alice, bob, "join", "")
			}},
		{rules: at("v1 v3:5.2.3", "v6 v7:4.2.3", "v8 v10 v11:4.3.3", "v12:5.3.3"), desc: "banned user's join rejected",
			setup: func(r *room) *event.Event {
				r.setJoinRule("public")
				r.setMember(bob, "ban")
				return r.member(bob, bob, "join", "")
			}},

		// join .4: invite (and knock from v7).
		{rules: at("v1 v3:5.2.4", "v6 v7:4.2.4", "v8 v10 v11:4.3.4", "v12:5.3.4"), desc: "invited user's join to an invite-only room allowed", allow: true,
			setup: func(r *room) *event.Event {
				r.setMember(bob, "invite")
				return r.member(bob, bob, "join", "")
			}},
		{rules: at("v1 v3:5.2.4", "v6 v7:4.2.4", "v8 v10 v11:4.3.4", "v12:5.3.4"), desc: "joined user's join (profile change) in an invite-only room allowed", allow: true,
			setup: func(r *room) *event.Event {
				r.join(bob)
				return r.member(bob, bob, "join", `"displayname":"Bob"`)
			}},
		{rules: at("v1 v3:5.2.6", "v6 v7:4.2.6", "v8 v10 v11:4.3.7", "v12:5.3.7"), desc: "uninvited user's join to an invite-only room rejected",
			setup: func(r *room) *event.Event {
				r.setMember(bob, "leave")
				return r.member(bob, bob, "join", "")
			}},
		{rules: at("v1 v3:5.2.4", "v6 v7:4.2.4", "v8 v10 v11:4.3.4", "v12:5.3.4"), desc: "no join_rules event counts as invite: invited join allowed", allow: true,
			setup: func(r *room) *event.Event {
				r.drop("m.room.join_rules", "")
				r.setMember(bob, "invite")
				return r.member(bob, bob, "join", "")
			}},
		{rules: at("v1 v3:5.2.6", "v6 v7:4.2.6", "v8 v10 v11:4.3.7", "v12:5.3.7"), desc: "no join_rules event counts as invite: uninvited join rejected",
			setup: func(r *room) *event.Event {
				r.drop("m.room.join_rules", "")
				return r.member(bob, bob, "join", "")
			}},
		{rules: at("v7:4.2.4", "v8 v10 v11:4.3.4", "v12:5.3.4"), desc: "invited user's join to a knock room allowed", allow: true,
			setup: func(r *room) *event.Event {
				r.setJoinRule("knock")
				r.setMember(bob, "invite")
				return r.member(bob, bob, "join", "")
			}},
		{rules: at("v1 v3:5.2.6", "v6:4.2.6"), desc: "join rule knock unknown before v7: invited join rejected",
			setup: func(r *room) *event.Event {
				r.setJoinRule("knock")
				r.setMember(bob, "invite")
				return r.member(bob, bob, "join", "")
			}},
		{rules: at("v7:4.2.6", "v8 v10 v11:4.3.7", "v12:5.3.7"), desc: "uninvited join to a knock room rejected",
			setup: func(r *room) *event.Event {
				r.setJoinRule("knock")
				r.setMember(bob, "knock")
				return r.member(bob, bob, "join", "")
			}},

		// join .5 (v8+): restricted and knock_restricted.
		{rules: at("v8 v10 v11:4.3.5.1", "v12:5.3.5.1"), desc: "restricted join by an invited user allowed", allow: true,
			setup: func(r *room) *event.Event {
				restricted(r, "restricted")
				r.setMember(bob, "invite")
				return r.member(bob, bob, "join", "")
			}},
		{rules: at("v8 v10 v11:4.3.5.2", "v12:5.3.5.2"), desc: "restricted join without an authorising user rejected",
			setup: func(r *room) *event.Event {
				restricted(r, "restricted")
				return r.member(bob, bob, "join", "")
			}},
		{rules: at("v8 v10 v11:4.3.5.2", "v12:5.3.5.2"), desc: "restricted join authorised by a non-member rejected",
			setup: func(r *room) *event.Event {
				r.setJoinRule("restricted")
				r.setMember(carol, "leave")
				return r.member(bob, bob, "join", via, signedBy("other.org"))
			}},
		{rules: at("v8 v10 v11:4.3.5.2", "v12:5.3.5.2"), desc: "restricted join authorised by a user lacking invite power rejected",
			setup: func(r *room) *event.Event {
				restricted(r, "restricted")
				r.setPL("", `"invite":50`)
				return r.member(bob, bob, "join", via, signedBy("other.org"))
			}},
		{rules: at("v8 v10 v11:4.3.5.3", "v12:5.3.5.3"), desc: "restricted join authorised by a joined user with invite power allowed", allow: true,
			setup: func(r *room) *event.Event {
				restricted(r, "restricted")
				r.setPL(`"`+carol+`":50`, `"invite":50`)
				return r.member(bob, bob, "join", via, signedBy("other.org"))
			}},
		{rules: at("v10 v11:4.3.5.3", "v12:5.3.5.3"), desc: "knock_restricted join authorised by a joined user allowed", allow: true,
			setup: func(r *room) *event.Event {
				restricted(r, "knock_restricted")
				return r.member(bob, bob, "join", via, signedBy("other.org"))
			}},
		{rules: at("v10 v11:4.3.5.1", "v12:5.3.5.1"), desc: "knock_restricted join by an invited user allowed", allow: true,
			setup: func(r *room) *event.Event {
				restricted(r, "knock_restricted")
				r.setMember(bob, "invite")
				return r.member(bob, bob, "join", "")
			}},
		{rules: at("v10 v11:4.3.5.2", "v12:5.3.5.2"), desc: "knock_restricted join without an authorising user rejected",
			setup: func(r *room) *event.Event {
				restricted(r, "knock_restricted")
				return r.member(bob, bob, "join", "")
			}},
		{rules: at("v8:4.3.7"), desc: "knock_restricted unknown before v10: authorised join rejected",
			setup: func(r *room) *event.Event {
				restricted(r, "knock_restricted")
				return r.member(bob, bob, "join", via, signedBy("other.org"))
			}},
		{rules: at("v1 v3:5.2.6", "v6 v7:4.2.6"), desc: "restricted unknown before v8: invited join rejected",
			setup: func(r *room) *event.Event {
				r.setJoinRule("restricted")
				r.setMember(bob, "invite")
				return r.member(bob, bob, "join", "")
			}},

		// join .5/.6 public, and otherwise.
		{rules: at("v1 v3:5.2.5", "v6 v7:4.2.5", "v8 v10 v11:4.3.6", "v12:5.3.6"), desc: "join to a public room allowed", allow: true,
			setup: func(r *room) *event.Event {
				r.setJoinRule("public")
				return r.member(bob, bob, "join", "")
			}},
		{rules: at("v1 v3:5.2.6", "v6 v7:4.2.6", "v8 v10 v11:4.3.7", "v12:5.3.7"), desc: "join to a private room rejected",
			setup: func(r *room) *event.Event {
				r.setJoinRule("private")
				return r.member(bob, bob, "join", "")
			}},
	})
}
