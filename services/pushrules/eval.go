package pushrules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/axon-hs/axon/matrix/cjson"
)

// Evaluation of push rules (spec "Push Rules", "Conditions", "Actions").
//
// A ruleset is compiled once: keys split into paths, globs into folded
// runes, condition values into cjson values, actions into two booleans.
// Rules that can never match (disabled ones, and those with a condition
// that never holds: an unknown kind, or parameters missing or of the
// wrong type) are left out. Evaluate then walks the remaining rules
// without parsing or allocating.
//
// Choices where the spec is silent or leaves it to the server:
//
//   - "Case-insensitive" is Unicode simple case folding (the relation of
//     strings.EqualFold); `?` matches one code point.
//   - event_match on content.body (and content rules, which match
//     content.body) matches any substring that starts and ends at a word
//     boundary, as the spec's special case says; a word character is
//     [A-Za-z0-9_] (the spec's definition), so any other character,
//     non-ASCII letters included, is a boundary. contains_display_name
//     uses the same boundaries, matching the display name literally.
//   - Room rules match when room_id equals the rule ID and sender rules
//     when sender equals it, exactly (IDs are case-sensitive).
//   - sender_notification_permission needs notifications[key] of the
//     power levels, 50 when absent (the spec's default for "room", used
//     for every key) or not an integer; a string holding an integer is
//     read as one (rooms before version 10 allowed them).
//   - The last highlight tweak of the actions wins; a highlight value that
//     is not a boolean is ignored.
//   - Evaluate does not know who sent the event: callers skip the user's
//     own events (spec: never notify for them).

// Rules is one user's ruleset compiled for evaluation. It is immutable
// and safe for concurrent use.
type Rules struct {
	userID string
	// rules are the rules that can match, in evaluation order.
	rules []evalRule
	// defaultsChanged is set when the server-default rules differ from
	// the server's definition (enabled flag, actions, or the list
	// itself).
	defaultsChanged bool
}

// Input is what evaluating one event for the user needs.
type Input struct {
	// Event is the event as clients see it (at least type, content,
	// sender, state_key when a state event, room_id).
	Event cjson.Value
	// DisplayName is the user's display name in the room ("" when none:
	// contains_display_name then never matches).
	DisplayName string
	// MemberCount is the number of joined members of the room.
	MemberCount int
	// SenderPowerLevel is the sender's power level in the room and
	// PowerLevels the content of the room's m.room.power_levels (absent
	// Value when the room has none; then the spec's defaults apply, for
	// sender_notification_permission: notifications.room defaults to 50).
	SenderPowerLevel int64
	PowerLevels      cjson.Value
}

// Result is what the first matching rule's actions say.
type Result struct {
	Notify    bool   // the actions include "notify"
	Highlight bool   // a set_tweak highlight with value true (or no value) is present
	RuleID    string // the matching rule ("" when none matched)
}

// evalRule is one compiled rule.
type evalRule struct {
	id        string
	kind      string
	user      bool // not a server-default rule
	conds     []cond
	notify    bool
	highlight bool
}

// condOp is what a compiled condition checks.
type condOp uint8

const (
	opNever       condOp = iota // unknown kind or bad parameters
	opMatch                     // event_match on the whole value
	opMatchWords                // event_match on content.body; content rules
	opIs                        // event_property_is
	opContains                  // event_property_contains
	opDisplayName               // contains_display_name
	opMemberCount               // room_member_count
	opSenderPerm                // sender_notification_permission
	opEqual                     // room and sender rules: the string equals str
)

// cond is one compiled condition.
type cond struct {
	op    condOp
	path  []string    // the event property (all but opMemberCount, opSenderPerm)
	slot  int         // path's place in the evaluation's cache, -1 when not cached
	glob  glob        // opMatch, opMatchWords
	value cjson.Value // opIs, opContains
	str   string      // opEqual: the value; opSenderPerm: the notifications key
	cmp   string      // opMemberCount: "==", "<", ">", "<=" or ">="
	n     int64       // opMemberCount
}

// Compile compiles a ruleset in the API's form (the JSON of spec
// PushRuleset: {"override":[...],"content":[...],"room":[...],
// "sender":[...],"underride":[...]}), as Service.Ruleset returns it, for
// userID. It fails only when ruleset is not of that shape; a rule with
// conditions it cannot read never matches.
func Compile(userID string, data json.RawMessage) (*Rules, error) {
	var rs ruleset
	if err := json.Unmarshal(data, &rs); err != nil {
		return nil, fmt.Errorf("pushrules: compile the ruleset of %s: %w", userID, err)
	}
	return compileRuleset(userID, &rs), nil
}

// compileRuleset compiles an assembled ruleset (see load).
func compileRuleset(userID string, rs *ruleset) *Rules {
	r := compileRules(userID, rs)
	r.defaultsChanged = !sameDefaults(userID, rs)
	return r
}

// compileRules compiles rs without comparing its defaults.
func compileRules(userID string, rs *ruleset) *Rules {
	r := &Rules{userID: userID}
	for _, k := range kinds {
		for _, ru := range *rs.of(k) {
			if er, ok := compileRule(k, ru); ok {
				r.rules = append(r.rules, er)
			}
		}
	}
	r.assignSlots()
	return r
}

// maxCachedPaths bounds the distinct event properties whose values an
// evaluation caches (the defaults read 6).
const maxCachedPaths = 16

// assignSlots gives each distinct path of the conditions a slot of the
// evaluation's cache, so that each property is looked up once per event
// (the defaults read type ten times).
func (r *Rules) assignSlots() {
	var paths [][]string
	for i := range r.rules {
		for j := range r.rules[i].conds {
			c := &r.rules[i].conds[j]
			c.slot = -1
			if c.path == nil {
				continue
			}
			c.slot = slices.IndexFunc(paths, func(p []string) bool { return slices.Equal(p, c.path) })
			if c.slot < 0 && len(paths) < maxCachedPaths {
				c.slot = len(paths)
				paths = append(paths, c.path)
			}
		}
	}
}

// defaultCompiled is the server-default ruleset compiled with the user
// placeholder still in it; DefaultRules puts the user in.
var defaultCompiled = compileRules(placeholderID, &defaultTemplate)

// placeholderID is userPlaceholder's string.
var placeholderID = strings.Trim(userPlaceholder, `"`)

// DefaultRules is the server-default ruleset of userID, compiled.
func DefaultRules(userID string) *Rules {
	r := &Rules{userID: userID, rules: slices.Clone(defaultCompiled.rules)}
	for i := range r.rules {
		ru := &r.rules[i]
		cloned := false
		for j, c := range ru.conds {
			inGlob := c.glob.raw == placeholderID
			inValue := c.value.StrOr("") == placeholderID
			if !inGlob && !inValue {
				continue
			}
			if !cloned {
				ru.conds, cloned = slices.Clone(ru.conds), true
			}
			if inGlob {
				ru.conds[j].glob = compileGlob(userID)
			}
			if inValue {
				ru.conds[j].value = cjson.StringValue(userID)
			}
		}
	}
	return r
}

// compileRule compiles one rule of kind k; ok is false when it can never
// match.
func compileRule(k string, ru rule) (evalRule, bool) {
	if !ru.Enabled || ru.RuleID == "" {
		// Every stored rule has an ID; a ruleset from elsewhere may not,
		// and a rule without one cannot be named in a result.
		return evalRule{}, false
	}
	er := evalRule{id: ru.RuleID, kind: k, user: !ru.Default}
	switch k {
	case "content":
		if ru.Pattern == nil {
			return evalRule{}, false
		}
		er.conds = []cond{{op: opMatchWords, path: bodyPath, glob: compileGlob(*ru.Pattern)}}
	case "room":
		er.conds = []cond{{op: opEqual, path: []string{"room_id"}, str: ru.RuleID}}
	case "sender":
		er.conds = []cond{{op: opEqual, path: []string{"sender"}, str: ru.RuleID}}
	default:
		if len(ru.Conditions) > 0 {
			cs, err := cjson.Parse(ru.Conditions, cjson.Lenient)
			if err != nil || (cs.Kind() != cjson.Array && !cs.IsNull()) {
				return evalRule{}, false
			}
			for _, m := range cs.Elems() {
				c := compileCond(m.Value)
				if c.op == opNever {
					return evalRule{}, false // spec: the rule never matches
				}
				er.conds = append(er.conds, c)
			}
		}
	}
	if len(ru.Actions) > 0 {
		if as, err := cjson.Parse(ru.Actions, cjson.Lenient); err == nil && as.Kind() == cjson.Array {
			er.notify, er.highlight = compileActions(as)
		}
	}
	return er, true
}

// bodyPath is content.body, whose event_match is on words.
var bodyPath = []string{"content", "body"}

// compileCond compiles one condition; its op is opNever when the kind is
// unknown or a parameter is missing or of the wrong type.
func compileCond(c cjson.Value) cond {
	never := cond{op: opNever}
	kind, _ := c.Get("kind").Str()
	key, hasKey := c.Get("key").Str()
	hasKey = hasKey && key != ""
	switch kind {
	case "event_match":
		pattern, ok := c.Get("pattern").Str()
		if !hasKey || !ok {
			return never
		}
		path := splitPath(key)
		op := opMatch
		if slices.Equal(path, bodyPath) {
			op = opMatchWords
		}
		return cond{op: op, path: path, glob: compileGlob(pattern)}
	case "event_property_is", "event_property_contains":
		v := c.Get("value")
		if !hasKey || !scalar(v) {
			return never
		}
		op := opIs
		if kind == "event_property_contains" {
			op = opContains
		}
		return cond{op: op, path: splitPath(key), value: v}
	case "contains_display_name":
		return cond{op: opDisplayName, path: bodyPath}
	case "room_member_count":
		is, _ := c.Get("is").Str()
		cmp, n, ok := parseMemberCount(is)
		if !ok {
			return never
		}
		return cond{op: opMemberCount, cmp: cmp, n: n}
	case "sender_notification_permission":
		if !hasKey {
			return never
		}
		return cond{op: opSenderPerm, str: key}
	}
	return never
}

// scalar reports whether v is a non-compound canonical JSON value: a
// string, an integer in [-(2^53)+1, 2^53-1], a boolean or null.
func scalar(v cjson.Value) bool {
	switch v.Kind() {
	case cjson.String, cjson.Bool, cjson.Null:
		return true
	case cjson.Number:
		n, ok := v.Int()
		return ok && n >= cjson.MinSafeInt && n <= cjson.MaxSafeInt
	}
	return false
}

// parseMemberCount parses the "is" of room_member_count: a decimal
// integer optionally prefixed by ==, <, >, >= or <= (none means ==).
func parseMemberCount(is string) (cmp string, n int64, ok bool) {
	cmp = "=="
	for _, p := range []string{"==", "<=", ">=", "<", ">"} {
		if rest, found := strings.CutPrefix(is, p); found {
			cmp, is = p, rest
			break
		}
	}
	if is == "" || strings.Trim(is, "0123456789") != "" {
		return "", 0, false
	}
	n, _ = strconv.ParseInt(is, 10, 64) // all digits: only a range error, with n saturated
	return cmp, n, true
}

// compileActions reports whether actions notify and highlight (spec
// "Actions"; dont_notify, coalesce and unknown actions do nothing).
func compileActions(actions cjson.Value) (notify, highlight bool) {
	for _, m := range actions.Elems() {
		a := m.Value
		if s, ok := a.Str(); ok {
			notify = notify || s == "notify"
			continue
		}
		if tweak, _ := a.Get("set_tweak").Str(); tweak != "highlight" {
			continue
		}
		v := a.Get("value")
		if !v.Exists() {
			highlight = true // spec: a highlight tweak without value is true
		} else if b, ok := v.Bool(); ok {
			highlight = b
		}
	}
	return notify, highlight
}

// splitPath splits a dot-separated property path (spec appendix
// "Dot-separated property paths"): `\.` is a dot and `\\` a backslash
// within a name; any other backslash is literal.
func splitPath(key string) []string {
	if !strings.ContainsRune(key, '\\') {
		return strings.Split(key, ".")
	}
	var out []string
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case c == '\\' && i+1 < len(key) && (key[i+1] == '.' || key[i+1] == '\\'):
			b.WriteByte(key[i+1])
			i++
		case c == '.':
			out = append(out, b.String())
			b.Reset()
		default:
			b.WriteByte(c)
		}
	}
	return append(out, b.String())
}

// sameDefaults reports whether the server-default rules of rs (those
// marked default, in order) are the server's definition for userID, with
// the same enabled flags, conditions, pattern and actions (as JSON
// values).
func sameDefaults(userID string, rs *ruleset) bool {
	want := defaultRules(userID)
	for _, k := range kinds {
		defs := *want.of(k)
		n := 0
		for _, ru := range *rs.of(k) {
			if !ru.Default {
				continue
			}
			if n == len(defs) {
				return false
			}
			d := defs[n]
			n++
			if ru.RuleID != d.RuleID || ru.Enabled != d.Enabled ||
				!sameJSON(ru.Conditions, d.Conditions) || !sameJSON(ru.Actions, d.Actions) ||
				(ru.Pattern == nil) != (d.Pattern == nil) || (ru.Pattern != nil && *ru.Pattern != *d.Pattern) {
				return false
			}
		}
		if n != len(defs) {
			return false
		}
	}
	return true
}

// sameJSON reports whether a and b are the same JSON value (both absent
// counts as the same).
func sameJSON(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	va, errA := cjson.Parse(a, cjson.Lenient)
	vb, errB := cjson.Parse(b, cjson.Lenient)
	return errA == nil && errB == nil && va.Equal(vb)
}

// Evaluate runs the rules in the spec's order (override, content, room,
// sender, underride; within a kind in list order; disabled rules
// skipped); the first matching rule decides. It does not allocate.
func (r *Rules) Evaluate(in Input) Result {
	e := evaluation{in: &in}
	for i := range r.rules {
		ru := &r.rules[i]
		if ru.matches(&e) {
			return Result{Notify: ru.notify, Highlight: ru.highlight, RuleID: ru.id}
		}
	}
	return Result{}
}

// evaluation is the state of one Evaluate: the input and the event's
// properties looked up so far, by slot.
type evaluation struct {
	in     *Input
	cached uint16 // bit i: vals[i] is set
	vals   [maxCachedPaths]cjson.Value
}

// property returns the value of the event property of c.
func (e *evaluation) property(c *cond) *cjson.Value {
	if c.slot < 0 {
		v := lookup(e.in.Event, c.path)
		return &v
	}
	if bit := uint16(1) << c.slot; e.cached&bit == 0 {
		e.vals[c.slot] = lookup(e.in.Event, c.path)
		e.cached |= bit
	}
	return &e.vals[c.slot]
}

// lookup follows path from v. It is Value.Path without the generic binary
// search, which copies each member it compares: objects keep their
// members sorted by key (cjson.Value).
func lookup(v cjson.Value, path []string) cjson.Value {
	for _, key := range path {
		ms := v.Members()
		lo, hi := 0, len(ms)
		for lo < hi {
			if h := int(uint(lo+hi) >> 1); ms[h].Key < key {
				lo = h + 1
			} else {
				hi = h
			}
		}
		if lo == len(ms) || ms[lo].Key != key {
			return cjson.Value{}
		}
		v = ms[lo].Value
	}
	return v
}

// matches reports whether every condition of the rule holds.
func (ru *evalRule) matches(e *evaluation) bool {
	for i := range ru.conds {
		if !ru.conds[i].holds(e) {
			return false
		}
	}
	return true
}

// holds reports whether the condition holds for the event.
func (c *cond) holds(e *evaluation) bool {
	in := e.in
	switch c.op {
	case opMatch:
		s, ok := e.property(c).Str()
		return ok && c.glob.matchWhole(s)
	case opMatchWords:
		s, ok := e.property(c).Str()
		return ok && c.glob.matchWords(s)
	case opEqual:
		s, ok := e.property(c).Str()
		return ok && s == c.str
	case opIs:
		return e.property(c).Equal(c.value)
	case opContains:
		v := e.property(c)
		if v.Kind() != cjson.Array {
			return false
		}
		for _, m := range v.Elems() {
			if m.Value.Equal(c.value) {
				return true
			}
		}
		return false
	case opDisplayName:
		body, ok := e.property(c).Str()
		return ok && containsWord(body, in.DisplayName)
	case opMemberCount:
		m := int64(in.MemberCount)
		switch c.cmp {
		case "<":
			return m < c.n
		case ">":
			return m > c.n
		case "<=":
			return m <= c.n
		case ">=":
			return m >= c.n
		}
		return m == c.n
	case opSenderPerm:
		return in.SenderPowerLevel >= notificationLevel(in.PowerLevels, c.str)
	}
	return false
}

// notificationLevel is the power level needed to trigger notifications
// of type key: power_levels.notifications[key], 50 by default.
func notificationLevel(powerLevels cjson.Value, key string) int64 {
	const def = 50
	v := powerLevels.Get("notifications").Get(key)
	if n, ok := v.Int(); ok {
		return n
	}
	if s, ok := v.Str(); ok {
		if n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil {
			return n
		}
	}
	return def
}

// DefaultFor reports whether, for every event of room roomID, r decides
// exactly as DefaultRules(its user) does: no rule the user added can
// match an event of that room and the server-default rules are the
// server's definition (none disabled or enabled, no actions changed).
//
// A user rule cannot match events of roomID when it is disabled or has a
// condition that never holds, when it is a room rule for another room, or
// when it is an override or underride rule with an event_match condition
// on room_id whose pattern has no glob character (* ?) and does not equal
// roomID ignoring case (event_match ignores case). Any other user rule
// may match: content and sender rules, a room rule for roomID, and other
// override and underride rules.
func (r *Rules) DefaultFor(roomID string) bool {
	if r.defaultsChanged {
		return false
	}
	for i := range r.rules {
		if ru := &r.rules[i]; ru.user && ru.mayMatchRoom(roomID) {
			return false
		}
	}
	return true
}

// mayMatchRoom reports whether the rule may match events of roomID (see
// DefaultFor).
func (ru *evalRule) mayMatchRoom(roomID string) bool {
	switch ru.kind {
	case "room":
		return ru.id == roomID
	case "override", "underride":
		for _, c := range ru.conds {
			if c.op == opMatch && len(c.path) == 1 && c.path[0] == "room_id" &&
				c.glob.literal && !strings.EqualFold(c.glob.raw, roomID) {
				return false
			}
		}
	}
	return true
}

// Glob matching (spec appendix "Glob-style matching": `*` matches zero or
// more characters, `?` exactly one), ignoring case.

// Glob tokens other than folded runes.
const (
	tokStar rune = -1
	tokAny  rune = -2
)

// glob is a compiled pattern.
type glob struct {
	raw     string
	literal bool   // no * or ?: raw is compared with strings.EqualFold
	toks    []rune // folded runes, tokStar and tokAny; stars collapsed
	star    int    // index of the first tokStar, -1 when none
}

func compileGlob(pattern string) glob {
	g := glob{raw: pattern, literal: !strings.ContainsAny(pattern, "*?"), star: -1}
	for _, r := range pattern {
		switch r {
		case '*':
			if len(g.toks) > 0 && g.toks[len(g.toks)-1] == tokStar {
				continue
			}
			if g.star < 0 {
				g.star = len(g.toks)
			}
			g.toks = append(g.toks, tokStar)
		case '?':
			g.toks = append(g.toks, tokAny)
		default:
			g.toks = append(g.toks, foldRune(r))
		}
	}
	return g
}

// matchWhole reports whether g matches all of s.
func (g *glob) matchWhole(s string) bool {
	if g.literal {
		return strings.EqualFold(s, g.raw)
	}
	return g.matchFrom(s, 0, false)
}

// matchWords reports whether g matches a substring of s that starts and
// ends at a word boundary (spec: event_match on content.body).
//
// With a star in the pattern only the first start at which the part
// before the star matches needs trying: the part has a fixed number of
// characters, so it ends there no later than at any later start, and the
// star absorbs the difference. That keeps the search linear in len(s)
// times the pattern's length.
func (g *glob) matchWords(s string) bool {
	for i := 0; ; {
		if i == 0 || !isWordByte(s[i-1]) {
			if g.star < 0 {
				if g.matchFrom(s, i, true) {
					return true
				}
			} else if g.prefixAt(s, i) {
				return g.matchFrom(s, i, true)
			}
		}
		if i >= len(s) {
			return false
		}
		i += runeLen(s, i)
	}
}

// prefixAt reports whether the tokens before the first star match at s[i:].
func (g *glob) prefixAt(s string, i int) bool {
	for _, t := range g.toks[:g.star] {
		if i >= len(s) {
			return false
		}
		r, size := foldAt(s, i)
		if t != tokAny && t != r {
			return false
		}
		i += size
	}
	return true
}

// matchFrom reports whether g matches s[i:j] for j = len(s) or, when
// words is set, for some j at a word boundary. On a mismatch it resumes
// after the latest star with that star taking one more character, which
// is enough for * and ? (each retry costs at most len(toks) steps).
func (g *glob) matchFrom(s string, i int, words bool) bool {
	toks := g.toks
	p, starP, starI := 0, -1, 0
	for {
		if p < len(toks) {
			t := toks[p]
			if t == tokStar {
				if p == len(toks)-1 {
					return true // a final star takes the rest, ending at len(s)
				}
				starP, starI = p, i
				p++
				continue
			}
			if i < len(s) {
				if r, size := foldAt(s, i); t == tokAny || t == r {
					p++
					i += size
					continue
				}
			}
		} else if i == len(s) || (words && !isWordByte(s[i])) {
			return true
		}
		if starP < 0 || starI >= len(s) {
			return false
		}
		starI += runeLen(s, starI)
		p, i = starP+1, starI
	}
}

// containsWord reports whether s contains w, ignoring case, starting and
// ending at word boundaries.
func containsWord(s, w string) bool {
	if w == "" {
		return false
	}
	for i := 0; i < len(s); i += runeLen(s, i) {
		if i > 0 && isWordByte(s[i-1]) {
			continue
		}
		if j, ok := foldPrefix(s, i, w); ok && (j == len(s) || !isWordByte(s[j])) {
			return true
		}
	}
	return false
}

// foldPrefix reports whether s[i:] starts with w ignoring case, and where
// that prefix ends.
func foldPrefix(s string, i int, w string) (int, bool) {
	for k := 0; k < len(w); {
		if i >= len(s) {
			return 0, false
		}
		a, na := foldAt(s, i)
		b, nb := foldAt(w, k)
		if a != b {
			return 0, false
		}
		i, k = i+na, k+nb
	}
	return i, true
}

// isWordByte reports whether c is a word character: [A-Za-z0-9_]. Bytes
// of multi-byte characters are not.
func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// runeLen is the length of the character at s[i].
func runeLen(s string, i int) int {
	if s[i] < utf8.RuneSelf {
		return 1
	}
	_, size := utf8.DecodeRuneInString(s[i:])
	return size
}

// foldAt returns the folded character at s[i] and its length.
func foldAt(s string, i int) (rune, int) {
	if c := s[i]; c < utf8.RuneSelf {
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		return rune(c), 1
	}
	r, size := utf8.DecodeRuneInString(s[i:])
	return foldRune(r), size
}

// foldRune returns the smallest character of r's simple case folding
// orbit, so that two characters are equal ignoring case exactly when
// their folds are equal (for ASCII letters: the upper case).
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if r >= 'a' && r <= 'z' {
			r -= 'a' - 'A'
		}
		return r
	}
	m := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		m = min(m, f)
	}
	return m
}
