package pushrules

import (
	"encoding/json"
	"testing"
)

// FuzzParseRuleBody checks that no body panics the parser and that what
// it accepts is JSON that it accepts again unchanged.
func FuzzParseRuleBody(f *testing.F) {
	for _, s := range []string{
		`{"actions":["notify"]}`,
		`{"actions":["notify",{"set_tweak":"sound","value":"x"}],"conditions":[{"kind":"event_match","key":"type","pattern":"m.*"}]}`,
		`{"actions":[],"conditions":[{"kind":"room_member_count","is":">=10"}],"pattern":"cake"}`,
		`{"actions":["dont_notify"],"conditions":[{"kind":"event_property_is","key":"a","value":-9007199254740991}]}`,
		`{"actions":[{"set_tweak":"highlight"}],"conditions":null}`,
	} {
		f.Add("override", s)
		f.Add("content", s)
	}
	f.Fuzz(func(t *testing.T, kind, body string) {
		if !validKind(kind) {
			return
		}
		nr, err := parseRuleBody(kind, []byte(body))
		if err != nil {
			return
		}
		again := map[string]json.RawMessage{"actions": nr.Actions}
		if nr.Conditions != nil {
			again["conditions"] = nr.Conditions
		}
		if nr.Pattern != nil {
			p, _ := json.Marshal(*nr.Pattern)
			again["pattern"] = p
		}
		b, err := encode(again)
		if err != nil {
			t.Fatalf("accepted %q but cannot re-encode it: %v", body, err)
		}
		nr2, err := parseRuleBody(kind, b)
		if err != nil {
			t.Fatalf("accepted %q but not its own output %s: %v", body, b, err)
		}
		if string(nr2.Actions) != string(nr.Actions) || string(nr2.Conditions) != string(nr.Conditions) {
			t.Fatalf("not stable: %s %s vs %s %s", nr.Actions, nr.Conditions, nr2.Actions, nr2.Conditions)
		}
	})
}
