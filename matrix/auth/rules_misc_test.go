package auth

import (
	"testing"

	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/event"
)

// redaction builds an m.room.redaction of the event ID by sender.
func (r *room) redaction(sender, redacts string, opts ...evOpt) *event.Event {
	r.t.Helper()
	if r.v.RedactsInContent {
		return r.build("m.room.redaction", sender, nil, `{"redacts":"`+redacts+`"}`, opts...)
	}
	return r.build("m.room.redaction", sender, nil, `{}`, append(opts, field("redacts", cjson.StringValue(redacts)))...)
}

// The rules after the membership rule: sender joined, third-party invites,
// required power level, user-ID state keys, the v1–2 redaction rule and
// the final allow.
func TestRulesGeneral(t *testing.T) {
	notJoined := at("v1 v3:6", "v6 v7 v8 v10 v11:5", "v12:6")
	tpi := at("v1 v3:7.1", "v6 v7 v8 v10 v11:6.1", "v12:7.1")
	required := at("v1 v3:8", "v6 v7 v8 v10 v11:7", "v12:8")
	stateKey := at("v1 v3:9", "v6 v7 v8 v10 v11:8", "v12:9")
	otherwise := at("v1:12", "v3:11", "v6 v7 v8 v10 v11:10", "v12:11")
	const top = "9007199254740991"
	runRuleCases(t, []ruleCase{
		{rules: notJoined, desc: "message by a non-member rejected", setup: func(r *room) *event.Event {
			return r.msg(bob)
		}},
		{rules: notJoined, desc: "message by an invited user rejected", setup: func(r *room) *event.Event {
			r.setMember(bob, "invite")
			return r.msg(bob)
		}},
		{rules: notJoined, desc: "message by a user who left rejected", setup: func(r *room) *event.Event {
			r.setMember(bob, "leave")
			return r.msg(bob)
		}},
		{rules: notJoined, desc: "message by a banned user rejected", setup: func(r *room) *event.Event {
			r.setMember(bob, "ban")
			return r.msg(bob)
		}},
		{rules: notJoined, desc: "state event by a non-member admin rejected", setup: func(r *room) *event.Event {
			r.setPL(`"`+bob+`":100`, "")
			return r.stateEv("m.room.topic", "", bob, `{"topic":"t"}`)
		}},
		{rules: notJoined, desc: "m.room.third_party_invite by a non-member rejected", setup: func(r *room) *event.Event {
			return r.tpiEvent(bob, idKey, nil)
		}},
		{rules: otherwise, desc: "message by a joined member allowed", allow: true, setup: func(r *room) *event.Event {
			r.join(bob)
			return r.msg(bob)
		}},

		{rules: tpi, desc: "m.room.third_party_invite at the invite level allowed", allow: true, setup: func(r *room) *event.Event {
			r.join(bob)
			return r.tpiEvent(bob, idKey, nil)
		}},
		{rules: tpi, desc: "m.room.third_party_invite below the invite level rejected", setup: func(r *room) *event.Event {
			r.join(bob)
			r.setPL("", `"invite":10,"events":{"m.room.third_party_invite":0}`)
			return r.tpiEvent(bob, idKey, nil)
		}},
		{rules: tpi, desc: "m.room.third_party_invite ignores its events level", allow: true, setup: func(r *room) *event.Event {
			r.join(bob)
			r.setPL("", `"events":{"m.room.third_party_invite":100}`)
			return r.tpiEvent(bob, idKey, nil)
		}},

		{rules: required, desc: "message below events_default rejected", setup: func(r *room) *event.Event {
			r.join(bob)
			r.setPL("", `"events_default":10`)
			return r.msg(bob)
		}},
		{rules: required, desc: "message type with a level above the sender rejected", setup: func(r *room) *event.Event {
			r.join(bob)
			r.setPL("", `"events":{"m.room.message":1}`)
			return r.msg(bob)
		}},
		{rules: required, desc: "message type with a level below events_default allowed", allow: true, setup: func(r *room) *event.Event {
			r.join(bob)
			r.setPL("", `"events_default":10,"events":{"m.room.message":0}`)
			return r.msg(bob)
		}},
		{rules: required, desc: "state event below state_default rejected", setup: func(r *room) *event.Event {
			r.join(bob)
			return r.stateEv("m.room.topic", "", bob, `{"topic":"t"}`)
		}},
		{rules: required, desc: "state event with its own lower level allowed", allow: true, setup: func(r *room) *event.Event {
			r.join(bob)
			r.setPL("", `"events":{"m.room.topic":0}`)
			return r.stateEv("m.room.topic", "", bob, `{"topic":"t"}`)
		}},
		{rules: required, desc: "without power levels the creator sends state at 100", allow: true, setup: func(r *room) *event.Event {
			r.drop("m.room.power_levels", "")
			return r.stateEv("m.room.name", "", alice, `{"name":"n"}`)
		}},
		{rules: required, desc: "without power levels state_default is 50 for others", setup: func(r *room) *event.Event {
			r.drop("m.room.power_levels", "")
			r.join(bob)
			return r.stateEv("m.room.name", "", bob, `{"name":"n"}`)
		}},
		{rules: required, desc: "without power levels events_default is 0", allow: true, setup: func(r *room) *event.Event {
			r.drop("m.room.power_levels", "")
			r.join(bob)
			return r.msg(bob)
		}},
		{rules: at("v1 v3:8", "v6 v7 v8 v10 v11:7"), desc: "with power levels the creator has no special level before v12",
			setup: func(r *room) *event.Event {
				r.setPL(`"`+alice+`":0`, "")
				return r.stateEv("m.room.name", "", alice, `{"name":"n"}`)
			}},
		{rules: at("v12:8"), desc: "the creator outranks the top event level", allow: true, setup: func(r *room) *event.Event {
			r.setPL("", `"events":{"m.room.tombstone":`+top+`}`)
			return r.stateEv("m.room.tombstone", "", alice, `{"body":"gone","replacement_room":"!new:example.org"}`)
		}},
		{rules: at("v12:8"), desc: "an additional creator outranks the top event level", allow: true,
			createExtra: `"additional_creators":["` + carol + `"]`, setup: func(r *room) *event.Event {
				r.join(carol)
				r.setPL("", `"events":{"m.room.tombstone":`+top+`}`)
				return r.stateEv("m.room.tombstone", "", carol, `{"body":"gone","replacement_room":"!new:example.org"}`)
			}},
		{rules: at("v12:8"), desc: "a user just below the top event level rejected", setup: func(r *room) *event.Event {
			r.join(bob)
			r.setPL(`"`+bob+`":9007199254740990`, `"events":{"m.room.tombstone":`+top+`}`)
			return r.stateEv("m.room.tombstone", "", bob, `{"body":"gone","replacement_room":"!new:example.org"}`)
		}},
		{rules: required, desc: "redaction below the m.room.redaction level rejected", setup: func(r *room) *event.Event {
			r.join(bob)
			r.setPL("", `"events":{"m.room.redaction":10}`)
			return r.redaction(bob, r.somePrev())
		}},

		{rules: stateKey, desc: "state_key naming another user rejected", setup: func(r *room) *event.Event {
			return r.stateEv("m.custom", bob, alice, `{}`)
		}},
		{rules: stateKey, desc: "state_key naming the sender allowed", allow: true, setup: func(r *room) *event.Event {
			return r.stateEv("m.custom", alice, alice, `{}`)
		}},
		{rules: stateKey, desc: "state_key not starting with @ allowed", allow: true, setup: func(r *room) *event.Event {
			return r.stateEv("m.custom", "x@"+bob, alice, `{}`)
		}},

		// The v1–2 redaction rule.
		{rules: at("v1:11.1"), desc: "redaction at the redact level allowed", allow: true, setup: func(r *room) *event.Event {
			r.setPL(`"`+mod+`":50`, "")
			r.join(mod)
			return r.redaction(mod, "$x:other.org")
		}},
		{rules: at("v1:11.2"), desc: "redaction of an event from the redaction's own server allowed", allow: true, setup: func(r *room) *event.Event {
			r.join(bob)
			return r.redaction(bob, "$x:example.org")
		}},
		{rules: at("v1:11.2"), desc: "redaction domain is the event ID's, not the sender's", allow: true, setup: func(r *room) *event.Event {
			r.join(bob)
			return r.redaction(bob, "$x:other.org", withEventID("$r:other.org"), signedBy("other.org"))
		}},
		// No (string) redacts: nothing to protect; allowed, as the
		// reference implementation does.
		{rules: at("v1:11.2"), desc: "redaction naming no event allowed", allow: true, setup: func(r *room) *event.Event {
			r.join(bob)
			return r.build("m.room.redaction", bob, nil, `{}`, field("redacts", cjson.IntValue(7)))
		}},
		{rules: at("v1:11.3"), desc: "redaction of another server's event below the redact level rejected", setup: func(r *room) *event.Event {
			r.join(bob)
			return r.redaction(bob, "$x:other.org")
		}},
		{rules: at("v3:11", "v6 v7 v8 v10 v11:10", "v12:11"), desc: "redaction of another's event below the redact level allowed from v3", allow: true,
			setup: func(r *room) *event.Event {
				r.join(bob)
				return r.redaction(bob, r.somePrev())
			}},
	})
}
