package auth

import (
	"errors"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// TestRandomized builds random rooms and events (deterministic seed) and
// checks properties that must hold whatever the input:
//   - Check, CheckAuthEvents and Selection never panic, and every error is a
//     *Rejection of the event's room version with a rule number;
//   - re-sending the current power levels unchanged is allowed exactly when
//     the sender is joined and may send power levels (when the current
//     content is valid);
//   - SenderPowerLevel agrees with NewPowerLevels.
func TestRandomized(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	users := []string{alice, bob, mod, carol, dave}
	memberships := []string{"join", "invite", "leave", "ban", "knock", "wander", ""}
	joinRules := []string{"public", "invite", "knock", "restricted", "knock_restricted", "private", ""}
	values := []string{`0`, `50`, `100`, `-5`, `"50"`, `" +75 "`, `50.5`, `1e300`, `"x"`, `true`, `null`,
		`9007199254740991`, `"99999999999999999999"`, `{}`}
	// Floats exist only in room versions 1–5: later versions' events
	// cannot carry them at all (matrix/event refuses them).
	var vals []string
	intsOnly := slices.DeleteFunc(slices.Clone(values), func(s string) bool { return strings.ContainsAny(s, ".e") && s[0] != '"' })
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	plJSON := func() string {
		var b strings.Builder
		b.WriteString(`{`)
		sep := ""
		for _, k := range propNames {
			if rng.IntN(3) > 0 {
				b.WriteString(sep + `"` + k + `":` + pick(vals))
				sep = ","
			}
		}
		if rng.IntN(4) > 0 {
			b.WriteString(sep + `"users":{`)
			s2 := ""
			for _, u := range users {
				if rng.IntN(2) == 0 {
					b.WriteString(s2 + `"` + u + `":` + pick(vals))
					s2 = ","
				}
			}
			b.WriteString(`}`)
			sep = ","
		}
		if rng.IntN(2) == 0 {
			b.WriteString(sep + `"events":{"m.room.power_levels":` + pick(vals) + `,"m.room.message":` + pick(vals) + `}`)
			sep = ","
		}
		if rng.IntN(3) == 0 {
			b.WriteString(sep + `"notifications":{"room":` + pick(vals) + `}`)
		}
		b.WriteString(`}`)
		return b.String()
	}
	rule := regexp.MustCompile(`^[1-9][0-9]*(\.[1-9][0-9]*)*$`)
	checkErr := func(t *testing.T, v *roomversion.Version, err error, what string) {
		t.Helper()
		if err == nil {
			return
		}
		var rej *Rejection
		if !errors.As(err, &rej) || rej.RoomVersion != v.ID || !rule.MatchString(rej.Rule) || rej.Reason == "" {
			t.Fatalf("v%s %s: bad error %v", v.ID, what, err)
		}
	}
	for _, v := range roomversion.All() {
		vals = values
		if v.StrictCanonicalJSON {
			vals = intsOnly
		}
		for range 60 {
			r := newRoom(t, v, pick([]string{"", `"m.federate":false`, `"additional_creators":["` + carol + `"]`}))
			for _, u := range users[1:] {
				if m := pick(memberships); m != "" {
					r.setMember(u, m)
				}
			}
			if jr := pick(joinRules); jr != "" {
				r.setJoinRule(jr)
			}
			if rng.IntN(5) > 0 {
				r.put(r.stateEv("m.room.power_levels", "", alice, plJSON()))
			} else {
				r.drop("m.room.power_levels", "")
			}
			sender := pick(users)
			var ev *event.Event
			switch rng.IntN(6) {
			case 0:
				ev = r.msg(sender)
			case 1:
				extra := ""
				if rng.IntN(3) == 0 {
					extra = `"join_authorised_via_users_server":"` + pick(users) + `"`
				}
				ev = r.member(sender, pick(users), pick(memberships[:6]), extra, signedBy(pick([]string{"other.org", "third.org"})))
			case 2:
				ev = r.stateEv("m.room.power_levels", "", sender, plJSON())
			case 3:
				ev = r.stateEv(pick([]string{"m.room.name", "m.room.aliases", "m.room.third_party_invite"}), pick([]string{"", "example.org", sender, bob}), sender, `{}`)
			case 4:
				ev = r.redaction(sender, r.somePrev())
			case 5:
				ev = r.member(sender, carol, "invite", `"third_party_invite":{"signed":`+signedBlock(carol, "tok", idKey).String()+`}`)
				if rng.IntN(2) == 0 {
					r.put(r.tpiEvent(sender, idKey, nil))
				}
			}
			checkErr(t, v, Check(ev, r.state), "Check")
			auths := r.selected(ev)
			cited := r.build(ev.Type(), ev.Sender(), stateKeyPtr(ev), ev.Content().String(), withAuth(auths...))
			checkErr(t, v, CheckAuthEvents(cited, auths, func(string) bool { return rng.IntN(4) == 0 }), "CheckAuthEvents")

			// Re-sending the current power levels.
			cur := r.state[StateKey{"m.room.power_levels", ""}]
			if cur == nil {
				continue
			}
			p, err := NewPowerLevels(r.create, cur)
			if err != nil {
				checkErr(t, v, err, "NewPowerLevels")
				continue
			}
			same := r.stateEv("m.room.power_levels", "", sender, cur.Content().String())
			if got, want := SenderPowerLevel(same, r.state), p.User(sender); got != want {
				t.Fatalf("v%s: SenderPowerLevel %d, NewPowerLevels %d", v.ID, got, want)
			}
			joined := r.state[StateKey{"m.room.member", sender}] != nil && r.state[StateKey{"m.room.member", sender}].Membership() == "join"
			federated := r.create.Content().Get("m.federate").Exists() && !strings.HasSuffix(sender, ":example.org")
			mayPL := p.User(sender) >= p.Event("m.room.power_levels", true)
			err = Check(same, r.state)
			if (err == nil) != (joined && !federated && mayPL) {
				t.Fatalf("v%s: resending power levels %s by %s (joined %v, level %d, needed %d): %v",
					v.ID, cur.Content(), sender, joined, p.User(sender), p.Event("m.room.power_levels", true), err)
			}
		}
	}
}

func stateKeyPtr(ev *event.Event) *string {
	if sk, ok := ev.StateKey(); ok {
		return &sk
	}
	return nil
}
