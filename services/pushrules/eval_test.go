package pushrules

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/axon-hs/axon/internal/testenv"
	"github.com/axon-hs/axon/matrix/cjson"
)

const (
	room  = "!room:test.example"
	other = "!other:test.example"
	carol = "@carol:test.example"
)

func parseEvent(t testing.TB, s string) cjson.Value {
	t.Helper()
	v, err := cjson.ParseString(s, cjson.Lenient)
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return v
}

// message is an m.room.message from carol in room with the given content.
func message(content string) string {
	return `{"type":"m.room.message","room_id":"` + room + `","sender":"` + carol + `","content":` + content + `}`
}

// evalCase is one event evaluated with one input.
type evalCase struct {
	name        string
	event       string
	members     int    // MemberCount; 10 when 0
	senderPL    int64  // SenderPowerLevel
	powerLevels string // PowerLevels ("" for none)
	displayName string
	want        Result
}

func (tc evalCase) input(t testing.TB) Input {
	in := Input{Event: parseEvent(t, tc.event), MemberCount: tc.members, SenderPowerLevel: tc.senderPL, DisplayName: tc.displayName}
	if in.MemberCount == 0 {
		in.MemberCount = 10
	}
	if tc.powerLevels != "" {
		in.PowerLevels = parseEvent(t, tc.powerLevels)
	}
	return in
}

func runEval(t *testing.T, r *Rules, cases []evalCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.Evaluate(tc.input(t)); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func notify(id string) Result    { return Result{Notify: true, RuleID: id} }
func highlight(id string) Result { return Result{Notify: true, Highlight: true, RuleID: id} }
func silent(id string) Result    { return Result{RuleID: id} }

func TestEvaluateDefaults(t *testing.T) {
	mention := func(mentions string) string {
		return message(`{"msgtype":"m.text","body":"hi","m.mentions":` + mentions + `}`)
	}
	state := func(typ, stateKey, content string) string {
		return `{"type":"` + typ + `","room_id":"` + room + `","sender":"` + carol + `","state_key":"` + stateKey + `","content":` + content + `}`
	}
	other := func(typ, content string) string {
		return `{"type":"` + typ + `","room_id":"` + room + `","sender":"` + carol + `","content":` + content + `}`
	}
	cases := []evalCase{
		{name: "message", event: message(`{"msgtype":"m.text","body":"hello"}`), want: notify(".m.rule.message")},
		{name: "message in a 1:1 room", event: message(`{"msgtype":"m.text","body":"hello"}`), members: 2, want: notify(".m.rule.room_one_to_one")},
		{name: "message without msgtype", event: message(`{"body":"hello"}`), want: notify(".m.rule.message")},
		{name: "message with a msgtype not a string", event: message(`{"msgtype":5}`), want: notify(".m.rule.message")},
		{name: "message without content", event: `{"type":"m.room.message","sender":"` + carol + `"}`, want: notify(".m.rule.message")},
		{name: "notice", event: message(`{"msgtype":"m.notice","body":"bot says"}`), want: silent(".m.rule.suppress_notices")},
		{name: "notice in other case", event: message(`{"msgtype":"M.Notice","body":"bot says"}`), want: silent(".m.rule.suppress_notices")},

		{name: "user mention", event: mention(`{"user_ids":["@bob:test.example","` + alice + `"]}`), want: highlight(".m.rule.is_user_mention")},
		{name: "mention of someone else", event: mention(`{"user_ids":["@bob:test.example"]}`), want: notify(".m.rule.message")},
		{name: "mention is exact", event: mention(`{"user_ids":["@ALICE:test.example"]}`), want: notify(".m.rule.message")},
		{name: "user_ids not an array", event: mention(`{"user_ids":"` + alice + `"}`), want: notify(".m.rule.message")},
		{name: "user mention in a notice", event: message(`{"msgtype":"m.notice","m.mentions":{"user_ids":["` + alice + `"]}}`), want: silent(".m.rule.suppress_notices")},

		{name: "room mention by PL 50", event: mention(`{"room":true}`), senderPL: 50, want: highlight(".m.rule.is_room_mention")},
		{name: "room mention by PL 100", event: mention(`{"room":true}`), senderPL: 100, powerLevels: `{"users":{}}`, want: highlight(".m.rule.is_room_mention")},
		{name: "room mention by PL 0", event: mention(`{"room":true}`), want: notify(".m.rule.message")},
		{name: "room mention by PL 49", event: mention(`{"room":true}`), senderPL: 49, powerLevels: `{"notifications":{}}`, want: notify(".m.rule.message")},
		{name: "room mention, notifications.room 0", event: mention(`{"room":true}`), powerLevels: `{"notifications":{"room":0}}`, want: highlight(".m.rule.is_room_mention")},
		{name: "room mention, notifications.room 10, PL 10", event: mention(`{"room":true}`), senderPL: 10, powerLevels: `{"notifications":{"room":10}}`, want: highlight(".m.rule.is_room_mention")},
		{name: "room mention, notifications.room 10, PL 9", event: mention(`{"room":true}`), senderPL: 9, powerLevels: `{"notifications":{"room":10}}`, want: notify(".m.rule.message")},
		{name: "room mention, notifications.room 100, PL 50", event: mention(`{"room":true}`), senderPL: 50, powerLevels: `{"notifications":{"room":100}}`, want: notify(".m.rule.message")},
		{name: "room mention, notifications.room a string", event: mention(`{"room":true}`), senderPL: 10, powerLevels: `{"notifications":{"room":"10"}}`, want: highlight(".m.rule.is_room_mention")},
		{name: "room mention false", event: mention(`{"room":false}`), senderPL: 100, want: notify(".m.rule.message")},
		{name: "room mention as a string", event: mention(`{"room":"true"}`), senderPL: 100, want: notify(".m.rule.message")},
		{name: "room mention as 1", event: mention(`{"room":1}`), senderPL: 100, want: notify(".m.rule.message")},

		{name: "tombstone", event: state("m.room.tombstone", "", `{"body":"moved","replacement_room":"!new:test.example"}`), want: highlight(".m.rule.tombstone")},
		{name: "tombstone not a state event", event: other("m.room.tombstone", `{}`), want: Result{}},
		{name: "tombstone with a state key", event: state("m.room.tombstone", "x", `{}`), want: Result{}},
		{name: "server ACL", event: state("m.room.server_acl", "", `{"allow":["*"]}`), want: silent(".m.rule.room.server_acl")},
		{name: "reaction", event: other("m.reaction", `{"m.relates_to":{"rel_type":"m.annotation","event_id":"$e","key":"👍"}}`), want: silent(".m.rule.reaction")},
		{name: "edit", event: message(`{"msgtype":"m.text","body":"* hi","m.new_content":{"body":"hi"},"m.relates_to":{"rel_type":"m.replace","event_id":"$e"}}`), want: silent(".m.rule.suppress_edits")},
		{name: "edit mentioning me", event: message(`{"body":"* hi","m.mentions":{"user_ids":["` + alice + `"]},"m.relates_to":{"rel_type":"m.replace","event_id":"$e"}}`), want: highlight(".m.rule.is_user_mention")},
		{name: "thread reply", event: message(`{"msgtype":"m.text","body":"hi","m.relates_to":{"rel_type":"m.thread","event_id":"$e"}}`), want: notify(".m.rule.message")},

		{name: "join", event: state("m.room.member", carol, `{"membership":"join"}`), want: silent(".m.rule.member_event")},
		{name: "invite for me", event: state("m.room.member", alice, `{"membership":"invite"}`), want: notify(".m.rule.invite_for_me")},
		{name: "invite for someone else", event: state("m.room.member", "@bob:test.example", `{"membership":"invite"}`), want: silent(".m.rule.member_event")},
		{name: "my join", event: state("m.room.member", alice, `{"membership":"join"}`), want: silent(".m.rule.member_event")},

		{name: "encrypted in a 1:1 room", event: other("m.room.encrypted", `{"algorithm":"m.megolm.v1.aes-sha2","ciphertext":"x"}`), members: 2, want: notify(".m.rule.encrypted_room_one_to_one")},
		{name: "encrypted in a larger room", event: other("m.room.encrypted", `{"algorithm":"m.megolm.v1.aes-sha2","ciphertext":"x"}`), members: 3, want: notify(".m.rule.encrypted")},
		{name: "call invite", event: other("m.call.invite", `{"call_id":"c","version":1}`), want: notify(".m.rule.call")},
		{name: "sticker", event: other("m.sticker", `{"body":"cat","url":"mxc://x/y"}`), want: Result{}},
		{name: "topic", event: state("m.room.topic", "", `{"topic":"hello"}`), want: Result{}},
		{name: "no type", event: `{"room_id":"` + room + `","sender":"` + carol + `","content":{"body":"x"}}`, want: Result{}},
		{name: "type not a string", event: `{"type":["m.room.message"],"content":{"body":"x"}}`, want: Result{}},
	}
	runEval(t, DefaultRules(alice), cases)
}

// userRules returns alice's ruleset with her own rules (JSON: kind →
// rules) and changes to server-default rules, compiled from the API's
// JSON as Service.Ruleset gives it.
func userRules(t testing.TB, own string, changes map[[2]string]defaultChange) *Rules {
	t.Helper()
	user := map[string][]rule{}
	if own != "" {
		if err := json.Unmarshal([]byte(own), &user); err != nil {
			t.Fatalf("%s: %v", own, err)
		}
	}
	raw, err := encode(assemble(alice, user, changes))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Compile(alice, raw)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func enabled(b bool) *bool { return &b }

func TestEvaluateUserRules(t *testing.T) {
	plain := message(`{"msgtype":"m.text","body":"hello"}`)
	body := func(s string) string { return message(`{"msgtype":"m.text","body":"` + s + `"}`) }
	inRoom := func(roomID string) string {
		return `{"type":"m.room.message","room_id":"` + roomID + `","sender":"` + carol + `","content":{"body":"hi"}}`
	}
	props := func(content string) string {
		return `{"type":"m.custom","room_id":"` + room + `","content":` + content + `}`
	}
	hl := `["notify",{"set_tweak":"highlight"}]`

	cases := []struct {
		name    string
		own     string
		changes map[[2]string]defaultChange
		cases   []evalCase
	}{
		{
			name:    "master rule enabled",
			changes: map[[2]string]defaultChange{{"override", masterRuleID}: {Enabled: enabled(true)}},
			own:     `{"content":[{"rule_id":"kw","enabled":true,"pattern":"hello","actions":` + hl + `}]}`,
			cases: []evalCase{
				{name: "message", event: plain, want: silent(masterRuleID)},
				{name: "user mention", event: message(`{"m.mentions":{"user_ids":["` + alice + `"]}}`), want: silent(masterRuleID)},
				{name: "invite for me", event: `{"type":"m.room.member","state_key":"` + alice + `","content":{"membership":"invite"}}`, want: silent(masterRuleID)},
				{name: "sticker", event: `{"type":"m.sticker","content":{}}`, want: silent(masterRuleID)},
			},
		},
		{
			name:    "changed default rules",
			changes: map[[2]string]defaultChange{{"underride", ".m.rule.message"}: {Actions: json.RawMessage(`[]`)}, {"override", ".m.rule.suppress_notices"}: {Enabled: enabled(false)}},
			cases: []evalCase{
				{name: "message muted", event: plain, want: silent(".m.rule.message")},
				{name: "notices no longer suppressed", event: message(`{"msgtype":"m.notice","body":"x"}`), want: silent(".m.rule.message")},
				{name: "1:1 message", event: plain, members: 2, want: notify(".m.rule.room_one_to_one")},
			},
		},
		{
			name: "content rule",
			own:  `{"content":[{"rule_id":"tea","enabled":true,"pattern":"T?a*pot","actions":` + hl + `}]}`,
			cases: []evalCase{
				{name: "whole value", event: body("teapot"), want: highlight("tea")},
				{name: "ignoring case", event: body("TeA-cOsY POT"), want: highlight("tea")},
				{name: "a word in the body", event: body("the teapot is hot"), want: highlight("tea")},
				{name: "words at punctuation", event: body("(tea pot)."), want: highlight("tea")},
				{name: "not within a word", event: body("steapot"), want: notify(".m.rule.message")},
				{name: "not ending within a word", event: body("teapots"), want: notify(".m.rule.message")},
				{name: "? needs a character", event: body("tapot"), want: notify(".m.rule.message")},
				{name: "later start", event: body("teapots and a teapot"), want: highlight("tea")},
				{name: "body not a string", event: message(`{"body":["teapot"]}`), want: notify(".m.rule.message")},
				{name: "other property", event: message(`{"body":"x","formatted_body":"teapot"}`), want: notify(".m.rule.message")},
				{name: "notice still suppressed", event: message(`{"msgtype":"m.notice","body":"teapot"}`), want: silent(".m.rule.suppress_notices")},
			},
		},
		{
			name: "content rules in order",
			own: `{"content":[{"rule_id":"time","enabled":true,"pattern":"time","actions":["notify"]},
				{"rule_id":"tea","enabled":true,"pattern":"tea","actions":` + hl + `}]}`,
			cases: []evalCase{
				{name: "both", event: body("It's time for tea"), want: notify("time")},
				{name: "second", event: body("tea?"), want: highlight("tea")},
			},
		},
		{
			name: "room rule mutes a room",
			own:  `{"room":[{"rule_id":"` + room + `","enabled":true,"actions":[]}]}`,
			cases: []evalCase{
				{name: "that room", event: inRoom(room), want: silent(room)},
				{name: "other room", event: inRoom(other), want: notify(".m.rule.message")},
				{name: "room ID is exact", event: inRoom("!ROOM:test.example"), want: notify(".m.rule.message")},
				{name: "mention still highlights", event: message(`{"m.mentions":{"user_ids":["` + alice + `"]}}`), want: highlight(".m.rule.is_user_mention")},
			},
		},
		{
			name: "override room_id mute",
			own:  `{"override":[{"rule_id":"mute","enabled":true,"conditions":[{"kind":"event_match","key":"room_id","pattern":"` + room + `"}],"actions":["dont_notify"]}]}`,
			cases: []evalCase{
				{name: "that room", event: inRoom(room), want: silent("mute")},
				{name: "mention in that room", event: message(`{"m.mentions":{"user_ids":["` + alice + `"]}}`), want: silent("mute")},
				{name: "other room", event: inRoom(other), want: notify(".m.rule.message")},
			},
		},
		{
			name: "sender rule",
			own:  `{"sender":[{"rule_id":"` + carol + `","enabled":true,"actions":` + hl + `}]}`,
			cases: []evalCase{
				{name: "from carol", event: plain, want: highlight(carol)},
				{name: "from bob", event: `{"type":"m.room.message","sender":"@bob:test.example","content":{}}`, want: notify(".m.rule.message")},
				{name: "carol's sticker", event: `{"type":"m.sticker","sender":"` + carol + `","content":{}}`, want: highlight(carol)},
			},
		},
		{
			name: "kinds in order",
			own: `{"override":[{"rule_id":"o","enabled":true,"conditions":[{"kind":"event_match","key":"content.body","pattern":"override"}],"actions":[]}],
				"content":[{"rule_id":"c","enabled":true,"pattern":"*","actions":["notify",{"set_tweak":"highlight","value":false}]}],
				"room":[{"rule_id":"` + room + `","enabled":true,"actions":` + hl + `}],
				"underride":[{"rule_id":"u","enabled":true,"actions":` + hl + `}]}`,
			cases: []evalCase{
				{name: "override first", event: body("override"), want: silent("o")},
				{name: "content before room", event: body("x"), want: notify("c")},
				{name: "room when no body", event: message(`{}`), want: highlight(room)},
				{name: "user underride before default underride", event: `{"type":"m.room.message","room_id":"` + other + `"}`, want: highlight("u")},
			},
		},
		{
			name: "disabled user rule",
			own:  `{"override":[{"rule_id":"all","enabled":false,"conditions":[],"actions":` + hl + `}]}`,
			cases: []evalCase{
				{name: "skipped", event: plain, want: notify(".m.rule.message")},
			},
		},
		{
			name: "contains_display_name",
			own:  `{"override":[{"rule_id":"name","enabled":true,"conditions":[{"kind":"contains_display_name"}],"actions":` + hl + `}]}`,
			cases: []evalCase{
				{name: "word", event: body("hi Alice!"), displayName: "alice", want: highlight("name")},
				{name: "whole body", event: body("ALICE"), displayName: "Alice", want: highlight("name")},
				{name: "within a word", event: body("malice"), displayName: "Alice", want: notify(".m.rule.message")},
				{name: "prefix of a word", event: body("alice_b"), displayName: "Alice", want: notify(".m.rule.message")},
				{name: "name with spaces and glob characters", event: body("ask Dr. Who*?"), displayName: "dr. who*", want: highlight("name")},
				{name: "glob characters are literal", event: body("ask Dr. Whom"), displayName: "dr. who*", want: notify(".m.rule.message")},
				{name: "non-ASCII", event: body("¡hola ÉMILIE!"), displayName: "Émilie", want: highlight("name")},
				{name: "no display name", event: body("hi"), want: notify(".m.rule.message")},
				{name: "not in the body", event: message(`{"body":"hi","name":"Alice"}`), displayName: "Alice", want: notify(".m.rule.message")},
			},
		},
		{
			name: "room_member_count",
			own: `{"override":[
				{"rule_id":"lt3","enabled":true,"conditions":[{"kind":"room_member_count","is":"<3"}],"actions":["notify"]},
				{"rule_id":"eq5","enabled":true,"conditions":[{"kind":"room_member_count","is":"5"}],"actions":["notify"]},
				{"rule_id":"le6","enabled":true,"conditions":[{"kind":"room_member_count","is":"<=6"}],"actions":["notify"]},
				{"rule_id":"eeq8","enabled":true,"conditions":[{"kind":"room_member_count","is":"==8"}],"actions":["notify"]},
				{"rule_id":"ge100","enabled":true,"conditions":[{"kind":"room_member_count","is":">=100"}],"actions":["notify"]},
				{"rule_id":"gt50","enabled":true,"conditions":[{"kind":"room_member_count","is":">50"}],"actions":["notify"]},
				{"rule_id":"bad","enabled":true,"conditions":[{"kind":"room_member_count","is":"=<9"}],"actions":["notify"]}]}`,
			cases: []evalCase{
				{name: "1", event: plain, members: 1, want: notify("lt3")},
				{name: "3", event: plain, members: 3, want: notify("le6")},
				{name: "5", event: plain, members: 5, want: notify("eq5")},
				{name: "6", event: plain, members: 6, want: notify("le6")},
				{name: "8", event: plain, members: 8, want: notify("eeq8")},
				{name: "9", event: plain, members: 9, want: notify(".m.rule.message")},
				{name: "50", event: plain, members: 50, want: notify(".m.rule.message")},
				{name: "51", event: plain, members: 51, want: notify("gt50")},
				{name: "100", event: plain, members: 100, want: notify("ge100")},
			},
		},
		{
			name: "event_property_is and _contains",
			own: `{"override":[
				{"rule_id":"null","enabled":true,"conditions":[{"kind":"event_property_is","key":"content.v","value":null}],"actions":["notify"]},
				{"rule_id":"true","enabled":true,"conditions":[{"kind":"event_property_is","key":"content.v","value":true}],"actions":["notify"]},
				{"rule_id":"42","enabled":true,"conditions":[{"kind":"event_property_is","key":"content.v","value":42}],"actions":["notify"]},
				{"rule_id":"str","enabled":true,"conditions":[{"kind":"event_property_is","key":"content.v","value":"Yes"}],"actions":["notify"]},
				{"rule_id":"dotted","enabled":true,"conditions":[{"kind":"event_property_is","key":"content.a\\.b.c\\\\d","value":1}],"actions":["notify"]},
				{"rule_id":"has7","enabled":true,"conditions":[{"kind":"event_property_contains","key":"content.list","value":7}],"actions":["notify"]},
				{"rule_id":"hasnull","enabled":true,"conditions":[{"kind":"event_property_contains","key":"content.list","value":null}],"actions":["notify"]}]}`,
			cases: []evalCase{
				{name: "null", event: props(`{"v":null}`), want: notify("null")},
				{name: "true", event: props(`{"v":true}`), want: notify("true")},
				{name: "false", event: props(`{"v":false}`), want: Result{}},
				{name: "42", event: props(`{"v":42}`), want: notify("42")},
				{name: "43", event: props(`{"v":43}`), want: Result{}},
				{name: "42.0 is not 42", event: props(`{"v":42.0}`), want: Result{}},
				{name: "\"42\" is not 42", event: props(`{"v":"42"}`), want: Result{}},
				{name: "string is exact", event: props(`{"v":"Yes"}`), want: notify("str")},
				{name: "string ignores no case", event: props(`{"v":"yes"}`), want: Result{}},
				{name: "absent is not null", event: props(`{}`), want: Result{}},
				{name: "array is not a value", event: props(`{"v":[42]}`), want: Result{}},
				{name: "escaped key", event: props(`{"a.b":{"c\\d":1}}`), want: notify("dotted")},
				{name: "unescaped key", event: props(`{"a":{"b":{"c\\d":1}}}`), want: Result{}},
				{name: "contains", event: props(`{"list":[1,"7",[7],7]}`), want: notify("has7")},
				{name: "contains null", event: props(`{"list":[1,null]}`), want: notify("hasnull")},
				{name: "contains not", event: props(`{"list":[1,"7",[7],{"a":7}]}`), want: Result{}},
				{name: "not an array", event: props(`{"list":7}`), want: Result{}},
			},
		},
		{
			name: "event_match",
			own: `{"override":[
				{"rule_id":"topic","enabled":true,"conditions":[{"kind":"event_match","key":"content.topic","pattern":"lunc?*"}],"actions":["notify"]},
				{"rule_id":"star","enabled":true,"conditions":[{"kind":"event_match","key":"content.star","pattern":"*"}],"actions":["notify"]},
				{"rule_id":"words","enabled":true,"conditions":[{"kind":"event_match","key":"content.body","pattern":"ex*ple"}],"actions":["notify"]}]}`,
			cases: []evalCase{
				{name: "spec example", event: props(`{"topic":"Lunch plans"}`), want: notify("topic")},
				{name: "all upper case", event: props(`{"topic":"LUNCH"}`), want: notify("topic")},
				{name: "leading space", event: props(`{"topic":" lunch"}`), want: Result{}},
				{name: "? needs a character", event: props(`{"topic":"lunc"}`), want: Result{}},
				{name: "null", event: props(`{"topic":null}`), want: Result{}},
				{name: "* matches an empty string", event: props(`{"star":""}`), want: notify("star")},
				{name: "* needs a string", event: props(`{"star":1}`), want: Result{}},
				{name: "* needs the key", event: props(`{}`), want: Result{}},
				{name: "body: spec example", event: props(`{"body":"An example event."}`), want: notify("words")},
				{name: "body: whole value", event: props(`{"body":"exple"}`), want: notify("words")},
				{name: "body: across words", event: props(`{"body":"An exciting triple-whammy"}`), want: notify("words")},
				{name: "body: not within words", event: props(`{"body":"An exampled"}`), want: Result{}},
			},
		},
		{
			name: "actions",
			own: `{"override":[
				{"rule_id":"nohl","enabled":true,"conditions":[{"kind":"event_match","key":"content.a","pattern":"1"}],"actions":["notify",{"set_tweak":"highlight","value":false}]},
				{"rule_id":"hlonly","enabled":true,"conditions":[{"kind":"event_match","key":"content.a","pattern":"2"}],"actions":[{"set_tweak":"highlight","value":true}]},
				{"rule_id":"legacy","enabled":true,"conditions":[{"kind":"event_match","key":"content.a","pattern":"3"}],"actions":["dont_notify","coalesce"]},
				{"rule_id":"unknown","enabled":true,"conditions":[{"kind":"event_match","key":"content.a","pattern":"4"}],"actions":["notify",{"set_tweak":"sound","value":"ding"},"beep",{"x":1}]},
				{"rule_id":"empty","enabled":true,"conditions":[{"kind":"event_match","key":"content.a","pattern":"5"}],"actions":[]}]}`,
			cases: []evalCase{
				{name: "highlight false", event: props(`{"a":"1"}`), want: notify("nohl")},
				{name: "highlight without notify", event: props(`{"a":"2"}`), want: Result{Highlight: true, RuleID: "hlonly"}},
				{name: "historical actions", event: props(`{"a":"3"}`), want: silent("legacy")},
				{name: "unknown actions", event: props(`{"a":"4"}`), want: notify("unknown")},
				{name: "no actions", event: props(`{"a":"5"}`), want: silent("empty")},
			},
		},
		{
			name: "conditions that never hold",
			own: `{"override":[
				{"rule_id":"unknown","enabled":true,"conditions":[{"kind":"org.example.future"}],"actions":` + hl + `},
				{"rule_id":"unknown2","enabled":true,"conditions":[{"kind":"event_match","key":"type","pattern":"*"},{"kind":"org.example.future"}],"actions":` + hl + `},
				{"rule_id":"nopattern","enabled":true,"conditions":[{"kind":"event_match","key":"type"}],"actions":` + hl + `},
				{"rule_id":"compound","enabled":true,"conditions":[{"kind":"event_property_is","key":"type","value":["m.room.message"]}],"actions":` + hl + `}]}`,
			cases: []evalCase{
				{name: "rules skipped", event: plain, want: notify(".m.rule.message")},
			},
		},
	}
	for _, set := range cases {
		t.Run(set.name, func(t *testing.T) {
			runEval(t, userRules(t, set.own, set.changes), set.cases)
		})
	}
}

func TestGlob(t *testing.T) {
	cases := []struct {
		pattern, s   string
		whole, words bool
	}{
		{"", "", true, true},
		{"", "a", false, false},
		{"*", "", true, true},
		{"*", "anything at all", true, true},
		{"a*", "abc", true, true},
		{"*c", "abc", true, true},
		{"a*c", "abbbc", true, true},
		{"a*c", "abbbcd", false, false},
		{"a*c", "x abbbc-d", false, true},
		{"a**c", "ac", true, true},
		{"a*b*c", "aXbYbZc", true, true},
		{"a*b*c", "aXbYbZ", false, false},
		{"?", "é", true, true},
		{"??", "é", false, false},
		{"h?llo", "HÉLLO", true, true},
		{"été", "ÉTÉ", true, true},
		{"straße", "STRASSE", false, false}, // simple folding only
		{"k", "\u212a", true, true},         // Kelvin sign folds to k
		{"ſ", "S", true, true},
		{"cat", "concatenate", false, false},
		{"cat", "the cat's toy", false, true},
		{"cat", "the_cat", false, false},
		{"cat", "cat1", false, false},
		{"cat", "über·cat", false, true},
		{"cat*", "concatenate cats", false, true},
		{"*cat", "cats concat", true, true},
		{"*cat", "cats", false, false},
		{"b*z", "a b c d", false, false},
		{"b*d", "a b c d e", false, true},
		{"b?d", "abd b d", false, true},
		{"c*", "abc", false, false},
		{"*?", "", false, false},
		{"*?", "x", true, true},
	}
	for _, tc := range cases {
		g := compileGlob(tc.pattern)
		if got := g.matchWhole(tc.s); got != tc.whole {
			t.Errorf("%q on %q: whole %v, want %v", tc.pattern, tc.s, got, tc.whole)
		}
		if got := g.matchWords(tc.s); got != tc.words {
			t.Errorf("%q on %q: words %v, want %v", tc.pattern, tc.s, got, tc.words)
		}
	}
}

func TestContainsWord(t *testing.T) {
	cases := []struct {
		s, w string
		want bool
	}{
		{"hello bob", "bob", true},
		{"BOB", "bob", true},
		{"bobby", "bob", false},
		{"hi bob_", "bob", false},
		{"hi 2bob", "bob", false},
		{"hi @bob:", "bob", true},
		{"bob", "", false},
		{"", "bob", false},
		{"bo", "bob", false},
		{"a bobby, then bob.", "bob", true},
		{"привет Боб", "боб", true},
		{"x *bob* y", "*bob*", true},
	}
	for _, tc := range cases {
		if got := containsWord(tc.s, tc.w); got != tc.want {
			t.Errorf("containsWord(%q, %q) = %v, want %v", tc.s, tc.w, got, tc.want)
		}
	}
}

func TestSplitPath(t *testing.T) {
	cases := []struct {
		key  string
		want []string
	}{
		{"type", []string{"type"}},
		{"content.body", []string{"content", "body"}},
		{`content.m\.relates_to.rel_type`, []string{"content", "m.relates_to", "rel_type"}},
		{`content.m\\foo`, []string{"content", `m\foo`}},
		{`content.m\\.foo`, []string{"content", `m\`, "foo"}},
		{`content.m\x`, []string{"content", `m\x`}},
		{`a\`, []string{`a\`}},
		{"a..b", []string{"a", "", "b"}},
	}
	for _, tc := range cases {
		if got := splitPath(tc.key); !slices.Equal(got, tc.want) {
			t.Errorf("splitPath(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}

// TestDefaultRulesCompiled checks that DefaultRules, which puts the user
// into rules compiled once, gives what compiling the user's defaults
// gives.
func TestDefaultRulesCompiled(t *testing.T) {
	for _, u := range []string{alice, bob, "@ probe", `@we"ird*:x`} {
		got := DefaultRules(u)
		rs := defaultRules(u)
		want := compileRuleset(u, &rs)
		if want.defaultsChanged {
			t.Errorf("%s: the defaults differ from themselves", u)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: DefaultRules = %+v\nwant %+v", u, got, want)
		}
		raw, err := encode(rs)
		if err != nil {
			t.Fatal(err)
		}
		compiled, err := Compile(u, raw)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(compiled, want) {
			t.Errorf("%s: Compile = %+v\nwant %+v", u, compiled, want)
		}
	}
	// The template is not changed by DefaultRules.
	_ = DefaultRules(alice)
	for _, ru := range defaultCompiled.rules {
		for _, c := range ru.conds {
			if ru.id == ".m.rule.invite_for_me" && c.path[0] == "state_key" && c.glob.raw != placeholderID {
				t.Errorf("the compiled template names %q", c.glob.raw)
			}
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, raw := range []string{``, `[]`, `"x"`, `{"override":5}`, `{"content":[{"rule_id":5}]}`, `{`} {
		if _, err := Compile(alice, json.RawMessage(raw)); err == nil {
			t.Errorf("Compile(%s): no error", raw)
		}
	}
	// Missing kinds and unreadable conditions are not errors.
	for _, raw := range []string{`{}`, `{"override":[{"rule_id":"x","enabled":true,"conditions":{"kind":"x"},"actions":["notify"]}]}`} {
		r, err := Compile(alice, json.RawMessage(raw))
		if err != nil {
			t.Errorf("Compile(%s): %v", raw, err)
			continue
		}
		if got := r.Evaluate(Input{Event: parseEvent(t, message(`{}`))}); got != (Result{}) {
			t.Errorf("Compile(%s): %+v", raw, got)
		}
	}
}

func TestDefaultFor(t *testing.T) {
	mute := func(kind, ruleID, conditions string) string {
		return `{"` + kind + `":[{"rule_id":"` + ruleID + `","enabled":true,"conditions":` + conditions + `,"actions":[]}]}`
	}
	roomMatch := func(pattern string) string {
		return `[{"kind":"event_match","key":"type","pattern":"m.room.message"},{"kind":"event_match","key":"room_id","pattern":"` + pattern + `"}]`
	}
	cases := []struct {
		name    string
		own     string
		changes map[[2]string]defaultChange
		want    map[string]bool // room ID → DefaultFor
	}{
		{"defaults", "", nil, map[string]bool{room: true, other: true}},
		{"room rule", mute("room", other, `[]`), nil, map[string]bool{room: true, other: false}},
		{"override for another room", mute("override", "m", roomMatch(other)), nil, map[string]bool{room: true, other: false}},
		{"underride for another room", mute("underride", "m", roomMatch(other)), nil, map[string]bool{room: true, other: false}},
		{"room_id pattern ignores case", mute("override", "m", roomMatch("!ROOM:test.example")), nil, map[string]bool{room: false, other: true}},
		{"glob room_id pattern", mute("override", "m", roomMatch("!other*")), nil, map[string]bool{room: false, other: false}},
		{"room_id with event_property_is", mute("override", "m", `[{"kind":"event_property_is","key":"room_id","value":"`+other+`"}]`), nil, map[string]bool{room: false}},
		{"override without room_id", mute("override", "m", `[{"kind":"event_match","key":"type","pattern":"m.room.message"}]`), nil, map[string]bool{room: false}},
		{"content rule", `{"content":[{"rule_id":"c","enabled":true,"pattern":"cake","actions":["notify"]}]}`, nil, map[string]bool{room: false}},
		{"sender rule", `{"sender":[{"rule_id":"` + carol + `","enabled":true,"actions":[]}]}`, nil, map[string]bool{room: false}},
		{"disabled user rule", `{"content":[{"rule_id":"c","enabled":false,"pattern":"cake","actions":["notify"]}]}`, nil, map[string]bool{room: true}},
		{"user rule that never matches", mute("override", "m", `[{"kind":"org.example.future"}]`), nil, map[string]bool{room: true}},
		{"changed default actions", "", map[[2]string]defaultChange{{"underride", ".m.rule.message"}: {Actions: json.RawMessage(`["notify",{"set_tweak":"sound","value":"default"}]`)}}, map[string]bool{room: false}},
		{"default actions set to the same", "", map[[2]string]defaultChange{{"underride", ".m.rule.message"}: {Actions: json.RawMessage(` [ "notify" ] `)}}, map[string]bool{room: true}},
		{"master enabled", "", map[[2]string]defaultChange{{"override", masterRuleID}: {Enabled: enabled(true)}}, map[string]bool{room: false}},
		{"default disabled", "", map[[2]string]defaultChange{{"underride", ".m.rule.encrypted"}: {Enabled: enabled(false)}}, map[string]bool{room: false}},
		{"default enabled again", "", map[[2]string]defaultChange{{"underride", ".m.rule.encrypted"}: {Enabled: enabled(true)}}, map[string]bool{room: true}},
	}
	for _, tc := range cases {
		r := userRules(t, tc.own, tc.changes)
		for roomID, want := range tc.want {
			if got := r.DefaultFor(roomID); got != want {
				t.Errorf("%s: DefaultFor(%s) = %v, want %v", tc.name, roomID, got, want)
			}
		}
	}
	if !DefaultRules(alice).DefaultFor(room) {
		t.Error("DefaultRules: DefaultFor = false")
	}
	// A ruleset whose defaults are not the server's (an older server's,
	// or another user's) is not the defaults.
	for _, raw := range []string{`{}`, `{"override":[{"rule_id":".m.rule.master","default":true,"enabled":false,"conditions":[],"actions":[]}]}`} {
		r, err := Compile(alice, json.RawMessage(raw))
		if err != nil {
			t.Fatal(err)
		}
		if r.DefaultFor(room) {
			t.Errorf("%s: DefaultFor = true", raw)
		}
	}
	bobs, err := encode(defaultRules(bob))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := Compile(alice, bobs); err != nil || r.DefaultFor(room) {
		t.Errorf("bob's defaults compiled for alice: DefaultFor = true (%v)", err)
	}
}

func TestServiceRules(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		ctx := context.Background()
		h.mustDo("PUT", v3+"/pushrules/global/room/"+pathEscape(room), alice, map[string]any{"actions": []any{}})
		h.mustDo("PUT", v3+"/pushrules/global/underride/.m.rule.encrypted/enabled", alice, map[string]any{"enabled": false})
		r, err := h.svc.Rules(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := h.svc.Ruleset(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		fromJSON, err := Compile(alice, raw)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(r, fromJSON) {
			t.Errorf("Rules = %+v\nCompile(Ruleset) = %+v", r, fromJSON)
		}
		runEval(t, r, []evalCase{
			{name: "muted room", event: message(`{"body":"hi"}`), want: silent(room)},
			{name: "other room", event: `{"type":"m.room.message","room_id":"` + other + `","content":{}}`, want: notify(".m.rule.message")},
			{name: "encrypted", event: `{"type":"m.room.encrypted","room_id":"` + other + `","content":{}}`, want: Result{}},
		})
		if r.DefaultFor(other) {
			t.Error("DefaultFor = true with a default rule disabled")
		}
		h.mustDo("PUT", v3+"/pushrules/global/underride/.m.rule.encrypted/enabled", alice, map[string]any{"enabled": true})
		if r, err = h.svc.Rules(ctx, alice); err != nil {
			t.Fatal(err)
		}
		if !r.DefaultFor(other) || r.DefaultFor(room) {
			t.Errorf("DefaultFor: %v for the other room, %v for the muted room", r.DefaultFor(other), r.DefaultFor(room))
		}
		b, err := h.svc.Rules(ctx, bob)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(b, DefaultRules(bob)) {
			t.Errorf("bob's rules are not the defaults: %+v", b)
		}
	})
}

func BenchmarkEvaluate(b *testing.B) {
	in := Input{
		Event: parseEvent(b, `{"type":"m.room.message","room_id":"`+room+`","sender":"`+carol+`",
			"event_id":"$abc","origin_server_ts":1700000000000,
			"content":{"msgtype":"m.text","body":"Are we still on for lunch tomorrow? I can book a table."},
			"unsigned":{"age":1234}}`),
		MemberCount: 12,
	}
	for _, bc := range []struct {
		name  string
		rules *Rules
		want  string
	}{
		{"defaults", DefaultRules(alice), ".m.rule.message"},
		{"user rules", userRules(b, `{
			"override":[{"rule_id":"mute","enabled":true,"conditions":[{"kind":"event_match","key":"room_id","pattern":"`+other+`"}],"actions":[]}],
			"content":[{"rule_id":"cake","enabled":true,"pattern":"cake*","actions":["notify"]},{"rule_id":"tea","enabled":true,"pattern":"tea","actions":["notify"]}],
			"room":[{"rule_id":"!r2:test.example","enabled":true,"actions":[]}],
			"sender":[{"rule_id":"@bot:test.example","enabled":true,"actions":[]}]}`, nil), ".m.rule.message"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if got := bc.rules.Evaluate(in); got.RuleID != bc.want {
				b.Fatalf("got %+v", got)
			}
			b.ReportAllocs()
			for b.Loop() {
				bc.rules.Evaluate(in)
			}
		})
	}
}

func BenchmarkDefaultRules(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		DefaultRules(alice)
	}
}

// refMatch is a plain dynamic-programming glob matcher, ignoring case,
// to check the compiled one against: m[i][j] says whether p[i:] matches
// s[j:].
func refMatch(p, s []rune) bool {
	m := make([][]bool, len(p)+1)
	for i := range m {
		m[i] = make([]bool, len(s)+1)
	}
	m[len(p)][len(s)] = true
	for i := len(p) - 1; i >= 0; i-- {
		for j := len(s); j >= 0; j-- {
			switch {
			case p[i] == '*':
				m[i][j] = m[i+1][j] || (j < len(s) && m[i][j+1])
			case j < len(s) && (p[i] == '?' || strings.EqualFold(string(p[i]), string(s[j]))):
				m[i][j] = m[i+1][j+1]
			}
		}
	}
	return m[0][0]
}

// refWords tries every substring between word boundaries.
func refWords(pattern, s string) bool {
	p, rs := []rune(pattern), []rune(s)
	word := func(r rune) bool { return r < utf8.RuneSelf && isWordByte(byte(r)) }
	for i := 0; i <= len(rs); i++ {
		if i > 0 && word(rs[i-1]) {
			continue
		}
		for j := i; j <= len(rs); j++ {
			if (j == len(rs) || !word(rs[j])) && refMatch(p, rs[i:j]) {
				return true
			}
		}
	}
	return false
}

func checkGlob(t *testing.T, pattern, s string) {
	if !utf8.ValidString(pattern) || !utf8.ValidString(s) || len(pattern) > 12 || len(s) > 40 {
		return
	}
	g := compileGlob(pattern)
	if got, want := g.matchWhole(s), refMatch([]rune(pattern), []rune(s)); got != want {
		t.Errorf("%q on %q: whole %v, want %v", pattern, s, got, want)
	}
	if got, want := g.matchWords(s), refWords(pattern, s); got != want {
		t.Errorf("%q on %q: words %v, want %v", pattern, s, got, want)
	}
}

// TestGlobAgainstReference compares the matcher with refMatch and
// refWords on random patterns and strings over a small alphabet.
func TestGlobAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(alphabet []string, n int) string {
		var b strings.Builder
		for range rng.IntN(n + 1) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	for range 20000 {
		checkGlob(t, pick([]string{"a", "B", "*", "?", " ", "é"}, 6), pick([]string{"a", "A", "b", " ", "-", "_", "É"}, 14))
	}
}

func FuzzGlob(f *testing.F) {
	f.Add("ex*ple", "An exciting triple-whammy")
	f.Add("a?*b", "xa b ab aab")
	f.Fuzz(checkGlob)
}

// FuzzEvaluate compiles any ruleset and evaluates any event: nothing
// panics, and the result names a rule of the ruleset.
func FuzzEvaluate(f *testing.F) {
	f.Add(`{"override":[{"rule_id":"a","enabled":true,"conditions":[{"kind":"event_match","key":"content.body","pattern":"a*b?"}],"actions":["notify"]}]}`,
		message(`{"body":"xa b"}`), "bob", 2)
	f.Add(`{"content":[{"rule_id":"c","enabled":true,"pattern":"*","actions":[{"set_tweak":"highlight"}]}],
		"override":[{"rule_id":"d","enabled":true,"conditions":[{"kind":"contains_display_name"},{"kind":"room_member_count","is":">=2"},
		{"kind":"event_property_contains","key":"content.a\\.b","value":1},{"kind":"sender_notification_permission","key":"room"}],"actions":["notify"]}]}`,
		message(`{"body":"hi bob","a.b":[1]}`), "Bob", 3)
	f.Fuzz(func(t *testing.T, ruleset, event, displayName string, members int) {
		r, err := Compile(alice, json.RawMessage(ruleset))
		if err != nil {
			return
		}
		ev, err := cjson.ParseString(event, cjson.Lenient)
		if err != nil {
			return
		}
		res := r.Evaluate(Input{Event: ev, DisplayName: displayName, MemberCount: members, PowerLevels: ev.Get("content")})
		if res.RuleID == "" && (res.Notify || res.Highlight) {
			t.Errorf("no rule but %+v", res)
		}
		r.DefaultFor(ev.Get("room_id").StrOr(""))
	})
}
