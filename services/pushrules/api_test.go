package pushrules

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/internal/testenv"
)

var defaultOverrides = []string{".m.rule.suppress_notices", ".m.rule.invite_for_me",
	".m.rule.member_event", ".m.rule.is_user_mention", ".m.rule.is_room_mention",
	".m.rule.tombstone", ".m.rule.reaction", ".m.rule.room.server_acl", ".m.rule.suppress_edits"}

var defaultUnderrides = []string{".m.rule.call", ".m.rule.encrypted_room_one_to_one",
	".m.rule.room_one_to_one", ".m.rule.message", ".m.rule.encrypted"}

func TestUserRulePlacement(t *testing.T) {
	type put struct{ id, query string }
	cases := []struct {
		name string
		kind string
		puts []put
		want []string // user rules in order
	}{
		{"new rules go first", "override", []put{{"a", ""}, {"b", ""}, {"c", ""}}, []string{"c", "b", "a"}},
		{"before", "override", []put{{"a", ""}, {"b", "?before=a"}, {"c", "?before=a"}}, []string{"b", "c", "a"}},
		{"after", "underride", []put{{"a", ""}, {"b", "?after=a"}, {"c", "?after=a"}}, []string{"a", "c", "b"}},
		{"after the last", "content", []put{{"a", ""}, {"b", "?after=a"}, {"c", "?after=b"}}, []string{"a", "b", "c"}},
		{"before wins over after", "override", []put{{"a", ""}, {"b", "?after=a"}, {"c", "?after=a&before=b"}}, []string{"a", "c", "b"}},
		{"update keeps its place", "override", []put{{"a", ""}, {"b", ""}, {"a", ""}}, []string{"b", "a"}},
		{"update moves with before", "override", []put{{"a", ""}, {"b", ""}, {"c", ""}, {"a", "?before=c"}}, []string{"a", "c", "b"}},
		{"update moves with after", "override", []put{{"a", ""}, {"b", ""}, {"c", ""}, {"c", "?after=a"}}, []string{"b", "a", "c"}},
		{"room rules", "room", []put{{"!r1:test.example", ""}, {"!r2:test.example", "?after=%21r1%3Atest.example"}},
			[]string{"!r1:test.example", "!r2:test.example"}},
		{"sender rules", "sender", []put{{"@x:test.example", ""}, {"@y:test.example", ""}},
			[]string{"@y:test.example", "@x:test.example"}},
	}
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				h := newHarness(t, e)
				body := map[string]any{"actions": []any{"notify"}}
				if tc.kind == "content" {
					body["pattern"] = "cake"
				}
				for _, p := range tc.puts {
					h.mustDo("PUT", v3+"/pushrules/global/"+tc.kind+"/"+pathEscape(p.id)+p.query, alice, body)
				}
				var want []string
				switch tc.kind {
				case "override":
					want = append(append([]string{masterRuleID}, tc.want...), defaultOverrides...)
				case "underride":
					want = append(slices.Clone(tc.want), defaultUnderrides...)
				default:
					want = tc.want
				}
				rs := h.global(alice)
				if got := rs.ids(tc.kind); !slices.Equal(got, want) {
					t.Errorf("got %q\nwant %q", got, want)
				}
				for _, r := range *rs.of(tc.kind) {
					if r.Default != (r.RuleID[0] == '.') || !r.Enabled && r.RuleID != masterRuleID {
						t.Errorf("%s: default %v, enabled %v", r.RuleID, r.Default, r.Enabled)
					}
				}
				if got := h.global(bob).ids(tc.kind); slices.ContainsFunc(got, func(id string) bool { return id[0] != '.' }) {
					t.Errorf("bob sees alice's rules: %q", got)
				}
			})
		}
	})
}

func pathEscape(s string) string {
	out := ""
	for _, c := range []byte(s) {
		switch c {
		case '!', ':', '@', '#':
			out += fmt.Sprintf("%%%02X", c)
		default:
			out += string(c)
		}
	}
	return out
}

// TestManyInsertionsAtOneSpot inserts after the same rule until the gap
// between it and its successor runs out, forcing renumbering.
func TestManyInsertionsAtOneSpot(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		body := map[string]any{"actions": []any{}}
		h.mustDo("PUT", v3+"/pushrules/global/override/last", alice, body)
		h.mustDo("PUT", v3+"/pushrules/global/override/first", alice, body)
		want := []string{"first"}
		for i := range 45 {
			id := fmt.Sprintf("r%02d", i)
			// Each goes right before "last": after the previous one.
			h.mustDo("PUT", v3+"/pushrules/global/override/"+id+"?before=last", alice, body)
			want = append(want, id)
		}
		want = append(want, "last")
		// "first" went in at -gap; only renumbering moves it to 0.
		var pos int64
		if err := h.svc.db.QueryRow(context.Background(), `SELECT position FROM pushrules_user
			WHERE user_id = $1 AND kind = 'override' AND rule_id = 'first'`, alice).Scan(&pos); err != nil || pos != 0 {
			t.Errorf("position of first = %d, %v; want 0 after renumbering", pos, err)
		}
		got := h.global(alice).ids("override")
		if !slices.Equal(got[1:len(want)+1], want) {
			t.Errorf("got %q\nwant %q", got[1:len(want)+1], want)
		}
	})
}

func TestUserRuleContent(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		cases := []struct {
			kind, id string
			body     string
			want     string
		}{
			{"content", "nocake", `{"pattern":"cake*lie","actions":["notify","dont_notify"],"conditions":[{"kind":"x"}]}`,
				`{"rule_id":"nocake","default":false,"enabled":true,"pattern":"cake*lie","actions":["notify"]}`},
			{"override", "beer", `{"conditions":[{"kind":"event_match","key":"content.body","pattern":"beer"},{"kind":"room_member_count","is":"<=10"}],
				"actions":["notify",{"set_tweak":"sound","value":"beeroclock.wav"}],"pattern":"ignored"}`,
				`{"rule_id":"beer","default":false,"enabled":true,"conditions":[{"kind":"event_match","key":"content.body","pattern":"beer"},
				{"kind":"room_member_count","is":"<=10"}],"actions":["notify",{"set_tweak":"sound","value":"beeroclock.wav"}]}`},
			{"underride", "noconds", `{"actions":["coalesce"]}`,
				`{"rule_id":"noconds","default":false,"enabled":true,"conditions":[],"actions":[]}`},
			{"underride", "custom", `{"actions":[],"conditions":[{"kind":"org.example.future","foo":1}]}`,
				`{"rule_id":"custom","default":false,"enabled":true,"conditions":[{"kind":"org.example.future","foo":1}],"actions":[]}`},
			{"room", "!dj234r78wl45Gh4D:matrix.org", `{"actions":[]}`,
				`{"rule_id":"!dj234r78wl45Gh4D:matrix.org","default":false,"enabled":true,"actions":[]}`},
			{"sender", "@spambot:matrix.org", `{"actions":[],"conditions":[]}`,
				`{"rule_id":"@spambot:matrix.org","default":false,"enabled":true,"actions":[]}`},
		}
		for _, tc := range cases {
			path := v3 + "/pushrules/global/" + tc.kind + "/" + pathEscape(tc.id)
			h.mustDo("PUT", path, alice, tc.body)
			got := h.mustDo("GET", path, alice, nil)
			if !jsonEqual(t, got, []byte(tc.want)) {
				t.Errorf("%s %s: got %s\nwant %s", tc.kind, tc.id, got, tc.want)
			}
			if tc.id == "beer" && !strings.Contains(string(got), `"<=10"`) {
				t.Errorf("conditions are not returned as sent: %s", got)
			}
		}

		// Disable a user rule, change its actions, then replace it: the
		// replacement keeps the enabled flag and takes the new actions.
		path := v3 + "/pushrules/global/content/nocake"
		h.mustDo("PUT", path+"/enabled", alice, `{"enabled":false}`)
		h.mustDo("PUT", path+"/actions", alice, `{"actions":[{"set_tweak":"highlight","value":false}]}`)
		want := `{"rule_id":"nocake","default":false,"enabled":false,"pattern":"cake*lie","actions":[{"set_tweak":"highlight","value":false}]}`
		if got := h.mustDo("GET", path, alice, nil); !jsonEqual(t, got, []byte(want)) {
			t.Errorf("got %s\nwant %s", got, want)
		}
		h.mustDo("PUT", path, alice, `{"pattern":"pie","actions":["notify"]}`)
		want = `{"rule_id":"nocake","default":false,"enabled":false,"pattern":"pie","actions":["notify"]}`
		if got := h.mustDo("GET", path, alice, nil); !jsonEqual(t, got, []byte(want)) {
			t.Errorf("after replacing: got %s\nwant %s", got, want)
		}

		// Delete it.
		h.mustDo("DELETE", path, alice, nil)
		if status, code, _ := h.do("GET", path, alice, nil); status != 404 || code != "M_NOT_FOUND" {
			t.Errorf("GET after DELETE: %d %s", status, code)
		}
		if status, code, _ := h.do("DELETE", path, alice, nil); status != 404 || code != "M_NOT_FOUND" {
			t.Errorf("DELETE again: %d %s", status, code)
		}
	})
}

func TestDefaultRuleChanges(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		base := v3 + "/pushrules/global/"
		h.mustDo("PUT", base+"override/.m.rule.master/enabled", alice, `{"enabled":true}`)
		h.mustDo("PUT", base+"underride/.m.rule.message/enabled", alice, `{"enabled":false}`)
		h.mustDo("PUT", base+"underride/.m.rule.message/actions", alice, `{"actions":["notify",{"set_tweak":"sound","value":"default"}]}`)
		h.mustDo("PUT", base+"override/.m.rule.suppress_notices/actions", alice, `{"actions":["notify"]}`)
		h.mustDo("PUT", base+"override/.m.rule.suppress_notices/actions", alice, `{"actions":[]}`)

		cases := []struct{ path, want string }{
			{"override/.m.rule.master/enabled", `{"enabled":true}`},
			{"override/.m.rule.master/actions", `{"actions":[]}`},
			{"underride/.m.rule.message", `{"rule_id":".m.rule.message","default":true,"enabled":false,
				"conditions":[{"kind":"event_match","key":"type","pattern":"m.room.message"}],
				"actions":["notify",{"set_tweak":"sound","value":"default"}]}`},
			{"override/.m.rule.suppress_notices/actions", `{"actions":[]}`},
			{"override/.m.rule.suppress_notices/enabled", `{"enabled":true}`},
		}
		for _, tc := range cases {
			if got := h.mustDo("GET", base+tc.path, alice, nil); !jsonEqual(t, got, []byte(tc.want)) {
				t.Errorf("%s: got %s\nwant %s", tc.path, got, tc.want)
			}
		}
		// The changes are alice's alone and keep the rules in place.
		rs := h.global(alice)
		if rs.Override[0].RuleID != masterRuleID || !rs.Override[0].Enabled {
			t.Errorf("alice's master rule: %+v", rs.Override[0])
		}
		if r := h.global(bob); r.Override[0].Enabled || !r.find("underride", ".m.rule.message").Enabled {
			t.Errorf("bob's rules changed: %+v", r)
		}

		// Server-default rules can be neither deleted nor created.
		for _, tc := range []struct {
			method, path string
			status       int
			code         string
		}{
			{"DELETE", "override/.m.rule.master", 400, "M_INVALID_PARAM"},
			{"DELETE", "underride/.m.rule.message", 400, "M_INVALID_PARAM"},
			{"DELETE", "override/.m.rule.nope", 404, "M_NOT_FOUND"},
			{"DELETE", "content/.m.rule.contains_user_name", 404, "M_NOT_FOUND"},
			{"PUT", "override/.m.rule.master", 400, "M_INVALID_PARAM"},
			{"PUT", "override/.m.rule.mine", 400, "M_INVALID_PARAM"},
		} {
			status, code, body := h.do(tc.method, base+tc.path, alice, `{"actions":[]}`)
			if status != tc.status || code != tc.code {
				t.Errorf("%s %s: %d %s %s, want %d %s", tc.method, tc.path, status, code, body, tc.status, tc.code)
			}
		}
		if got := h.global(alice).ids("override"); !slices.Equal(got, append([]string{masterRuleID}, defaultOverrides...)) {
			t.Errorf("overrides after refused changes: %q", got)
		}
	})
}

func TestBadRequests(t *testing.T) {
	type req struct {
		method, path, body string
		status             int
		code               string
	}
	const g = v3 + "/pushrules/global/"
	cases := []req{
		{"GET", g + "nope/x", "", 400, "M_INVALID_PARAM"},
		{"PUT", g + "nope/x", `{"actions":[]}`, 400, "M_INVALID_PARAM"},
		{"DELETE", g + "nope/x", "", 400, "M_INVALID_PARAM"},
		{"PUT", g + "nope/x/enabled", `{"enabled":true}`, 400, "M_INVALID_PARAM"},
		{"GET", v3 + "/pushrules/device/override/x", "", 404, "M_UNRECOGNIZED"},
		{"PUT", g + "override/a%2Fb", `{"actions":[]}`, 400, "M_INVALID_PARAM"},
		{"PUT", g + "override/a%5Cb", `{"actions":[]}`, 400, "M_INVALID_PARAM"},
		{"PUT", g + "override/.hidden", `{"actions":[]}`, 400, "M_INVALID_PARAM"},
		{"PUT", g + "room/not-a-room", `{"actions":[]}`, 400, "M_INVALID_PARAM"},
		{"PUT", g + "sender/not-a-user", `{"actions":[]}`, 400, "M_INVALID_PARAM"},
		{"PUT", g + "override/x", `{}`, 400, "M_MISSING_PARAM"},
		{"PUT", g + "override/x", `{"actions":"notify"}`, 400, "M_BAD_JSON"},
		{"PUT", g + "override/x", `{"actions":["notify","shout"]}`, 400, "M_INVALID_PARAM"},
		{"PUT", g + "override/x", `{"actions":[{"value":"x"}]}`, 400, "M_INVALID_PARAM"},
		{"PUT", g + "override/x", `{"actions":[{"set_tweak":""}]}`, 400, "M_INVALID_PARAM"},
		{"PUT", g + "override/x", `{"actions":[{"set_tweak":"highlight","value":"yes"}]}`, 400, "M_INVALID_PARAM"},
		{"PUT", g + "override/x", `{"actions":[{"set_tweak":"sound","value":1}]}`, 400, "M_INVALID_PARAM"},
		{"PUT", g + "override/x", `{"actions":[42]}`, 400, "M_INVALID_PARAM"},
		{"PUT", g + "override/x", `{"actions":[null]}`, 400, "M_INVALID_PARAM"},
		{"PUT", g + "override/x", `{"actions":[],"conditions":{}}`, 400, "M_BAD_JSON"},
		{"PUT", g + "override/x", `{"actions":[],"conditions":["event_match"]}`, 400, "M_INVALID_PARAM"},
		{"PUT", g + "override/x", `{"actions":[],"conditions":[{"key":"type"}]}`, 400, "M_INVALID_PARAM"},
		{"PUT", g + "override/x", `{"actions":[],"conditions":[{"kind":"event_match","key":"type"}]}`, 400, "M_INVALID_PARAM"},
		{"PUT", g + "override/x", `{"actions":[],"conditions":[{"kind":"event_match","pattern":"x"}]}`, 400, "M_INVALID_PARAM"},
		{"PUT", g + "override/x", `{"actions":[],"conditions":[{"kind":"event_match","key":"type","pattern":null}]}`, 400, "M_INVALID_PARAM"},
		{"PUT", g + "override/x", `{"actions":[],"conditions":[{"kind":"room_member_count","is":"=2"}]}`, 400, "M_INVALID_PARAM"},
		{"PUT", g + "override/x", `{"actions":[],"conditions":[{"kind":"event_property_is","key":"a","value":{}}]}`, 400, "M_INVALID_PARAM"},
		{"PUT", g + "override/x", `{"actions":[],"conditions":[{"kind":"event_property_is","key":"a","value":1.5}]}`, 400, "M_INVALID_PARAM"},
		{"PUT", g + "override/x", `{"actions":[],"conditions":[{"kind":"event_property_is","key":"a","value":9007199254740992}]}`, 400, "M_INVALID_PARAM"},
		{"PUT", g + "override/x", `{"actions":[],"conditions":[{"kind":"event_property_contains","key":"a"}]}`, 400, "M_INVALID_PARAM"},
		{"PUT", g + "override/x", `{"actions":[],"conditions":[{"kind":"sender_notification_permission"}]}`, 400, "M_INVALID_PARAM"},
		{"PUT", g + "content/x", `{"actions":[]}`, 400, "M_MISSING_PARAM"},
		{"PUT", g + "content/x", `{"actions":[],"pattern":""}`, 400, "M_INVALID_PARAM"},
		{"PUT", g + "content/x", `{"actions":[],"pattern":5}`, 400, "M_BAD_JSON"},
		{"PUT", g + "override/x", `not json`, 400, "M_NOT_JSON"},
		{"PUT", g + "override/x", `[]`, 400, "M_BAD_JSON"},
		{"PUT", g + "override/x?before=missing", `{"actions":[]}`, 400, "M_UNKNOWN"},
		{"PUT", g + "override/x?after=missing", `{"actions":[]}`, 400, "M_UNKNOWN"},
		{"PUT", g + "override/x?before=.m.rule.master", `{"actions":[]}`, 400, "M_INVALID_PARAM"},
		{"PUT", g + "override/x?after=x", `{"actions":[]}`, 400, "M_INVALID_PARAM"},
		{"PUT", g + "override/x?before=y", `{"actions":[]}`, 400, "M_UNKNOWN"}, // y is underride
		{"PUT", g + "override/.m.rule.master/enabled", `{}`, 400, "M_MISSING_PARAM"},
		{"PUT", g + "override/.m.rule.master/enabled", `{"enabled":"yes"}`, 400, "M_BAD_JSON"},
		{"PUT", g + "override/.m.rule.master/actions", `{"actions":["shout"]}`, 400, "M_INVALID_PARAM"},
		{"PUT", g + "override/nope/enabled", `{"enabled":true}`, 404, "M_NOT_FOUND"},
		{"PUT", g + "override/nope/actions", `{"actions":[]}`, 404, "M_NOT_FOUND"},
		{"PUT", g + "override/.m.rule.nope/actions", `{"actions":[]}`, 404, "M_NOT_FOUND"},
	}
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		h.mustDo("PUT", g+"underride/y", alice, `{"actions":[]}`)
		before, _ := json.Marshal(h.global(alice))
		for _, tc := range cases {
			status, code, body := h.do(tc.method, tc.path, alice, tc.body)
			if status != tc.status || code != tc.code {
				t.Errorf("%s %s %s: %d %s %s; want %d %s", tc.method, tc.path, tc.body, status, code, body, tc.status, tc.code)
			}
		}
		if after, _ := json.Marshal(h.global(alice)); string(after) != string(before) {
			t.Errorf("refused requests changed the ruleset:\n%s\n%s", before, after)
		}
		for _, as := range []string{"", "nobody"} {
			if status, _, _ := h.do("GET", v3+"/pushrules/", as, nil); status != http.StatusUnauthorized {
				t.Errorf("GET as %q: %d, want 401", as, status)
			}
		}
	})
}

// TestConcurrentPuts creates rules for one user from many requests at
// once: every rule must arrive, each exactly once.
func TestConcurrentPuts(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		h.mustDo("PUT", v3+"/pushrules/global/override/anchor", alice, `{"actions":[]}`)
		const n = 16
		var wg sync.WaitGroup
		errs := make(chan string, n)
		for i := range n {
			wg.Go(func() {
				query := ""
				if i%2 == 1 {
					query = "?after=anchor"
				}
				path := fmt.Sprintf("%s/pushrules/global/override/r%02d%s", v3, i, query)
				if status, code, body := h.do("PUT", path, alice, `{"actions":[]}`); status != 200 {
					errs <- fmt.Sprintf("%s: %d %s %s", path, status, code, body)
				}
			})
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
		got := h.global(alice).ids("override")
		if len(got) != 1+1+n+len(defaultOverrides) {
			t.Errorf("got %d rules: %q", len(got), got)
		}
	})
}

func TestRuleLimit(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		ctx := context.Background()
		if err := h.svc.db.Tx(ctx, func(ctx context.Context, tx *store.Tx) error {
			for i := range maxUserRules {
				if _, err := tx.Exec(ctx, `INSERT INTO pushrules_user (user_id, kind, rule_id, position, enabled, actions)
					VALUES ($1, 'room', $2, $3, TRUE, $4)`, alice, fmt.Sprintf("!r%d:test.example", i), int64(i), []byte("[]")); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if status, code, _ := h.do("PUT", v3+"/pushrules/global/override/one-more", alice, `{"actions":[]}`); status != 413 || code != "M_TOO_LARGE" {
			t.Errorf("rule %d: %d %s, want 413 M_TOO_LARGE", maxUserRules+1, status, code)
		}
		// Replacing an existing rule is still allowed, and so is bob.
		h.mustDo("PUT", v3+"/pushrules/global/room/%21r5:test.example", alice, `{"actions":["notify"]}`)
		h.mustDo("PUT", v3+"/pushrules/global/override/one-more", bob, `{"actions":[]}`)
		if status, code, _ := h.do("GET", v3+"/pushrules/global/override/", alice, nil); status != 404 {
			t.Errorf("GET with an empty rule ID: %d %s, want 404", status, code)
		}
	})
}
