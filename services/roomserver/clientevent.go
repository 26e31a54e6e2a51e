package roomserver

import (
	"github.com/axon-hs/axon/matrix/cjson"
)

// ClientEvent is an event in the format the Client-Server API serves
// (spec "ClientEvent"): the PDU's federation-only fields (auth_events,
// prev_events, depth, hashes, signatures) are left out.
type ClientEvent struct {
	Content        cjson.Value    `json:"content"`
	EventID        string         `json:"event_id"`
	OriginServerTS int64          `json:"origin_server_ts"`
	RoomID         string         `json:"room_id,omitempty"`
	Sender         string         `json:"sender"`
	StateKey       *string        `json:"state_key,omitempty"`
	Type           string         `json:"type"`
	Redacts        string         `json:"redacts,omitempty"`
	Unsigned       map[string]any `json:"unsigned,omitempty"`
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
	unsigned := map[string]any{}
	if o.NowMS > 0 {
		unsigned["age"] = max(o.NowMS-ev.OriginServerTS(), 0)
	}
	if o.TxnID != "" {
		unsigned["transaction_id"] = o.TxnID
	}
	if e.RedactedBecause != nil {
		unsigned["redacted_because"] = ToClient(e.RedactedBecause, FormatOptions{NowMS: o.NowMS})
	} else if e.RedactedBy != "" {
		// The redaction is not loaded: at least say which event it was.
		unsigned["redacted_because"] = map[string]string{"event_id": e.RedactedBy}
	}
	if len(unsigned) > 0 {
		ce.Unsigned = unsigned
	}
	return ce
}
