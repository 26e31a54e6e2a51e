package userdata

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/id"
)

// Outbound sends this server's users' ephemeral data to the other
// servers concerned (services/sender's Queue in production). The service
// calls it for local users only, never for data received from another
// server. Its errors are logged for typing and presence (best effort) and
// fail the request for receipts and send-to-device, which the client then
// retries.
type Outbound interface {
	// Typing goes to the room's other servers.
	Typing(ctx context.Context, roomID, userID string, typing bool, timeout time.Duration) error
	// Receipt is a public m.read receipt ("" threadID: unthreaded), for
	// the room's other servers.
	Receipt(ctx context.Context, roomID, userID, eventID, threadID string, ts int64) error
	// Presence goes to the servers that share a room with the user.
	Presence(ctx context.Context, userID, presence string, statusMsg *string, lastActiveAgo int64, currentlyActive bool) error
	// ToDevice goes to destination, whose users the messages are for.
	ToDevice(ctx context.Context, destination, sender, typ, messageID string, messages map[string]map[string]json.RawMessage) error
}

// Bounds on what other servers send.
const maxMessageIDLength = 255

// ErrInvalid marks remote data that is malformed: the caller drops it.
var ErrInvalid = errors.New("userdata: invalid remote data")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// ReceiveRemoteTyping applies a typing notification of another server's
// user (m.typing): it lasts Config.TypingMaxTimeout unless renewed or
// stopped, reaches every process like a local one (PublishTyping) and is
// never sent out again. The caller has checked that the user is joined.
func (s *Service) ReceiveRemoteTyping(ctx context.Context, roomID, userID string, typing bool) error {
	if _, err := id.ParseRoomID(roomID); err != nil {
		return invalid("room ID %q", roomID)
	}
	if _, err := id.ParseUserID(userID); err != nil {
		return invalid("user ID %q", userID)
	}
	s.applyTyping(ctx, typingUpdate{RoomID: roomID, UserID: userID, Typing: typing,
		TimeoutMS: s.cfg.TypingMaxTimeout.Milliseconds()}, true)
	return nil
}

// PutRemoteReceipt stores a public read receipt (m.read) of another
// server's user, read at ts, and wakes the room. threadID "" is an
// unthreaded receipt. The caller has checked that the user is joined.
func (s *Service) PutRemoteReceipt(ctx context.Context, roomID, userID, eventID, threadID string, ts int64) error {
	if _, err := id.ParseRoomID(roomID); err != nil {
		return invalid("room ID %q", roomID)
	}
	if _, err := id.ParseUserID(userID); err != nil {
		return invalid("user ID %q", userID)
	}
	if _, err := id.ParseEventID(eventID); err != nil {
		return invalid("event ID %q", eventID)
	}
	if threadID != "" && threadID != "main" {
		if _, err := id.ParseEventID(threadID); err != nil {
			return invalid("thread_id %q", threadID)
		}
	}
	if ts <= 0 {
		ts = s.cfg.Now().UnixMilli()
	}
	var changed bool
	err := s.db.Tx(ctx, func(ctx context.Context, tx *store.Tx) error {
		var pos int64
		var err error
		changed, err = setReceiptTx(ctx, tx, roomID, userID, receiptWrite{typ: ReceiptRead, threadID: threadID, eventID: eventID}, ts, &pos)
		return err
	})
	if err != nil || !changed {
		return err
	}
	s.wakeRoom(ctx, s.wake, roomID)
	return nil
}

// RemotePresence is a presence update of another server's user
// (m.presence).
type RemotePresence struct {
	UserID          string
	Presence        string
	StatusMsg       *string
	LastActiveAgo   int64
	CurrentlyActive bool
}

// ReceiveRemotePresence stores a presence update of another server's
// user, as last active LastActiveAgo before now, and wakes those sharing a
// room with the user. An update that changes neither the state nor the
// status message only refreshes the last active time (at most once a
// minute), without waking anyone.
func (s *Service) ReceiveRemotePresence(ctx context.Context, p RemotePresence) error {
	if _, err := id.ParseUserID(p.UserID); err != nil {
		return invalid("user ID %q", p.UserID)
	}
	switch p.Presence {
	case PresenceOnline, PresenceUnavailable, PresenceOffline:
	default:
		return invalid("presence %q", p.Presence)
	}
	if p.StatusMsg != nil && len(*p.StatusMsg) > maxStatusMsg {
		return invalid("status_msg longer than %d bytes", maxStatusMsg)
	}
	now := s.cfg.Now().UnixMilli()
	lastActive := now - min(max(p.LastActiveAgo, 0), now)
	row := presenceRow{userID: p.UserID, presence: p.Presence}
	if p.StatusMsg != nil {
		row.statusMsg = sql.NullString{String: *p.StatusMsg, Valid: true}
	}
	cur, err := s.presenceOf(ctx, p.UserID)
	if err != nil {
		return err
	}
	if cur != nil && cur.presence == row.presence && cur.statusMsg == row.statusMsg {
		if lastActive-cur.lastActive < activeBumpInterval.Milliseconds() {
			return nil
		}
		_, err = s.db.Exec(ctx, `UPDATE userdata_presence SET last_active_ts = $2 WHERE user_id = $1 AND last_active_ts < $2`,
			p.UserID, lastActive)
		return err
	}
	return s.storePresence(ctx, row, lastActive)
}

// ReceiveRemoteToDevice queues a send-to-device message of another
// server's user (m.direct_to_device) for this server's devices: "*"
// reaches every device Config.Devices lists, users of other servers are
// skipped, and a message_id already received from the sender is not
// queued again (it is remembered for a day, like a client's transaction
// ID).
func (s *Service) ReceiveRemoteToDevice(ctx context.Context, sender, typ, messageID string, messages map[string]map[string]json.RawMessage) error {
	if _, err := id.ParseUserID(sender); err != nil {
		return invalid("sender %q", sender)
	}
	if typ == "" || len(typ) > maxTypeLength || !utf8.ValidString(typ) {
		return invalid("event type of %d bytes", len(typ))
	}
	if messageID == "" || len(messageID) > maxMessageIDLength {
		return invalid("message_id of %d bytes", len(messageID))
	}
	// The sender's device is unknown over federation: the message ID is
	// remembered under device "".
	d := Device{UserID: sender}
	if seen, err := s.txnSeen(ctx, d, messageID); err != nil || seen {
		return err
	}
	msgs, remote, err := s.expandRecipients(ctx, messages)
	if err != nil {
		return invalid("%v", err)
	}
	if len(remote) > 0 {
		s.log.Info("userdata: send-to-device messages from another server for users not of this server dropped",
			"sender", sender, "servers", len(remote))
	}
	queued, full, err := s.queueToDevice(ctx, d, messageID, typ, msgs)
	if err != nil {
		return err
	}
	if len(full) > 0 {
		s.log.Warn("userdata: send-to-device messages dropped: device queues full",
			"sender", sender, "devices", len(full), "first_user_id", full[0].userID, "first_device_id", full[0].deviceID)
	}
	if len(queued) > 0 {
		s.wake(queued, nil)
	}
	return nil
}

// sendToDeviceRemote hands the messages for users of other servers to
// Config.Outbound, one EDU per server. The message ID is derived from the
// sending device, the client's transaction ID and the server, so a
// retried request yields the same EDUs, which the sender and the
// destination recognise.
func (s *Service) sendToDeviceRemote(ctx context.Context, d Device, txnID, typ string, remote map[string]map[string]map[string]json.RawMessage) error {
	if len(remote) == 0 {
		return nil
	}
	if s.cfg.Outbound == nil {
		s.log.Info("userdata: send-to-device messages for other servers dropped (no outbound federation)", "servers", len(remote))
		return nil
	}
	for _, server := range keysOf(remote) {
		h := sha256.Sum256([]byte(d.UserID + "\x00" + d.DeviceID + "\x00" + txnID + "\x00" + server))
		if err := s.cfg.Outbound.ToDevice(ctx, server, d.UserID, typ, hex.EncodeToString(h[:16]), remote[server]); err != nil {
			return err
		}
	}
	return nil
}

// sendTyping hands a local user's typing change to Config.Outbound, best
// effort.
func (s *Service) sendTyping(ctx context.Context, u typingUpdate) {
	if s.cfg.Outbound == nil || !s.isLocal(u.UserID) {
		return
	}
	timeout := time.Duration(u.TimeoutMS) * time.Millisecond
	if err := s.cfg.Outbound.Typing(ctx, u.RoomID, u.UserID, u.Typing, timeout); err != nil {
		s.log.Warn("userdata: queueing a typing notification for other servers failed", "room_id", u.RoomID, "err", err)
	}
}

// sendReceipts hands the public receipts of m that differ from the stored
// ones to Config.Outbound, before they are stored: a failure fails the
// request, and its retry finds them still different.
func (s *Service) sendReceipts(ctx context.Context, m markers) error {
	if s.cfg.Outbound == nil || !s.isLocal(m.userID) {
		return nil
	}
	now := s.cfg.Now().UnixMilli()
	for _, rc := range m.receipts {
		if rc.typ != ReceiptRead {
			continue
		}
		var cur string
		err := s.db.QueryRow(ctx, `SELECT event_id FROM userdata_receipts
			WHERE room_id = $1 AND user_id = $2 AND receipt_type = $3 AND thread_id = $4`,
			m.roomID, m.userID, rc.typ, rc.threadID).Scan(&cur)
		if err != nil && !errors.Is(err, store.ErrNoRows) {
			return err
		}
		if cur == rc.eventID {
			continue
		}
		if err := s.cfg.Outbound.Receipt(ctx, m.roomID, m.userID, rc.eventID, rc.threadID, now); err != nil {
			return fmt.Errorf("userdata: queue a receipt for other servers: %w", err)
		}
	}
	return nil
}

// sendPresence hands a local user's new presence to Config.Outbound,
// best effort.
func (s *Service) sendPresence(ctx context.Context, p presenceRow) {
	if s.cfg.Outbound == nil || !s.isLocal(p.userID) {
		return
	}
	var status *string
	if p.statusMsg.Valid {
		status = &p.statusMsg.String
	}
	if err := s.cfg.Outbound.Presence(ctx, p.userID, p.presence, status, 0, p.presence == PresenceOnline); err != nil {
		s.log.Warn("userdata: queueing a presence update for other servers failed", "err", err)
	}
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
