package pushrules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/matrix/id"
)

// Bounds on what a user may store (see doc.go).
const (
	maxBody       = 64 << 10 // bytes of a request body
	maxRuleIDLen  = 255      // bytes of a rule ID
	maxActions    = 100      // actions of one rule
	maxConditions = 100      // conditions of one rule
	maxUserRules  = 1000     // user-defined rules per user, all kinds
)

// historicalActions are the removed actions that must be ignored (spec
// "Historical Actions"): they are stripped when a rule is stored.
var historicalActions = map[string]bool{"dont_notify": true, "coalesce": true}

// memberCountRE is the "is" of a room_member_count condition.
var memberCountRE = regexp.MustCompile(`^(==|<|>|>=|<=)?[0-9]+$`)

// maxSafeInt bounds the integers of canonical JSON (spec "Canonical JSON").
const maxSafeInt = 1<<53 - 1

// kindParam validates the {kind} path parameter.
func kindParam(k string) error {
	if !validKind(k) {
		return httpx.InvalidParam(fmt.Sprintf("Unknown push rule kind %s; expected one of %s", quote(k), strings.Join(kinds, ", ")))
	}
	return nil
}

// checkNewRuleID validates the rule ID of a rule a user creates or
// replaces (PUT /pushrules/global/{kind}/{ruleId}).
func checkNewRuleID(k, ruleID string) error {
	switch {
	case ruleID == "":
		return httpx.InvalidParam("The rule ID must not be empty")
	case strings.HasPrefix(ruleID, "."):
		return httpx.InvalidParam("Rule IDs starting with '.' are reserved for server-default rules")
	case strings.ContainsAny(ruleID, `/\`):
		return httpx.InvalidParam("Rule IDs must not contain '/' or '\\'")
	case len(ruleID) > maxRuleIDLen || !utf8.ValidString(ruleID):
		return httpx.InvalidParam(fmt.Sprintf("The rule ID must be at most %d bytes of UTF-8", maxRuleIDLen))
	}
	switch k {
	case "room":
		if _, err := id.ParseRoomID(ruleID); err != nil {
			return httpx.InvalidParam("The rule ID of a room rule must be a room ID: " + quote(ruleID) + " is not").WithCause(err)
		}
	case "sender":
		if _, err := id.ParseUserID(ruleID); err != nil {
			return httpx.InvalidParam("The rule ID of a sender rule must be a user ID: " + quote(ruleID) + " is not").WithCause(err)
		}
	}
	return nil
}

// newRule is the validated body of PUT /pushrules/global/{kind}/{ruleId}.
type newRule struct {
	Conditions json.RawMessage // compacted array; nil unless override/underride
	Pattern    *string         // content rules only
	Actions    json.RawMessage // canonical array (parseActions)
}

// parseRuleBody validates the body of a rule of kind k. Conditions are
// kept only for override and underride rules and pattern only for content
// rules; other kinds ignore them (spec: "Only applicable to …").
func parseRuleBody(k string, body []byte) (newRule, error) {
	var b struct {
		Actions    json.RawMessage `json:"actions"`
		Conditions json.RawMessage `json:"conditions"`
		Pattern    json.RawMessage `json:"pattern"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return newRule{}, httpx.BadJSON("The push rule must be a JSON object").WithCause(err)
	}
	var nr newRule
	var err error
	if nr.Actions, err = parseActions(b.Actions); err != nil {
		return newRule{}, err
	}
	if hasConditions(k) {
		if nr.Conditions, err = parseConditions(b.Conditions); err != nil {
			return newRule{}, err
		}
	}
	if patternKind(k) {
		if isAbsent(b.Pattern) {
			return newRule{}, httpx.MissingParam("A content rule needs a 'pattern'")
		}
		var p string
		if err := json.Unmarshal(b.Pattern, &p); err != nil {
			return newRule{}, httpx.BadJSON("'pattern' must be a string")
		}
		if p == "" {
			return newRule{}, httpx.InvalidParam("'pattern' must not be empty")
		}
		nr.Pattern = &p
	}
	return nr, nil
}

func isAbsent(raw json.RawMessage) bool {
	return raw == nil || bytes.Equal(raw, []byte("null"))
}

// parseActions validates an actions array and returns it compacted, with
// the historical actions removed. Known actions are checked: "notify",
// and set_tweak objects (a non-empty tweak name; highlight's value a
// boolean, sound's a string). Any other action is refused, since a
// client that sends one expects behaviour this server does not have.
func parseActions(raw json.RawMessage) (json.RawMessage, error) {
	if isAbsent(raw) {
		return nil, httpx.MissingParam("'actions' is required")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, httpx.BadJSON("'actions' must be an array")
	}
	if len(items) > maxActions {
		return nil, httpx.InvalidParam(fmt.Sprintf("At most %d actions are allowed", maxActions))
	}
	out := make([]json.RawMessage, 0, len(items))
	for i, it := range items {
		keep, err := checkAction(it)
		if err != nil {
			return nil, httpx.InvalidParam(fmt.Sprintf("actions[%d]: %s", i, err))
		}
		if keep {
			out = append(out, it)
		}
	}
	return marshalCompact(out)
}

// checkAction validates one action and reports whether to keep it.
func checkAction(raw json.RawMessage) (keep bool, err error) {
	var s string
	if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		switch {
		case s == "notify":
			return true, nil
		case historicalActions[s]:
			return false, nil
		default:
			return false, fmt.Errorf("unknown action %s", quote(s))
		}
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return false, fmt.Errorf("an action must be a string or an object")
	}
	var tweak string
	if err := json.Unmarshal(obj["set_tweak"], &tweak); err != nil || tweak == "" {
		return false, fmt.Errorf("an object action must have a non-empty string 'set_tweak'")
	}
	value, hasValue := obj["value"]
	switch tweak {
	case "highlight":
		var b bool
		if hasValue && json.Unmarshal(value, &b) != nil {
			return false, fmt.Errorf("the value of the highlight tweak must be a boolean")
		}
	case "sound":
		var v string
		if hasValue && json.Unmarshal(value, &v) != nil {
			return false, fmt.Errorf("the value of the sound tweak must be a string")
		}
	}
	return true, nil
}

// parseConditions validates a conditions array (absent means no
// conditions: the rule always matches) and returns it compacted. Every
// condition needs a string kind; the parameters of the spec's kinds are
// checked. Conditions of other kinds are kept: they never match, which
// the spec says disables the rule, and a client may know them.
func parseConditions(raw json.RawMessage) (json.RawMessage, error) {
	if isAbsent(raw) {
		return json.RawMessage("[]"), nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, httpx.BadJSON("'conditions' must be an array")
	}
	if len(items) > maxConditions {
		return nil, httpx.InvalidParam(fmt.Sprintf("At most %d conditions are allowed", maxConditions))
	}
	for i, it := range items {
		if err := checkCondition(it); err != nil {
			return nil, httpx.InvalidParam(fmt.Sprintf("conditions[%d]: %s", i, err))
		}
	}
	return marshalCompact(items)
}

func checkCondition(raw json.RawMessage) error {
	var c map[string]json.RawMessage
	if err := json.Unmarshal(raw, &c); err != nil || c == nil {
		return fmt.Errorf("a condition must be an object")
	}
	kind, ok := stringField(c, "kind")
	if !ok || kind == "" {
		return fmt.Errorf("a condition needs a non-empty string 'kind'")
	}
	needKey := func() error {
		if k, ok := stringField(c, "key"); !ok || k == "" {
			return fmt.Errorf("a %s condition needs a non-empty string 'key'", kind)
		}
		return nil
	}
	switch kind {
	case "event_match":
		if err := needKey(); err != nil {
			return err
		}
		if _, ok := stringField(c, "pattern"); !ok {
			return fmt.Errorf("an event_match condition needs a string 'pattern'")
		}
	case "event_property_is", "event_property_contains":
		if err := needKey(); err != nil {
			return err
		}
		v, ok := c["value"]
		if !ok || !scalarValue(v) {
			return fmt.Errorf("a %s condition needs a 'value' that is a string, an integer within ±(2^53-1), a boolean or null", kind)
		}
	case "room_member_count":
		is, ok := stringField(c, "is")
		if !ok || !memberCountRE.MatchString(is) {
			return fmt.Errorf("a room_member_count condition needs 'is': a decimal integer optionally prefixed by ==, <, >, >= or <=")
		}
	case "sender_notification_permission":
		return needKey()
	}
	return nil
}

// stringField returns the string value of c[name].
func stringField(c map[string]json.RawMessage, name string) (string, bool) {
	raw, ok := c[name]
	if !ok || len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// scalarValue reports whether raw is a non-compound canonical JSON value.
func scalarValue(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return false
	}
	switch raw[0] {
	case '"', 't', 'f', 'n':
		return true // valid JSON: a string, true, false or null
	case '{', '[':
		return false
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	return err == nil && n >= -maxSafeInt && n <= maxSafeInt
}

func marshalCompact(items []json.RawMessage) (json.RawMessage, error) {
	if len(items) == 0 {
		return json.RawMessage("[]"), nil
	}
	return encode(items) // compacts each item, without HTML escapes
}

// parseEnabled validates the body of PUT …/enabled.
func parseEnabled(body []byte) (bool, error) {
	var b struct {
		Enabled json.RawMessage `json:"enabled"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return false, httpx.BadJSON("The body must be a JSON object").WithCause(err)
	}
	if isAbsent(b.Enabled) {
		return false, httpx.MissingParam("'enabled' is required")
	}
	var v bool
	if err := json.Unmarshal(b.Enabled, &v); err != nil {
		return false, httpx.BadJSON("'enabled' must be a boolean")
	}
	return v, nil
}

// parseActionsBody validates the body of PUT …/actions.
func parseActionsBody(body []byte) (json.RawMessage, error) {
	var b struct {
		Actions json.RawMessage `json:"actions"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, httpx.BadJSON("The body must be a JSON object").WithCause(err)
	}
	return parseActions(b.Actions)
}

// quote quotes s for an error message, cut to a readable length.
func quote(s string) string {
	const maxLen = 100
	if len(s) > maxLen {
		s = s[:maxLen] + "…"
	}
	return strconv.Quote(s)
}
