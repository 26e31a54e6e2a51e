package auth

import (
	"testing"

	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/roomversion"
)

func TestRedactionApplies(t *testing.T) {
	for _, v := range roomversion.All() {
		r := newRoom(t, v, "")
		r.join(bob, carol)
		msgAlice, msgBob, msgCarol := r.msg(alice), r.msg(bob), r.msg(carol)
		redact := func(sender string, target *event.Event) *event.Event {
			if v.RedactsInContent {
				return r.build("m.room.redaction", sender, nil, `{"redacts":"`+target.ID()+`"}`)
			}
			return r.build("m.room.redaction", sender, nil, `{}`, field("redacts", cjson.StringValue(target.ID())))
		}
		cases := []struct {
			name     string
			red, tgt *event.Event
			want     bool
		}{
			{"admin redacts another server's event", redact(alice, msgCarol), msgCarol, true},
			{"user redacts own event", redact(bob, msgBob), msgBob, true},
			{"same server, no power", redact(bob, msgAlice), msgAlice, true},
			// In v1–2 the auth rule (not tested here) already decided.
			{"other server, no power", redact(carol, msgBob), msgBob, v.RedactionAuthRule},
			{"redaction names another event", redact(alice, msgBob), msgCarol, false},
			{"not a redaction", msgAlice, msgBob, false},
		}
		for _, c := range cases {
			if got := RedactionApplies(c.red, c.tgt, r.state); got != c.want {
				t.Errorf("v%s %s: %v, want %v", v.ID, c.name, got, c.want)
			}
		}
	}
}
