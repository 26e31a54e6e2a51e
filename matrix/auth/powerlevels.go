package auth

import (
	"cmp"
	"errors"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode"

	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// The integer properties of m.room.power_levels content, in the order the
// auth rules list them, with the defaults of server-server "Definitions"
// and the m.room.power_levels schema.
const (
	propUsersDefault = iota
	propEventsDefault
	propStateDefault
	propBan
	propRedact
	propKick
	propInvite
	numProps
)

var propNames = [numProps]string{"users_default", "events_default", "state_default", "ban", "redact", "kick", "invite"}

var propDefaults = [numProps]int64{0, 0, 50, 50, 50, 50, 0}

// creatorDefaultLevel is the level of the room creator in room versions 1–11
// while the room has no m.room.power_levels event.
const creatorDefaultLevel = 100

// notificationDefaults are the documented defaults of the notifications
// property.
const notificationRoomDefault = 50

// PowerLevels is the parsed m.room.power_levels content of a room (or the defaults when
// there is none), with the creator rules of the room version applied.
//
// Values are read from the content on demand (it is already parsed JSON),
// so building a PowerLevels costs nothing. Values that are not valid power
// levels in the room version count as absent (their default applies);
// NewPowerLevels refuses content with such values.
type PowerLevels struct {
	v        *roomversion.Version
	content  cjson.Value  // content of the m.room.power_levels event (absent when none)
	hasEvent bool         // whether there is an m.room.power_levels event
	creator  string       // v1–11: the creator, at level 100 while there is no event
	create   *event.Event // v12: its sender and additional_creators have infinite power
}

// NewPowerLevels parses pl (may be nil: no power levels event yet) in the context of
// the room's create event (needed for the creator defaults and v12 creators).
//
// create may be nil when unknown (then nobody gets creator privileges); the
// room version is taken from create, or from pl. The error is a *Rejection
// when pl's content breaks the room version's rules for power level values
// (the rule that would reject such an event), and a plain error when
// neither event is given or one has the wrong type.
func NewPowerLevels(create, pl *event.Event) (*PowerLevels, error) {
	var v *roomversion.Version
	switch {
	case create != nil:
		v = create.Version()
		if create.Type() != typeCreate {
			return nil, errors.New("auth: NewPowerLevels: create event " + create.ID() + " has type " + create.Type())
		}
	case pl != nil:
		v = pl.Version()
	default:
		return nil, errors.New("auth: NewPowerLevels needs a create event or a power levels event")
	}
	if pl != nil {
		if pl.Type() != typePowerLevels {
			return nil, errors.New("auth: NewPowerLevels: power levels event " + pl.ID() + " has type " + pl.Type())
		}
		if r := validatePowerLevels(v, numberingFor(v), pl.Content(), create); r != nil {
			return nil, r
		}
	}
	p := lenientPowerLevels(v, create, pl)
	return &p, nil
}

// lenientPowerLevels reads the power levels of a state without validating
// them (they were validated when the event was accepted).
func lenientPowerLevels(v *roomversion.Version, create, pl *event.Event) PowerLevels {
	p := PowerLevels{v: v}
	if pl != nil {
		p.content, p.hasEvent = pl.Content(), true
	}
	if v.PrivilegedCreators {
		p.create = create
	} else {
		p.creator = creatorOf(v, create)
	}
	return p
}

// SenderPowerLevel returns the power level of ev's sender in state (convenience for
// state resolution, which needs "the sender's power level, looking at their auth events").
//
// The create event, whose auth events are empty, is its own context: its
// sender is the creator (100 in v1–11, Infinite in v12).
func SenderPowerLevel(ev *event.Event, state State) int64 {
	create := state.Get(typeCreate, "")
	if create == nil && ev.Type() == typeCreate {
		create = ev
	}
	p := lenientPowerLevels(ev.Version(), create, state.Get(typePowerLevels, ""))
	return p.level(ev.Sender()).int64()
}

// HasEvent reports whether the levels come from an m.room.power_levels
// event rather than the defaults.
func (p *PowerLevels) HasEvent() bool { return p.hasEvent }

// User returns a user's level (Infinite for v12 creators). Levels beyond the
// int64 range, possible in room versions 1–9, are clamped to it.
func (p *PowerLevels) User(userID string) int64 { return p.level(userID).int64() }

// Event returns the level required to send an event of the type (state or
// not): its entry in events, or state_default / events_default.
func (p *PowerLevels) Event(eventType string, isState bool) int64 {
	return p.eventLevel(eventType, isState).int64()
}

// Invite returns the invite level (default 0).
func (p *PowerLevels) Invite() int64 { return p.prop(propInvite).int64() }

// Kick returns the kick level (default 50).
func (p *PowerLevels) Kick() int64 { return p.prop(propKick).int64() }

// Ban returns the ban level (default 50).
func (p *PowerLevels) Ban() int64 { return p.prop(propBan).int64() }

// Redact returns the redact level (default 50).
func (p *PowerLevels) Redact() int64 { return p.prop(propRedact).int64() }

// UsersDefault returns users_default (default 0).
func (p *PowerLevels) UsersDefault() int64 { return p.prop(propUsersDefault).int64() }

// EventsDefault returns events_default (default 0).
func (p *PowerLevels) EventsDefault() int64 { return p.prop(propEventsDefault).int64() }

// StateDefault returns state_default (default 50, with or without an event).
func (p *PowerLevels) StateDefault() int64 { return p.prop(propStateDefault).int64() }

// Notification returns the level required to trigger the notification
// type (such as "room", whose default is 50) and whether it is defined.
func (p *PowerLevels) Notification(key string) (int64, bool) {
	if l, ok := validLevel(p.v, p.content.Path("notifications", key)); ok {
		return l.int64(), true
	}
	if key == "room" {
		return notificationRoomDefault, true
	}
	return 0, false
}

// level returns the exact level of a user.
func (p *PowerLevels) level(user string) level {
	if p.v.PrivilegedCreators && isPrivilegedCreator(p.create, user) {
		return level{inf: true}
	}
	if !p.hasEvent {
		if p.creator != "" && user == p.creator {
			return level{n: creatorDefaultLevel}
		}
		return level{}
	}
	if l, ok := validLevel(p.v, p.content.Path("users", user)); ok {
		return l
	}
	return p.prop(propUsersDefault)
}

// prop returns one of the integer properties, or its default.
func (p *PowerLevels) prop(i int) level {
	if l, ok := validLevel(p.v, p.content.Get(propNames[i])); ok {
		return l
	}
	return level{n: propDefaults[i]}
}

// eventLevel returns the level required to send an event.
func (p *PowerLevels) eventLevel(eventType string, isState bool) level {
	if l, ok := validLevel(p.v, p.content.Path("events", eventType)); ok {
		return l
	}
	if isState {
		return p.prop(propStateDefault)
	}
	return p.prop(propEventsDefault)
}

// level is an exact power level. Every level of room versions 6 and later
// fits n (canonical JSON bounds integers by ±(2^53-1)); room versions 1–9
// admit strings, and 1–5 floats, whose value may not fit an int64: then x
// holds it exactly and n holds it clamped to the int64 range.
type level struct {
	n   int64
	x   *big.Int
	inf bool // room version 12 creators
}

func (a level) cmp(b level) int {
	switch {
	case a.inf || b.inf:
		if a.inf == b.inf {
			return 0
		}
		if a.inf {
			return 1
		}
		return -1
	case a.x == nil && b.x == nil:
		return cmp.Compare(a.n, b.n)
	}
	return a.big().Cmp(b.big())
}

func (a level) big() *big.Int {
	if a.x != nil {
		return a.x
	}
	return big.NewInt(a.n)
}

func (a level) int64() int64 {
	if a.inf {
		return Infinite
	}
	return a.n
}

func (a level) String() string {
	switch {
	case a.inf:
		return "infinite"
	case a.x != nil:
		return a.x.String()
	}
	return strconv.FormatInt(a.n, 10)
}

// fromBig returns the level of an exact integer.
func fromBig(x *big.Int) level {
	if x.IsInt64() {
		return level{n: x.Int64()}
	}
	if x.Sign() > 0 {
		return level{n: math.MaxInt64, x: x}
	}
	return level{n: math.MinInt64, x: x}
}

// valueStatus says whether a JSON value is a power level.
type valueStatus uint8

const (
	valueOK         valueStatus = iota
	valueInvalid                // not a power level in this room version
	valueOutOfRange             // a number beyond the range of a double (v1–5): the event is rejected
)

// validLevel parses a value, reporting ok only for a valid power level.
func validLevel(v *roomversion.Version, val cjson.Value) (level, bool) {
	if !val.Exists() {
		return level{}, false
	}
	l, st := parseLevel(v, val)
	return l, st == valueOK
}

// parseLevel reads a power level value under the room version's rules:
// integers in every version; strings in the format of "m.room.power_levels
// events accept values as strings" in versions 1–9; and in versions 1–5
// any number, truncated toward zero, unless it lies beyond the range of a
// double.
func parseLevel(v *roomversion.Version, val cjson.Value) (level, valueStatus) {
	switch val.Kind() {
	case cjson.Number:
		if n, ok := val.Int(); ok {
			return level{n: n}, valueOK
		}
		if !v.FloatPowerLevels {
			return level{}, valueInvalid
		}
		return parseFloatLevel(val.NumberText())
	case cjson.Bool:
		// Python's int(True) is 1: the reference implementation accepts
		// booleans wherever it accepts strings (room versions 1–9).
		if b, _ := val.Bool(); v.StringPowerLevels {
			if b {
				return level{n: 1}, valueOK
			}
			return level{n: 0}, valueOK
		}
	case cjson.String:
		if !v.StringPowerLevels {
			return level{}, valueInvalid
		}
		s, _ := val.Str()
		if l, ok := parseStringLevel(s); ok {
			return l, valueOK
		}
	}
	return level{}, valueInvalid
}

// parseFloatLevel reads the text of a number that is not an int64 (room
// versions 1–5): an integer too large for int64, or a non-integral number.
func parseFloatLevel(text string) (level, valueStatus) {
	if !strings.ContainsAny(text, ".eE") {
		// An integer, however large: keep it exactly.
		if x, ok := new(big.Int).SetString(text, 10); ok {
			return fromBig(x), valueOK
		}
		return level{}, valueInvalid
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return level{}, valueOutOfRange
	}
	f = math.Trunc(f)
	if f > -(1<<63) && f < 1<<63 {
		return level{n: int64(f)}, valueOK
	}
	x, _ := new(big.Float).SetFloat64(f).Int(nil)
	return fromBig(x), valueOK
}

// parseStringLevel reads a power level written as a string the way the
// reference implementation does (Python's int()), since a value it accepts
// and we refuse, or the reverse, splits the room: surrounding white space
// (Unicode white space and the separators U+001C–U+001F), one optional
// sign, decimal digits of any script with single underscores between them,
// at most 4,300 digits.
func parseStringLevel(s string) (level, bool) {
	s = strings.TrimFunc(s, isPySpace)
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	digits := make([]byte, 0, len(s))
	prevDigit := false
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits = append(digits, byte(r))
		case r == '_' && prevDigit:
			prevDigit = false
			continue
		case r > 0x7f && unicode.Is(unicode.Nd, r):
			digits = append(digits, byte('0'+digitValue(r)))
		default:
			return level{}, false
		}
		prevDigit = true
	}
	if len(digits) == 0 || !prevDigit || len(digits) > 4300 {
		return level{}, false
	}
	if t := strings.TrimLeft(string(digits), "0"); len(t) <= 18 {
		n, _ := strconv.ParseInt("0"+t, 10, 64)
		if neg {
			n = -n
		}
		return level{n: n}, true
	}
	x, _ := new(big.Int).SetString(string(digits), 10)
	if neg {
		x.Neg(x)
	}
	return fromBig(x), true
}

// isPySpace is Python's str.isspace: Unicode white space plus the
// information separators U+001C–U+001F.
func isPySpace(r rune) bool { return unicode.IsSpace(r) || r >= 0x1c && r <= 0x1f }

// digitValue returns the value of a decimal digit (Unicode category Nd) of
// any script: such digits come in runs of ten starting at zero.
func digitValue(r rune) int {
	n := 0
	for unicode.Is(unicode.Nd, r-rune(n)-1) {
		n++
	}
	return n % 10
}
