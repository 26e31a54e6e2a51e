package roomserver

import (
	"encoding/json"
)

// Input is one message of the ROOM_INPUT stream: a write to one room. It is
// a wire contract between the writing roles (client, federation) and the
// room role; add fields, never change their meaning.
//
// An Input is atomic: the room role persists all of its events or none.
type Input struct {
	// RoomID is the room written to; it decides the partition.
	RoomID string `json:"room_id"`
	// ReplyTo is the core NATS subject the room role sends the Result to.
	// Empty when the writer does not wait.
	ReplyTo string `json:"reply_to,omitempty"`
	// Create, when set, creates the room: it is the complete, signed
	// m.room.create PDU, built by the writer (the room ID of room version
	// 12 derives from it). Events then follow it in the new room.
	Create json.RawMessage `json:"create,omitempty"`
	// RoomVersion is the room version of Create.
	RoomVersion string `json:"room_version,omitempty"`
	// Events are the events to build, authorise and persist, in order.
	Events []Template `json:"events,omitempty"`
	// PDUs are events another server sent (Origin), to authorise and
	// persist, each after the events it cites. The writer (the federation
	// role) has checked their format, signatures and hashes (an event
	// whose content hash failed arrives redacted). Unlike Events they are
	// not atomic: each PDU has its own outcome in Result.PDUs.
	PDUs []json.RawMessage `json:"pdus,omitempty"`
	// Outliers are events the PDUs need that are not part of the
	// timeline here (auth events, state across a gap), checked by the
	// writer the same way; they are stored as outliers.
	Outliers []json.RawMessage `json:"outliers,omitempty"`
	// GapStates gives, for a PDU whose prev_events this server does not
	// have and could not get, the state before it (event IDs, as another
	// server's /state_ids answered; the events among Outliers or known):
	// the PDU is then placed on that state instead of its prev_events,
	// which stay unknown.
	GapStates map[string][]string `json:"gap_states,omitempty"`
	// Backfill are events from before the start of the room's timeline
	// here, fetched from Origin (federation /backfill) and checked by the
	// writer like PDUs: they are added to the room's history, which
	// clients page through after the timeline, and change nothing else.
	// Each has an outcome in Result.PDUs.
	Backfill []json.RawMessage `json:"backfill,omitempty"`
	// Origin is the server that sent the PDUs.
	Origin string `json:"origin,omitempty"`
	// Join is this server joining a room it does not know through
	// another server (make_join/send_join): the room is created from the
	// state the resident server answered. RoomVersion is the room's.
	Join *RemoteJoin `json:"join,omitempty"`
}

// RemoteJoin is a join through another server: the signed join event and
// the send_join answer, each event checked by the writer (signatures,
// hashes) already.
type RemoteJoin struct {
	Event     json.RawMessage   `json:"event"`
	State     []json.RawMessage `json:"state"`
	AuthChain []json.RawMessage `json:"auth_chain"`
	// Missed are, for a room this server knows from before, the events
	// between its forward extremities and the join, checked by the writer
	// like the rest; they are applied before the join, oldest first.
	Missed []json.RawMessage `json:"missed,omitempty"`
}

// Template is an event the room role completes (prev_events, auth_events,
// depth, hashes, signature) against the room's current state.
type Template struct {
	Type     string          `json:"type"`
	StateKey *string         `json:"state_key,omitempty"`
	Sender   string          `json:"sender"`
	Content  json.RawMessage `json:"content"`
	// Redacts is the event an m.room.redaction redacts.
	Redacts string `json:"redacts,omitempty"`
	// Txn, when set, makes the template idempotent: a second template with
	// the same sender, device and transaction ID yields the first one's
	// event ID and persists nothing.
	Txn *Txn `json:"txn,omitempty"`
	// Unchanged skips a state event whose content equals the current
	// state's (profile propagation into member events, for example) and
	// answers with the current event's ID.
	SkipIfUnchanged bool `json:"skip_if_unchanged,omitempty"`
}

// Txn is a client transaction: the spec scopes transaction IDs to the
// device (the access token's device), and a request is a retransmission
// only when its path is the same too, which Scope identifies (e.g.
// "send <room> <type>").
type Txn struct {
	DeviceID string `json:"device_id"`
	TxnID    string `json:"txn_id"`
	Scope    string `json:"scope"`
}

// Result is the room role's answer to an Input, sent to Input.ReplyTo once
// the events are committed (or refused).
type Result struct {
	RoomID   string   `json:"room_id,omitempty"`
	EventIDs []string `json:"event_ids,omitempty"`
	Error    *Failure `json:"error,omitempty"`
	// PDUs has the outcome of each of Input.PDUs by event ID: "" when it
	// was accepted (or was known already), else why it was rejected or
	// soft-failed (both persisted) or not persisted (for example its
	// prev_events or auth events are unknown).
	PDUs map[string]string `json:"pdus,omitempty"`
}

// Failure is a refused Input. Code is a Matrix error code (M_FORBIDDEN for
// an event that the authorisation rules reject, M_BAD_JSON for a malformed
// one, M_NOT_FOUND for an unknown room, …).
type Failure struct {
	Code    string `json:"errcode"`
	Message string `json:"error"`
}

// Output is one message of the ROOM_EVENTS stream: a committed event, in
// the room's persistence order. It is a wire contract too.
type Output struct {
	RoomID      string `json:"room_id"`
	RoomVersion string `json:"room_version"`
	RoomSeq     int64  `json:"room_seq"`
	EventID     string `json:"event_id"`
	// PDU is the canonical JSON of the event as persisted.
	PDU json.RawMessage `json:"pdu"`
	// Rejected events are stored (so that events citing them can be
	// processed) but never shown to clients.
	Rejected bool `json:"rejected,omitempty"`
	// OutOfRoom marks a membership change of a local user in a room this
	// server is not in (an invite from another server, its rejection; see
	// Invites): RoomSeq is 0, the event is not part of any timeline here,
	// and StateDelta holds the one membership.
	OutOfRoom bool `json:"out_of_room,omitempty"`
	// StateChanged is true when the event became part of the room's
	// current state.
	StateChanged bool `json:"state_changed,omitempty"`
	// SoftFailed events are part of the DAG and of state resolution but
	// never shown to clients.
	SoftFailed bool `json:"soft_failed,omitempty"`
	// StateDelta, when set, lists every change of the room's current
	// state at this event (state resolution across a fork can change
	// keys other than the event's own, or leave the event out). When it
	// is empty the only change is the event itself, if StateChanged.
	StateDelta []StateDelta `json:"state_delta,omitempty"`
	// Redacts is set when this event is a redaction that was applied.
	Redacts string `json:"redacts,omitempty"`
	// TxnID and DeviceID echo a client transaction so that the sender's
	// device sees unsigned.transaction_id in its /sync.
	TxnID    string `json:"txn_id,omitempty"`
	DeviceID string `json:"device_id,omitempty"`
}

// StateDelta is one key of a room's current state changing: it now holds
// EventID (with Membership for an m.room.member key), or nothing when
// EventID is "".
type StateDelta struct {
	Type       string `json:"type"`
	StateKey   string `json:"state_key"`
	EventID    string `json:"event_id"`
	Membership string `json:"membership,omitempty"`
	Sender     string `json:"sender,omitempty"`
}
