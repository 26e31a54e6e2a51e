package userdata

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/matrix/id"
)

// TypingSubject is the core NATS subject on which processes exchange
// typing updates: publish with Config.PublishTyping, subscribe every
// process with ReceiveTyping. Losing an update loses that notification
// only; it expires by itself anyway.
const TypingSubject = "axon.userdata.typing"

// Bounds on the in-memory typing state (see doc.go).
const (
	maxTypingRooms   = 100_000
	maxTypersPerRoom = 1000
	// A typing position is epoch<<typingEpochShift | counter: the epoch is
	// random per process start, so a position from another process (or
	// from before a restart) is recognised as foreign.
	typingEpochShift = 40
	typingEpochBits  = 23
)

// typingState is one process's view of who is typing where.
type typingState struct {
	mu    sync.Mutex
	epoch int64 // shifted
	seq   int64
	rooms map[string]*typingRoom
}

type typingRoom struct {
	users     map[string]time.Time // user → expiry
	changed   int64                // position of the list's last change
	changedAt time.Time
}

func newTypingState() *typingState {
	t := &typingState{rooms: make(map[string]*typingRoom)}
	t.newEpoch()
	return t
}

func (t *typingState) newEpoch() {
	var b [4]byte
	_, _ = rand.Read(b[:])
	e := int64(binary.BigEndian.Uint32(b[:]) & (1<<typingEpochBits - 1))
	if e == 0 || e<<typingEpochShift == t.epoch {
		e = e%(1<<typingEpochBits-1) + 1
	}
	t.epoch, t.seq = e<<typingEpochShift, 0
}

func (t *typingState) pos() int64 { return t.epoch | t.seq }

// own reports whether p is a position of this process's current epoch
// that it has reached.
func (t *typingState) own(p int64) bool {
	return p&^(1<<typingEpochShift-1) == t.epoch && p <= t.pos()
}

func (t *typingState) bump(r *typingRoom, now time.Time) {
	t.seq++
	if t.seq >= 1<<typingEpochShift {
		t.newEpoch() // after 2^40 changes: clients resync the typing state
		t.seq = 1
	}
	r.changed, r.changedAt = t.pos(), now
}

// set records that userID is typing until expires, or has stopped. It
// reports whether the room's list of typing users changed (a refresh of
// someone already typing does not), and whether the update was dropped
// because a bound was reached.
func (t *typingState) set(now time.Time, roomID, userID string, typing bool, expires time.Time) (changed, dropped bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.rooms[roomID]
	if !typing {
		if r == nil {
			return false, false
		}
		if _, ok := r.users[userID]; !ok {
			return false, false
		}
		delete(r.users, userID)
		t.bump(r, now)
		return true, false
	}
	if r == nil {
		if len(t.rooms) >= maxTypingRooms {
			return false, true
		}
		r = &typingRoom{users: make(map[string]time.Time)}
		t.rooms[roomID] = r
	}
	if _, ok := r.users[userID]; ok {
		r.users[userID] = expires
		return false, false
	}
	if len(r.users) >= maxTypersPerRoom {
		return false, true
	}
	r.users[userID] = expires
	t.bump(r, now)
	return true, false
}

// expire removes typing users whose time is up and forgets rooms with
// nobody typing whose last change is older than retention. It returns the
// rooms whose lists changed.
func (t *typingState) expire(now time.Time, retention time.Duration) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var changed []string
	for roomID, r := range t.rooms {
		removed := false
		for u, exp := range r.users {
			if !exp.After(now) {
				delete(r.users, u)
				removed = true
			}
		}
		switch {
		case removed:
			t.bump(r, now)
			changed = append(changed, roomID)
		case len(r.users) == 0 && now.Sub(r.changedAt) > retention:
			delete(t.rooms, roomID)
		}
	}
	slices.Sort(changed)
	return changed
}

// forSync returns the typing lists to send for rooms: on an initial sync
// (or for a room in fresh) the non-empty ones; after a position of this
// process, the lists changed since; after a foreign position, every list
// this process still tracks, empty ones included (see doc.go). resent
// reports the last case: the lists are not news, so they alone should
// not end a long-poll.
func (t *typingState) forSync(now time.Time, rooms []string, fresh map[string]bool, from int64, initial bool) (lists map[string][]string, resent bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	own := t.own(from)
	out := make(map[string][]string)
	for _, roomID := range rooms {
		r := t.rooms[roomID]
		if r == nil {
			continue
		}
		var users []string
		for u, exp := range r.users {
			if exp.After(now) {
				users = append(users, u)
			}
		}
		var send bool
		switch {
		case initial || fresh[roomID]:
			send = len(users) > 0
		case own:
			send = r.changed > from
		default:
			send = true
		}
		if send {
			slices.Sort(users)
			if users == nil {
				users = []string{}
			}
			out[roomID] = users
		}
	}
	return out, !initial && !own
}

// TypingPosition returns this process's typing position, for sync tokens.
func (s *Service) TypingPosition() int64 {
	s.typing.mu.Lock()
	defer s.typing.mu.Unlock()
	return s.typing.pos()
}

// typingUpdate is what processes exchange on TypingSubject.
type typingUpdate struct {
	Origin    string `json:"origin"`
	RoomID    string `json:"room_id"`
	UserID    string `json:"user_id"`
	Typing    bool   `json:"typing"`
	TimeoutMS int64  `json:"timeout_ms,omitempty"`
}

type typingBody struct {
	Typing  *bool  `json:"typing"`
	Timeout *int64 `json:"timeout"`
}

func (s *Service) putTyping(w http.ResponseWriter, r *http.Request, d Device) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	userID := r.PathValue("userId")
	if err := requireSelf(d, userID, "set the typing state of"); err != nil {
		return err
	}
	var b typingBody
	if err := httpx.DecodeJSON(r, 4<<10, &b); err != nil {
		return err
	}
	if b.Typing == nil {
		return httpx.BadJSON("typing is required")
	}
	timeout := s.cfg.TypingMaxTimeout
	if *b.Typing && b.Timeout != nil {
		if *b.Timeout <= 0 {
			return httpx.InvalidParam("timeout must be a positive number of milliseconds")
		}
		timeout = min(timeout, time.Duration(min(*b.Timeout, 1<<40))*time.Millisecond)
	}
	if err := s.requireJoined(r, roomID, userID); err != nil {
		return err
	}
	u := typingUpdate{RoomID: roomID, UserID: userID, Typing: *b.Typing, TimeoutMS: timeout.Milliseconds()}
	s.applyTyping(r.Context(), u, true)
	s.sendTyping(r.Context(), u)
	return writeEmpty(w)
}

// applyTyping records an update, publishes it to the other processes if
// it is local, and wakes this process's waiters if the list changed.
func (s *Service) applyTyping(ctx context.Context, u typingUpdate, local bool) {
	now := s.cfg.Now()
	changed, dropped := s.typing.set(now, u.RoomID, u.UserID, u.Typing, now.Add(time.Duration(u.TimeoutMS)*time.Millisecond))
	if dropped {
		s.log.Warn("userdata: typing notification dropped: too many rooms or typing users tracked", "room_id", u.RoomID)
	}
	if local && s.cfg.PublishTyping != nil {
		u.Origin = s.origin
		data, err := json.Marshal(u)
		if err == nil {
			err = s.cfg.PublishTyping(data)
		}
		if err != nil {
			s.log.Warn("userdata: publishing a typing update failed", "room_id", u.RoomID, "err", err)
		}
	}
	if changed {
		s.wakeRoom(ctx, s.cfg.LocalWake, u.RoomID)
	}
}

// ReceiveTyping applies a typing update published by another process
// (the data its Config.PublishTyping sent). Updates from this process
// itself, and malformed ones, are ignored.
func (s *Service) ReceiveTyping(data []byte) {
	var u typingUpdate
	if err := json.Unmarshal(data, &u); err != nil {
		s.log.Warn("userdata: undecodable typing update", "err", err)
		return
	}
	if u.Origin == s.origin {
		return
	}
	if _, err := id.ParseRoomID(u.RoomID); err != nil {
		s.log.Warn("userdata: typing update with a bad room ID", "err", err)
		return
	}
	if _, err := id.ParseUserID(u.UserID); err != nil {
		s.log.Warn("userdata: typing update with a bad user ID", "err", err)
		return
	}
	u.TimeoutMS = min(max(u.TimeoutMS, 0), s.cfg.TypingMaxTimeout.Milliseconds())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.applyTyping(ctx, u, false)
}

// ExpireTyping ends the typing notifications whose timeout has passed
// and wakes the rooms concerned. Run calls it every second.
func (s *Service) ExpireTyping() {
	retention := max(2*s.cfg.TypingMaxTimeout, time.Minute)
	rooms := s.typing.expire(s.cfg.Now(), retention)
	if len(rooms) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, roomID := range rooms {
		s.wakeRoom(ctx, s.cfg.LocalWake, roomID)
	}
}
