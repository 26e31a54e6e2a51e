package pushrules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
)

// Kinds are the rule kinds in the order they are checked (spec "Push
// Rules").
var kinds = []string{"override", "content", "room", "sender", "underride"}

// validKind reports whether k is one of kinds.
func validKind(k string) bool { return slices.Contains(kinds, k) }

// hasConditions reports whether rules of kind k carry conditions;
// patternKind whether they carry a pattern.
func hasConditions(k string) bool { return k == "override" || k == "underride" }
func patternKind(k string) bool   { return k == "content" }

// masterRuleID is the one server-default rule that is more important than
// every user rule.
const masterRuleID = ".m.rule.master"

// rule is a push rule as the API shows it (spec PushRule).
type rule struct {
	RuleID     string          `json:"rule_id"`
	Default    bool            `json:"default"`
	Enabled    bool            `json:"enabled"`
	Conditions json.RawMessage `json:"conditions,omitempty"`
	Pattern    *string         `json:"pattern,omitempty"`
	Actions    json.RawMessage `json:"actions"`
}

// ruleset is the global ruleset (spec PushRuleset). Every kind is present,
// as an empty array when it has no rules.
type ruleset struct {
	Override  []rule `json:"override"`
	Content   []rule `json:"content"`
	Room      []rule `json:"room"`
	Sender    []rule `json:"sender"`
	Underride []rule `json:"underride"`
}

// of returns the slice of kind k.
func (rs *ruleset) of(k string) *[]rule {
	switch k {
	case "override":
		return &rs.Override
	case "content":
		return &rs.Content
	case "room":
		return &rs.Room
	case "sender":
		return &rs.Sender
	default:
		return &rs.Underride
	}
}

// find returns the rule of kind k with ID ruleID, or nil.
func (rs *ruleset) find(k, ruleID string) *rule {
	rules := *rs.of(k)
	for i := range rules {
		if rules[i].RuleID == ruleID {
			return &rules[i]
		}
	}
	return nil
}

// userPlaceholder stands for the user's Matrix ID in defaultRulesJSON
// (the spec writes "[the user's Matrix ID]").
const userPlaceholder = `"@@USER@@"`

// defaultRulesJSON is the spec's "Predefined Rules" (v1.19), in its order.
// Since v1.17 there are no default content, room or sender rules (the
// legacy body-matching mention rules were removed, MSC4210).
const defaultRulesJSON = `{
"override": [
 {"rule_id": ".m.rule.master", "default": true, "enabled": false,
  "conditions": [], "actions": []},
 {"rule_id": ".m.rule.suppress_notices", "default": true, "enabled": true,
  "conditions": [{"kind": "event_match", "key": "content.msgtype", "pattern": "m.notice"}],
  "actions": []},
 {"rule_id": ".m.rule.invite_for_me", "default": true, "enabled": true,
  "conditions": [
   {"kind": "event_match", "key": "type", "pattern": "m.room.member"},
   {"kind": "event_match", "key": "content.membership", "pattern": "invite"},
   {"kind": "event_match", "key": "state_key", "pattern": "@@USER@@"}],
  "actions": ["notify", {"set_tweak": "sound", "value": "default"}]},
 {"rule_id": ".m.rule.member_event", "default": true, "enabled": true,
  "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.room.member"}],
  "actions": []},
 {"rule_id": ".m.rule.is_user_mention", "default": true, "enabled": true,
  "conditions": [{"kind": "event_property_contains", "key": "content.m\\.mentions.user_ids", "value": "@@USER@@"}],
  "actions": ["notify", {"set_tweak": "sound", "value": "default"}, {"set_tweak": "highlight"}]},
 {"rule_id": ".m.rule.is_room_mention", "default": true, "enabled": true,
  "conditions": [
   {"kind": "event_property_is", "key": "content.m\\.mentions.room", "value": true},
   {"kind": "sender_notification_permission", "key": "room"}],
  "actions": ["notify", {"set_tweak": "highlight"}]},
 {"rule_id": ".m.rule.tombstone", "default": true, "enabled": true,
  "conditions": [
   {"kind": "event_match", "key": "type", "pattern": "m.room.tombstone"},
   {"kind": "event_match", "key": "state_key", "pattern": ""}],
  "actions": ["notify", {"set_tweak": "highlight"}]},
 {"rule_id": ".m.rule.reaction", "default": true, "enabled": true,
  "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.reaction"}],
  "actions": []},
 {"rule_id": ".m.rule.room.server_acl", "default": true, "enabled": true,
  "conditions": [
   {"kind": "event_match", "key": "type", "pattern": "m.room.server_acl"},
   {"kind": "event_match", "key": "state_key", "pattern": ""}],
  "actions": []},
 {"rule_id": ".m.rule.suppress_edits", "default": true, "enabled": true,
  "conditions": [{"kind": "event_property_is", "key": "content.m\\.relates_to.rel_type", "value": "m.replace"}],
  "actions": []}
],
"content": [],
"room": [],
"sender": [],
"underride": [
 {"rule_id": ".m.rule.call", "default": true, "enabled": true,
  "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.call.invite"}],
  "actions": ["notify", {"set_tweak": "sound", "value": "ring"}]},
 {"rule_id": ".m.rule.encrypted_room_one_to_one", "default": true, "enabled": true,
  "conditions": [
   {"kind": "room_member_count", "is": "2"},
   {"kind": "event_match", "key": "type", "pattern": "m.room.encrypted"}],
  "actions": ["notify", {"set_tweak": "sound", "value": "default"}]},
 {"rule_id": ".m.rule.room_one_to_one", "default": true, "enabled": true,
  "conditions": [
   {"kind": "room_member_count", "is": "2"},
   {"kind": "event_match", "key": "type", "pattern": "m.room.message"}],
  "actions": ["notify", {"set_tweak": "sound", "value": "default"}]},
 {"rule_id": ".m.rule.message", "default": true, "enabled": true,
  "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.room.message"}],
  "actions": ["notify"]},
 {"rule_id": ".m.rule.encrypted", "default": true, "enabled": true,
  "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.room.encrypted"}],
  "actions": ["notify"]}
]
}`

// defaultTemplate is defaultRulesJSON parsed once, with the placeholder
// still in it. It is never written after initialisation.
var defaultTemplate = mustParseDefaults()

func mustParseDefaults() ruleset {
	var rs ruleset
	if err := json.Unmarshal([]byte(defaultRulesJSON), &rs); err != nil {
		panic(fmt.Sprintf("pushrules: default rules: %v", err)) // a constant; tested
	}
	for _, k := range kinds {
		for i := range *rs.of(k) {
			r := &(*rs.of(k))[i]
			r.Conditions = compact(r.Conditions)
			r.Actions = compact(r.Actions)
		}
	}
	return rs
}

func compact(raw json.RawMessage) json.RawMessage {
	if raw == nil {
		return nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// defaultRules returns the server-default rules for userID: fresh slices
// the caller may change.
func defaultRules(userID string) ruleset {
	uid, _ := json.Marshal(userID) // a string always marshals
	var rs ruleset
	for _, k := range kinds {
		src := *defaultTemplate.of(k)
		out := make([]rule, len(src))
		for i, r := range src {
			r.Conditions = bytes.ReplaceAll(r.Conditions, []byte(userPlaceholder), uid)
			out[i] = r
		}
		*rs.of(k) = out
	}
	return rs
}

// isDefault reports whether ruleID of kind k is a server-default rule.
func isDefault(k, ruleID string) bool {
	return defaultTemplate.find(k, ruleID) != nil
}

// defaultChange is a user's change to a server-default rule.
type defaultChange struct {
	Enabled *bool
	Actions json.RawMessage
}

// assemble builds a user's ruleset: the server-default rules with the
// user's changes applied, and the user's own rules (in their order) put
// before the server-default rules of their kind, except that
// .m.rule.master stays first (spec "Predefined Rules").
func assemble(userID string, user map[string][]rule, changes map[[2]string]defaultChange) ruleset {
	rs := defaultRules(userID)
	for _, k := range kinds {
		defs := *rs.of(k)
		for i := range defs {
			if c, ok := changes[[2]string{k, defs[i].RuleID}]; ok {
				if c.Enabled != nil {
					defs[i].Enabled = *c.Enabled
				}
				if c.Actions != nil {
					defs[i].Actions = c.Actions
				}
			}
		}
		out := make([]rule, 0, len(defs)+len(user[k]))
		if len(defs) > 0 && defs[0].RuleID == masterRuleID {
			out = append(out, defs[0])
			defs = defs[1:]
		}
		out = append(out, user[k]...)
		out = append(out, defs...)
		*rs.of(k) = out
	}
	return rs
}
