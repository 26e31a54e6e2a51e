package pushrules

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/axon-hs/axon/internal/testenv"
)

// TestDefaultsMatchSpec compares the server-default rules with the
// definitions of the spec's "Predefined Rules" (v1.19), extracted from
// its text into testdata in the spec's order.
func TestDefaultsMatchSpec(t *testing.T) {
	spec, err := os.ReadFile("testdata/spec_predefined_rules.json")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := json.Marshal(alice)
	want := strings.ReplaceAll(string(spec), `"[the user's Matrix ID]"`, string(uid))
	got, err := encode(defaultRules(alice))
	if err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(t, got, []byte(want)) {
		t.Errorf("default rules differ from the spec:\ngot  %s\nwant %s", got, want)
	}
}

func TestDefaultRuleset(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		rs := h.global(alice)
		wantIDs := map[string][]string{
			"override": {".m.rule.master", ".m.rule.suppress_notices", ".m.rule.invite_for_me",
				".m.rule.member_event", ".m.rule.is_user_mention", ".m.rule.is_room_mention",
				".m.rule.tombstone", ".m.rule.reaction", ".m.rule.room.server_acl", ".m.rule.suppress_edits"},
			"content": {},
			"room":    {},
			"sender":  {},
			"underride": {".m.rule.call", ".m.rule.encrypted_room_one_to_one", ".m.rule.room_one_to_one",
				".m.rule.message", ".m.rule.encrypted"},
		}
		for _, k := range kinds {
			if got := rs.ids(k); !slices.Equal(got, wantIDs[k]) {
				t.Errorf("%s: got %q, want %q", k, got, wantIDs[k])
			}
			for _, r := range *rs.of(k) {
				if !r.Default || r.Actions == nil || (hasConditions(k) && r.Conditions == nil) {
					t.Errorf("%s %s: default %v, actions %s, conditions %s", k, r.RuleID, r.Default, r.Actions, r.Conditions)
				}
			}
		}
		if m := rs.Override[0]; m.Enabled || string(m.Actions) != "[]" || string(m.Conditions) != "[]" {
			t.Errorf(".m.rule.master = %+v, want disabled with no conditions or actions", m)
		}

		// The rules naming the user are built per user.
		for _, tc := range []struct{ user, ruleID, want string }{
			{alice, ".m.rule.invite_for_me", `{"kind":"event_match","key":"state_key","pattern":"@alice:test.example"}`},
			{alice, ".m.rule.is_user_mention", `{"kind":"event_property_contains","key":"content.m\\.mentions.user_ids","value":"@alice:test.example"}`},
			{bob, ".m.rule.invite_for_me", `"pattern":"@bob:test.example"`},
			{bob, ".m.rule.is_user_mention", `"value":"@bob:test.example"`},
		} {
			rs := h.global(tc.user)
			r := rs.find("override", tc.ruleID)
			if r == nil || !strings.Contains(string(r.Conditions), tc.want) {
				t.Errorf("%s %s: conditions %s, want them to contain %s", tc.user, tc.ruleID, r.Conditions, tc.want)
			}
		}

		// Every way to read the ruleset gives the same one.
		global := h.mustDo("GET", v3+"/pushrules/global/", alice, nil)
		var all struct{ Global json.RawMessage }
		if err := json.Unmarshal(h.mustDo("GET", v3+"/pushrules/", alice, nil), &all); err != nil {
			t.Fatal(err)
		}
		direct, err := h.svc.Ruleset(context.Background(), alice)
		if err != nil {
			t.Fatal(err)
		}
		for name, got := range map[string][]byte{
			"/pushrules/":     all.Global,
			"r0":              h.mustDo("GET", "/_matrix/client/r0/pushrules/global/", alice, nil),
			"Service.Ruleset": direct,
		} {
			if !jsonEqual(t, got, global) {
				t.Errorf("%s: %s\nwant %s", name, got, global)
			}
		}
	})
}

func TestGetRule(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		got := h.mustDo("GET", v3+"/pushrules/global/underride/.m.rule.message", alice, nil)
		want := `{"rule_id":".m.rule.message","default":true,"enabled":true,
			"conditions":[{"kind":"event_match","key":"type","pattern":"m.room.message"}],"actions":["notify"]}`
		if !jsonEqual(t, got, []byte(want)) {
			t.Errorf("got %s, want %s", got, want)
		}
		for _, tc := range []struct{ path, want string }{
			{"/pushrules/global/override/.m.rule.master/enabled", `{"enabled":false}`},
			{"/pushrules/global/underride/.m.rule.call/actions", `{"actions":["notify",{"set_tweak":"sound","value":"ring"}]}`},
		} {
			if got := h.mustDo("GET", v3+tc.path, alice, nil); !jsonEqual(t, got, []byte(tc.want)) {
				t.Errorf("%s: got %s, want %s", tc.path, got, tc.want)
			}
		}
		for _, path := range []string{
			"/pushrules/global/override/.m.rule.message", // a default of another kind
			"/pushrules/global/content/nope",
			"/pushrules/global/content/nope/enabled",
			"/pushrules/global/content/nope/actions",
		} {
			if status, code, _ := h.do("GET", v3+path, alice, nil); status != 404 || code != "M_NOT_FOUND" {
				t.Errorf("GET %s: %d %s, want 404 M_NOT_FOUND", path, status, code)
			}
		}
	})
}
