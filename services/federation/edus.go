package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/matrix/id"
)

// EDUReceiver applies the EDUs of inbound transactions, once this package
// has checked them (see processEDUs). Each field handles one kind; a nil
// field drops that kind (with a debug log), so the zero value drops every
// EDU. An error is logged and affects nothing else.
type EDUReceiver struct {
	// Typing applies an m.typing of a user joined to the room.
	Typing func(ctx context.Context, roomID, userID string, typing bool) error
	// Receipt applies one m.read receipt of a user joined to the room
	// (threadID "" for an unthreaded one; ts in ms).
	Receipt func(ctx context.Context, roomID, userID, eventID, threadID string, ts int64) error
	// Presence applies one presence update of a user sharing a room with
	// this server's users.
	Presence func(ctx context.Context, p Presence) error
	// ToDevice applies an m.direct_to_device whose messages are all for
	// users of this server.
	ToDevice func(ctx context.Context, m ToDevice) error
	// DeviceListUpdate applies an m.device_list_update.
	DeviceListUpdate func(ctx context.Context, u DeviceListUpdate) error
}

// Presence is one entry of an m.presence EDU's push list.
type Presence struct {
	UserID          string
	Presence        string // online, unavailable or offline
	StatusMsg       *string
	LastActiveAgo   int64
	CurrentlyActive bool
}

// ToDevice is an m.direct_to_device EDU.
type ToDevice struct {
	Sender, Type, MessageID string
	// Messages are by user ID and device ID ("*" for all devices).
	Messages map[string]map[string]json.RawMessage
}

// DeviceListUpdate is an m.device_list_update EDU.
type DeviceListUpdate struct {
	UserID, DeviceID string
	DisplayName      string
	StreamID         int64
	PrevIDs          []int64
	Deleted          bool
	Keys             json.RawMessage // absent: nil
}

// EDU types (spec "EDUs").
const (
	eduTyping           = "m.typing"
	eduReceipt          = "m.receipt"
	eduPresence         = "m.presence"
	eduToDevice         = "m.direct_to_device"
	eduDeviceListUpdate = "m.device_list_update"
	eduSigningKeyUpdate = "m.signing_key_update"
)

// maxTxnPresence and maxTxnReceipts bound the presence updates and
// receipts applied from one transaction (each costs a few database
// statements); the rest are dropped.
const (
	maxTxnPresence = 1000
	maxTxnReceipts = 1000
)

// errDropped marks an EDU (or part of one) dropped by a rule; the error
// says which.
var errDropped = errors.New("dropped")

func dropped(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errDropped, fmt.Sprintf(format, args...))
}

// eduRun is the EDU processing of one transaction.
type eduRun struct {
	a         *API
	origin    string
	rooms     map[string]error // room check by room ID, once per transaction
	presence  int              // presence updates applied so far
	nReceipts int              // receipts applied so far
}

// newEDURun starts the EDU processing of a transaction from origin.
func (a *API) newEDURun(origin string) *eduRun {
	return &eduRun{a: a, origin: origin, rooms: map[string]error{}}
}

// one parses, checks and applies the i-th EDU of the transaction, and
// logs what became of it.
func (r *eduRun) one(ctx context.Context, i int, raw json.RawMessage) {
	var e struct {
		Type    string          `json:"edu_type"`
		Content json.RawMessage `json:"content"`
	}
	if err := json.Unmarshal(raw, &e); err != nil || e.Type == "" || !isObject(e.Content) {
		r.a.log.Info("federation: malformed EDU dropped", "origin", r.origin, "index", i)
		return
	}
	err := r.apply(ctx, e.Type, e.Content)
	switch {
	case err == nil:
	case errors.Is(err, errDropped):
		r.a.log.Debug("federation: EDU dropped", "origin", r.origin, "edu_type", e.Type, "reason", err)
	default:
		r.a.log.Warn("federation: applying an EDU failed", "origin", r.origin, "edu_type", e.Type, "err", err)
	}
}

// apply checks and applies one EDU; a panic in a receiver is one EDU's
// failure.
func (r *eduRun) apply(ctx context.Context, typ string, content json.RawMessage) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	rc := r.a.cfg.EDUs
	switch typ {
	case eduTyping:
		if rc.Typing == nil {
			return dropped("typing is not handled here")
		}
		return r.typing(ctx, content)
	case eduReceipt:
		if rc.Receipt == nil {
			return dropped("receipts are not handled here")
		}
		return r.receipts(ctx, content)
	case eduPresence:
		if rc.Presence == nil {
			return dropped("presence is not handled here")
		}
		return r.presenceUpdates(ctx, content)
	case eduToDevice:
		if rc.ToDevice == nil {
			return dropped("send-to-device is not handled here")
		}
		return r.toDevice(ctx, content)
	case eduDeviceListUpdate:
		if rc.DeviceListUpdate == nil {
			return dropped("device list updates are not handled here")
		}
		return r.deviceListUpdate(ctx, content)
	case eduSigningKeyUpdate:
		return dropped("cross-signing keys are not kept yet")
	}
	return dropped("unknown EDU type")
}

// malformed is the error of an EDU that does not parse: logged at info,
// since a server sending it is broken.
func (r *eduRun) malformed(typ string, why string) error {
	r.a.log.Info("federation: malformed EDU dropped", "origin", r.origin, "edu_type", typ, "reason", why)
	return nil
}

// ofOrigin checks that userID is a valid user ID of the origin.
func (r *eduRun) ofOrigin(userID string) error {
	uid, err := id.ParseUserID(userID)
	if err != nil {
		return dropped("%q is not a valid user ID", userID)
	}
	if string(uid.Server()) != r.origin {
		r.a.log.Info("federation: EDU about a user of another server dropped", "origin", r.origin, "user_id", userID)
		return dropped("%s is not a user of %s", userID, r.origin)
	}
	return nil
}

// room checks that this server is in roomID and that its server ACL
// allows the origin, once per room and transaction.
func (r *eduRun) room(ctx context.Context, roomID string) error {
	if err, ok := r.rooms[roomID]; ok {
		return err
	}
	err := r.checkRoom(ctx, roomID)
	if err == nil || errors.Is(err, errDropped) {
		r.rooms[roomID] = err // failures are not remembered: try again
	}
	return err
}

func (r *eduRun) checkRoom(ctx context.Context, roomID string) error {
	if _, err := id.ParseRoomID(roomID); err != nil {
		return dropped("%q is not a valid room ID", roomID)
	}
	v, err := r.a.cfg.RoomVersion(ctx, roomID)
	if err != nil {
		return err
	}
	if v == nil {
		return dropped("this server is not in %s", roomID)
	}
	if err := r.a.checkACL(ctx, roomID, r.origin); err != nil {
		if _, denied := errors.AsType[*httpx.Error](err); denied {
			r.a.log.Info("federation: EDU of a room whose server ACL denies the origin dropped", "origin", r.origin, "room_id", roomID)
			return dropped("the server ACL of %s denies %s", roomID, r.origin)
		}
		return err
	}
	return nil
}

// joined checks that userID is joined to roomID in its current state.
func (r *eduRun) joined(ctx context.Context, roomID, userID string) error {
	m, err := r.a.cfg.Reader.MembershipOf(ctx, roomID, userID)
	if err != nil {
		return err
	}
	if m.Membership != "join" {
		return dropped("%s is not joined to %s", userID, roomID)
	}
	return nil
}

func (r *eduRun) typing(ctx context.Context, content json.RawMessage) error {
	var c struct {
		RoomID string `json:"room_id"`
		UserID string `json:"user_id"`
		Typing *bool  `json:"typing"`
	}
	if err := json.Unmarshal(content, &c); err != nil || c.RoomID == "" || c.UserID == "" || c.Typing == nil {
		return r.malformed(eduTyping, "room_id, user_id and typing are required")
	}
	if err := r.ofOrigin(c.UserID); err != nil {
		return err
	}
	if err := r.room(ctx, c.RoomID); err != nil {
		return err
	}
	if err := r.joined(ctx, c.RoomID, c.UserID); err != nil {
		return err
	}
	return r.a.cfg.EDUs.Typing(ctx, c.RoomID, c.UserID, *c.Typing)
}

// receiptEntry is one user's receipt of an m.receipt EDU.
type receiptEntry struct {
	EventIDs []string `json:"event_ids"`
	Data     struct {
		TS       int64   `json:"ts"`
		ThreadID *string `json:"thread_id"`
	} `json:"data"`
}

// receipts applies an m.receipt EDU room by room and user by user (in
// sorted order): a room this server is not in, or whose ACL denies the
// origin, drops all of its receipts; a bad entry drops only itself. Only
// m.read receipts travel between servers; other types are ignored.
func (r *eduRun) receipts(ctx context.Context, content json.RawMessage) error {
	var byRoom map[string]map[string]json.RawMessage
	if err := json.Unmarshal(content, &byRoom); err != nil {
		return r.malformed(eduReceipt, "the content is not an object of rooms")
	}
	var errs []error
	for _, roomID := range sortedKeys(byRoom) {
		if err := r.room(ctx, roomID); err != nil {
			errs = append(errs, err)
			continue
		}
		raw, ok := byRoom[roomID]["m.read"]
		if !ok {
			continue
		}
		var byUser map[string]json.RawMessage
		if err := json.Unmarshal(raw, &byUser); err != nil {
			errs = append(errs, r.malformed(eduReceipt, "m.read of "+roomID+" is not an object"))
			continue
		}
		for _, userID := range sortedKeys(byUser) {
			if r.nReceipts >= maxTxnReceipts {
				return joinDrops(append(errs, dropped("more than %d receipts in one transaction", maxTxnReceipts)))
			}
			r.nReceipts++
			errs = append(errs, r.receipt(ctx, roomID, userID, byUser[userID]))
		}
	}
	return joinDrops(errs)
}

func (r *eduRun) receipt(ctx context.Context, roomID, userID string, raw json.RawMessage) error {
	var e receiptEntry
	if err := json.Unmarshal(raw, &e); err != nil || len(e.EventIDs) == 0 {
		return r.malformed(eduReceipt, "a receipt needs event_ids and data")
	}
	if err := r.ofOrigin(userID); err != nil {
		return err
	}
	if _, err := id.ParseEventID(e.EventIDs[0]); err != nil {
		return r.malformed(eduReceipt, "a receipt's event ID is not valid")
	}
	thread := ""
	if e.Data.ThreadID != nil {
		thread = *e.Data.ThreadID
		if _, err := id.ParseEventID(thread); thread != "main" && err != nil {
			return r.malformed(eduReceipt, "a receipt's thread_id is neither main nor an event ID")
		}
	}
	if err := r.joined(ctx, roomID, userID); err != nil {
		return err
	}
	return r.a.cfg.EDUs.Receipt(ctx, roomID, userID, e.EventIDs[0], thread, e.Data.TS)
}

// presenceUpdates applies an m.presence EDU entry by entry.
func (r *eduRun) presenceUpdates(ctx context.Context, content json.RawMessage) error {
	var c struct {
		Push []json.RawMessage `json:"push"`
	}
	if err := json.Unmarshal(content, &c); err != nil {
		return r.malformed(eduPresence, "push is not a list")
	}
	var errs []error
	for _, raw := range c.Push {
		if r.presence >= maxTxnPresence {
			errs = append(errs, dropped("more than %d presence updates in one transaction", maxTxnPresence))
			break
		}
		var p struct {
			UserID          string  `json:"user_id"`
			Presence        string  `json:"presence"`
			StatusMsg       *string `json:"status_msg"`
			LastActiveAgo   *int64  `json:"last_active_ago"`
			CurrentlyActive bool    `json:"currently_active"`
		}
		if err := json.Unmarshal(raw, &p); err != nil || p.UserID == "" || p.Presence == "" {
			errs = append(errs, r.malformed(eduPresence, "an update needs user_id and presence"))
			continue
		}
		if err := r.ofOrigin(p.UserID); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := r.sharesRoom(ctx, p.UserID); err != nil {
			errs = append(errs, err)
			continue
		}
		r.presence++
		ago := int64(0)
		if p.LastActiveAgo != nil {
			ago = max(*p.LastActiveAgo, 0)
		}
		errs = append(errs, r.a.cfg.EDUs.Presence(ctx, Presence{UserID: p.UserID, Presence: p.Presence, StatusMsg: p.StatusMsg,
			LastActiveAgo: ago, CurrentlyActive: p.CurrentlyActive}))
	}
	return joinDrops(errs)
}

// sharesRoom checks that userID is joined to a room that a user of this
// server is joined to.
func (r *eduRun) sharesRoom(ctx context.Context, userID string) error {
	rooms, err := r.a.cfg.Reader.RoomsOf(ctx, userID, "join")
	if err != nil {
		return err
	}
	for _, roomID := range rooms {
		in, err := r.a.cfg.Reader.ServerInRoom(ctx, roomID, r.a.cfg.ServerName)
		if err != nil {
			return err
		}
		if in {
			return nil
		}
	}
	return dropped("%s shares no room with a user of this server", userID)
}

func (r *eduRun) toDevice(ctx context.Context, content json.RawMessage) error {
	var c struct {
		Sender    string                                `json:"sender"`
		Type      string                                `json:"type"`
		MessageID string                                `json:"message_id"`
		Messages  map[string]map[string]json.RawMessage `json:"messages"`
	}
	if err := json.Unmarshal(content, &c); err != nil || c.Sender == "" || c.Type == "" || c.MessageID == "" || c.Messages == nil {
		return r.malformed(eduToDevice, "sender, type, message_id and messages are required")
	}
	if err := r.ofOrigin(c.Sender); err != nil {
		return err
	}
	for userID := range c.Messages {
		uid, err := id.ParseUserID(userID)
		if err != nil || string(uid.Server()) != r.a.cfg.ServerName {
			r.a.log.Info("federation: send-to-device messages for a user not of this server dropped", "origin", r.origin, "user_id", userID)
			delete(c.Messages, userID)
		}
	}
	if len(c.Messages) == 0 {
		return dropped("no message is for a user of this server")
	}
	return r.a.cfg.EDUs.ToDevice(ctx, ToDevice{Sender: c.Sender, Type: c.Type, MessageID: c.MessageID, Messages: c.Messages})
}

func (r *eduRun) deviceListUpdate(ctx context.Context, content json.RawMessage) error {
	var c struct {
		UserID      string          `json:"user_id"`
		DeviceID    string          `json:"device_id"`
		DisplayName string          `json:"device_display_name"`
		StreamID    *int64          `json:"stream_id"`
		PrevID      []int64         `json:"prev_id"`
		Deleted     bool            `json:"deleted"`
		Keys        json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(content, &c); err != nil || c.UserID == "" || c.DeviceID == "" || c.StreamID == nil {
		return r.malformed(eduDeviceListUpdate, "user_id, device_id and stream_id are required")
	}
	if err := r.ofOrigin(c.UserID); err != nil {
		return err
	}
	return r.a.cfg.EDUs.DeviceListUpdate(ctx, DeviceListUpdate{UserID: c.UserID, DeviceID: c.DeviceID, DisplayName: c.DisplayName,
		StreamID: *c.StreamID, PrevIDs: c.PrevID, Deleted: c.Deleted, Keys: c.Keys})
}

// joinDrops combines the outcomes of an EDU's parts: its failures if it
// had any (logged as such), else its drops.
func joinDrops(errs []error) error {
	var fails, drops []error
	for _, err := range errs {
		switch {
		case err == nil:
		case errors.Is(err, errDropped):
			drops = append(drops, err)
		default:
			fails = append(fails, err)
		}
	}
	if len(fails) > 0 {
		return errors.Join(fails...) // the drops are lost from the log
	}
	return errors.Join(drops...)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// isObject reports whether raw is a JSON object.
func isObject(raw json.RawMessage) bool {
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		}
		return false
	}
	return false
}
