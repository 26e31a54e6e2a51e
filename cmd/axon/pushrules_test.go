package main

import "testing"

// TestPushRulesThroughTheServer checks that clients get the default push
// ruleset and can add a rule (the details are services/pushrules' tests).
func TestPushRulesThroughTheServer(t *testing.T) {
	ts := startServer(t, backends()[0])
	alice := ts.register("alice")
	rules := alice.must("GET", "/pushrules/", nil)["global"].(map[string]any)
	override := rules["override"].([]any)
	if len(override) == 0 || override[0].(map[string]any)["rule_id"] != ".m.rule.master" {
		t.Fatalf("override rules %v", override)
	}
	alice.must("PUT", "/pushrules/global/content/mine", map[string]any{"pattern": "cake", "actions": []any{"notify"}})
	got := alice.must("GET", "/pushrules/global/content/mine", nil)
	if got["pattern"] != "cake" {
		t.Fatalf("rule %v", got)
	}
}
