package syncapi

import (
	"context"
	"errors"
	"slices"
	"strconv"

	"github.com/axon-hs/axon/services/roomserver"
)

type syncRequest struct {
	api       *API
	userID    string
	deviceID  string
	since     *Token
	fullState bool
	filter    *Filter
}

type computed struct {
	out     *syncResponse
	changes int
}

func (c *computed) empty() bool { return c.changes == 0 }

// compute builds the response from since to the current position. It
// returns the rooms the user is in (to wait on) and the position used.
func (s *syncRequest) compute(ctx context.Context) (*computed, []string, int64, error) {
	a := s.api
	cur, err := currentPos(ctx, a.db)
	if err != nil {
		return nil, nil, 0, err
	}
	var from int64
	if s.since != nil {
		from = min(s.since.Events, cur)
	}
	resp := &syncResponse{
		NextBatch:              Token{Events: cur}.String(),
		AccountData:            eventList{Events: []any{}},
		Presence:               eventList{Events: []any{}},
		ToDevice:               eventList{Events: []any{}},
		DeviceLists:            deviceLists{Changed: []string{}, Left: []string{}},
		DeviceOneTimeKeysCount: map[string]int{"signed_curve25519": 0},
		DeviceUnusedFallback:   []string{},
	}
	rooms := &roomsResponse{Join: map[string]*joinedRoom{}, Invite: map[string]*invitedRoom{},
		Leave: map[string]*leftRoom{}, Knock: map[string]*knockedRoom{}}
	c := &computed{out: resp}
	now, err := membershipsAt(ctx, a.db, s.userID, cur)
	if err != nil {
		return nil, nil, 0, err
	}
	var before map[string]memberState
	if s.since != nil {
		if before, err = membershipsAt(ctx, a.db, s.userID, from); err != nil {
			return nil, nil, 0, err
		}
	}
	var waitRooms []string
	ids := make([]string, 0, len(now))
	for id := range now {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, roomID := range ids {
		m := now[roomID]
		if m.membership == "join" {
			waitRooms = append(waitRooms, roomID)
		}
		if !s.filter.Room.AllowsRoom(roomID) {
			continue
		}
		prev, had := before[roomID]
		changed := s.since == nil || !had || prev.pos != m.pos
		switch m.membership {
		case "join":
			// A room joined since the last sync gets its full state.
			newly := s.since == nil || !had || prev.membership != "join"
			jr, n, err := s.joinedRoom(ctx, roomID, from, cur, newly || s.fullState)
			if err != nil {
				return nil, nil, 0, err
			}
			if n > 0 || newly || s.fullState {
				rooms.Join[roomID] = jr
				c.changes += n + 1
			}
		case "invite":
			if changed || s.fullState {
				ir, err := s.invitedRoom(ctx, roomID, cur)
				if err != nil {
					return nil, nil, 0, err
				}
				rooms.Invite[roomID] = ir
				c.changes++
			}
		case "leave", "ban":
			// Shown once, when it happens (or on initial sync with
			// include_leave), with the timeline up to the leave.
			if (s.since != nil && changed && had) || (s.since == nil && s.filter.Room.IncludeLeave) {
				lr, err := s.leftRoom(ctx, roomID, from, m.pos, s.since == nil || prev.membership != "join")
				if err != nil {
					return nil, nil, 0, err
				}
				rooms.Leave[roomID] = lr
				c.changes++
			}
		case "knock":
			if changed || s.fullState {
				rooms.Knock[roomID] = &knockedRoom{KnockState: stateList{Events: []roomserver.ClientEvent{}}}
				c.changes++
			}
		}
	}
	resp.Rooms = rooms
	return c, waitRooms, cur, nil
}

// timelineFor returns the room's timeline between from and to: the last
// limit events, whether older ones were left out, and the room_seq just
// before the timeline.
func (s *syncRequest) timelineFor(ctx context.Context, info roomserver.RoomInfo, from, to int64) (timeline, int64, error) {
	a := s.api
	limit := s.filter.TimelineLimit()
	tl := timeline{Events: []roomserver.ClientEvent{}}
	rows, err := roomEvents(ctx, a.db, info.ID, from, to, limit+1)
	if err != nil {
		return tl, 0, err
	}
	if len(rows) > limit {
		tl.Limited = true
		rows = rows[:limit]
	}
	slices.Reverse(rows)
	startSeq := int64(0)
	if len(rows) > 0 {
		startSeq = rows[0].roomSeq - 1
	} else {
		if startSeq, err = roomSeqAt(ctx, a.db, info.ID, to); err != nil {
			return tl, 0, err
		}
	}
	nowMS := a.cfg.Now().UnixMilli()
	for _, ix := range rows {
		ev, err := a.rooms.Event(ctx, info.Version, ix.eventID)
		if errors.Is(err, roomserver.ErrNotFound) {
			continue
		}
		if err != nil {
			return tl, 0, err
		}
		if !s.filter.Room.Timeline.Allows(ev.Type(), ev.Sender()) {
			continue
		}
		o := roomserver.FormatOptions{NowMS: nowMS, OmitRoomID: true}
		if ix.txnID != "" && ix.deviceID == s.deviceID && ev.Sender() == s.userID {
			o.TxnID = ix.txnID
		}
		tl.Events = append(tl.Events, roomserver.ToClient(ev, o))
	}
	tl.PrevBatch = "r" + strconv.FormatInt(startSeq, 10)
	return tl, startSeq, nil
}

func (s *syncRequest) joinedRoom(ctx context.Context, roomID string, from, to int64, full bool) (*joinedRoom, int, error) {
	a := s.api
	info, err := a.rooms.Room(ctx, roomID)
	if err != nil {
		return nil, 0, err
	}
	jr := &joinedRoom{
		State:               stateList{Events: []roomserver.ClientEvent{}},
		AccountData:         eventList{Events: []any{}},
		Ephemeral:           eventList{Events: []any{}},
		Summary:             map[string]any{},
		UnreadNotifications: unreadCounts{},
	}
	tfrom := from
	if full && s.since == nil {
		tfrom = 0
	}
	tl, startSeq, err := s.timelineFor(ctx, info, tfrom, to)
	if err != nil {
		return nil, 0, err
	}
	jr.Timeline = tl
	var state []*roomserver.StoredEvent
	switch {
	case full:
		state, err = a.rooms.StateAt(ctx, info.Version, roomID, startSeq)
	case tl.Limited:
		var sinceSeq int64
		if sinceSeq, err = roomSeqAt(ctx, a.db, roomID, from); err == nil {
			state, err = a.rooms.StateChangedBetween(ctx, info.Version, roomID, sinceSeq, startSeq)
		}
	}
	if err != nil {
		return nil, 0, err
	}
	jr.State.Events = s.stateEvents(state, tl)
	return jr, len(tl.Events) + len(jr.State.Events), nil
}

// stateEvents formats state for the response, applying the state filter
// and lazy-loading of members (only the senders of the timeline's events,
// and the user, keep their member events).
func (s *syncRequest) stateEvents(state []*roomserver.StoredEvent, tl timeline) []roomserver.ClientEvent {
	f := &s.filter.Room.State
	var senders map[string]bool
	if f.LazyLoadMembers {
		senders = map[string]bool{s.userID: true}
		for _, e := range tl.Events {
			senders[e.Sender] = true
		}
	}
	nowMS := s.api.cfg.Now().UnixMilli()
	out := []roomserver.ClientEvent{}
	for _, ev := range state {
		if !f.Allows(ev.Type(), ev.Sender()) {
			continue
		}
		if senders != nil && ev.Type() == "m.room.member" {
			if sk, _ := ev.StateKey(); !senders[sk] {
				continue
			}
		}
		out = append(out, roomserver.ToClient(ev, roomserver.FormatOptions{NowMS: nowMS, OmitRoomID: true}))
	}
	return out
}

func (s *syncRequest) leftRoom(ctx context.Context, roomID string, from, leavePos int64, full bool) (*leftRoom, error) {
	a := s.api
	info, err := a.rooms.Room(ctx, roomID)
	if err != nil {
		return nil, err
	}
	lr := &leftRoom{State: stateList{Events: []roomserver.ClientEvent{}}, AccountData: eventList{Events: []any{}}}
	tl, startSeq, err := s.timelineFor(ctx, info, from, leavePos)
	if err != nil {
		return nil, err
	}
	lr.Timeline = tl
	var state []*roomserver.StoredEvent
	if full {
		state, err = a.rooms.StateAt(ctx, info.Version, roomID, startSeq)
	} else if tl.Limited {
		var sinceSeq int64
		if sinceSeq, err = roomSeqAt(ctx, a.db, roomID, from); err == nil {
			state, err = a.rooms.StateChangedBetween(ctx, info.Version, roomID, sinceSeq, startSeq)
		}
	}
	if err != nil {
		return nil, err
	}
	lr.State.Events = s.stateEvents(state, tl)
	return lr, nil
}

// strippedTypes are the state events shown to an invitee (spec "Stripped
// state": the recommended set).
var strippedTypes = []string{"m.room.create", "m.room.join_rules", "m.room.canonical_alias", "m.room.avatar",
	"m.room.name", "m.room.encryption", "m.room.topic"}

func (s *syncRequest) invitedRoom(ctx context.Context, roomID string, to int64) (*invitedRoom, error) {
	a := s.api
	info, err := a.rooms.Room(ctx, roomID)
	if err != nil {
		return nil, err
	}
	seq, err := roomSeqAt(ctx, a.db, roomID, to)
	if err != nil {
		return nil, err
	}
	state, err := a.rooms.StateAt(ctx, info.Version, roomID, seq, strippedTypes...)
	if err != nil {
		return nil, err
	}
	inv, err := a.rooms.StateEvent(ctx, info.Version, roomID, seq, "m.room.member", s.userID)
	if err != nil && !errors.Is(err, roomserver.ErrNotFound) {
		return nil, err
	}
	if inv != nil {
		state = append(state, inv)
	}
	ir := &invitedRoom{InviteState: strippedList{Events: []strippedEvent{}}}
	for _, ev := range state {
		sk, _ := ev.StateKey()
		ir.InviteState.Events = append(ir.InviteState.Events, strippedEvent{
			Type: ev.Type(), StateKey: sk, Sender: ev.Sender(), Content: ev.Content(),
		})
	}
	return ir, nil
}
