package roomserver

import (
	"strconv"

	"github.com/axon-hs/axon/matrix/cjson"
)

// ClientEvent is an event in the format the Client-Server API serves
// (spec "ClientEvent"): the PDU's federation-only fields (auth_events,
// prev_events, depth, hashes, signatures) are left out. It encodes itself
// (MarshalJSON): /sync responses are mostly events, and the reflective
// encoder cost a fifth of an initial sync's CPU.
type ClientEvent struct {
	Content        cjson.Value
	EventID        string
	OriginServerTS int64
	RoomID         string // left out when empty
	Sender         string
	StateKey       *string // left out when nil
	Type           string
	Redacts        string // left out when empty
	Unsigned       Unsigned
}

// Unsigned is a ClientEvent's unsigned block; empty fields are left out,
// and so is the block when all are.
type Unsigned struct {
	Age *int64
	// RedactedBecause is the redaction event; RedactedBecauseID names it
	// when it was not loaded.
	RedactedBecause   *ClientEvent
	RedactedBecauseID string
	TransactionID     string
}

func (u Unsigned) empty() bool {
	return u.Age == nil && u.RedactedBecause == nil && u.RedactedBecauseID == "" && u.TransactionID == ""
}

// FormatOptions adjust ClientEvent.
type FormatOptions struct {
	// NowMS computes unsigned.age; 0 leaves it out.
	NowMS int64
	// TxnID is set as unsigned.transaction_id (only for the sending device).
	TxnID string
	// OmitRoomID leaves room_id out (inside /sync's rooms map).
	OmitRoomID bool
}

// ToClient converts a stored event.
func ToClient(e *StoredEvent, o FormatOptions) ClientEvent {
	ev := e.Event
	ce := ClientEvent{
		Content:        ev.Content(),
		EventID:        ev.ID(),
		OriginServerTS: ev.OriginServerTS(),
		Sender:         ev.Sender(),
		Type:           ev.Type(),
		Redacts:        ev.Redacts(),
	}
	if !o.OmitRoomID {
		ce.RoomID = ev.RoomID()
	}
	if sk, ok := ev.StateKey(); ok {
		ce.StateKey = &sk
	}
	if !ce.Content.Exists() {
		ce.Content = cjson.ObjectValue()
	}
	if o.NowMS > 0 {
		age := max(o.NowMS-ev.OriginServerTS(), 0)
		ce.Unsigned.Age = &age
	}
	ce.Unsigned.TransactionID = o.TxnID
	if e.RedactedBecause != nil {
		rb := ToClient(e.RedactedBecause, FormatOptions{NowMS: o.NowMS})
		ce.Unsigned.RedactedBecause = &rb
	} else if e.RedactedBy != "" {
		// The redaction is not loaded: at least say which event it was.
		ce.Unsigned.RedactedBecauseID = e.RedactedBy
	}
	return ce
}

// MarshalJSON implements json.Marshaler.
func (e ClientEvent) MarshalJSON() ([]byte, error) { return e.Append(make([]byte, 0, 512)), nil }

// Append appends the event's JSON to b.
func (e ClientEvent) Append(b []byte) []byte {
	b = append(b, `{"content":`...)
	if e.Content.Exists() {
		b = e.Content.AppendCanonical(b)
	} else {
		b = append(b, "{}"...)
	}
	b = append(b, `,"event_id":`...)
	b = cjson.AppendString(b, e.EventID)
	b = append(b, `,"origin_server_ts":`...)
	b = strconv.AppendInt(b, e.OriginServerTS, 10)
	if e.RoomID != "" {
		b = append(b, `,"room_id":`...)
		b = cjson.AppendString(b, e.RoomID)
	}
	b = append(b, `,"sender":`...)
	b = cjson.AppendString(b, e.Sender)
	if e.StateKey != nil {
		b = append(b, `,"state_key":`...)
		b = cjson.AppendString(b, *e.StateKey)
	}
	b = append(b, `,"type":`...)
	b = cjson.AppendString(b, e.Type)
	if e.Redacts != "" {
		b = append(b, `,"redacts":`...)
		b = cjson.AppendString(b, e.Redacts)
	}
	if u := e.Unsigned; !u.empty() {
		b = append(b, `,"unsigned":{`...)
		sep := ""
		if u.Age != nil {
			b = append(b, `"age":`...)
			b = strconv.AppendInt(b, *u.Age, 10)
			sep = ","
		}
		switch {
		case u.RedactedBecause != nil:
			b = append(b, sep+`"redacted_because":`...)
			b = u.RedactedBecause.Append(b)
			sep = ","
		case u.RedactedBecauseID != "":
			b = append(b, sep+`"redacted_because":{"event_id":`...)
			b = cjson.AppendString(b, u.RedactedBecauseID)
			b = append(b, '}')
			sep = ","
		}
		if u.TransactionID != "" {
			b = append(b, sep+`"transaction_id":`...)
			b = cjson.AppendString(b, u.TransactionID)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}
