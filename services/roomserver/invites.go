package roomserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/axon-hs/axon/internal/bus"
	"github.com/axon-hs/axon/internal/store"
)

// RemoteInvite is an invite of a local user to a room this server is not
// in, as another server's /invite brought it: the invite event signed by
// both servers and the room state shared with it (full PDUs, the create
// event among them).
//
// With Membership "knock" it is instead the user's knock on such a room,
// as send_knock left it: the knock event (Sender is the user), the room
// state the resident server answered with, and that server (Via).
type RemoteInvite struct {
	RoomID      string            `json:"room_id"`
	UserID      string            `json:"user_id"`
	EventID     string            `json:"event_id"`
	RoomVersion string            `json:"room_version"`
	Sender      string            `json:"sender"`
	Event       json.RawMessage   `json:"event"`
	RoomState   []json.RawMessage `json:"room_state"`
	// Membership is "invite" (also when empty) or "knock".
	Membership string `json:"membership,omitempty"`
	// Via is the resident server a knock went through ("" for invites).
	Via string `json:"via,omitempty"`
}

// IsKnock reports whether the row is a knock rather than an invite.
func (inv *RemoteInvite) IsKnock() bool { return inv.Membership == "knock" }

// Invites keeps the invites of local users to rooms this server is not in
// (table remote_invites). They are not part of any room here, so they do
// not go through the room role: each is a single row per room and user,
// written by whoever handles it (the federation role receiving /invite,
// the client role when the user rejects it, the room role when the user
// joins), and announced on ROOM_EVENTS as an out-of-room membership
// (Output.OutOfRoom) so that /sync shows it in order with everything else.
type Invites struct {
	db  *store.DB
	bus *bus.Bus
	now func() int64
}

// NewInvites returns the remote invite store.
func NewInvites(db *store.DB, b *bus.Bus, now func() int64) *Invites {
	return &Invites{db: db, bus: b, now: now}
}

// Receive stores an invite (replacing an earlier invite or knock of the
// same room and user) and announces it. It returns once both are durable;
// a retry of the same invite is stored and announced once (the message
// ID is the event ID).
//
// A RemoteInvite with Membership "knock" is a knock that a resident
// server accepted (federation send_knock): it is stored and announced
// the same way, as the membership "knock".
func (iv *Invites) Receive(ctx context.Context, inv *RemoteInvite) error {
	membership := inv.Membership
	switch membership {
	case "":
		membership = "invite"
	case "invite", "knock":
	default:
		return fmt.Errorf("roomserver: an out-of-room membership is an invite or a knock, not %q", membership)
	}
	state, err := json.Marshal(inv.RoomState)
	if err != nil {
		return err
	}
	err = iv.db.Tx(ctx, func(ctx context.Context, tx *store.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO remote_invites (room_id, user_id, event_id, room_version, sender, pdu, room_state, received_at, membership, via)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (room_id, user_id) DO UPDATE SET event_id = excluded.event_id, room_version = excluded.room_version,
				sender = excluded.sender, pdu = excluded.pdu, room_state = excluded.room_state, received_at = excluded.received_at,
				membership = excluded.membership, via = excluded.via`,
			inv.RoomID, inv.UserID, inv.EventID, inv.RoomVersion, inv.Sender, []byte(inv.Event), state, iv.now(), membership, inv.Via)
		return err
	})
	if err != nil {
		return err
	}
	return iv.announce(ctx, inv.RoomID, inv.RoomVersion, inv.EventID, inv.Event, inv.UserID, membership, inv.Sender)
}

// Retire forgets the user's invite to (or knock on) the room. With a
// leave event (the user rejected the invite through the inviting server,
// or rescinded the knock through the server it went through) the
// membership change is announced; without one (the user joined, which the
// room role announces) it is only forgotten.
func (iv *Invites) Retire(ctx context.Context, roomID, userID string, leaveID string, leave json.RawMessage) error {
	inv, err := iv.Get(ctx, roomID, userID)
	if err != nil {
		return err
	}
	if _, err := iv.db.Exec(ctx, `DELETE FROM remote_invites WHERE room_id = $1 AND user_id = $2`, roomID, userID); err != nil {
		return err
	}
	if leave == nil || inv == nil {
		return nil
	}
	return iv.announce(ctx, roomID, inv.RoomVersion, leaveID, leave, userID, "leave", userID)
}

// Get returns the user's invite to (or knock on) the room, nil when there
// is none.
func (iv *Invites) Get(ctx context.Context, roomID, userID string) (*RemoteInvite, error) {
	return remoteInvite(ctx, iv.db, roomID, userID)
}

// RemoteInvite returns the user's invite to (or knock on: see
// RemoteInvite.Membership) a room this server is not in, nil when there is
// none.
func (rd *Reader) RemoteInvite(ctx context.Context, roomID, userID string) (*RemoteInvite, error) {
	return remoteInvite(ctx, rd.db, roomID, userID)
}

func remoteInvite(ctx context.Context, db *store.DB, roomID, userID string) (*RemoteInvite, error) {
	inv := &RemoteInvite{RoomID: roomID, UserID: userID}
	var pdu, state []byte
	err := db.QueryRow(ctx, `SELECT event_id, room_version, sender, pdu, room_state, membership, via FROM remote_invites
		WHERE room_id = $1 AND user_id = $2`, roomID, userID).Scan(&inv.EventID, &inv.RoomVersion, &inv.Sender, &pdu, &state,
		&inv.Membership, &inv.Via)
	if errors.Is(err, store.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	inv.Event = pdu
	if err := json.Unmarshal(state, &inv.RoomState); err != nil {
		return nil, fmt.Errorf("roomserver: remote invite %s: room state: %w", inv.EventID, err)
	}
	return inv, nil
}

// announce publishes an out-of-room membership change on ROOM_EVENTS.
func (iv *Invites) announce(ctx context.Context, roomID, version, eventID string, pdu json.RawMessage, userID, membership, sender string) error {
	data, err := json.Marshal(Output{RoomID: roomID, RoomVersion: version, EventID: eventID, PDU: pdu, OutOfRoom: true,
		StateDelta: []StateDelta{{Type: "m.room.member", StateKey: userID, EventID: eventID, Membership: membership, Sender: sender}}})
	if err != nil {
		return err
	}
	_, err = iv.bus.PublishRoom(ctx, bus.RoomEvents, roomID, data, "out-of-room:"+eventID)
	return err
}
