package auth

import (
	"fmt"
	"slices"

	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// CheckAuthEvents applies the rules about the auth_events list itself: duplicate
// (type,state_key) entries, entries not allowed by the auth events selection algorithm
// (v12: the create event must not be listed; earlier: the create event must be present
// where the version's rules require it), entries that were rejected (rejected(id) true),
// entries whose room_id differs from ev's. authEvents are the events named by
// ev.AuthEvents() (the caller resolved them; a missing one is an error of the caller).
//
// The rules are rule 2 (v1–11) and rule 3 (v12), applied in the spec's
// order. They do not apply to m.room.create events, which rule 1 decides
// before: for those CheckAuthEvents returns nil. rejected may be nil (no
// auth event was rejected). When authEvents is not exactly the set of events
// ev.AuthEvents() names, the error wraps ErrAuthEventsMismatch and is not a
// *Rejection.
func CheckAuthEvents(ev *event.Event, authEvents []*event.Event, rejected func(eventID string) bool) error {
	if ev.Type() == typeCreate {
		return nil
	}
	v := ev.Version()
	ids := ev.AuthEvents()
	var buf [16]*event.Event
	entries := buf[:0]
	for _, want := range ids {
		var found *event.Event
		for _, ae := range authEvents {
			if ae != nil && ae.ID() == want {
				found = ae
				break
			}
		}
		if found == nil {
			return fmt.Errorf("%w: auth event %s of %s was not passed", ErrAuthEventsMismatch, want, ev.ID())
		}
		entries = append(entries, found)
	}
	for _, ae := range authEvents {
		if ae == nil {
			return fmt.Errorf("%w: a nil event was passed for %s", ErrAuthEventsMismatch, ev.ID())
		}
		if !slices.Contains(ids, ae.ID()) {
			return fmt.Errorf("%w: %s is not an auth event of %s", ErrAuthEventsMismatch, ae.ID(), ev.ID())
		}
	}

	rule := numberingFor(v).authEvents
	reject := func(sub int, reason string) error {
		return &Rejection{RoomVersion: v.ID, Rule: ruleString([]int{rule, sub}), Reason: reason}
	}

	// Duplicate (type, state_key) pairs (the same event listed twice is one).
	for i, a := range entries {
		ask, aState := a.StateKey()
		if !aState {
			continue // not a (type, state_key) pair; the next rule rejects it
		}
		for _, b := range entries[i+1:] {
			if bsk, bState := b.StateKey(); bState && a.Type() == b.Type() && ask == bsk {
				return reject(1, "auth_events lists ("+a.Type()+", "+quote(ask)+") twice: "+a.ID()+" and "+b.ID())
			}
		}
	}

	// Entries the auth events selection does not select.
	var selBuf [8]StateKey
	sel := appendSelection(selBuf[:0], ev)
	for _, a := range entries {
		sk, isState := a.StateKey()
		if !isState {
			return reject(2, "auth event "+a.ID()+" ("+a.Type()+") is not a state event")
		}
		if !slices.Contains(sel, StateKey{Type: a.Type(), StateKey: sk}) {
			if v.RoomIDFromCreate && a.Type() == typeCreate {
				return reject(2, "auth event "+a.ID()+" is the m.room.create event, which room version "+v.ID+" must not list")
			}
			return reject(2, "auth event "+a.ID()+" ("+a.Type()+", "+quote(sk)+") is not selected for this event")
		}
	}

	if rejected != nil {
		for _, a := range entries {
			if rejected(a.ID()) {
				return reject(3, "auth event "+a.ID()+" ("+a.Type()+") was rejected")
			}
		}
	}

	if !v.RoomIDFromCreate {
		if !slices.ContainsFunc(entries, func(a *event.Event) bool { return a.StateKeyIs(typeCreate, "") }) {
			return reject(4, "auth_events has no m.room.create event")
		}
	}

	// v12 numbers this rule 5 although it follows rule 3 (its rule 4 was
	// removed): the number is kept as the spec text writes it.
	for _, a := range entries {
		if a.RoomID() != ev.RoomID() {
			return reject(5, "auth event "+a.ID()+" is in room "+a.RoomID()+", not "+ev.RoomID())
		}
	}
	return nil
}

// Selection returns the state keys of the auth events that ev should cite
// (server-server "Auth events selection"; v12 leaves out the create event).
//
// The order is: m.room.create (before v12), m.room.power_levels, the
// sender's m.room.member, then for membership events the target's
// m.room.member, m.room.join_rules (join, invite, knock), the
// m.room.third_party_invite named by content.third_party_invite.signed.token
// (invite), and the member event of join_authorised_via_users_server (join,
// v8+). Keys are listed once. An m.room.create event selects nothing.
func Selection(ev *event.Event) []StateKey {
	if ev.Type() == typeCreate {
		return nil
	}
	return appendSelection(make([]StateKey, 0, 7), ev)
}

// SelectionFor is Selection for an event that is not built yet: a server
// building an event needs its auth events before it can hash and sign it.
// isState is false (and stateKey ignored) for a non-state event.
func SelectionFor(v *roomversion.Version, eventType, sender, stateKey string, isState bool, content cjson.Value) []StateKey {
	if eventType == typeCreate {
		return nil
	}
	return appendSelectionFor(make([]StateKey, 0, 7), v, eventType, sender, stateKey, isState, content)
}

// appendSelection appends the selection of a non-create event to out.
func appendSelection(out []StateKey, ev *event.Event) []StateKey {
	sk, isState := ev.StateKey()
	return appendSelectionFor(out, ev.Version(), ev.Type(), ev.Sender(), sk, isState, ev.Content())
}

func appendSelectionFor(out []StateKey, v *roomversion.Version, eventType, sender, stateKey string, isState bool, content cjson.Value) []StateKey {
	add := func(k StateKey) {
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	if !v.RoomIDFromCreate {
		add(StateKey{Type: typeCreate})
	}
	add(StateKey{Type: typePowerLevels})
	add(StateKey{Type: typeMember, StateKey: sender})
	if eventType != typeMember {
		return out
	}
	if isState {
		add(StateKey{Type: typeMember, StateKey: stateKey})
	}
	membership, _ := content.Get("membership").Str()
	switch membership {
	case memberJoin, memberInvite, memberKnock:
		add(StateKey{Type: typeJoinRules})
	}
	if membership == memberInvite {
		if tpi := content.Get("third_party_invite"); tpi.Exists() {
			if token, ok := tpi.Path("signed", "token").Str(); ok {
				add(StateKey{Type: typeThirdParty, StateKey: token})
			}
		}
	}
	if membership == memberJoin && v.RestrictedJoins {
		if via, ok := content.Get("join_authorised_via_users_server").Str(); ok {
			add(StateKey{Type: typeMember, StateKey: via})
		}
	}
	return out
}
