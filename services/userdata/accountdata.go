package userdata

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/store"
)

// Bounds on account data (see doc.go).
const (
	maxGlobalAccountData = httpx.DefaultBodyLimit // bytes of one global item
	maxRoomAccountData   = 64 << 10               // bytes of one room item
	maxGlobalTypes       = 1000                   // global types per user
	maxRoomTypes         = 100                    // types per user and room
	maxTypeLength        = 255                    // bytes of a type name
)

// serverManaged are the account data types that the server manages and
// clients may only read (spec "Client Config", Server Behaviour).
var serverManaged = map[string]bool{"m.fully_read": true, "m.push_rules": true}

// accountDataType validates the {type} path parameter of a write.
func accountDataType(r *http.Request) (string, error) {
	t := r.PathValue("type")
	if t == "" || len(t) > maxTypeLength || !utf8.ValidString(t) {
		return "", httpx.InvalidParam(fmt.Sprintf("the account data type must be 1 to %d bytes of UTF-8", maxTypeLength))
	}
	if serverManaged[t] {
		return "", httpx.BadJSON("Cannot set " + t + " through this API").WithStatus(http.StatusMethodNotAllowed)
	}
	return t, nil
}

func (s *Service) putAccountData(w http.ResponseWriter, r *http.Request, d Device) error {
	userID := r.PathValue("userId")
	if err := requireSelf(d, userID, "add account data for"); err != nil {
		return err
	}
	typ, err := accountDataType(r)
	if err != nil {
		return err
	}
	content, err := readObject(r, maxGlobalAccountData)
	if err != nil {
		return err
	}
	changed, err := s.updateAccountData(r.Context(), userID, "", typ, replaceWith(content))
	if err != nil {
		return err
	}
	if changed {
		s.wake([]string{userID}, nil)
	}
	return writeEmpty(w)
}

func (s *Service) putRoomAccountData(w http.ResponseWriter, r *http.Request, d Device) error {
	userID := r.PathValue("userId")
	if err := requireSelf(d, userID, "add account data for"); err != nil {
		return err
	}
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	typ, err := accountDataType(r)
	if err != nil {
		return err
	}
	content, err := readObject(r, maxRoomAccountData)
	if err != nil {
		return err
	}
	if err := s.requireJoined(r, roomID, userID); err != nil {
		return err
	}
	changed, err := s.updateAccountData(r.Context(), userID, roomID, typ, replaceWith(content))
	if err != nil {
		return err
	}
	if changed {
		s.wake([]string{userID}, nil)
	}
	return writeEmpty(w)
}

func (s *Service) getAccountData(w http.ResponseWriter, r *http.Request, d Device) error {
	userID := r.PathValue("userId")
	if err := requireSelf(d, userID, "read account data of"); err != nil {
		return err
	}
	return s.writeAccountData(w, r, userID, "", "Account data not found")
}

func (s *Service) getRoomAccountData(w http.ResponseWriter, r *http.Request, d Device) error {
	userID := r.PathValue("userId")
	if err := requireSelf(d, userID, "read account data of"); err != nil {
		return err
	}
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	return s.writeAccountData(w, r, userID, roomID, "Room account data not found")
}

func (s *Service) writeAccountData(w http.ResponseWriter, r *http.Request, userID, roomID, notFound string) error {
	content, err := s.accountData(r.Context(), userID, roomID, r.PathValue("type"))
	if err != nil {
		return err
	}
	if content == nil {
		return httpx.NotFound(notFound)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(content)))
	_, err = w.Write(content)
	return err
}

// accountData returns one item's content, nil when there is none.
func (s *Service) accountData(ctx context.Context, userID, roomID, typ string) ([]byte, error) {
	var content []byte
	err := s.db.QueryRow(ctx, `SELECT content FROM userdata_account_data WHERE user_id = $1 AND room_id = $2 AND type = $3`,
		userID, roomID, typ).Scan(&content)
	if errors.Is(err, store.ErrNoRows) {
		return nil, nil
	}
	return content, err
}

// replaceWith is the edit of a plain PUT.
func replaceWith(content []byte) func([]byte) ([]byte, error) {
	return func([]byte) ([]byte, error) { return content, nil }
}

// updateAccountData changes one item in a transaction: edit gets the
// current content (nil when there is none) and returns the new one, or
// nil for no change. An item whose content does not change keeps its
// position. It reports whether anything was written.
func (s *Service) updateAccountData(ctx context.Context, userID, roomID, typ string, edit func(old []byte) ([]byte, error)) (changed bool, err error) {
	err = s.db.Tx(ctx, func(ctx context.Context, tx *store.Tx) error {
		changed = false
		var pos int64
		var err error
		changed, err = setAccountDataTx(ctx, tx, userID, roomID, typ, &pos, edit)
		return err
	})
	return changed, err
}

// setAccountDataTx is updateAccountData inside a transaction that may
// write other rows too: *pos is the transaction's position, taken on the
// first change if still zero.
func setAccountDataTx(ctx context.Context, tx *store.Tx, userID, roomID, typ string, pos *int64, edit func(old []byte) ([]byte, error)) (bool, error) {
	var old []byte
	err := tx.QueryRow(ctx, `SELECT content FROM userdata_account_data WHERE user_id = $1 AND room_id = $2 AND type = $3`,
		userID, roomID, typ).Scan(&old)
	exists := err == nil
	if err != nil && !errors.Is(err, store.ErrNoRows) {
		return false, err
	}
	content, err := edit(old)
	if err != nil || content == nil || (exists && bytes.Equal(old, content)) {
		return false, err
	}
	if !exists {
		limit := maxGlobalTypes
		if roomID != "" {
			limit = maxRoomTypes
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM userdata_account_data WHERE user_id = $1 AND room_id = $2`,
			userID, roomID).Scan(&n); err != nil {
			return false, err
		}
		if n >= limit {
			return false, httpx.TooLarge(fmt.Sprintf("At most %d account data types are stored here; delete or reuse one", limit))
		}
	}
	if *pos == 0 {
		p, err := nextPos(ctx, tx)
		if err != nil {
			return false, err
		}
		*pos = p
	}
	_, err = tx.Exec(ctx, `INSERT INTO userdata_account_data (user_id, room_id, type, content, pos) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (user_id, room_id, type) DO UPDATE SET content = excluded.content, pos = excluded.pos`,
		userID, roomID, typ, content, *pos)
	return err == nil, err
}

// readObject reads a JSON object body of at most limit bytes, compacted.
func readObject(r *http.Request, limit int64) ([]byte, error) {
	var raw json.RawMessage
	if err := httpx.DecodeJSON(r, limit, &raw); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, httpx.NotJSON("Request body is not valid JSON").WithCause(err)
	}
	return buf.Bytes(), nil
}

// quote quotes s for an error message, cut to a readable length.
func quote(s string) string {
	const maxLen = 100
	if len(s) > maxLen {
		s = s[:maxLen] + "…"
	}
	return strconv.Quote(s)
}
