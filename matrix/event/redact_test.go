package event

import (
	"testing"

	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// One full event of each interesting type, redacted under each rule set.
func TestRedactionRules(t *testing.T) {
	top := `"event_id":"$e:x","room_id":"!r:x","sender":"@a:x","state_key":"","hashes":{"sha256":"h"},"signatures":{"x":{"ed25519:1":"s"}},"depth":1,"prev_events":[],"prev_state":[],"auth_events":[],"origin":"x","origin_server_ts":1,"membership":"join","unsigned":{"age":1},"redacts":"$t:x","extra":true`
	topV1 := `"auth_events":[],"depth":1,"event_id":"$e:x","hashes":{"sha256":"h"},"membership":"join","origin":"x","origin_server_ts":1,"prev_events":[],"prev_state":[],"room_id":"!r:x","sender":"@a:x","signatures":{"x":{"ed25519:1":"s"}},"state_key":""`
	topV11 := `"auth_events":[],"depth":1,"event_id":"$e:x","hashes":{"sha256":"h"},"origin_server_ts":1,"prev_events":[],"room_id":"!r:x","sender":"@a:x","signatures":{"x":{"ed25519:1":"s"}},"state_key":""`
	type want struct{ v1, v6, v8, v9, v11 string }
	cases := []struct {
		typ, content string
		want         want
	}{
		{"m.room.message", `{"body":"hi","msgtype":"m.text"}`, want{`{}`, `{}`, `{}`, `{}`, `{}`}},
		{"m.room.member", `{"membership":"join","displayname":"A","join_authorised_via_users_server":"@b:x","third_party_invite":{"display_name":"d","signed":{"mxid":"@a:x","token":"t","signatures":{}}}}`,
			want{`{"membership":"join"}`, `{"membership":"join"}`, `{"membership":"join"}`,
				`{"join_authorised_via_users_server":"@b:x","membership":"join"}`,
				`{"join_authorised_via_users_server":"@b:x","membership":"join","third_party_invite":{"signed":{"mxid":"@a:x","signatures":{},"token":"t"}}}`}},
		{"m.room.member", `{"membership":"invite","third_party_invite":{"display_name":"d"}}`,
			want{`{"membership":"invite"}`, `{"membership":"invite"}`, `{"membership":"invite"}`, `{"membership":"invite"}`,
				`{"membership":"invite","third_party_invite":{}}`}},
		{"m.room.create", `{"creator":"@a:x","room_version":"1","m.federate":false,"predecessor":{}}`,
			want{`{"creator":"@a:x"}`, `{"creator":"@a:x"}`, `{"creator":"@a:x"}`, `{"creator":"@a:x"}`,
				`{"creator":"@a:x","m.federate":false,"predecessor":{},"room_version":"1"}`}},
		{"m.room.join_rules", `{"join_rule":"restricted","allow":[{"type":"m.room_membership","room_id":"!o:x"}],"x":1}`,
			want{`{"join_rule":"restricted"}`, `{"join_rule":"restricted"}`,
				`{"allow":[{"room_id":"!o:x","type":"m.room_membership"}],"join_rule":"restricted"}`,
				`{"allow":[{"room_id":"!o:x","type":"m.room_membership"}],"join_rule":"restricted"}`,
				`{"allow":[{"room_id":"!o:x","type":"m.room_membership"}],"join_rule":"restricted"}`}},
		{"m.room.power_levels", `{"ban":50,"events":{},"events_default":0,"invite":0,"kick":50,"notifications":{"room":50},"redact":50,"state_default":50,"users":{},"users_default":0}`,
			want{`{"ban":50,"events":{},"events_default":0,"kick":50,"redact":50,"state_default":50,"users":{},"users_default":0}`,
				`{"ban":50,"events":{},"events_default":0,"kick":50,"redact":50,"state_default":50,"users":{},"users_default":0}`,
				`{"ban":50,"events":{},"events_default":0,"kick":50,"redact":50,"state_default":50,"users":{},"users_default":0}`,
				`{"ban":50,"events":{},"events_default":0,"kick":50,"redact":50,"state_default":50,"users":{},"users_default":0}`,
				`{"ban":50,"events":{},"events_default":0,"invite":0,"kick":50,"redact":50,"state_default":50,"users":{},"users_default":0}`}},
		{"m.room.aliases", `{"aliases":["#a:x"]}`, want{`{"aliases":["#a:x"]}`, `{}`, `{}`, `{}`, `{}`}},
		{"m.room.history_visibility", `{"history_visibility":"shared","x":1}`,
			want{`{"history_visibility":"shared"}`, `{"history_visibility":"shared"}`, `{"history_visibility":"shared"}`, `{"history_visibility":"shared"}`, `{"history_visibility":"shared"}`}},
		{"m.room.redaction", `{"redacts":"$t:x","reason":"spam"}`, want{`{}`, `{}`, `{}`, `{}`, `{"redacts":"$t:x"}`}},
	}
	rules := []roomversion.RedactionRules{roomversion.RedactV1, roomversion.RedactV6, roomversion.RedactV8, roomversion.RedactV9, roomversion.RedactV11}
	for _, c := range cases {
		in, err := cjson.ParseString(`{"type":"`+c.typ+`",`+top+`,"content":`+c.content+`}`, cjson.Strict)
		if err != nil {
			t.Fatal(err)
		}
		wants := []string{c.want.v1, c.want.v6, c.want.v8, c.want.v9, c.want.v11}
		for i, r := range rules {
			base := topV1
			if r == roomversion.RedactV11 {
				base = topV11
			}
			want := `{` + base[:len(`"auth_events":[],`)] + `"content":` + wants[i] + `,` + base[len(`"auth_events":[],`):] + `,"type":"` + c.typ + `"}`
			if got := Redact(r, in).String(); got != want {
				t.Errorf("%s under rules %d:\n got %s\nwant %s", c.typ, r, got, want)
			}
		}
	}
}

func TestRedactionIsIdempotentAndKeepsID(t *testing.T) {
	for _, v := range roomversion.All() {
		e := build(t, v, proto(v))
		r := e.Redacted()
		if r.ID() != e.ID() || r.Content().Len() != 0 {
			t.Errorf("v%s: redacted id %s content %s", v.ID, r.ID(), r.Content())
		}
		if got := Redact(v.Redact, r.JSON()).String(); got != r.JSON().String() {
			t.Errorf("v%s: redaction not idempotent", v.ID)
		}
		// The redacted copy parses and has the same ID (what a server that
		// only holds the redacted event computes).
		p, err := FromValue(v, r.JSON())
		if err != nil || p.ID() != e.ID() {
			t.Errorf("v%s: redacted copy: %v, id %s", v.ID, err, p.ID())
		}
	}
}
