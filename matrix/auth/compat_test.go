package auth

import (
	"errors"
	"testing"

	"github.com/axon-hs/axon/matrix/roomversion"
)

// Decisions where the spec's text is silent or where it and the reference
// implementation disagree; we decide as the reference implementation does,
// because deciding differently from the rest of a room's servers splits it.
func TestReferenceCompatibility(t *testing.T) {
	allow := func(t *testing.T, v *roomversion.Version, what string, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("v%s %s: %v, want allowed", v.ID, what, err)
		}
	}
	reject := func(t *testing.T, v *roomversion.Version, what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrRejected) {
			t.Errorf("v%s %s: %v, want rejected", v.ID, what, err)
		}
	}
	for _, v := range roomversion.All() {
		// A join_rules event without join_rule means invite.
		r := newRoom(t, v, "")
		r.put(r.stateEv("m.room.join_rules", "", alice, `{}`))
		r.setMember(bob, "invite")
		allow(t, v, "invited join with join_rules {}", Check(r.member(bob, bob, "join", ""), r.state))
		reject(t, v, "uninvited join with join_rules {}", Check(r.member(dave, dave, "join", ""), r.state))
		r.join(bob)
		allow(t, v, "member's profile change with join_rules {}", Check(r.member(bob, bob, "join", `"displayname":"B"`), r.state))

		// A power levels event with another state key replaces nothing.
		r = newRoom(t, v, "")
		r.join(bob)
		r.setPL(`"`+bob+`":100`, "")
		allow(t, v, "power levels with state key x", Check(r.stateEv("m.room.power_levels", "x", bob, `{}`), r.state))

		// m.federate: anything but absent or true means not federated, and
		// a membership's target must be local too.
		for _, val := range []string{`0`, `"false"`, `null`} {
			r = newRoom(t, v, `"m.federate":`+val)
			r.setJoinRule("public")
			reject(t, v, "remote join, m.federate "+val, Check(r.member(carol, carol, "join", ""), r.state))
		}
		r = newRoom(t, v, `"m.federate":false`)
		r.join(bob)
		reject(t, v, "local invite of a remote user, m.federate false", Check(r.member(bob, carol, "invite", ""), r.state))
		r = newRoom(t, v, `"m.federate":true`)
		r.join(bob)
		allow(t, v, "local invite of a remote user, m.federate true", Check(r.member(bob, carol, "invite", ""), r.state))
	}
}
