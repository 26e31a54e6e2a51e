package auth

import (
	"errors"
	"math"
	"strconv"

	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/id"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// Event types and membership values the rules refer to.
const (
	typeCreate      = "m.room.create"
	typeMember      = "m.room.member"
	typeJoinRules   = "m.room.join_rules"
	typePowerLevels = "m.room.power_levels"
	typeThirdParty  = "m.room.third_party_invite"
	typeAliases     = "m.room.aliases"
	typeRedaction   = "m.room.redaction"

	memberJoin   = "join"
	memberInvite = "invite"
	memberLeave  = "leave"
	memberBan    = "ban"
	memberKnock  = "knock"
)

// StateKey identifies one piece of room state.
type StateKey struct{ Type, StateKey string }

// State is the room state an event is authorised against; Get returns nil when absent.
// In room version 12 the create event is never in auth_events, but State must still
// return it for ("m.room.create", "").
type State interface {
	Get(eventType, stateKey string) *event.Event
}

// MapState is a State backed by a map.
type MapState map[StateKey]*event.Event

// Get returns the event at (eventType, stateKey), or nil.
func (m MapState) Get(eventType, stateKey string) *event.Event {
	return m[StateKey{Type: eventType, StateKey: stateKey}]
}

// ErrRejected is matched (errors.Is) by every *Rejection.
var ErrRejected = errors.New("rejected by the authorisation rules")

// ErrAuthEventsMismatch is returned by CheckAuthEvents (wrapped, and not a
// *Rejection) when the events passed in are not exactly the events the
// event's auth_events names: resolving them is the caller's job.
var ErrAuthEventsMismatch = errors.New("auth events passed do not match the event's auth_events")

// Rejection names the rule that rejected an event, numbered as in that room version's spec text.
type Rejection struct {
	RoomVersion string
	Rule        string // e.g. "5.3.2" numbering exactly as the room version's spec list numbers it
	Reason      string // human readable: what was wrong
}

// Error formats the rejection, e.g.
// `room version 12 auth rule 5.3.2: sender @a:x does not match state_key @b:x`.
func (r *Rejection) Error() string {
	return "room version " + r.RoomVersion + " auth rule " + r.Rule + ": " + r.Reason
}

// Is reports whether target is ErrRejected.
func (r *Rejection) Is(target error) bool { return target == ErrRejected }

// Infinite is the power level of room creators in room version 12.
const Infinite int64 = math.MaxInt64

// Check authorises ev against state (every rule of ev's room version that depends on the
// event and the state; not the shape of ev's auth_events list). nil means allow;
// otherwise a *Rejection.
func Check(ev *event.Event, state State) error {
	c := checker{ev: ev, v: ev.Version(), state: state}
	c.n = numberingFor(c.v)
	if r := c.check(); r != nil {
		return r
	}
	return nil
}

// checker carries one authorisation check.
type checker struct {
	ev     *event.Event
	v      *roomversion.Version
	n      numbering
	state  State
	create *event.Event
	pl     PowerLevels // the power levels of state, parsed leniently
}

// reject builds a rejection at the rule numbered by the parts.
func (c *checker) reject(reason string, rule ...int) *Rejection {
	return &Rejection{RoomVersion: c.v.ID, Rule: ruleString(rule), Reason: reason}
}

func ruleString(rule []int) string {
	b := make([]byte, 0, 12)
	for i, n := range rule {
		if i > 0 {
			b = append(b, '.')
		}
		b = strconv.AppendInt(b, int64(n), 10)
	}
	return string(b)
}

func (c *checker) check() *Rejection {
	ev, n := c.ev, &c.n
	if ev.Type() == typeCreate {
		return c.checkCreate()
	}
	c.create = c.state.Get(typeCreate, "")
	if c.v.RoomIDFromCreate {
		// v12 rule 2: the room ID names the create event.
		if c.create == nil {
			return c.reject("the room has no m.room.create event, so room ID "+ev.RoomID()+" names no accepted create event", n.roomID)
		}
		if cid, rid := c.create.ID(), ev.RoomID(); len(cid) < 1 || len(rid) < 1 || cid[0] != '$' || rid[0] != '!' || cid[1:] != rid[1:] {
			return c.reject("room ID "+ev.RoomID()+" is not the ID of the room's m.room.create event "+c.create.ID(), n.roomID)
		}
	} else if c.create == nil {
		// The create event is required among the auth events; Check sees
		// them as the state.
		return c.reject("there is no m.room.create event in the state", n.authEvents, 4)
	}
	c.pl = lenientPowerLevels(c.v, c.create, c.state.Get(typePowerLevels, ""))

	// m.federate. Like the reference implementation, anything but an
	// absent value or true means "not federated", and a membership event
	// is also refused when its target is on another server.
	if f := c.create.Content().Get("m.federate"); f.Exists() {
		if b, ok := f.Bool(); !ok || !b {
			home := serverOf(c.create.Sender())
			if serverOf(ev.Sender()) != home {
				return c.reject("the room is not federated (m.federate is "+f.String()+") and sender "+ev.Sender()+
					" is not on the server of the room's creator "+c.create.Sender(), n.federate)
			}
			if target, ok := ev.StateKey(); ok && ev.Type() == typeMember && serverOf(target) != home {
				return c.reject("the room is not federated (m.federate is "+f.String()+") and the member "+target+
					" is not on the server of the room's creator "+c.create.Sender(), n.federate)
			}
		}
	}

	if c.v.AliasesAuthRule && ev.Type() == typeAliases {
		sk, ok := ev.StateKey()
		if !ok {
			return c.reject("m.room.aliases event has no state_key", n.aliases, 1)
		}
		if serverOf(ev.Sender()) != sk {
			return c.reject("sender "+ev.Sender()+" is not on server "+quote(sk)+" named by the state_key", n.aliases, 2)
		}
		return nil
	}

	if ev.Type() == typeMember {
		return c.checkMember()
	}

	if m := c.membership(ev.Sender()); m != memberJoin {
		return c.reject("sender "+ev.Sender()+" is not joined to the room (membership "+quoteMembership(m)+")", n.notJoined)
	}
	senderLevel := c.pl.level(ev.Sender())

	if ev.Type() == typeThirdParty {
		if senderLevel.cmp(c.pl.prop(propInvite)) >= 0 {
			return nil
		}
		return c.reject("sender "+ev.Sender()+" has power level "+senderLevel.String()+
			", below the invite level "+c.pl.prop(propInvite).String(), n.thirdParty, 1)
	}

	if req := c.pl.eventLevel(ev.Type(), ev.IsState()); req.cmp(senderLevel) > 0 {
		return c.reject("sending "+ev.Type()+" requires power level "+req.String()+
			" but sender "+ev.Sender()+" has "+senderLevel.String(), n.required)
	}

	if sk, ok := ev.StateKey(); ok && len(sk) > 0 && sk[0] == '@' && sk != ev.Sender() {
		return c.reject("state_key "+quote(sk)+" is a user ID other than the sender "+ev.Sender(), n.stateKey)
	}

	if ev.Type() == typePowerLevels {
		return c.checkPowerLevels(senderLevel)
	}

	if c.v.RedactionAuthRule && ev.Type() == typeRedaction {
		if senderLevel.cmp(c.pl.prop(propRedact)) >= 0 {
			return nil
		}
		if ev.Redacts() == "" {
			// No event to redact: nothing to protect, and the reference
			// implementation allows it.
			return nil
		}
		if d, ok := id.EventID(ev.Redacts()).Server(); ok && d != "" {
			if mine, ok := id.EventID(ev.ID()).Server(); ok && mine == d {
				return nil
			}
		}
		return c.reject("sender "+ev.Sender()+" has power level "+senderLevel.String()+", below the redact level "+
			c.pl.prop(propRedact).String()+", and redacted event "+quote(ev.Redacts())+" is not from the server of event "+ev.ID(),
			n.redaction, 3)
	}
	return nil
}

// membership returns the current membership of user in the state ("" when
// the user has no m.room.member event or its membership is not a string).
func (c *checker) membership(user string) string {
	m := c.state.Get(typeMember, user)
	if m == nil {
		return ""
	}
	s, _ := m.Content().Get("membership").Str()
	return s
}

// joinRule returns the room's join rule. A room without an
// m.room.join_rules event, or whose event has no join_rule, is treated as
// invite-only, as the reference implementation does (see the package
// documentation); a join_rule that is not a string lets nobody join.
func (c *checker) joinRule() string {
	jr := c.state.Get(typeJoinRules, "")
	if jr == nil {
		return "invite"
	}
	v := jr.Content().Get("join_rule")
	if !v.Exists() {
		return "invite"
	}
	s, _ := v.Str()
	return s
}

// serverOf returns the server name of a user ID (everything after the first
// ':'), or "" when there is none.
func serverOf(user string) string {
	return string(id.UserID(user).Server())
}

func quote(s string) string { return strconv.Quote(s) }

func quoteMembership(m string) string {
	if m == "" {
		return "none"
	}
	return m
}

// numbering holds the spec's rule numbers of one room version family; 0
// means the rule does not exist in that family.
type numbering struct {
	create, roomID, authEvents, federate, aliases, member, notJoined,
	thirdParty, required, stateKey, powerLevels, redaction int

	// Sub-rules of the m.room.member rule.
	mMissing, mVia, mJoin, mInvite, mLeave, mBan, mKnock, mUnknown int
	// Sub-rules of the join rule.
	jCreator, jSender, jBanned, jInvite, jRestricted, jPublic, jOther int
	// Sub-rules of the m.room.power_levels rule.
	pProps, pMaps, pUsers, pCreators, pNoPrevious, pAltered, pMapOld, pMapNew, pUserOld, pUserNew int
}

func numberingFor(v *roomversion.Version) numbering {
	var n numbering
	seq := func(start int, fields ...*int) {
		for i, f := range fields {
			*f = start + i
		}
	}
	switch {
	case v.RoomIDFromCreate: // v12
		seq(1, &n.create, &n.roomID, &n.authEvents, &n.federate, &n.member, &n.notJoined,
			&n.thirdParty, &n.required, &n.stateKey, &n.powerLevels)
	case v.AliasesAuthRule: // v1–5
		seq(1, &n.create, &n.authEvents, &n.federate, &n.aliases, &n.member, &n.notJoined,
			&n.thirdParty, &n.required, &n.stateKey, &n.powerLevels)
		if v.RedactionAuthRule { // v1–2
			n.redaction = n.powerLevels + 1
		}
	default: // v6–11
		seq(1, &n.create, &n.authEvents, &n.federate, &n.member, &n.notJoined,
			&n.thirdParty, &n.required, &n.stateKey, &n.powerLevels)
	}
	switch {
	case v.RestrictedJoins: // v8+
		seq(1, &n.mMissing, &n.mVia, &n.mJoin, &n.mInvite, &n.mLeave, &n.mBan, &n.mKnock, &n.mUnknown)
		seq(1, &n.jCreator, &n.jSender, &n.jBanned, &n.jInvite, &n.jRestricted, &n.jPublic, &n.jOther)
	case v.Knocking: // v7
		seq(1, &n.mMissing, &n.mJoin, &n.mInvite, &n.mLeave, &n.mBan, &n.mKnock, &n.mUnknown)
		seq(1, &n.jCreator, &n.jSender, &n.jBanned, &n.jInvite, &n.jPublic, &n.jOther)
	default: // v1–6
		seq(1, &n.mMissing, &n.mJoin, &n.mInvite, &n.mLeave, &n.mBan, &n.mUnknown)
		seq(1, &n.jCreator, &n.jSender, &n.jBanned, &n.jInvite, &n.jPublic, &n.jOther)
	}
	switch {
	case v.PrivilegedCreators: // v12
		seq(1, &n.pProps, &n.pMaps, &n.pUsers, &n.pCreators, &n.pNoPrevious, &n.pAltered,
			&n.pMapOld, &n.pMapNew, &n.pUserOld, &n.pUserNew)
	case v.IntegerPowerLevels: // v10–11
		seq(1, &n.pProps, &n.pMaps, &n.pUsers, &n.pNoPrevious, &n.pAltered,
			&n.pMapOld, &n.pMapNew, &n.pUserOld, &n.pUserNew)
	default: // v1–9
		seq(1, &n.pUsers, &n.pNoPrevious, &n.pAltered, &n.pMapOld, &n.pMapNew, &n.pUserOld, &n.pUserNew)
	}
	return n
}
