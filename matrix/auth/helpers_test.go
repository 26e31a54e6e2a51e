package auth

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/id"
	"github.com/axon-hs/axon/matrix/keys"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// Users of the test rooms. alice creates every room.
const (
	alice = "@alice:example.org"
	bob   = "@bob:example.org"
	mod   = "@mod:example.org" // a moderator at 50 in rooms that set it
	carol = "@carol:other.org"
	dave  = "@dave:third.org"
)

// families maps the room version families whose auth rules are numbered
// alike to their versions.
var families = map[string][]string{
	"v1": {"1", "2"}, "v3": {"3", "4", "5"}, "v6": {"6"}, "v7": {"7"},
	"v8": {"8", "9"}, "v10": {"10"}, "v11": {"11"}, "v12": {"12"},
}

var familyOrder = []string{"v1", "v3", "v6", "v7", "v8", "v10", "v11", "v12"}

// at builds a family → rule number map from entries "v1 v3:5.2.2"
// ("all" stands for every family). The numbers are written by hand from
// each version's spec text, independently of the package's numbering code.
func at(entries ...string) map[string]string {
	m := map[string]string{}
	for _, e := range entries {
		fams, rule, ok := strings.Cut(e, ":")
		if !ok {
			panic("bad at() entry " + e)
		}
		for _, f := range strings.Fields(fams) {
			if f == "all" {
				for _, g := range familyOrder {
					m[g] = rule
				}
				continue
			}
			if _, ok := families[f]; !ok {
				panic("unknown family " + f)
			}
			m[f] = rule
		}
	}
	return m
}

var testKey = func() *keys.SigningKey {
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i + 1)
	}
	k, err := keys.FromSeed("ed25519:test", seed)
	if err != nil {
		panic(err)
	}
	return k
}()

// js parses JSON for test content (lenient: room versions 1–5 admit floats).
func js(s string) cjson.Value {
	v, err := cjson.ParseString(s, cjson.Lenient)
	if err != nil {
		panic(fmt.Sprintf("bad test JSON %s: %v", s, err))
	}
	return v
}

// room is a test room: its state, built from real signed events.
type room struct {
	t      testing.TB
	v      *roomversion.Version
	roomID string
	create *event.Event
	state  MapState
	seq    int
}

// newRoom creates a room of the version: alice's create event (with
// createExtra, JSON members, added to its content), alice's join, power
// levels (alice at 100, or as creator in v12) and join rule "invite".
func newRoom(t testing.TB, v *roomversion.Version, createExtra string) *room {
	t.Helper()
	r := &room{t: t, v: v, state: MapState{}, roomID: "!room:example.org"}
	content := `{"room_version":"` + v.ID + `"`
	if v.CreatorInContent {
		content += `,"creator":"` + alice + `"`
	}
	if createExtra != "" {
		content += "," + createExtra
	}
	r.create = r.build("m.room.create", alice, sk(""), content+"}", noPrev())
	if v.RoomIDFromCreate {
		r.roomID = r.create.RoomID()
	}
	r.put(r.create)
	r.put(r.member(alice, alice, "join", ""))
	r.setPL("", "")
	r.setJoinRule("invite")
	return r
}

func sk(s string) *string { return &s }

// evOpt adjusts an event before (pre) or after (post) it is built.
type evOpt struct {
	pre  func(r *room, p cjson.Value) cjson.Value
	post func(r *room, e *event.Event) *event.Event
}

func field(key string, val cjson.Value) evOpt {
	return evOpt{pre: func(_ *room, p cjson.Value) cjson.Value { return p.With(key, val) }}
}

func noPrev() evOpt { return field("prev_events", cjson.ArrayValue()) }

// withPrev sets prev_events.
func withPrev(ids ...string) evOpt {
	return evOpt{pre: func(r *room, p cjson.Value) cjson.Value { return p.With("prev_events", r.refs(ids)) }}
}

// withAuth sets auth_events.
func withAuth(evs ...*event.Event) evOpt {
	return evOpt{pre: func(r *room, p cjson.Value) cjson.Value {
		ids := make([]string, len(evs))
		for i, e := range evs {
			ids[i] = e.ID()
		}
		return p.With("auth_events", r.refs(ids))
	}}
}

// withEventID sets the event_id of a room version 1–2 event.
func withEventID(eid string) evOpt { return field("event_id", cjson.StringValue(eid)) }

func withRoomID(rid string) evOpt { return field("room_id", cjson.StringValue(rid)) }

// signedBy adds a signature by server (as a resident server does for a
// restricted join).
func signedBy(server string) evOpt {
	return evOpt{post: func(_ *room, e *event.Event) *event.Event { return e.Sign(server, testKey) }}
}

func (r *room) refs(ids []string) cjson.Value {
	out := make([]cjson.Value, len(ids))
	for i, x := range ids {
		if r.v.HashEventIDs() {
			out[i] = cjson.StringValue(x)
		} else {
			out[i] = cjson.ArrayValue(cjson.StringValue(x), js(`{"sha256":"aGFzaA"}`))
		}
	}
	return cjson.ArrayValue(out...)
}

// somePrev is an event ID that is not the create event's.
func (r *room) somePrev() string {
	if r.v.HashEventIDs() {
		return "$" + strings.Repeat("A", 43)
	}
	return "$prev:example.org"
}

// build makes a signed event; stateKey nil means a non-state event.
func (r *room) build(typ, sender string, stateKey *string, content string, opts ...evOpt) *event.Event {
	r.t.Helper()
	r.seq++
	server := string(id.UserID(sender).Server())
	p := cjson.ObjectValue(
		cjson.Member{Key: "type", Value: cjson.StringValue(typ)},
		cjson.Member{Key: "sender", Value: cjson.StringValue(sender)},
		cjson.Member{Key: "content", Value: js(content)},
		cjson.Member{Key: "origin_server_ts", Value: cjson.IntValue(1_700_000_000_000 + int64(r.seq))},
		cjson.Member{Key: "depth", Value: cjson.IntValue(int64(r.seq))},
		cjson.Member{Key: "auth_events", Value: cjson.ArrayValue()},
	)
	p = p.With("prev_events", r.refs([]string{r.somePrev()}))
	if !(r.v.RoomIDFromCreate && typ == "m.room.create") {
		p = p.With("room_id", cjson.StringValue(r.roomID))
	}
	if stateKey != nil {
		p = p.With("state_key", cjson.StringValue(*stateKey))
	}
	if !r.v.HashEventIDs() {
		p = p.With("event_id", cjson.StringValue(fmt.Sprintf("$e%d:%s", r.seq, server)))
	}
	for _, o := range opts {
		if o.pre != nil {
			p = o.pre(r, p)
		}
	}
	e, err := event.Build(r.v, p, server, testKey)
	if err != nil {
		r.t.Fatalf("v%s: build %s: %v", r.v.ID, typ, err)
	}
	for _, o := range opts {
		if o.post != nil {
			e = o.post(r, e)
		}
	}
	return e
}

func (r *room) stateEv(typ, stateKey, sender, content string, opts ...evOpt) *event.Event {
	r.t.Helper()
	return r.build(typ, sender, &stateKey, content, opts...)
}

func (r *room) msg(sender string, opts ...evOpt) *event.Event {
	r.t.Helper()
	return r.build("m.room.message", sender, nil, `{"body":"hello","msgtype":"m.text"}`, opts...)
}

// member builds an m.room.member event; extra is more content members.
func (r *room) member(sender, target, membership, extra string, opts ...evOpt) *event.Event {
	r.t.Helper()
	c := `{"membership":"` + membership + `"`
	if extra != "" {
		c += "," + extra
	}
	return r.stateEv("m.room.member", target, sender, c+"}", opts...)
}

// put stores state events.
func (r *room) put(evs ...*event.Event) {
	for _, e := range evs {
		k, _ := e.StateKey()
		r.state[StateKey{Type: e.Type(), StateKey: k}] = e
	}
}

func (r *room) drop(typ, stateKey string) { delete(r.state, StateKey{Type: typ, StateKey: stateKey}) }

// setMember puts a membership of target into the state.
func (r *room) setMember(target, membership string) {
	r.t.Helper()
	r.put(r.member(target, target, membership, ""))
}

func (r *room) join(users ...string) {
	r.t.Helper()
	for _, u := range users {
		r.setMember(u, "join")
	}
}

func (r *room) setJoinRule(rule string) {
	r.t.Helper()
	r.put(r.stateEv("m.room.join_rules", "", alice, `{"join_rule":"`+rule+`"}`))
}

// plContent returns power levels content: the spec's defaults written out,
// m.room.power_levels at 100, alice at 100 (not listed in v12, where she
// is a creator), plus users (JSON members of users) and overrides (JSON
// members replacing top-level ones).
func (r *room) plContent(users, overrides string) string {
	base := js(`{"ban":50,"kick":50,"redact":50,"invite":0,"events_default":0,"state_default":50,"users_default":0,` +
		`"events":{"m.room.power_levels":100},"users":{}}`)
	u := base.Get("users")
	if !r.v.PrivilegedCreators {
		u = u.With(alice, cjson.IntValue(100))
	}
	if users != "" {
		for _, m := range js("{" + users + "}").Members() {
			u = u.With(m.Key, m.Value)
		}
	}
	base = base.With("users", u)
	if overrides != "" {
		for _, m := range js("{" + overrides + "}").Members() {
			base = base.With(m.Key, m.Value)
		}
	}
	return base.String()
}

// setPL replaces the power levels of the state (sent by alice).
func (r *room) setPL(users, overrides string) {
	r.t.Helper()
	r.put(r.stateEv("m.room.power_levels", "", alice, r.plContent(users, overrides)))
}

// newPL builds a power levels event by sender from plContent.
func (r *room) newPL(sender, users, overrides string) *event.Event {
	r.t.Helper()
	return r.stateEv("m.room.power_levels", "", sender, r.plContent(users, overrides))
}

// ruleCase is one row of a rule table: for every family in rules it runs
// setup in a fresh room of each version of the family and checks that
// Check allows the event (allow) or rejects it with exactly that rule.
type ruleCase struct {
	rules       map[string]string
	desc        string
	allow       bool
	createExtra string
	setup       func(r *room) *event.Event
}

// caseCounts counts table cases per family (each case runs once per
// version of the family).
var (
	caseCountsMu sync.Mutex
	caseCounts   = map[string]int{}
)

func countCase(fam string) {
	caseCountsMu.Lock()
	caseCounts[fam]++
	caseCountsMu.Unlock()
}

func runRuleCases(t *testing.T, cases []ruleCase) {
	t.Helper()
	for _, c := range cases {
		for _, fam := range familyOrder {
			rule, ok := c.rules[fam]
			if !ok {
				continue
			}
			countCase(fam)
			for _, vid := range families[fam] {
				t.Run(fmt.Sprintf("v%s/%s %s", vid, rule, c.desc), func(t *testing.T) {
					r := newRoom(t, roomversion.MustLookup(vid), c.createExtra)
					ev := c.setup(r)
					expect(t, Check(ev, r.state), c.allow, vid, rule)
				})
			}
		}
	}
}

// expect checks an error against an expected outcome.
func expect(t *testing.T, err error, allow bool, vid, rule string) {
	t.Helper()
	if allow {
		if err != nil {
			t.Fatalf("want allowed, got %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("want rejection by rule %s, got allowed", rule)
	}
	var rej *Rejection
	if !errors.As(err, &rej) {
		t.Fatalf("want a *Rejection, got %T %v", err, err)
	}
	if !errors.Is(err, ErrRejected) {
		t.Errorf("errors.Is(err, ErrRejected) is false for %v", err)
	}
	if rej.Rule != rule || rej.RoomVersion != vid {
		t.Fatalf("want rule %s of room version %s, got %v", rule, vid, err)
	}
	if rej.Reason == "" {
		t.Errorf("empty reason in %v", err)
	}
}
