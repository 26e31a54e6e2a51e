package event

import (
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// Event is a validated PDU of one room version. It is immutable: methods
// that change an event return a new one. The zero value is not usable; get
// events from Parse, FromValue or Build.
type Event struct {
	ver *roomversion.Version
	obj cjson.Value // the whole PDU, including signatures and unsigned

	id          string
	typ         string
	sender      string
	roomID      string
	stateKey    string
	hasStateKey bool
	content     cjson.Value
	prev        []string
	auth        []string
	depth       int64
	ts          int64
	redacts     string
	size        int   // bytes of the canonical encoding
	limitErr    error // a byte limit the room version enforces by rejection
}

// Version returns the room version the event was parsed under.
func (e *Event) Version() *roomversion.Version { return e.ver }

// JSON returns the whole PDU (with signatures and unsigned) as a value.
func (e *Event) JSON() cjson.Value { return e.obj }

// Canonical returns the canonical JSON of the whole PDU.
func (e *Event) Canonical() []byte { return e.obj.Canonical() }

// LimitViolation returns a non-nil error when the event is over a byte
// limit that its room version (1–10) enforces by rejection rather than by
// dropping the event: the caller must store it as rejected (so that events
// citing it can still be processed) and never apply it to the room state.
func (e *Event) LimitViolation() error { return e.limitErr }

// Size returns the length in bytes of the canonical PDU.
func (e *Event) Size() int { return e.size }

// ID returns the event ID: from the body in room versions 1–2, the
// reference hash with a `$` sigil from version 3.
func (e *Event) ID() string { return e.id }

// Type returns the event type.
func (e *Event) Type() string { return e.typ }

// Sender returns the user ID of the sender.
func (e *Event) Sender() string { return e.sender }

// RoomID returns the room ID. In room version 12 the create event has no
// room_id in its body and RoomID derives it from the event ID.
func (e *Event) RoomID() string { return e.roomID }

// StateKey returns the state key and whether the event is a state event.
func (e *Event) StateKey() (string, bool) { return e.stateKey, e.hasStateKey }

// IsState reports whether the event has a state key.
func (e *Event) IsState() bool { return e.hasStateKey }

// StateKeyIs reports whether the event is a state event of the given type
// and state key.
func (e *Event) StateKeyIs(typ, stateKey string) bool {
	return e.hasStateKey && e.typ == typ && e.stateKey == stateKey
}

// Content returns the content object.
func (e *Event) Content() cjson.Value { return e.content }

// PrevEvents returns the IDs of the event's prev_events. Callers must not
// modify the slice.
func (e *Event) PrevEvents() []string { return e.prev }

// AuthEvents returns the IDs of the event's auth_events. Callers must not
// modify the slice.
func (e *Event) AuthEvents() []string { return e.auth }

// Depth returns the depth.
func (e *Event) Depth() int64 { return e.depth }

// OriginServerTS returns the origin_server_ts in milliseconds.
func (e *Event) OriginServerTS() int64 { return e.ts }

// Redacts returns the ID of the event an m.room.redaction redacts (from the
// top level before room version 11, from content since), or "".
func (e *Event) Redacts() string { return e.redacts }

// Membership returns content.membership of an m.room.member event, or "".
func (e *Event) Membership() string {
	if e.typ != "m.room.member" {
		return ""
	}
	return e.content.Get("membership").StrOr("")
}

// Unsigned returns the unsigned object (absent if none).
func (e *Event) Unsigned() cjson.Value { return e.obj.Get("unsigned") }

// Signatures returns the signatures object.
func (e *Event) Signatures() cjson.Value { return e.obj.Get("signatures") }

// HasSignatureFrom reports whether the PDU carries at least one signature
// by the server. It does not verify it: see Verify.
func (e *Event) HasSignatureFrom(server string) bool {
	return e.obj.Path("signatures", server).Len() > 0
}

// Redacted returns the event put through its room version's redaction
// algorithm. The event ID does not change.
func (e *Event) Redacted() *Event {
	r := *e
	r.obj = Redact(e.ver.Redact, e.obj)
	r.content = r.obj.Get("content")
	if !e.ver.RedactsInContent {
		// redacts is not a protected top-level key before v11.
		r.redacts = ""
	} else {
		r.redacts = r.content.Get("redacts").StrOr("")
	}
	r.size = r.obj.CanonicalLen()
	return &r
}

// WithUnsigned returns a copy of the event with its unsigned object
// replaced (absent removes it). Unsigned data is not covered by hashes or
// signatures, so the ID does not change.
func (e *Event) WithUnsigned(unsigned cjson.Value) *Event {
	r := *e
	r.obj = e.obj.With("unsigned", unsigned)
	r.size = r.obj.CanonicalLen()
	return &r
}
