package userdata

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/id"
)

// Presence states (spec "Presence").
const (
	PresenceOnline      = "online"
	PresenceUnavailable = "unavailable"
	PresenceOffline     = "offline"
)

// Presence timings and bounds (see doc.go).
const (
	idleAfter          = 5 * time.Minute  // online → unavailable without activity
	offlineAfter       = 30 * time.Minute // → offline without activity
	activeBumpInterval = time.Minute      // how often /sync refreshes last_active_ts
	maxStatusMsg       = 1024             // bytes
	maxPresencePerSync = 1000             // presence events in one /sync
)

// presenceRow is one userdata_presence row.
type presenceRow struct {
	userID     string
	presence   string
	statusMsg  sql.NullString
	lastActive int64
}

// effective is the state others see at now: idle users become
// unavailable, then offline.
func (p presenceRow) effective(now time.Time) string {
	idle := now.UnixMilli() - p.lastActive
	switch {
	case p.presence != PresenceOffline && idle > offlineAfter.Milliseconds():
		return PresenceOffline
	case p.presence == PresenceOnline && idle > idleAfter.Milliseconds():
		return PresenceUnavailable
	}
	return p.presence
}

// content is the presence as the API shows it.
func (p presenceRow) content(now time.Time) map[string]any {
	state := p.effective(now)
	c := map[string]any{
		"presence":        state,
		"last_active_ago": max(now.UnixMilli()-p.lastActive, 0),
	}
	if state == PresenceOnline {
		c["currently_active"] = true
	}
	if p.statusMsg.Valid {
		c["status_msg"] = p.statusMsg.String
	}
	return c
}

func (p presenceRow) event(now time.Time) (json.RawMessage, error) {
	return json.Marshal(map[string]any{"type": "m.presence", "sender": p.userID, "content": p.content(now)})
}

type presenceBody struct {
	Presence  string  `json:"presence"`
	StatusMsg *string `json:"status_msg"`
}

func (s *Service) putPresence(w http.ResponseWriter, r *http.Request, d Device) error {
	userID := r.PathValue("userId")
	if err := requireSelf(d, userID, "set the presence of"); err != nil {
		return err
	}
	var b presenceBody
	if err := httpx.DecodeJSON(r, 4<<10, &b); err != nil {
		return err
	}
	switch b.Presence {
	case PresenceOnline, PresenceUnavailable, PresenceOffline:
	case "":
		return httpx.BadJSON("presence is required")
	default:
		return httpx.InvalidParam("presence must be online, unavailable or offline")
	}
	if b.StatusMsg != nil && len(*b.StatusMsg) > maxStatusMsg {
		return httpx.InvalidParam(fmt.Sprintf("status_msg is longer than %d bytes", maxStatusMsg))
	}
	status := sql.NullString{}
	if b.StatusMsg != nil {
		status = sql.NullString{String: *b.StatusMsg, Valid: true}
	}
	if err := s.writePresence(r.Context(), presenceRow{userID: userID, presence: b.Presence, statusMsg: status}); err != nil {
		return err
	}
	return writeEmpty(w)
}

func (s *Service) getPresence(w http.ResponseWriter, r *http.Request, d Device) error {
	userID := r.PathValue("userId")
	if _, err := id.ParseUserID(userID); err != nil {
		return httpx.InvalidParam(quote(userID) + " is not a valid user ID")
	}
	ctx := r.Context()
	if userID != d.UserID && s.cfg.Rooms != nil {
		ok, err := s.shareRoom(ctx, d.UserID, userID)
		if err != nil {
			return err
		}
		if !ok {
			return httpx.Forbidden("You are not allowed to see their presence")
		}
	}
	p, err := s.presenceOf(ctx, userID)
	if err != nil {
		return err
	}
	if p == nil {
		return httpx.WriteJSON(w, http.StatusOK, map[string]any{"presence": PresenceOffline})
	}
	return httpx.WriteJSON(w, http.StatusOK, p.content(s.cfg.Now()))
}

// shareRoom reports whether a and b are joined to a common room.
func (s *Service) shareRoom(ctx context.Context, a, b string) (bool, error) {
	ra, err := s.cfg.Rooms(ctx, a)
	if err != nil {
		return false, err
	}
	rb, err := s.cfg.Rooms(ctx, b)
	if err != nil {
		return false, err
	}
	set := make(map[string]bool, len(ra))
	for _, r := range ra {
		set[r] = true
	}
	for _, r := range rb {
		if set[r] {
			return true, nil
		}
	}
	return false, nil
}

func (s *Service) presenceOf(ctx context.Context, userID string) (*presenceRow, error) {
	p := presenceRow{userID: userID}
	err := s.db.QueryRow(ctx, `SELECT presence, status_msg, last_active_ts FROM userdata_presence WHERE user_id = $1`,
		userID).Scan(&p.presence, &p.statusMsg, &p.lastActive)
	if errors.Is(err, store.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// writePresence stores p as a local user's presence, active now, at a new
// position, wakes the user and their rooms, and hands it to
// Config.Outbound.
func (s *Service) writePresence(ctx context.Context, p presenceRow) error {
	if err := s.storePresence(ctx, p, s.cfg.Now().UnixMilli()); err != nil {
		return err
	}
	s.sendPresence(ctx, p)
	return nil
}

// storePresence stores p as the user's presence, last active at now (ms),
// at a new position, and wakes the user and their rooms.
func (s *Service) storePresence(ctx context.Context, p presenceRow, now int64) error {
	err := s.db.Tx(ctx, func(ctx context.Context, tx *store.Tx) error {
		pos, err := nextPos(ctx, tx)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO userdata_presence (user_id, presence, status_msg, last_active_ts, pos) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (user_id) DO UPDATE SET presence = excluded.presence, status_msg = excluded.status_msg,
			last_active_ts = excluded.last_active_ts, pos = excluded.pos`, p.userID, p.presence, p.statusMsg, now, pos)
		return err
	})
	if err != nil {
		return err
	}
	var rooms []string
	if s.cfg.Rooms != nil {
		if rooms, err = s.cfg.Rooms(ctx, p.userID); err != nil {
			s.log.Warn("userdata: listing rooms for a presence wake-up failed", "err", err)
		}
	}
	s.wake([]string{p.userID}, rooms)
	return nil
}

// SyncPresence applies /sync's set_presence parameter ("" means online):
// "offline" changes nothing; otherwise, if others already see the user in
// that state, only the last active time is refreshed (at most once a
// minute, without a new position); else the state changes, keeping the
// status message.
func (s *Service) SyncPresence(ctx context.Context, userID, setPresence string) error {
	switch setPresence {
	case "":
		setPresence = PresenceOnline
	case PresenceOnline, PresenceUnavailable:
	case PresenceOffline:
		return nil
	default:
		return httpx.InvalidParam("set_presence must be online, offline or unavailable")
	}
	now := s.cfg.Now()
	cur, err := s.presenceOf(ctx, userID)
	if err != nil {
		return err
	}
	if cur == nil {
		return s.writePresence(ctx, presenceRow{userID: userID, presence: setPresence})
	}
	if cur.effective(now) != setPresence {
		cur.presence = setPresence
		return s.writePresence(ctx, *cur)
	}
	if now.UnixMilli()-cur.lastActive < activeBumpInterval.Milliseconds() {
		return nil
	}
	_, err = s.db.Exec(ctx, `UPDATE userdata_presence SET last_active_ts = $2 WHERE user_id = $1 AND last_active_ts < $2`,
		userID, now.UnixMilli())
	return err
}

// presenceRows reads the presence of users (pos <= to).
func (s *Service) presenceRows(ctx context.Context, users []string, to int64) ([]presenceRow, error) {
	var out []presenceRow
	for _, chunk := range inChunks(users) {
		args := append([]any{to}, chunk...)
		rows, err := s.db.Query(ctx, `SELECT user_id, presence, status_msg, last_active_ts FROM userdata_presence
			WHERE pos <= $1 AND user_id IN (`+store.Placeholders(2, len(chunk))+`)`, args...)
		if err != nil {
			return nil, err
		}
		out, err = scanPresence(rows, out)
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func scanPresence(rows *store.Rows, out []presenceRow) ([]presenceRow, error) {
	defer rows.Close()
	for rows.Next() {
		var p presenceRow
		if err := rows.Scan(&p.userID, &p.presence, &p.statusMsg, &p.lastActive); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// presenceFor builds the presence part of a /sync (see doc.go): on an
// initial sync the current presence of everyone sharing a room (those
// not offline, most recently active first), else the changes in
// (from, to] of users sharing a room, plus the current presence of the
// members of rooms joined since the last sync.
func (s *Service) presenceFor(ctx context.Context, q SyncQuery, now time.Time, ignored *ignoreList) ([]json.RawMessage, error) {
	byUser := map[string]presenceRow{}
	current := func(rooms []string, withSelf bool) error {
		users, err := s.membersOf(ctx, rooms)
		if err != nil {
			return err
		}
		if withSelf {
			users[q.UserID] = true
		}
		rows, err := s.presenceRows(ctx, keys(users), q.To)
		if err != nil {
			return err
		}
		for _, p := range rows {
			if p.effective(now) != PresenceOffline || p.userID == q.UserID {
				byUser[p.userID] = p
			}
		}
		return nil
	}
	if q.Initial {
		if err := current(q.JoinedRooms, true); err != nil {
			return nil, err
		}
	} else {
		if err := s.presenceChanges(ctx, q, byUser); err != nil {
			return nil, err
		}
		if len(q.NewlyJoinedRooms) > 0 {
			if err := current(q.NewlyJoinedRooms, false); err != nil {
				return nil, err
			}
		}
	}
	if len(byUser) == 0 {
		return []json.RawMessage{}, nil
	}
	ign, err := ignored.get()
	if err != nil {
		return nil, err
	}
	list := make([]presenceRow, 0, len(byUser))
	for _, p := range byUser {
		if !ign[p.userID] {
			list = append(list, p)
		}
	}
	slices.SortFunc(list, func(a, b presenceRow) int {
		if c := cmp.Compare(b.lastActive, a.lastActive); c != 0 {
			return c
		}
		return strings.Compare(a.userID, b.userID)
	})
	if len(list) > maxPresencePerSync {
		list = list[:maxPresencePerSync]
	}
	out := make([]json.RawMessage, 0, len(list))
	for _, p := range list {
		ev, err := p.event(now)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

// presenceChanges adds the presence changes in (From, To] of users who
// share a room with the syncing user (or are the user): the newest
// maxPresencePerSync changes, if there were more.
func (s *Service) presenceChanges(ctx context.Context, q SyncQuery, into map[string]presenceRow) error {
	if q.From >= q.To {
		return nil
	}
	rows, err := s.db.Query(ctx, `SELECT user_id, presence, status_msg, last_active_ts FROM userdata_presence
		WHERE pos > $1 AND pos <= $2 ORDER BY pos DESC LIMIT $3`, q.From, q.To, maxPresencePerSync)
	if err != nil {
		return err
	}
	changed, err := scanPresence(rows, nil)
	if err != nil || len(changed) == 0 {
		return err
	}
	v := s.sharers(q)
	for _, p := range changed {
		visible, err := v.visible(ctx, p.userID)
		if err != nil {
			return err
		}
		if visible {
			into[p.userID] = p
		}
	}
	return nil
}

// sharing decides which users share a room with the syncing user (or are
// the user), for presence and device list changes.
type sharing struct {
	s      *Service
	q      SyncQuery
	joined map[string]bool
	shared map[string]bool // lazily, when Config.Rooms is nil
}

func (s *Service) sharers(q SyncQuery) *sharing {
	return &sharing{s: s, q: q, joined: setOf(q.JoinedRooms)}
}

func (v *sharing) visible(ctx context.Context, userID string) (bool, error) {
	if userID == v.q.UserID {
		return true, nil
	}
	if v.s.cfg.Rooms != nil {
		rooms, err := v.s.cfg.Rooms(ctx, userID)
		if err != nil {
			return false, err
		}
		return slices.ContainsFunc(rooms, func(r string) bool { return v.joined[r] }), nil
	}
	if v.shared == nil {
		var err error
		if v.shared, err = v.s.membersOf(ctx, v.q.JoinedRooms); err != nil {
			return false, err
		}
	}
	return v.shared[userID], nil
}

// membersOf returns the union of the joined members of rooms.
func (s *Service) membersOf(ctx context.Context, rooms []string) (map[string]bool, error) {
	users := map[string]bool{}
	if s.members == nil {
		return users, nil
	}
	if len(rooms) == 0 {
		return users, nil
	}
	m, err := s.members(ctx, rooms)
	if err != nil {
		return nil, err
	}
	for _, u := range m {
		users[u] = true
	}
	return users, nil
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
