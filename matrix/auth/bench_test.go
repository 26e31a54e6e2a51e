package auth

import (
	"testing"

	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// benchRoom is a typical small room: create, power levels, join rules,
// history visibility, name, topic and four members (10 state events).
func benchRoom(b *testing.B, vid string) *room {
	r := newRoom(b, roomversion.MustLookup(vid), "")
	r.setPL(`"`+mod+`":50`, `"events":{"m.room.power_levels":100,"m.room.name":50,"m.room.topic":50,"m.room.history_visibility":100}`)
	r.setJoinRule("public")
	r.put(r.stateEv("m.room.history_visibility", "", alice, `{"history_visibility":"shared"}`))
	r.put(r.stateEv("m.room.name", "", alice, `{"name":"Bench"}`))
	r.put(r.stateEv("m.room.topic", "", alice, `{"topic":"Benchmarks"}`))
	r.join(bob, mod, carol)
	if len(r.state) != 10 {
		b.Fatalf("state has %d events", len(r.state))
	}
	return r
}

func BenchmarkCheck(b *testing.B) {
	for _, vid := range []string{"12", "1"} {
		r := benchRoom(b, vid)
		msg := r.msg(bob)
		join := r.member(dave, dave, "join", `"displayname":"Dave"`)
		kick := r.member(mod, bob, "leave", "")
		pl := r.newPL(alice, `"`+mod+`":50,"`+bob+`":10`, `"events":{"m.room.power_levels":100,"m.room.name":50,"m.room.topic":50,"m.room.history_visibility":100}`)
		for _, c := range []struct {
			name string
			ev   *event.Event
		}{{"message", msg}, {"join", join}, {"kick", kick}, {"power_levels", pl}} {
			if err := Check(c.ev, r.state); err != nil {
				b.Fatalf("v%s %s: %v", vid, c.name, err)
			}
			b.Run("v"+vid+"/"+c.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if Check(c.ev, r.state) != nil {
						b.Fatal("rejected")
					}
				}
			})
		}
	}
}

func BenchmarkCheckAuthEvents(b *testing.B) {
	r := benchRoom(b, "12")
	auths := r.selected(r.member(dave, dave, "join", ""))
	ev := r.member(dave, dave, "join", "", withAuth(auths...))
	if err := CheckAuthEvents(ev, auths, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if CheckAuthEvents(ev, auths, nil) != nil {
			b.Fatal("rejected")
		}
	}
}
