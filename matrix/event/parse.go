package event

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/id"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// Limits from the spec ("Size limits" and the PDU definitions).
const (
	MaxEventSize   = 65536 // bytes of the canonical PDU, signatures included
	MaxTypeLen     = 255   // bytes of type
	MaxStateKeyLen = 255   // bytes of state_key
	MaxPrevEvents  = 20
	MaxAuthEvents  = 10
)

// ErrFormat is matched (errors.Is) by every error about an event that does
// not follow its room version's format. Such events are dropped, never
// stored.
var ErrFormat = errors.New("invalid event")

// FormatError says which field of an event is wrong and why.
type FormatError struct {
	Field  string
	Reason string
	Err    error // underlying cause, if any
}

func (e *FormatError) Error() string {
	msg := fmt.Sprintf("invalid event: %s: %s", e.Field, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is makes errors.Is(err, ErrFormat) true.
func (e *FormatError) Is(target error) bool { return target == ErrFormat }

// Unwrap returns the cause.
func (e *FormatError) Unwrap() error { return e.Err }

func bad(field, format string, args ...any) error {
	return &FormatError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// JSONRules returns the canonical JSON rules of a room version.
func JSONRules(v *roomversion.Version) cjson.Rules {
	if v.StrictCanonicalJSON {
		return cjson.Strict
	}
	return cjson.Lenient
}

// Parse decodes and validates a PDU of the room version. For room versions
// 3 and later it computes the event ID from the reference hash (an
// `event_id` key in the body, which is not part of those formats, is
// dropped). Parse does not check hashes or signatures: see Verify.
func Parse(v *roomversion.Version, data []byte) (*Event, error) {
	obj, err := Decode(data)
	if err != nil {
		return nil, err
	}
	return FromValue(v, obj)
}

// Decode is the first half of Parse: the PDU as JSON, before its room
// version is known (a receiver reads room_id from it to find the
// version, then calls FromValue, so the PDU is read once).
func Decode(data []byte) (cjson.Value, error) {
	if len(data) > 4*MaxEventSize {
		// Whitespace may make the input longer than its canonical form, but
		// not unboundedly so.
		return cjson.Value{}, bad("event", "%d bytes is far over the %d byte limit", len(data), MaxEventSize)
	}
	// Unsigned data is not covered by signatures, so a relaying server can
	// put anything there; it must not decide whether the event is valid.
	// Parse leniently, strip it, then apply the version's number rules.
	obj, err := cjson.Parse(data, cjson.Lenient)
	if err != nil {
		return cjson.Value{}, &FormatError{Field: "event", Reason: "not valid JSON", Err: err}
	}
	return obj, nil
}

// keptUnsigned are the unsigned keys a received PDU may carry; the rest are
// dropped, as the reference implementation does, so that nothing a relaying
// server invents (redacted_because, prev_content …) reaches clients.
var keptUnsigned = []string{"age", "invite_room_state", "knock_room_state"}

// cleanUnsigned drops unsigned data that is not an object and unsigned keys
// other than keptUnsigned.
func cleanUnsigned(obj cjson.Value) cjson.Value {
	u := obj.Get("unsigned")
	switch {
	case !u.Exists():
		return obj
	case u.Kind() != cjson.Object:
		return obj.Without("unsigned")
	}
	for _, m := range u.Members() {
		if !containsSorted(keptUnsigned, m.Key) {
			return obj.With("unsigned", u.Keep(func(k string) bool { return containsSorted(keptUnsigned, k) }))
		}
	}
	return obj
}

// FromValue validates a decoded PDU of the room version; see Parse.
func FromValue(v *roomversion.Version, obj cjson.Value) (*Event, error) {
	if obj.Kind() != cjson.Object {
		return nil, bad("event", "want a JSON object, got %s", obj.Kind())
	}
	if v.HashEventIDs() && obj.Has("event_id") {
		obj = obj.Without("event_id")
	}
	obj = cleanUnsigned(obj)
	if v.StrictCanonicalJSON {
		if err := obj.CheckStrict(); err != nil {
			return nil, &FormatError{Field: "event", Reason: "not canonical JSON as room version " + v.ID + " requires", Err: err}
		}
	}
	e := &Event{ver: v, obj: obj}
	if err := e.fill(); err != nil {
		return nil, err
	}
	e.size = obj.CanonicalLen()
	if e.size > MaxEventSize {
		return nil, bad("event", "%d bytes of canonical JSON is over the %d byte limit", e.size, MaxEventSize)
	}
	if v.HashEventIDs() {
		e.id = "$" + encodeHash(v, ReferenceHash(v, obj))
		if v.RoomIDFromCreate && e.isCreate() {
			e.roomID = "!" + e.id[1:]
		}
	}
	return e, nil
}

// isCreate reports whether the event is a room's create event: type
// m.room.create with the empty state key.
func (e *Event) isCreate() bool {
	return e.typ == "m.room.create" && e.hasStateKey && e.stateKey == ""
}

// overlong applies a 255-byte limit to a field. Room versions 11+ drop an
// event over it; earlier ones drop it only over 255 code points and keep
// it otherwise, as rejected (see LimitViolation).
func (e *Event) overlong(field, s string, limit int) error {
	if len(s) <= limit {
		return nil
	}
	if e.ver.StrictByteLimits || utf8.RuneCountInString(s) > limit {
		return bad(field, "%d bytes is over the %d byte limit", len(s), limit)
	}
	e.noteViolation(field, len(s), limit)
	return nil
}

func (e *Event) noteViolation(field string, n, limit int) {
	if e.limitErr == nil {
		e.limitErr = &FormatError{Field: field, Reason: fmt.Sprintf("%d bytes is over the %d byte limit (kept as rejected in room version %s)", n, limit, e.ver.ID)}
	}
}

// checkID validates an identifier field with parse, allowing in room
// versions 1–10 an ID over the byte limit but within it in code points.
func (e *Event) checkID(field, s string, kind id.Kind, parse func(string) error) error {
	err := parse(s)
	if err == nil {
		return nil
	}
	if errors.Is(err, id.ErrTooLong) && !e.ver.StrictByteLimits {
		if err2 := id.ValidateOverlong(kind, s); err2 == nil {
			e.noteViolation(field, len(s), id.MaxIDLength)
			return nil
		}
	}
	return &FormatError{Field: field, Reason: "not a valid ID", Err: err}
}

func encodeHash(v *roomversion.Version, h [32]byte) string {
	if v.URLSafeEventIDs() {
		return base64URL(h[:])
	}
	return base64Std(h[:])
}

func str(obj cjson.Value, field string, required bool) (string, bool, error) {
	f := obj.Get(field)
	if !f.Exists() {
		if required {
			return "", false, bad(field, "missing")
		}
		return "", false, nil
	}
	s, ok := f.Str()
	if !ok {
		return "", false, bad(field, "want a string, got %s", f.Kind())
	}
	return s, true, nil
}

func integer(obj cjson.Value, field string) (int64, error) {
	f := obj.Get(field)
	if !f.Exists() {
		return 0, bad(field, "missing")
	}
	n, ok := f.Int()
	if !ok {
		return 0, bad(field, "want an integer, got %s", f.Kind())
	}
	return n, nil
}

func (e *Event) fill() error {
	v, obj := e.ver, e.obj
	var err error
	if e.typ, _, err = str(obj, "type", true); err != nil {
		return err
	}
	if err := e.overlong("type", e.typ, MaxTypeLen); err != nil {
		return err
	}
	if e.sender, _, err = str(obj, "sender", true); err != nil {
		return err
	}
	if err := e.checkID("sender", e.sender, id.KindUserID, func(s string) error { _, err := id.ParseUserID(s); return err }); err != nil {
		return err
	}
	if e.stateKey, e.hasStateKey, err = str(obj, "state_key", false); err != nil {
		return err
	}
	if err := e.overlong("state_key", e.stateKey, MaxStateKeyLen); err != nil {
		return err
	}
	if err := e.fillRoomID(); err != nil {
		return err
	}
	e.content = obj.Get("content")
	if e.content.Kind() != cjson.Object {
		return bad("content", "want an object, got %s", e.content.Kind())
	}
	if e.ts, err = integer(obj, "origin_server_ts"); err != nil {
		return err
	}
	if e.depth, err = integer(obj, "depth"); err != nil {
		return err
	}
	if e.depth < 0 {
		return bad("depth", "%d is negative", e.depth)
	}
	if h := obj.Get("hashes"); h.Kind() != cjson.Object {
		return bad("hashes", "want an object, got %s", h.Kind())
	} else if _, ok := h.Get("sha256").Str(); !ok {
		return bad("hashes.sha256", "missing or not a string")
	}
	if s := obj.Get("signatures"); s.Kind() != cjson.Object {
		return bad("signatures", "want an object, got %s", s.Kind())
	}
	if u := obj.Get("unsigned"); u.Exists() && u.Kind() != cjson.Object {
		return bad("unsigned", "want an object, got %s", u.Kind())
	}
	if e.prev, err = eventRefs(v, obj, "prev_events", MaxPrevEvents); err != nil {
		return err
	}
	if e.auth, err = eventRefs(v, obj, "auth_events", MaxAuthEvents); err != nil {
		return err
	}
	if !v.HashEventIDs() {
		if e.id, _, err = str(obj, "event_id", true); err != nil {
			return err
		}
		if err := e.checkID("event_id", e.id, id.KindEventID, func(s string) error { return id.ValidateEventIDForFormat(s, id.EventIDWithDomain) }); err != nil {
			return err
		}
	}
	if e.typ == "m.room.redaction" {
		// A redacts that is missing or not a string names no event: the
		// redaction does nothing, but the event is valid (other servers
		// accept it, so dropping it would leave a hole in the DAG).
		if v.RedactsInContent {
			e.redacts = e.content.Get("redacts").StrOr("")
		} else {
			e.redacts = obj.Get("redacts").StrOr("")
		}
	}
	return nil
}

func (e *Event) fillRoomID() error {
	v, obj := e.ver, e.obj
	roomID, has, err := str(obj, "room_id", false)
	if err != nil {
		return err
	}
	if v.RoomIDFromCreate && e.isCreate() {
		if has {
			return bad("room_id", "a room version %s create event must not have one", v.ID)
		}
		return nil // derived from the event ID once it is known
	}
	if !has {
		return bad("room_id", "missing")
	}
	if err := e.checkID("room_id", roomID, id.KindRoomID, func(s string) error { _, err := id.ParseRoomID(s); return err }); err != nil {
		return err
	}
	if v.RoomIDFromCreate != id.RoomID(roomID).IsHashDerived() {
		return bad("room_id", "%q is not in the room ID format of room version %s", roomID, v.ID)
	}
	e.roomID = roomID
	return nil
}

// eventRefs reads prev_events or auth_events: a list of IDs, or in the v1
// format a list of [event_id, {"sha256": …}] pairs.
func eventRefs(v *roomversion.Version, obj cjson.Value, field string, limit int) ([]string, error) {
	list := obj.Get(field)
	if list.Kind() != cjson.Array {
		if !list.Exists() {
			return nil, bad(field, "missing")
		}
		return nil, bad(field, "want an array, got %s", list.Kind())
	}
	if list.Len() > limit {
		return nil, bad(field, "%d entries is over the limit of %d", list.Len(), limit)
	}
	format := id.EventIDHashURLSafe
	switch {
	case !v.HashEventIDs():
		format = id.EventIDWithDomain
	case !v.URLSafeEventIDs():
		format = id.EventIDHashStd
	}
	out := make([]string, 0, list.Len())
	for i, m := range list.Elems() {
		ref := m.Value
		if format == id.EventIDWithDomain {
			if ref.Kind() != cjson.Array || ref.Len() != 2 || ref.Index(1).Kind() != cjson.Object {
				return nil, bad(fmt.Sprintf("%s[%d]", field, i), "want an [event_id, hashes] pair")
			}
			ref = ref.Index(0)
		}
		s, ok := ref.Str()
		if !ok {
			return nil, bad(fmt.Sprintf("%s[%d]", field, i), "want an event ID string, got %s", ref.Kind())
		}
		if err := id.ValidateEventIDForFormat(s, format); err != nil {
			return nil, &FormatError{Field: fmt.Sprintf("%s[%d]", field, i), Reason: "not an event ID of room version " + v.ID, Err: err}
		}
		out = append(out, s)
	}
	return out, nil
}

// ReferenceHash computes the reference hash of an event object: the sha256
// of the canonical JSON of the redacted event without signatures and
// unsigned.
func ReferenceHash(v *roomversion.Version, obj cjson.Value) [32]byte {
	red := Redact(v.Redact, obj)
	return sha256.Sum256(red.AppendCanonicalWithout(make([]byte, 0, 1024), "signatures", "unsigned"))
}

// ContentHash computes the content hash of an event object: the sha256 of
// its canonical JSON without unsigned, signatures and hashes. Like the
// reference implementation it also leaves out the top-level keys age_ts,
// outlier and destinations, which old servers put on events in transit; a
// server that hashed them would redact events others keep whole.
func ContentHash(obj cjson.Value) [32]byte {
	return sha256.Sum256(obj.AppendCanonicalWithout(make([]byte, 0, 1024),
		"age_ts", "destinations", "hashes", "outlier", "signatures", "unsigned"))
}
