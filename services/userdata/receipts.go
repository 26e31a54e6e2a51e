package userdata

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/id"
)

// Receipt types (spec "Receipts"); m.fully_read is accepted by the
// receipt endpoint as a read marker.
const (
	ReceiptRead        = "m.read"
	ReceiptReadPrivate = "m.read.private"
	fullyRead          = "m.fully_read"
)

const maxReceiptBody = 4 << 10

// receiptWrite is one receipt to store.
type receiptWrite struct {
	typ, threadID, eventID string
}

// markers is what one receipt or read_markers request changes.
type markers struct {
	roomID, userID string
	fullyRead      string // event ID of the new m.fully_read, "" for none
	receipts       []receiptWrite
}

// markerChanges says what a markers write changed, for wake-ups.
type markerChanges struct {
	public, private bool // receipts
	account         bool // m.fully_read
}

func eventIDValue(s, what string) error {
	if _, err := id.ParseEventID(s); err != nil {
		return httpx.InvalidParam(what + " " + quote(s) + " is not a valid event ID")
	}
	return nil
}

func (s *Service) postReceipt(w http.ResponseWriter, r *http.Request, d Device) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	typ := r.PathValue("receiptType")
	switch typ {
	case ReceiptRead, ReceiptReadPrivate, fullyRead:
	default:
		return httpx.InvalidParam("Unknown receipt type " + quote(typ) + "; expected m.read, m.read.private or m.fully_read")
	}
	eventID := r.PathValue("eventId")
	if err := eventIDValue(eventID, "The event"); err != nil {
		return err
	}
	threadID, err := receiptThread(r)
	if err != nil {
		return err
	}
	if typ == fullyRead && threadID != "" {
		return httpx.InvalidParam("thread_id cannot be given with m.fully_read")
	}
	if err := s.requireJoined(r, roomID, d.UserID); err != nil {
		return err
	}
	m := markers{roomID: roomID, userID: d.UserID}
	if typ == fullyRead {
		m.fullyRead = eventID
	} else {
		m.receipts = []receiptWrite{{typ: typ, threadID: threadID, eventID: eventID}}
	}
	if err := s.writeMarkers(r.Context(), m); err != nil {
		return err
	}
	return writeEmpty(w)
}

// receiptThread reads the optional body of a receipt request and returns
// its thread_id ("" for an unthreaded receipt). Clients have long sent no
// body at all, so an empty one is {}.
func receiptThread(r *http.Request) (string, error) {
	if r.Body == nil {
		return "", nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxReceiptBody))
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return "", httpx.TooLarge("The receipt body is too large").WithCause(err)
	}
	if err != nil {
		return "", httpx.NotJSON("Could not read the request body").WithCause(err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return "", nil
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var fields map[string]json.RawMessage
	if err := httpx.DecodeJSON(r, maxReceiptBody, &fields); err != nil {
		return "", err
	}
	raw, ok := fields["thread_id"]
	if !ok {
		return "", nil
	}
	var t string
	if err := json.Unmarshal(raw, &t); err != nil || t == "" {
		return "", httpx.InvalidParam("thread_id must be a non-empty string")
	}
	if t != "main" {
		if err := eventIDValue(t, "thread_id"); err != nil {
			return "", err
		}
	}
	return t, nil
}

type readMarkersBody struct {
	FullyRead   *string `json:"m.fully_read"`
	Read        *string `json:"m.read"`
	ReadPrivate *string `json:"m.read.private"`
}

func (s *Service) postReadMarkers(w http.ResponseWriter, r *http.Request, d Device) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	var b readMarkersBody
	if err := httpx.DecodeJSON(r, maxReceiptBody, &b); err != nil {
		return err
	}
	m := markers{roomID: roomID, userID: d.UserID}
	for _, f := range []struct {
		key string
		v   *string
	}{{fullyRead, b.FullyRead}, {ReceiptRead, b.Read}, {ReceiptReadPrivate, b.ReadPrivate}} {
		if f.v == nil {
			continue
		}
		if err := eventIDValue(*f.v, f.key); err != nil {
			return err
		}
		if f.key == fullyRead {
			m.fullyRead = *f.v
		} else {
			m.receipts = append(m.receipts, receiptWrite{typ: f.key, eventID: *f.v})
		}
	}
	if err := s.requireJoined(r, roomID, d.UserID); err != nil {
		return err
	}
	if err := s.writeMarkers(r.Context(), m); err != nil {
		return err
	}
	return writeEmpty(w)
}

// writeMarkers stores a fully read marker and receipts in one transaction
// and wakes whoever must learn of them: the room for public receipts, the
// user alone for private receipts and the fully read marker. Changed m.read
// receipts are handed to Config.Outbound first.
func (s *Service) writeMarkers(ctx context.Context, m markers) error {
	if err := s.sendReceipts(ctx, m); err != nil {
		return err
	}
	var ch markerChanges
	now := s.cfg.Now().UnixMilli()
	err := s.db.Tx(ctx, func(ctx context.Context, tx *store.Tx) error {
		ch = markerChanges{}
		var pos int64
		if m.fullyRead != "" {
			content, err := json.Marshal(map[string]string{"event_id": m.fullyRead})
			if err != nil {
				return err
			}
			changed, err := setAccountDataTx(ctx, tx, m.userID, m.roomID, fullyRead, &pos, replaceWith(content))
			if err != nil {
				return err
			}
			ch.account = changed
		}
		for _, rc := range m.receipts {
			changed, err := setReceiptTx(ctx, tx, m.roomID, m.userID, rc, now, &pos)
			if err != nil {
				return err
			}
			if changed && rc.typ == ReceiptReadPrivate {
				ch.private = true
			} else if changed {
				ch.public = true
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	switch {
	case ch.public:
		s.wakeRoom(ctx, s.wake, m.roomID)
	case ch.private || ch.account:
		s.wake([]string{m.userID}, nil)
	}
	return nil
}

// setReceiptTx stores one receipt unless it is already there.
func setReceiptTx(ctx context.Context, tx *store.Tx, roomID, userID string, rc receiptWrite, now int64, pos *int64) (bool, error) {
	var cur string
	err := tx.QueryRow(ctx, `SELECT event_id FROM userdata_receipts
		WHERE room_id = $1 AND user_id = $2 AND receipt_type = $3 AND thread_id = $4`,
		roomID, userID, rc.typ, rc.threadID).Scan(&cur)
	if err == nil && cur == rc.eventID {
		return false, nil
	}
	if err != nil && !errors.Is(err, store.ErrNoRows) {
		return false, err
	}
	if *pos == 0 {
		p, err := nextPos(ctx, tx)
		if err != nil {
			return false, err
		}
		*pos = p
	}
	_, err = tx.Exec(ctx, `INSERT INTO userdata_receipts (room_id, user_id, receipt_type, thread_id, event_id, ts, pos)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (room_id, user_id, receipt_type, thread_id) DO UPDATE SET event_id = excluded.event_id, ts = excluded.ts, pos = excluded.pos`,
		roomID, userID, rc.typ, rc.threadID, rc.eventID, now, *pos)
	return err == nil, err
}
