package auth

import (
	"testing"

	"github.com/axon-hs/axon/matrix/event"
)

// Power level rule numbers by clause, written from each version's list.
var plRules = map[string]map[string]string{
	"props":    at("v10 v11:9.1", "v12:10.1"),
	"maps":     at("v10 v11:9.2", "v12:10.2"),
	"users":    at("v1 v3:10.1", "v6 v7 v8:9.1", "v10 v11:9.3", "v12:10.3"),
	"creators": at("v12:10.4"),
	"noprev":   at("v1 v3:10.2", "v6 v7 v8:9.2", "v10 v11:9.4", "v12:10.5"),
	"alter1":   at("v1 v3:10.3.1", "v6 v7 v8:9.3.1", "v10 v11:9.5.1", "v12:10.6.1"),
	"alter2":   at("v1 v3:10.3.2", "v6 v7 v8:9.3.2", "v10 v11:9.5.2", "v12:10.6.2"),
	"mapold":   at("v1 v3:10.4.1", "v6 v7 v8:9.4.1", "v10 v11:9.6.1", "v12:10.7.1"),
	"mapnew":   at("v1 v3:10.5.1", "v6 v7 v8:9.5.1", "v10 v11:9.7.1", "v12:10.8.1"),
	"userold":  at("v1 v3:10.6.1", "v6 v7 v8:9.6.1", "v10 v11:9.8.1", "v12:10.9.1"),
	"usernew":  at("v1 v3:10.7.1", "v6 v7 v8:9.7.1", "v10 v11:9.9.1", "v12:10.10.1"),
	// "Otherwise, allow" (v12's list writes it "10." again; it is the 11th item).
	"allow": at("v1 v3:10.8", "v6 v7 v8:9.8", "v10 v11:9.10", "v12:10.11"),
}

// only restricts a family map to some families.
func only(m map[string]string, fams ...string) map[string]string {
	out := map[string]string{}
	for _, f := range fams {
		if r, ok := m[f]; ok {
			out[f] = r
		}
	}
	return out
}

var (
	pre10  = []string{"v1", "v3", "v6", "v7", "v8"}
	from10 = []string{"v10", "v11", "v12"}
	floaty = []string{"v1", "v3"}
	from6  = []string{"v6", "v7", "v8", "v10", "v11", "v12"}
)

const mods = `"@mod:example.org":50,"@mod2:example.org":50`

// modRoom sets power levels in which mod and mod2 have 50 and may send
// power levels (events holds more members of events), and joins mod.
func modRoom(r *room, users, events, overrides string) {
	r.setPL(users, `"events":{"m.room.power_levels":50`+events+`}`+overrides)
	r.join(mod)
}

// modPL is mod's new power levels event of the same form.
func modPL(r *room, users, events, overrides string) *event.Event {
	return r.newPL(mod, users, `"events":{"m.room.power_levels":50`+events+`}`+overrides)
}

func TestRulesPowerLevels(t *testing.T) {
	// byAlice is alice's power levels with the users and overrides given.
	byAlice := func(users, overrides string) func(r *room) *event.Event {
		return func(r *room) *event.Event { return r.newPL(alice, users, overrides) }
	}
	// change runs modRoom(before) then modPL(after).
	change := func(usersBefore, eventsBefore, overBefore, usersAfter, eventsAfter, overAfter string) func(r *room) *event.Event {
		return func(r *room) *event.Event {
			modRoom(r, usersBefore, eventsBefore, overBefore)
			return modPL(r, usersAfter, eventsAfter, overAfter)
		}
	}
	runRuleCases(t, []ruleCase{
		// Shape of users (every version), of the other properties (v10+), creators (v12).
		{rules: plRules["users"], desc: "users not an object rejected", setup: byAlice("", `"users":[]`)},
		{rules: plRules["users"], desc: "users key that is not a user ID rejected", setup: byAlice(`"bob":50`, "")},
		{rules: plRules["users"], desc: "users key without a server rejected", setup: byAlice(`"@bob":50`, "")},
		// Only "@…:…" is checked, as the reference implementation does.
		{rules: plRules["noprev"], desc: "users key with an odd server name allowed", allow: true, setup: func(r *room) *event.Event {
			r.drop("m.room.power_levels", "")
			return r.newPL(alice, `"@b:":10,"@c:bad host!":20`, "")
		}},
		{rules: only(plRules["users"], from10...), desc: "users value that is a boolean rejected from v10", setup: byAlice(`"@bob:example.org":true`, "")},
		{rules: only(plRules["noprev"], pre10...), desc: "users value that is a boolean allowed before v10", allow: true, setup: func(r *room) *event.Event {
			r.drop("m.room.power_levels", "")
			return r.newPL(alice, `"@bob:example.org":true`, "")
		}},
		{rules: plRules["users"], desc: "users value that is not an integer string rejected", setup: byAlice(`"@bob:example.org":"5.0"`, "")},
		{rules: plRules["users"], desc: "users value that is a hex string rejected", setup: byAlice(`"@bob:example.org":"0x10"`, "")},
		{rules: plRules["users"], desc: "users value that is an empty string rejected", setup: byAlice(`"@bob:example.org":" "`, "")},
		{rules: plRules["users"], desc: "users value with a space after the sign rejected", setup: byAlice(`"@bob:example.org":"- 5"`, "")},
		{rules: only(plRules["noprev"], pre10...), desc: "users value as a string allowed before v10", allow: true,
			setup: func(r *room) *event.Event {
				r.drop("m.room.power_levels", "")
				return r.newPL(alice, `"@bob:example.org":"50"`, "")
			}},
		{rules: only(plRules["noprev"], pre10...), desc: "users value as a padded signed string with zeros allowed before v10", allow: true,
			setup: func(r *room) *event.Event {
				r.drop("m.room.power_levels", "")
				return r.newPL(alice, `"@bob:example.org":" +0050\t","@carol:other.org":"-007"`, "")
			}},
		{rules: only(plRules["users"], from10...), desc: "users value as a string rejected from v10", setup: byAlice(`"@bob:example.org":"50"`, "")},
		{rules: only(plRules["noprev"], floaty...), desc: "users value as a float allowed in v1-5", allow: true,
			setup: func(r *room) *event.Event {
				r.drop("m.room.power_levels", "")
				return r.newPL(alice, `"@bob:example.org":50.57,"@carol:other.org":5.114698E1`, "")
			}},
		// Floats in room versions 6+, and numbers beyond the range of a
		// double in any version, never reach the rules: matrix/event refuses
		// such events as invalid JSON (see its TestCanonicalJSONRulesPerVersion).
		{rules: plRules["props"], desc: "ban as a string rejected", setup: byAlice("", `"ban":"50"`)},
		{rules: plRules["props"], desc: "invite as null rejected", setup: byAlice("", `"invite":null`)},
		{rules: only(plRules["allow"], pre10...), desc: "invalid ban value counts as absent before v10", allow: true,
			setup: byAlice("", `"ban":"fifty"`)},
		{rules: plRules["maps"], desc: "events not an object rejected", setup: byAlice("", `"events":[]`)},
		{rules: plRules["maps"], desc: "events value as a string rejected", setup: byAlice("", `"events":{"m.room.power_levels":"100"}`)},
		{rules: plRules["maps"], desc: "notifications not an object rejected", setup: byAlice("", `"notifications":50`)},
		{rules: plRules["maps"], desc: "notifications value as a string rejected", setup: byAlice("", `"notifications":{"room":"50"}`)},
		{rules: plRules["creators"], desc: "users listing the creator rejected", setup: byAlice(`"`+alice+`":100`, "")},
		{rules: plRules["creators"], desc: "users listing an additional creator rejected", setup: byAlice(`"`+carol+`":100`, ""),
			createExtra: `"additional_creators":["` + carol + `"]`},
		{rules: plRules["creators"], desc: "users without creators allowed", allow: true, setup: byAlice(`"`+bob+`":100`, ""),
			createExtra: `"additional_creators":["` + carol + `"]`},

		// The first power levels event.
		{rules: plRules["noprev"], desc: "first power levels by the creator allowed", allow: true, setup: func(r *room) *event.Event {
			r.drop("m.room.power_levels", "")
			return r.newPL(alice, `"@bob:example.org":100`, `"ban":1000`)
		}},
		{rules: at("v1 v3:8", "v6 v7 v8 v10 v11:7", "v12:8"), desc: "first power levels by a non-creator rejected", setup: func(r *room) *event.Event {
			r.drop("m.room.power_levels", "")
			r.join(bob)
			return r.newPL(bob, "", "")
		}},

		// Altered properties.
		{rules: plRules["alter1"], desc: "changing a property above the sender rejected",
			setup: change(mods, "", `,"ban":75`, mods, "", `,"ban":50`)},
		{rules: plRules["alter1"], desc: "removing a property above the sender rejected",
			setup: func(r *room) *event.Event {
				modRoom(r, mods, "", `,"ban":75`)
				ev := modPL(r, mods, "", "")
				return r.stateEv("m.room.power_levels", "", mod, ev.Content().Without("ban").String())
			}},
		{rules: plRules["alter2"], desc: "raising a property above the sender rejected",
			setup: change(mods, "", "", mods, "", `,"kick":75`)},
		{rules: plRules["allow"], desc: "lowering a property within the sender's level allowed", allow: true,
			setup: change(mods, "", "", mods, "", `,"kick":25,"invite":50`)},
		{rules: plRules["allow"], desc: "unchanged property above the sender allowed", allow: true,
			setup: change(mods, "", `,"ban":75`, mods, "", `,"ban":75,"kick":40`)},
		{rules: only(plRules["allow"], pre10...), desc: "a string and the same integer are no change", allow: true,
			setup: change(mods, "", `,"ban":"75"`, mods, "", `,"ban":75`)},

		// events and notifications.
		{rules: plRules["mapold"], desc: "changing an event level above the sender rejected",
			setup: change(mods, `,"m.room.name":75`, "", mods, `,"m.room.name":50`, "")},
		{rules: plRules["mapold"], desc: "removing an event level above the sender rejected",
			setup: change(mods, `,"m.room.name":75`, "", mods, "", "")},
		{rules: plRules["mapnew"], desc: "adding an event level above the sender rejected",
			setup: change(mods, "", "", mods, `,"m.room.topic":75`, "")},
		{rules: plRules["mapnew"], desc: "raising an event level above the sender rejected",
			setup: change(mods, `,"m.room.topic":10`, "", mods, `,"m.room.topic":51`, "")},
		{rules: plRules["allow"], desc: "adding and changing event levels within the sender's level allowed", allow: true,
			setup: change(mods, `,"m.room.name":10`, "", mods, `,"m.room.name":50,"m.room.topic":0`, "")},
		{rules: only(plRules["mapold"], from6...), desc: "changing a notification level above the sender rejected from v6",
			setup: change(mods, "", `,"notifications":{"room":75}`, mods, "", `,"notifications":{"room":20}`)},
		{rules: only(plRules["mapnew"], from6...), desc: "adding a notification level above the sender rejected from v6",
			setup: change(mods, "", "", mods, "", `,"notifications":{"room":75}`)},
		{rules: only(plRules["allow"], floaty...), desc: "notification levels are not checked in v1-5", allow: true,
			setup: change(mods, "", `,"notifications":{"room":75}`, mods, "", `,"notifications":{"room":20,"x":99}`)},

		// users.
		{rules: plRules["userold"], desc: "lowering another user at the sender's level rejected",
			setup: change(mods, "", "", `"@mod:example.org":50,"@mod2:example.org":0`, "", "")},
		{rules: plRules["userold"], desc: "removing another user at the sender's level rejected",
			setup: change(mods, "", "", `"@mod:example.org":50`, "", "")},
		{rules: plRules["allow"], desc: "lowering one's own level allowed", allow: true,
			setup: change(mods, "", "", `"@mod:example.org":10,"@mod2:example.org":50`, "", "")},
		{rules: plRules["allow"], desc: "raising a lower user to the sender's level allowed", allow: true,
			setup: change(mods+`,"@bob:example.org":10`, "", "", mods+`,"@bob:example.org":50`, "", "")},
		{rules: plRules["usernew"], desc: "raising a user above the sender rejected",
			setup: change(mods, "", "", mods+`,"@bob:example.org":51`, "", "")},
		{rules: plRules["usernew"], desc: "raising one's own level rejected",
			setup: change(mods, "", "", `"@mod:example.org":60,"@mod2:example.org":50`, "", "")},
		{rules: only(plRules["usernew"], pre10...), desc: "a user level beyond int64 above the sender rejected",
			setup: func(r *room) *event.Event {
				return r.newPL(alice, `"@bob:example.org":"99999999999999999999"`, "")
			}},
		{rules: only(plRules["alter1"], pre10...), desc: "levels beyond int64 are compared exactly",
			setup: func(r *room) *event.Event {
				r.setPL(`"`+bob+`":"99999999999999999998"`, `"ban":"99999999999999999999"`)
				r.join(bob)
				return r.newPL(bob, `"`+bob+`":"99999999999999999998"`, `"ban":5`)
			}},
		{rules: only(plRules["allow"], pre10...), desc: "levels beyond int64 below the sender allowed", allow: true,
			setup: func(r *room) *event.Event {
				r.setPL(`"`+bob+`":"99999999999999999999"`, `"ban":"99999999999999999998"`)
				r.join(bob)
				return r.newPL(bob, `"`+bob+`":"99999999999999999999"`, `"ban":5`)
			}},
		{rules: only(plRules["allow"], "v12"), desc: "the creator may set any level", allow: true,
			setup: func(r *room) *event.Event {
				return r.newPL(alice, `"`+bob+`":9007199254740991`, `"ban":9007199254740991,"events":{"m.room.power_levels":9007199254740991}`)
			}},
		{rules: only(plRules["userold"], "v12"), desc: "a user at the top level cannot lower another at the top level",
			setup: func(r *room) *event.Event {
				r.setPL(`"`+bob+`":9007199254740991,"`+carol+`":9007199254740991`, "")
				r.join(bob)
				return r.newPL(bob, `"`+bob+`":9007199254740991,"`+carol+`":0`, "")
			}},
	})
}
