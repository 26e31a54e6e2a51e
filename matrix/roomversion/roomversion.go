// Package roomversion describes the room versions Axon supports (1–12) as
// plain data: which event format, redaction rules, authorisation rule family
// and state resolution algorithm each one uses. Every other package of
// matrix/ asks a *Version what to do instead of comparing version strings.
//
// Unknown versions (including unstable MSC versions) are not supported:
// [Lookup] reports them with ok=false, and callers must refuse to create or
// join such rooms.
package roomversion

// EventFormat is the shape of events and their IDs.
type EventFormat uint8

const (
	// FormatV1 (room versions 1–2): event_id in the body (`$opaque:domain`),
	// prev_events and auth_events as [event_id, {sha256: …}] pairs.
	FormatV1 EventFormat = iota + 1
	// FormatV3 (room version 3): event ID is `$` + standard unpadded base64
	// of the reference hash; prev/auth events are lists of IDs.
	FormatV3
	// FormatV4 (room versions 4–11): as FormatV3 with URL-safe base64.
	FormatV4
	// FormatV12 (room version 12): as FormatV4, and the room ID is derived
	// from the create event, which carries no room_id.
	FormatV12
)

// RedactionRules name the redaction algorithm.
type RedactionRules uint8

const (
	RedactV1  RedactionRules = iota + 1 // versions 1–5
	RedactV6                            // versions 6–7: m.room.aliases no longer special
	RedactV8                            // version 8: join_rules keeps allow
	RedactV9                            // versions 9–10: member keeps join_authorised_via_users_server
	RedactV11                           // versions 11–12
)

// StateResAlgorithm names the state resolution algorithm.
type StateResAlgorithm uint8

const (
	StateResV1  StateResAlgorithm = iota + 1 // version 1
	StateResV2                               // versions 2–11
	StateResV21                              // version 12: empty starting state, conflicted subgraph
)

// Version is the description of one room version.
type Version struct {
	ID       string
	Format   EventFormat
	Redact   RedactionRules
	StateRes StateResAlgorithm

	// StrictCanonicalJSON: integers only, in the canonical range (v6+).
	StrictCanonicalJSON bool
	// EnforceKeyValidity: signing keys must be valid at origin_server_ts (v5+).
	EnforceKeyValidity bool
	// AliasesAuthRule: m.room.aliases has its own auth rule (v1–5).
	AliasesAuthRule bool
	// RedactionAuthRule: the v1/v2 auth rule for m.room.redaction (domain or redact level).
	RedactionAuthRule bool
	// NotificationsPowerLevels: power level changes to `notifications` are checked (v6+).
	NotificationsPowerLevels bool
	// Knocking: the knock membership and join rule exist (v7+).
	Knocking bool
	// RestrictedJoins: the restricted join rule exists (v8+).
	RestrictedJoins bool
	// KnockRestricted: the knock_restricted join rule exists (v10+).
	KnockRestricted bool
	// IntegerPowerLevels: power levels must be integers, not strings (v10+).
	IntegerPowerLevels bool
	// StringPowerLevels: power levels may be strings such as "50" (v1–9).
	StringPowerLevels bool
	// FloatPowerLevels: power levels may be floats, truncated (v1–5).
	FloatPowerLevels bool
	// CreatorInContent: m.room.create content.creator names the creator
	// (v1–10); from v11 the creator is the create event's sender.
	CreatorInContent bool
	// RedactsInContent: m.room.redaction carries redacts in content (v11+);
	// before that it is a top-level key.
	RedactsInContent bool
	// PrivilegedCreators: the creators (sender and additional_creators of
	// the create event) have infinite power (v12).
	PrivilegedCreators bool
	// RoomIDFromCreate: the room ID is the create event's ID with `!` (v12);
	// the create event has no room_id and is not listed in auth_events.
	RoomIDFromCreate bool
	// StrictByteLimits: type, state_key, sender and room_id over 255 bytes
	// make an event invalid (v11+). Before, only over 255 code points did;
	// an event within that but over 255 bytes is kept, as rejected.
	StrictByteLimits bool
}

// Default is the version new rooms are created with.
const Default = "12"

var versions = func() []Version {
	base := Version{Format: FormatV1, Redact: RedactV1, StateRes: StateResV1,
		AliasesAuthRule: true, RedactionAuthRule: true, StringPowerLevels: true,
		FloatPowerLevels: true, CreatorInContent: true}
	v := make([]Version, 13)
	v[1] = base
	v[1].ID = "1"
	v[2] = v[1]
	v[2].ID, v[2].StateRes = "2", StateResV2
	v[3] = v[2]
	v[3].ID, v[3].Format, v[3].RedactionAuthRule = "3", FormatV3, false
	v[4] = v[3]
	v[4].ID, v[4].Format = "4", FormatV4
	v[5] = v[4]
	v[5].ID, v[5].EnforceKeyValidity = "5", true
	v[6] = v[5]
	v[6].ID, v[6].Redact, v[6].StrictCanonicalJSON = "6", RedactV6, true
	v[6].AliasesAuthRule, v[6].NotificationsPowerLevels, v[6].FloatPowerLevels = false, true, false
	v[7] = v[6]
	v[7].ID, v[7].Knocking = "7", true
	v[8] = v[7]
	v[8].ID, v[8].Redact, v[8].RestrictedJoins = "8", RedactV8, true
	v[9] = v[8]
	v[9].ID, v[9].Redact = "9", RedactV9
	v[10] = v[9]
	v[10].ID, v[10].KnockRestricted, v[10].IntegerPowerLevels, v[10].StringPowerLevels = "10", true, true, false
	v[11] = v[10]
	v[11].ID, v[11].Redact, v[11].CreatorInContent, v[11].RedactsInContent = "11", RedactV11, false, true
	v[11].StrictByteLimits = true
	v[12] = v[11]
	v[12].ID, v[12].Format, v[12].StateRes, v[12].PrivilegedCreators, v[12].RoomIDFromCreate = "12", FormatV12, StateResV21, true, true
	return v[1:]
}()

// Lookup returns the description of a room version by its identifier.
// The returned pointer refers to shared immutable data.
func Lookup(id string) (*Version, bool) {
	for i := range versions {
		if versions[i].ID == id {
			return &versions[i], true
		}
	}
	return nil, false
}

// MustLookup is Lookup for versions known to exist (tests, constants).
func MustLookup(id string) *Version {
	v, ok := Lookup(id)
	if !ok {
		panic("roomversion: unknown room version " + id)
	}
	return v
}

// All returns every supported version in order (1 to 12).
func All() []*Version {
	out := make([]*Version, len(versions))
	for i := range versions {
		out[i] = &versions[i]
	}
	return out
}

// IDs returns the identifiers of every supported version.
func IDs() []string {
	out := make([]string, len(versions))
	for i := range versions {
		out[i] = versions[i].ID
	}
	return out
}

// HashEventIDs reports whether event IDs are reference hashes (v3+).
func (v *Version) HashEventIDs() bool { return v.Format != FormatV1 }

// URLSafeEventIDs reports whether event IDs use URL-safe base64 (v4+).
func (v *Version) URLSafeEventIDs() bool { return v.Format >= FormatV4 }
