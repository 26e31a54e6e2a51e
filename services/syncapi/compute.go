package syncapi

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strconv"
	"sync"

	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/roomversion"
	"github.com/axon-hs/axon/services/pushrules"
	"github.com/axon-hs/axon/services/roomserver"
	"github.com/axon-hs/axon/services/userdata"
)

type syncRequest struct {
	api       *API
	userID    string
	deviceID  string
	since     *Token
	fullState bool
	filter    *Filter
	// readPos holds the unread counting start of the joined rooms being
	// computed (see readPositions), states the whole state before the
	// timeline of those that get it, and unreads their counts; all are
	// read by the rooms' goroutines.
	readPos map[string]int64
	states  map[string][]*roomserver.StoredEvent
	unreads map[string]unreadCounts
	// rules are the user's push rules, for the unread counts.
	rules *pushrules.Rules
	// members are the user's memberships at the computation's position.
	members map[string]memberState
}

type computed struct {
	out     *syncResponse
	changes int
}

func (c *computed) empty() bool { return c.changes == 0 }

// syncParallelism bounds the rooms of one /sync computed at once.
const syncParallelism = 4

func emptyRaw() rawList { return rawList{Events: []json.RawMessage{}} }

// compute builds the response from since to the current positions. It
// returns the rooms the user is joined to (to wait on).
func (s *syncRequest) compute(ctx context.Context) (*computed, []string, error) {
	a := s.api
	var next Token
	ud := a.cfg.UserData
	// The two streams' positions are read side by side.
	udPos := make(chan error, 1)
	if ud != nil {
		next.Typing = ud.TypingPosition()
		go func() {
			var err error
			next.UserData, err = ud.Position(ctx)
			udPos <- err
		}()
	} else {
		udPos <- nil
	}
	cur, err := currentPos(ctx, a.db)
	if uerr := <-udPos; err == nil {
		err = uerr
	}
	if err != nil {
		return nil, nil, err
	}
	next.Events = cur
	if s.rules, err = a.rules.get(ctx, s.userID); err != nil {
		return nil, nil, err
	}
	var from int64
	if s.since != nil {
		from = min(s.since.Events, cur)
	}
	resp := &syncResponse{
		AccountData:            emptyRaw(),
		Presence:               emptyRaw(),
		ToDevice:               emptyRaw(),
		DeviceLists:            deviceLists{Changed: []string{}, Left: []string{}},
		DeviceOneTimeKeysCount: map[string]int{"signed_curve25519": 0},
		DeviceUnusedFallback:   []string{},
	}
	rooms := &roomsResponse{Join: map[string]*joinedRoom{}, Invite: map[string]*invitedRoom{},
		Leave: map[string]*leftRoom{}, Knock: map[string]*knockedRoom{}}
	c := &computed{out: resp}
	now, before, err := membershipsAt(ctx, a.db, s.userID, cur, from)
	if err != nil {
		return nil, nil, err
	}
	s.members = now
	if s.since == nil {
		before = nil
	}
	var newlyJoined []string
	var waitRooms []string
	type joinJob struct {
		roomID string
		info   roomserver.RoomInfo
		full   bool
		jr     *joinedRoom
		n      int
		err    error
	}
	var jobs []*joinJob
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
			if newly && s.since != nil {
				newlyJoined = append(newlyJoined, roomID)
			}
			jobs = append(jobs, &joinJob{roomID: roomID, full: newly || s.fullState})
		case "invite":
			if changed || s.fullState {
				ir, err := s.invitedRoom(ctx, roomID, cur)
				if err != nil {
					return nil, nil, err
				}
				rooms.Invite[roomID] = ir
				c.changes++
			}
		case "leave", "ban":
			// Shown once, when it happens (or on initial sync with
			// include_leave), with the timeline up to the leave.
			if (s.since != nil && changed && had) || (s.since == nil && s.filter.Room.IncludeLeave) {
				forgotten, err := isForgotten(ctx, a.db, s.userID, roomID)
				if err != nil {
					return nil, nil, err
				}
				if forgotten {
					continue
				}
				lr, err := s.leftRoom(ctx, roomID, from, m.pos, s.since == nil || prev.membership != "join")
				if err != nil {
					return nil, nil, err
				}
				rooms.Leave[roomID] = lr
				c.changes++
			}
		case "knock":
			if changed || s.fullState {
				kr, err := s.knockedRoom(ctx, roomID, cur)
				if err != nil {
					return nil, nil, err
				}
				rooms.Knock[roomID] = kr
				c.changes++
			}
		}
	}
	// The userdata streams do not depend on the rooms' parts: they are
	// read meanwhile.
	type udResult struct {
		data *userdata.SyncData
		err  error
	}
	udCh := make(chan udResult, 1)
	if ud != nil {
		q := userdata.SyncQuery{UserID: s.userID, DeviceID: s.deviceID, JoinedRooms: waitRooms, NewlyJoinedRooms: newlyJoined,
			To: next.UserData, ToTyping: next.Typing, Initial: s.since == nil}
		if s.since != nil {
			q.From, q.FromTyping = s.since.UserData, s.since.Typing
		}
		go func() {
			data, err := ud.Sync(ctx, q)
			udCh <- udResult{data, err}
		}()
	}
	// An incremental sync shows only the joined rooms with something new.
	// One query reads every new event of those rooms when there are a
	// few (their timelines then need no other); after a longer gap one
	// query finds the rooms with news, and their timelines are read next.
	var recent map[string][]indexed
	if s.since != nil {
		var quiet []string
		for _, j := range jobs {
			if !j.full {
				quiet = append(quiet, j.roomID)
			}
		}
		if len(quiet) > 0 {
			rows, complete, err := recentEvents(ctx, a.db, quiet, from, cur, recentEventsMax)
			if err != nil {
				return nil, nil, err
			}
			news := make(map[string]bool, len(rows))
			if complete {
				recent = rows
				for id := range rows {
					news[id] = true
				}
			} else if news, err = roomsWithNews(ctx, a.db, quiet, from, cur); err != nil {
				return nil, nil, err
			}
			jobs = slices.DeleteFunc(jobs, func(j *joinJob) bool { return !j.full && !news[j.roomID] })
		}
	}
	// Read positions and timelines of all the rooms take a few queries;
	// the rest of each room is computed a few rooms at a time (their
	// queries are independent reads, and the first sync of a user in many
	// rooms is what a client waits for longest).
	var tls map[string]timelineRes
	if len(jobs) > 0 {
		ids := make([]string, len(jobs))
		reqs := make([]timelineReq, len(jobs))
		for i, j := range jobs {
			ids[i] = j.roomID
			info, err := s.roomInfo(ctx, j.roomID)
			if err != nil {
				return nil, nil, err
			}
			reqs[i] = timelineReq{info: info, from: from, to: cur}
			if j.full && s.since == nil {
				reqs[i].from = 0
			}
			if rows, ok := recent[j.roomID]; ok && !j.full {
				reqs[i].rows, reqs[i].haveRows = rows, true
			}
		}
		posCh := make(chan error, 1)
		go func() {
			var err error
			s.readPos, err = readPositions(ctx, a.db, s.userID, ids, now)
			posCh <- err
		}()
		tls, err = s.timelines(ctx, reqs)
		if perr := <-posCh; err == nil {
			err = perr
		}
		if err != nil {
			return nil, nil, err
		}
		var full []roomserver.StateQuery
		for i, j := range jobs {
			j.info = reqs[i].info
			if j.full {
				full = append(full, roomserver.StateQuery{RoomID: j.roomID, Version: j.info.Version, Seq: tls[j.roomID].startSeq})
			}
		}
		if len(full) > 0 {
			if s.states, err = a.rooms.StatesAt(ctx, full); err != nil {
				return nil, nil, err
			}
		}
		ureqs := make([]unreadReq, len(jobs))
		for i, j := range jobs {
			ureqs[i] = unreadReq{roomID: j.roomID, to: cur, w: tls[j.roomID].tl.window}
		}
		if s.unreads, err = s.unreadMany(ctx, ureqs); err != nil {
			return nil, nil, err
		}
	}
	sem := make(chan struct{}, syncParallelism)
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			j.jr, j.n, j.err = s.joinedRoom(ctx, j.info, tls[j.roomID], from, cur, j.full)
		}()
	}
	wg.Wait()
	for _, j := range jobs {
		if j.err != nil {
			return nil, nil, j.err
		}
		if j.n > 0 || j.full {
			rooms.Join[j.roomID] = j.jr
			c.changes += j.n + 1
		}
	}
	resp.Rooms = rooms
	if ud != nil {
		r := <-udCh
		if r.err != nil {
			return nil, nil, r.err
		}
		data := r.data
		for _, roomID := range s.addUserData(c, data, now) {
			info, err := s.roomInfo(ctx, roomID)
			if err != nil {
				return nil, nil, err
			}
			if rooms.Join[roomID].UnreadNotifications, err = s.unread(ctx, info, cur, nil); err != nil {
				return nil, nil, err
			}
		}
		if data.ToDeviceUpTo > 0 && data.ToDeviceUpTo < next.UserData {
			next.UserData = data.ToDeviceUpTo
		}
	}
	resp.NextBatch = next.String()
	return c, waitRooms, nil
}

// addUserData puts the userdata streams into the response, through the
// filter. It returns the joined rooms it added to the response (which had
// no timeline news), whose unread counts the caller fills in.
func (s *syncRequest) addUserData(c *computed, data *userdata.SyncData, members map[string]memberState) (added []string) {
	resp, f := c.out, s.filter
	if !data.Empty() {
		c.changes++
	}
	resp.AccountData.Events = keepTypes(data.AccountData, &f.AccountData)
	resp.Presence.Events = keepTypes(data.Presence, &f.Presence)
	resp.ToDevice.Events = append(resp.ToDevice.Events, data.ToDevice...)
	resp.DeviceLists.Changed = append(resp.DeviceLists.Changed, data.DeviceListsChanged...)
	room := func(roomID string) *joinedRoom {
		if jr := resp.Rooms.Join[roomID]; jr != nil {
			return jr
		}
		if m, ok := members[roomID]; !ok || m.membership != "join" || !f.Room.AllowsRoom(roomID) {
			return nil
		}
		jr := newJoinedRoom()
		jr.Timeline = timeline{Events: []roomserver.ClientEvent{}}
		resp.Rooms.Join[roomID] = jr
		added = append(added, roomID)
		return jr
	}
	for roomID, evs := range data.RoomAccountData {
		if !f.Room.AccountData.AllowsRoom(roomID) {
			continue
		}
		if kept := keepTypes(evs, &f.Room.AccountData.EventFilter); len(kept) > 0 {
			if jr := room(roomID); jr != nil {
				jr.AccountData.Events = append(jr.AccountData.Events, kept...)
			}
		}
	}
	for roomID, evs := range data.Ephemeral {
		if !f.Room.Ephemeral.AllowsRoom(roomID) {
			continue
		}
		if kept := keepTypes(evs, &f.Room.Ephemeral.EventFilter); len(kept) > 0 {
			if jr := room(roomID); jr != nil {
				jr.Ephemeral.Events = append(jr.Ephemeral.Events, kept...)
			}
		}
	}
	return added
}

// keepTypes applies an EventFilter's type and sender rules to raw events.
func keepTypes(evs []json.RawMessage, f *EventFilter) []json.RawMessage {
	out := make([]json.RawMessage, 0, len(evs))
	for _, e := range evs {
		var head struct {
			Type   string `json:"type"`
			Sender string `json:"sender"`
		}
		_ = json.Unmarshal(e, &head)
		if f.Allows(head.Type, head.Sender) {
			out = append(out, e)
		}
	}
	if f.Limit != nil && len(out) > max(*f.Limit, 0) {
		out = out[:max(*f.Limit, 0)]
	}
	return out
}

func newJoinedRoom() *joinedRoom {
	return &joinedRoom{
		State:               stateList{Events: []roomserver.ClientEvent{}},
		AccountData:         emptyRaw(),
		Ephemeral:           emptyRaw(),
		Summary:             map[string]any{},
		UnreadNotifications: unreadCounts{},
	}
}

// timelineReq asks for a room's timeline between from and to.
type timelineReq struct {
	info     roomserver.RoomInfo
	from, to int64
	// rows, when haveRows, are every indexed event of (from, to], newest
	// first (recentEvents read them already).
	rows     []indexed
	haveRows bool
}

// recentEventsMax is the most new events an incremental sync reads in
// its first query (recentEvents).
const recentEventsMax = 100

// timelineRes is a room's timeline, and the room_seq just before it.
type timelineRes struct {
	tl       timeline
	startSeq int64
}

// timelineFor returns the room's timeline between from and to: the last
// limit events, whether older ones were left out, and the room_seq just
// before the timeline.
func (s *syncRequest) timelineFor(ctx context.Context, info roomserver.RoomInfo, from, to int64) (timeline, int64, error) {
	res, err := s.timelines(ctx, []timelineReq{{info: info, from: from, to: to}})
	if err != nil {
		return timeline{}, 0, err
	}
	r := res[info.ID]
	return r.tl, r.startSeq, nil
}

// timelines computes the timelines of many rooms with a few queries: one
// for the index rows of every room, and one per room version for the
// events the Reader's cache does not hold in the state the index shows
// (a sync of many rooms otherwise pays two round trips per room).
func (s *syncRequest) timelines(ctx context.Context, reqs []timelineReq) (map[string]timelineRes, error) {
	a := s.api
	limit := s.filter.TimelineLimit()
	ranges := make([]roomRange, 0, len(reqs))
	for _, r := range reqs {
		if !r.haveRows {
			ranges = append(ranges, roomRange{roomID: r.info.ID, from: r.from, to: r.to})
		}
	}
	rowsOf := make(map[string][]indexed, len(reqs))
	if len(ranges) > 0 {
		var err error
		if rowsOf, err = roomEventsMany(ctx, a.db, ranges, limit+1); err != nil {
			return nil, err
		}
	}
	for _, r := range reqs {
		if r.haveRows {
			rowsOf[r.info.ID] = slices.Clone(r.rows[:min(len(r.rows), limit+1)])
		}
	}
	var err error
	out := make(map[string]timelineRes, len(reqs))
	keysByVersion := map[*roomversion.Version][]roomserver.EventKey{}
	for _, r := range reqs {
		rows := rowsOf[r.info.ID]
		tl := timeline{Events: []roomserver.ClientEvent{}}
		if len(rows) > limit {
			tl.Limited = true
			rows = rows[:limit]
		} else if s.rules.DefaultFor(r.info.ID) {
			// The rows are every event of (from, to]: what they add to
			// the unread counts needs no query (when the index's
			// default-rules decisions hold for the user).
			tl.window = &unreadWindow{from: r.from, to: r.to, counts: s.countRows(rows)}
		}
		slices.Reverse(rows)
		rowsOf[r.info.ID] = rows
		startSeq := int64(0)
		if len(rows) > 0 {
			startSeq = rows[0].roomSeq - 1
		} else if startSeq, err = roomSeqAt(ctx, a.db, r.info.ID, r.to); err != nil {
			return nil, err
		}
		for _, ix := range rows {
			keysByVersion[r.info.Version] = append(keysByVersion[r.info.Version], roomserver.EventKey{ID: ix.eventID, RedactedBy: ix.redactedBy})
		}
		tl.PrevBatch = "r" + strconv.FormatInt(startSeq, 10)
		out[r.info.ID] = timelineRes{tl: tl, startSeq: startSeq}
	}
	evs := map[string]*roomserver.StoredEvent{}
	for v, keys := range keysByVersion {
		got, err := a.rooms.EventsByKey(ctx, v, keys)
		if err != nil {
			return nil, err
		}
		maps.Copy(evs, got)
	}
	nowMS := a.cfg.Now().UnixMilli()
	for _, r := range reqs {
		res := out[r.info.ID]
		rows := rowsOf[r.info.ID]
		// History visibility: the events after the user's last
		// membership change in the window are visible (the user was
		// joined, or this is the timeline up to their leave); those at
		// or before it are checked.
		checkTo := -1
		for i, ix := range rows {
			if ev := evs[ix.eventID]; ev != nil && ev.Type() == "m.room.member" {
				if sk, _ := ev.StateKey(); sk == s.userID {
					checkTo = i
				}
			}
		}
		var vis *roomserver.Visibility
		if checkTo >= 0 {
			if vis, err = a.rooms.Visibility(ctx, r.info.Version, r.info.ID, s.userID); err != nil {
				return nil, err
			}
		}
		for i, ix := range rows {
			ev := evs[ix.eventID]
			if ev == nil {
				continue
			}
			if i <= checkTo && !vis.Visible(ev) {
				continue
			}
			if !s.filter.Room.Timeline.Allows(ev.Type(), ev.Sender()) {
				continue
			}
			o := roomserver.FormatOptions{NowMS: nowMS, OmitRoomID: true}
			if ix.txnID != "" && ix.deviceID == s.deviceID && ev.Sender() == s.userID {
				o.TxnID = ix.txnID
			}
			res.tl.Events = append(res.tl.Events, roomserver.ToClient(ev, o))
		}
		out[r.info.ID] = res
	}
	return out, nil
}

// joinedRoom computes a joined room's part of the response around its
// timeline (from timelines).
func (s *syncRequest) joinedRoom(ctx context.Context, info roomserver.RoomInfo, tr timelineRes, from, to int64, full bool) (*joinedRoom, int, error) {
	a := s.api
	roomID := info.ID
	var err error
	jr := newJoinedRoom()
	tl, startSeq := tr.tl, tr.startSeq
	jr.Timeline = tl
	var state []*roomserver.StoredEvent
	switch {
	case full:
		var ok bool
		if state, ok = s.states[roomID]; !ok {
			state, err = a.rooms.StateAt(ctx, info.Version, roomID, startSeq)
		}
	case tl.Limited:
		var sinceSeq int64
		if sinceSeq, err = roomSeqAt(ctx, a.db, roomID, from); err == nil {
			state, err = a.rooms.StateChangedBetween(ctx, info.Version, roomID, sinceSeq, startSeq)
		}
	}
	if err != nil {
		return nil, 0, err
	}
	if s.filter.Room.State.LazyLoadMembers && !full {
		// Members of the timeline's senders, as of the timeline's start,
		// even when no state changed (spec "Lazy-loading room members").
		if state, err = s.addSenderMembers(ctx, info, startSeq, state, tl); err != nil {
			return nil, 0, err
		}
	}
	jr.State.Events = s.stateEvents(state, tl)
	if !full && len(tl.Events) == 0 && len(jr.State.Events) == 0 {
		// Nothing new in the room: it is left out of the response.
		return jr, 0, nil
	}
	switch {
	case full:
		// The whole state is at hand: the summary needs no query.
		jr.Summary = summaryOf(state, tl, s.userID)
	case summaryMayChange(state, tl):
		// The counts and heroes may be left out when they did not change
		// since the last sync; they can only change with these events.
		if jr.Summary, err = s.summary(ctx, info, startSeq); err != nil {
			return nil, 0, err
		}
	}
	if c, ok := s.unreads[roomID]; ok {
		jr.UnreadNotifications = c
	} else if jr.UnreadNotifications, err = s.unread(ctx, info, to, tl.window); err != nil {
		return nil, 0, err
	}
	return jr, len(tl.Events) + len(jr.State.Events), nil
}

// summaryTypes are the state event types the room summary depends on.
var summaryTypes = map[string]bool{"m.room.member": true, "m.room.name": true, "m.room.canonical_alias": true}

// summaryMayChange reports whether state or the timeline holds an event
// the room summary depends on.
func summaryMayChange(state []*roomserver.StoredEvent, tl timeline) bool {
	for _, ev := range state {
		if summaryTypes[ev.Type()] {
			return true
		}
	}
	for _, e := range tl.Events {
		if e.StateKey != nil && summaryTypes[e.Type] {
			return true
		}
	}
	return false
}

// summaryOf computes the room summary from the room's whole state before
// the timeline and the state events of the timeline, the same way summary
// does from the membership table.
func summaryOf(state []*roomserver.StoredEvent, tl timeline, self string) map[string]any {
	membership := map[string]string{}
	named := map[string]bool{}
	for _, ev := range state {
		sk, _ := ev.StateKey()
		switch ev.Type() {
		case "m.room.member":
			membership[sk] = ev.Membership()
		case "m.room.name":
			named["name"] = ev.Content().Get("name").StrOr("") != ""
		case "m.room.canonical_alias":
			named["alias"] = ev.Content().Get("alias").StrOr("") != ""
		}
	}
	for _, e := range tl.Events {
		if e.StateKey == nil {
			continue
		}
		switch e.Type {
		case "m.room.member":
			membership[*e.StateKey] = e.Content.Get("membership").StrOr("")
		case "m.room.name":
			named["name"] = e.Content.Get("name").StrOr("") != ""
		case "m.room.canonical_alias":
			named["alias"] = e.Content.Get("alias").StrOr("") != ""
		}
	}
	joined, invited := 0, 0
	var others []string
	for u, m := range membership {
		switch m {
		case "join":
			joined++
		case "invite":
			invited++
		default:
			continue
		}
		if u != self {
			others = append(others, u)
		}
	}
	sum := map[string]any{"m.joined_member_count": joined, "m.invited_member_count": invited}
	if !named["name"] && !named["alias"] {
		slices.Sort(others)
		sum["m.heroes"] = append([]string{}, others[:min(len(others), maxHeroes)]...)
	}
	return sum
}

// addSenderMembers adds to state the member event of every timeline sender
// it does not hold yet.
func (s *syncRequest) addSenderMembers(ctx context.Context, info roomserver.RoomInfo, seq int64, state []*roomserver.StoredEvent, tl timeline) ([]*roomserver.StoredEvent, error) {
	have := map[string]bool{}
	for _, ev := range state {
		if sk, _ := ev.StateKey(); ev.Type() == "m.room.member" {
			have[sk] = true
		}
	}
	for _, e := range tl.Events {
		if have[e.Sender] || e.Sender == s.userID {
			continue
		}
		have[e.Sender] = true
		ev, err := s.api.rooms.StateEvent(ctx, info.Version, info.ID, seq, "m.room.member", e.Sender)
		if errors.Is(err, roomserver.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		state = append(state, ev)
	}
	return state, nil
}

// maxHeroes bounds m.heroes.
const maxHeroes = 5

// summary is the room summary: member counts, and heroes when the room
// has neither a name nor a canonical alias (clients then name it after
// them). Counts and heroes are the room's current ones, which may be a
// little ahead of the response's position.
func (s *syncRequest) summary(ctx context.Context, info roomserver.RoomInfo, seq int64) (map[string]any, error) {
	joined, invited, heroes, err := s.api.rooms.MemberSummary(ctx, info.ID, s.userID, maxHeroes)
	if err != nil {
		return nil, err
	}
	sum := map[string]any{"m.joined_member_count": joined, "m.invited_member_count": invited}
	naming, err := s.api.rooms.StateAt(ctx, info.Version, info.ID, seq, "m.room.name", "m.room.canonical_alias")
	if err != nil {
		return nil, err
	}
	named := false
	for _, ev := range naming {
		named = named || ev.Content().Get("name").StrOr("") != "" || ev.Content().Get("alias").StrOr("") != ""
	}
	if !named {
		sum["m.heroes"] = heroes
	}
	return sum, nil
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
	lr := &leftRoom{State: stateList{Events: []roomserver.ClientEvent{}}, AccountData: emptyRaw()}
	info, err := s.roomInfo(ctx, roomID)
	if errors.Is(err, roomserver.ErrNotFound) {
		// A rejected invite to a room this server was never in: nothing
		// of it to show but that the user is out.
		lr.Timeline = timeline{Events: []roomserver.ClientEvent{}}
		return lr, nil
	}
	if err != nil {
		return nil, err
	}
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
	evs, err := s.outsiderState(ctx, roomID, to, false)
	if err != nil {
		return nil, err
	}
	return &invitedRoom{InviteState: strippedList{Events: evs}}, nil
}

// outsiderState is what an invited or knocking user is shown of a room,
// stripped: for an invite or knock of another server's room this server
// is not in, the state that came with it and the membership itself;
// otherwise the room's identifying state and the user's membership as of
// position to.
func (s *syncRequest) outsiderState(ctx context.Context, roomID string, to int64, knock bool) ([]strippedEvent, error) {
	a := s.api
	if r, err := a.rooms.RemoteInvite(ctx, roomID, s.userID); err != nil {
		return nil, err
	} else if r != nil && r.IsKnock() == knock {
		return remoteStripped(r), nil
	}
	info, err := s.roomInfo(ctx, roomID)
	if errors.Is(err, roomserver.ErrNotFound) {
		return []strippedEvent{}, nil
	}
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
	own, err := a.rooms.StateEvent(ctx, info.Version, roomID, seq, "m.room.member", s.userID)
	if err != nil && !errors.Is(err, roomserver.ErrNotFound) {
		return nil, err
	}
	if own != nil {
		state = append(state, own)
	}
	return strippedOf(state), nil
}

// strippedOf is the stripped form of state events (type, state_key,
// sender, content).
func strippedOf(state []*roomserver.StoredEvent) []strippedEvent {
	out := make([]strippedEvent, 0, len(state))
	for _, ev := range state {
		sk, _ := ev.StateKey()
		out = append(out, strippedEvent{Type: ev.Type(), StateKey: sk, Sender: ev.Sender(), Content: ev.Content()})
	}
	return out
}

// roomInfo is the room's ID and version (the head is not needed: /sync
// reads positions from its own index).
func (s *syncRequest) roomInfo(ctx context.Context, roomID string) (roomserver.RoomInfo, error) {
	v, err := s.api.rooms.Version(ctx, roomID)
	return roomserver.RoomInfo{ID: roomID, Version: v}, err
}

// remoteStripped is the invite_state or knock_state of an invite or a
// knock of another server's room this server is not in: the stripped form
// of the identifying state that server shared and of the membership
// itself.
func remoteStripped(inv *roomserver.RemoteInvite) []strippedEvent {
	out := []strippedEvent{}
	v, ok := roomversion.Lookup(inv.RoomVersion)
	if !ok {
		return out
	}
	for _, raw := range append(slices.Clone(inv.RoomState), inv.Event) {
		ev, err := event.Parse(v, raw)
		if err != nil || ev.RoomID() != inv.RoomID {
			continue
		}
		sk, isState := ev.StateKey()
		if !isState || (ev.Type() != "m.room.member" && !slices.Contains(strippedTypes, ev.Type())) {
			continue
		}
		if ev.Type() == "m.room.member" && sk != inv.UserID {
			continue
		}
		out = append(out, strippedEvent{Type: ev.Type(), StateKey: sk, Sender: ev.Sender(), Content: ev.Content()})
	}
	return out
}

// knockedRoom is the knock_state of a room the user knocks on
// (outsiderState).
func (s *syncRequest) knockedRoom(ctx context.Context, roomID string, to int64) (*knockedRoom, error) {
	evs, err := s.outsiderState(ctx, roomID, to, true)
	if err != nil {
		return nil, err
	}
	return &knockedRoom{KnockState: strippedList{Events: evs}}, nil
}
