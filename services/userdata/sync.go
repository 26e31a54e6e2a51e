package userdata

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/axon-hs/axon/internal/store"
)

// maxReceiptsPerRoom bounds the receipts of one room in one /sync: the
// newest ones are sent (see doc.go).
const maxReceiptsPerRoom = 1000

// SyncQuery asks for one /sync's share of userdata for one device.
type SyncQuery struct {
	UserID, DeviceID string
	// JoinedRooms are the rooms the user is joined to at the sync's
	// position. Room account data, receipts and typing are given for
	// these rooms only.
	JoinedRooms []string
	// NewlyJoinedRooms (a subset of JoinedRooms) were joined since the
	// last sync: they get what an initial sync gives (all room account
	// data, the latest receipts, the current typing, the presence of their
	// members) even on an incremental sync.
	NewlyJoinedRooms []string
	// From (exclusive) and To (inclusive) are userdata positions: From
	// from the since token (0 on an initial sync), To from Position taken
	// when the sync started.
	From, To int64
	// FromTyping and ToTyping are typing positions (TypingPosition).
	FromTyping, ToTyping int64
	// Initial is a sync without a since token.
	Initial bool
}

// SyncData is the userdata part of one /sync response.
type SyncData struct {
	// AccountData are global account data events {type, content}.
	AccountData []json.RawMessage
	// RoomAccountData are per-room account data events, by room.
	RoomAccountData map[string][]json.RawMessage
	// Ephemeral are m.typing and m.receipt events, by room.
	Ephemeral map[string][]json.RawMessage
	// ToDevice are send-to-device messages {sender, type, content}.
	ToDevice []json.RawMessage
	// Presence are m.presence events.
	Presence []json.RawMessage
	// DeviceListsChanged are the other servers' users sharing a room with
	// the syncing user whose device lists changed since From
	// (device_lists.changed; none on an initial sync).
	DeviceListsChanged []string
	// ToDeviceUpTo is the position up to which to-device messages were
	// all delivered: To, unless the response was cut at
	// Config.MaxToDevicePerSync, then the position of the last delivered
	// message. The next token's to-device position must not exceed it.
	ToDeviceUpTo int64

	news int // items that are news, for Empty
}

// Empty reports whether d carries no news, so that a long-poll should
// wait. Typing lists sent again because FromTyping was another process's
// position are not news (see doc.go); they are still in d, to be sent
// when the response goes out for another reason or at its timeout.
func (d *SyncData) Empty() bool { return d.news == 0 }

// Sync returns everything for one /sync of (UserID, DeviceID) between
// positions From and To (see SyncQuery). Send-to-device messages are the
// device's pending ones up to To, whatever From is: the caller must first
// call AckToDevice with the since token's to-device position.
func (s *Service) Sync(ctx context.Context, q SyncQuery) (*SyncData, error) {
	q.From = min(q.From, q.To)
	if q.Initial {
		q.From = 0
	}
	now := s.cfg.Now()
	d := &SyncData{
		RoomAccountData: map[string][]json.RawMessage{},
		Ephemeral:       map[string][]json.RawMessage{},
		ToDeviceUpTo:    q.To,
	}
	joined := setOf(q.JoinedRooms)
	fresh := map[string]bool{}
	for _, r := range q.NewlyJoinedRooms {
		if joined[r] {
			fresh[r] = true
		}
	}
	q.NewlyJoinedRooms = keys(fresh)
	if err := s.accountDataFor(ctx, q, joined, d); err != nil {
		return nil, err
	}
	ignored := &ignoreList{load: func() (map[string]bool, error) { return s.ignoredUsers(ctx, q.UserID) }}
	typing, resent := s.typing.forSync(now, q.JoinedRooms, fresh, q.FromTyping, q.Initial)
	if !resent {
		d.news += len(typing)
	}
	for roomID, users := range typing {
		ign, err := ignored.get()
		if err != nil {
			return nil, err
		}
		users = slices.DeleteFunc(users, func(u string) bool { return ign[u] })
		ev, err := json.Marshal(map[string]any{"type": "m.typing", "content": map[string]any{"user_ids": users}})
		if err != nil {
			return nil, err
		}
		d.Ephemeral[roomID] = append(d.Ephemeral[roomID], ev)
	}
	receipts, err := s.receiptsFor(ctx, q, ignored, d)
	if err != nil {
		return nil, err
	}
	if q.DeviceID != "" {
		msgs, upTo, err := s.toDeviceFor(ctx, q.UserID, q.DeviceID, q.To, s.cfg.MaxToDevicePerSync, ignored)
		if err != nil {
			return nil, err
		}
		d.ToDevice, d.ToDeviceUpTo = msgs, upTo
	}
	p, err := s.presenceFor(ctx, q, now, ignored)
	if err != nil {
		return nil, err
	}
	d.Presence = p
	if d.DeviceListsChanged, err = s.deviceListsFor(ctx, q); err != nil {
		return nil, err
	}
	d.news += len(d.AccountData) + len(d.ToDevice) + len(d.Presence) + len(d.DeviceListsChanged) + receipts
	for _, evs := range d.RoomAccountData {
		d.news += len(evs)
	}
	return d, nil
}

// accountDataFor fills the account data of d: all of it up to To on an
// initial sync (and for newly joined rooms), else what changed in
// (From, To]. Room account data is given for joined rooms only.
func (s *Service) accountDataFor(ctx context.Context, q SyncQuery, joined map[string]bool, d *SyncData) error {
	add := func(query string, args ...any) error {
		rows, err := s.db.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var roomID, typ string
			var content []byte
			if err := rows.Scan(&roomID, &typ, &content); err != nil {
				return err
			}
			if roomID != "" && !joined[roomID] {
				continue
			}
			ev, err := json.Marshal(struct {
				Type    string          `json:"type"`
				Content json.RawMessage `json:"content"`
			}{typ, content})
			if err != nil {
				return err
			}
			if roomID == "" {
				d.AccountData = append(d.AccountData, ev)
			} else {
				d.RoomAccountData[roomID] = append(d.RoomAccountData[roomID], ev)
			}
		}
		return rows.Err()
	}
	const cols = `SELECT room_id, type, content FROM userdata_account_data WHERE user_id = $1 AND `
	if q.From < q.To {
		if err := add(cols+`pos > $2 AND pos <= $3 ORDER BY room_id, type`, q.UserID, q.From, q.To); err != nil {
			return err
		}
	}
	if q.Initial || len(q.NewlyJoinedRooms) == 0 {
		return nil
	}
	// Newly joined rooms: what is older than From as well (the query
	// above had the rest).
	for _, chunk := range inChunks(q.NewlyJoinedRooms) {
		args := append([]any{q.UserID, q.From}, chunk...)
		if err := add(cols+`pos <= $2 AND room_id IN (`+store.Placeholders(3, len(chunk))+`) ORDER BY room_id, type`, args...); err != nil {
			return err
		}
	}
	return nil
}

// receiptsFor fills the m.receipt events of d: for each joined room the
// newest receipts in (From, To] (all up to To on an initial sync and for
// newly joined rooms), at most maxReceiptsPerRoom, with m.read.private
// receipts of the syncing user only.
func (s *Service) receiptsFor(ctx context.Context, q SyncQuery, ignored *ignoreList, d *SyncData) (int, error) {
	fresh := setOf(q.NewlyJoinedRooms)
	var changed []string
	for _, r := range q.JoinedRooms {
		if !fresh[r] {
			changed = append(changed, r)
		}
	}
	byRoom := map[string][]receiptRow{}
	if err := s.receiptRows(ctx, changed, q.From, q.To, q.UserID, byRoom); err != nil {
		return 0, err
	}
	if err := s.receiptRows(ctx, q.NewlyJoinedRooms, 0, q.To, q.UserID, byRoom); err != nil {
		return 0, err
	}
	n := 0
	for roomID, rows := range byRoom {
		ign, err := ignored.get()
		if err != nil {
			return 0, err
		}
		rows = slices.DeleteFunc(rows, func(r receiptRow) bool { return ign[r.userID] })
		if len(rows) == 0 {
			continue
		}
		evs, err := receiptEvents(rows)
		if err != nil {
			return 0, err
		}
		d.Ephemeral[roomID] = append(d.Ephemeral[roomID], evs...)
		n += len(evs)
	}
	return n, nil
}

type receiptRow struct {
	userID, typ, threadID, eventID string
	ts                             int64
}

func (s *Service) receiptRows(ctx context.Context, rooms []string, from, to int64, userID string, into map[string][]receiptRow) error {
	if from >= to {
		return nil // an empty range: most incremental syncs
	}
	for _, chunk := range inChunks(rooms) {
		args := append([]any{from, to, userID, maxReceiptsPerRoom}, chunk...)
		rows, err := s.db.Query(ctx, `SELECT room_id, user_id, receipt_type, thread_id, event_id, ts FROM (
				SELECT room_id, user_id, receipt_type, thread_id, event_id, ts, pos,
					ROW_NUMBER() OVER (PARTITION BY room_id ORDER BY pos DESC) AS rn
				FROM userdata_receipts
				WHERE pos > $1 AND pos <= $2 AND (receipt_type <> 'm.read.private' OR user_id = $3)
					AND room_id IN (`+store.Placeholders(5, len(chunk))+`)
			) newest WHERE rn <= $4 ORDER BY room_id, pos, user_id, receipt_type, thread_id`, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var roomID string
			var r receiptRow
			if err := rows.Scan(&roomID, &r.userID, &r.typ, &r.threadID, &r.eventID, &r.ts); err != nil {
				rows.Close()
				return err
			}
			into[roomID] = append(into[roomID], r)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// receiptEvents aggregates a room's receipts into m.receipt events
// ({event: {type: {user: {ts, thread_id}}}}): one event, unless a user has
// receipts of one type for one event in several threads, which cannot
// share an event's content; those go into further events.
func receiptEvents(rows []receiptRow) ([]json.RawMessage, error) {
	type receipt struct {
		TS       int64  `json:"ts"`
		ThreadID string `json:"thread_id,omitempty"`
	}
	var contents []map[string]map[string]map[string]receipt
	for _, r := range rows {
		placed := false
		for _, c := range contents {
			if _, taken := c[r.eventID][r.typ][r.userID]; taken {
				continue
			}
			if c[r.eventID] == nil {
				c[r.eventID] = map[string]map[string]receipt{}
			}
			if c[r.eventID][r.typ] == nil {
				c[r.eventID][r.typ] = map[string]receipt{}
			}
			c[r.eventID][r.typ][r.userID] = receipt{r.ts, r.threadID}
			placed = true
			break
		}
		if !placed {
			contents = append(contents, map[string]map[string]map[string]receipt{
				r.eventID: {r.typ: {r.userID: {r.ts, r.threadID}}},
			})
		}
	}
	out := make([]json.RawMessage, 0, len(contents))
	for _, c := range contents {
		ev, err := json.Marshal(map[string]any{"type": "m.receipt", "content": c})
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

func setOf(list []string) map[string]bool {
	m := make(map[string]bool, len(list))
	for _, v := range list {
		m[v] = true
	}
	return m
}

// ignoreList is the syncing user's ignored users, read on first use: most
// incremental syncs have nothing to filter and skip the query.
type ignoreList struct {
	load func() (map[string]bool, error)
	m    map[string]bool
	done bool
}

func (l *ignoreList) get() (map[string]bool, error) {
	if !l.done {
		m, err := l.load()
		if err != nil {
			return nil, err
		}
		l.m, l.done = m, true
	}
	return l.m, nil
}

// ignoredUsers returns the users in the user's m.ignored_user_list: their
// typing, receipts, presence and send-to-device messages are not sent
// (spec "Ignoring Users").
func (s *Service) ignoredUsers(ctx context.Context, userID string) (map[string]bool, error) {
	content, err := s.accountData(ctx, userID, "", "m.ignored_user_list")
	if err != nil || content == nil {
		return nil, err
	}
	var c struct {
		IgnoredUsers map[string]json.RawMessage `json:"ignored_users"`
	}
	_ = json.Unmarshal(content, &c) // a malformed list ignores nobody
	out := make(map[string]bool, len(c.IgnoredUsers))
	for u := range c.IgnoredUsers {
		out[u] = true
	}
	return out, nil
}
