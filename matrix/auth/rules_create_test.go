package auth

import (
	"strings"
	"testing"

	"github.com/axon-hs/axon/matrix/event"
)

// Rule 1 (m.room.create), v12 rule 2 (room ID), the create event being
// required, m.federate, and the v1–5 m.room.aliases rule.
func TestRulesCreate(t *testing.T) {
	newCreate := func(r *room, content string, opts ...evOpt) *event.Event {
		return r.stateEv("m.room.create", "", alice, content, append([]evOpt{noPrev()}, opts...)...)
	}
	// createContent is valid create content for the room's version.
	createContent := func(r *room, extra string) string {
		c := `{"room_version":"` + r.v.ID + `"`
		if r.v.CreatorInContent {
			c += `,"creator":"` + alice + `"`
		}
		if extra != "" {
			c += "," + extra
		}
		return c + "}"
	}
	runRuleCases(t, []ruleCase{
		{rules: at("all:1.1"), desc: "create with prev_events rejected", setup: func(r *room) *event.Event {
			return newCreate(r, createContent(r, ""), withPrev(r.somePrev()))
		}},
		{rules: at("v1 v3 v6 v7 v8 v10 v11:1.2"), desc: "create with room_id on another server rejected", setup: func(r *room) *event.Event {
			return newCreate(r, createContent(r, ""), withRoomID("!room:other.org"))
		}},
		{rules: at("all:1.2"), desc: "create with room_id on the sender's server (v1-11) or none (v12) allowed", allow: true,
			setup: func(r *room) *event.Event { return newCreate(r, createContent(r, "")) }},
		{rules: at("all:1.3"), desc: "create with unknown room_version rejected", setup: func(r *room) *event.Event {
			return newCreate(r, strings.Replace(createContent(r, ""), `"room_version":"`+r.v.ID+`"`, `"room_version":"99"`, 1))
		}},
		{rules: at("all:1.3"), desc: "create with non-string room_version rejected", setup: func(r *room) *event.Event {
			return newCreate(r, strings.Replace(createContent(r, ""), `"room_version":"`+r.v.ID+`"`, `"room_version":12`, 1))
		}},
		{rules: at("all:1.3"), desc: "create without room_version allowed", allow: true, setup: func(r *room) *event.Event {
			if r.v.CreatorInContent {
				return newCreate(r, `{"creator":"`+alice+`"}`)
			}
			return newCreate(r, `{}`)
		}},
		{rules: at("v1 v3 v6 v7 v8 v10:1.4"), desc: "create without creator rejected", setup: func(r *room) *event.Event {
			return newCreate(r, `{"room_version":"`+r.v.ID+`"}`)
		}},
		{rules: at("v11:1.4", "v12:1.5"), desc: "create without creator allowed", allow: true, setup: func(r *room) *event.Event {
			return newCreate(r, `{"room_version":"`+r.v.ID+`"}`)
		}},
		{rules: at("v1 v3 v6 v7 v8 v10:1.5", "v11:1.4", "v12:1.5"), desc: "create allowed", allow: true,
			setup: func(r *room) *event.Event { return newCreate(r, createContent(r, "")) }},
		{rules: at("v12:1.4"), desc: "create with additional_creators not an array rejected", setup: func(r *room) *event.Event {
			return newCreate(r, createContent(r, `"additional_creators":"`+bob+`"`))
		}},
		{rules: at("v12:1.4"), desc: "create with a non-string additional creator rejected", setup: func(r *room) *event.Event {
			return newCreate(r, createContent(r, `"additional_creators":["`+bob+`",5]`))
		}},
		{rules: at("v12:1.4"), desc: "create with an invalid additional creator user ID rejected", setup: func(r *room) *event.Event {
			return newCreate(r, createContent(r, `"additional_creators":["`+bob+`","bob"]`))
		}},
		{rules: at("v12:1.4"), desc: "create with valid additional_creators allowed", allow: true, setup: func(r *room) *event.Event {
			return newCreate(r, createContent(r, `"additional_creators":["`+bob+`","`+carol+`"]`))
		}},
		{rules: at("v1 v3 v6 v7 v8 v10 v11:1.4"), desc: "create with additional_creators ignored before v12", allow: true,
			setup: func(r *room) *event.Event {
				return newCreate(r, createContent(r, `"additional_creators":5`))
			}},

		// v12 rule 2: the room ID is the create event's ID.
		{rules: at("v12:2"), desc: "event whose room_id names another create event rejected", setup: func(r *room) *event.Event {
			return r.msg(alice, withRoomID("!"+strings.Repeat("A", 43)))
		}},
		{rules: at("v12:2"), desc: "event in a state without create event rejected", setup: func(r *room) *event.Event {
			r.drop("m.room.create", "")
			return r.msg(alice)
		}},
		{rules: at("v12:2"), desc: "event whose room_id is the create event's allowed", allow: true, setup: func(r *room) *event.Event {
			return r.msg(alice)
		}},
		{rules: at("v1 v3 v6 v7 v8 v10 v11:2.4"), desc: "event in a state without create event rejected", setup: func(r *room) *event.Event {
			r.drop("m.room.create", "")
			return r.msg(alice)
		}},

		// m.federate.
		{rules: at("v1 v3 v6 v7 v8 v10 v11:3", "v12:4"), desc: "m.federate false, message from another server rejected",
			createExtra: `"m.federate":false`, setup: func(r *room) *event.Event {
				r.join(carol)
				return r.msg(carol)
			}},
		{rules: at("v1 v3 v6 v7 v8 v10 v11:3", "v12:4"), desc: "m.federate false, join from another server rejected",
			createExtra: `"m.federate":false`, setup: func(r *room) *event.Event {
				r.setJoinRule("public")
				return r.member(carol, carol, "join", "")
			}},
		{rules: at("v1 v3 v6 v7 v8 v10 v11:3", "v12:4"), desc: "m.federate false, message from the creator's server allowed",
			createExtra: `"m.federate":false`, allow: true, setup: func(r *room) *event.Event {
				r.join(bob)
				return r.msg(bob)
			}},
		{rules: at("v1 v3 v6 v7 v8 v10 v11:3", "v12:4"), desc: "m.federate true, message from another server allowed",
			createExtra: `"m.federate":true`, allow: true, setup: func(r *room) *event.Event {
				r.join(carol)
				return r.msg(carol)
			}},

		// m.room.aliases: its own rule in v1–5, ordinary state from v6.
		{rules: at("v1 v3:4.1"), desc: "m.room.aliases without state_key rejected", setup: func(r *room) *event.Event {
			return r.build("m.room.aliases", alice, nil, `{"aliases":["#a:example.org"]}`)
		}},
		{rules: at("v1 v3:4.2"), desc: "m.room.aliases for another server rejected", setup: func(r *room) *event.Event {
			return r.stateEv("m.room.aliases", "other.org", alice, `{"aliases":["#a:other.org"]}`)
		}},
		{rules: at("v1 v3:4.3"), desc: "m.room.aliases for own server by a non-member allowed", allow: true, setup: func(r *room) *event.Event {
			return r.stateEv("m.room.aliases", "other.org", carol, `{"aliases":["#a:other.org"]}`)
		}},
		{rules: at("v6 v7 v8 v10 v11:5", "v12:6"), desc: "m.room.aliases by a non-member rejected like other state", setup: func(r *room) *event.Event {
			return r.stateEv("m.room.aliases", "other.org", carol, `{"aliases":["#a:other.org"]}`)
		}},
		{rules: at("v6 v7 v8 v10 v11:7", "v12:8"), desc: "m.room.aliases below state_default rejected like other state", setup: func(r *room) *event.Event {
			r.join(bob)
			return r.stateEv("m.room.aliases", "example.org", bob, `{"aliases":["#a:example.org"]}`)
		}},
		{rules: at("v6 v7 v8 v10 v11:10", "v12:11"), desc: "m.room.aliases for another server by an admin allowed", allow: true, setup: func(r *room) *event.Event {
			return r.stateEv("m.room.aliases", "other.org", alice, `{"aliases":["#a:other.org"]}`)
		}},
	})
}
