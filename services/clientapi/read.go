package clientapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/matrix/roomversion"
	"github.com/axon-hs/axon/services/roomserver"
	"github.com/axon-hs/axon/services/syncapi"
)

// visibleUpTo returns the room and the last room_seq the user may read:
// everything while joined; up to their leave or ban after leaving; the
// whole room when its history is world-readable.
func (a *API) visibleUpTo(ctx context.Context, roomID, userID string) (roomserver.RoomInfo, int64, error) {
	sr, upTo, err := a.access(ctx, roomID, userID)
	return sr.info, upTo, err
}

// access is visibleUpTo with the seer of the user's reads in the room
// (never nil; its info is the room's).
func (a *API) access(ctx context.Context, roomID, userID string) (*seer, int64, error) {
	sr := &seer{a: a, userID: userID}
	info, err := a.rooms.Room(ctx, roomID)
	sr.info = info
	if errors.Is(err, roomserver.ErrNotFound) {
		return sr, 0, httpx.Forbidden("you are not in the room " + roomID)
	}
	if err != nil {
		return sr, 0, err
	}
	m, err := a.rooms.MembershipOf(ctx, roomID, userID)
	if err != nil {
		return sr, 0, err
	}
	// A former member or a reader of a world-readable room has every
	// event checked; a member, those up to their latest membership event.
	sr.freeAfter = info.HeadSeq
	switch m.Membership {
	case "join":
		sr.freeAfter = m.RoomSeq
		return sr, info.HeadSeq, nil
	case "leave", "ban":
		forgotten, err := a.forgotten(ctx, roomID, userID)
		if err != nil {
			return sr, 0, err
		}
		if !forgotten {
			return sr, m.RoomSeq, nil
		}
	}
	hv, err := a.rooms.StateEvent(ctx, info.Version, roomID, info.HeadSeq, "m.room.history_visibility", "")
	if err == nil {
		if v, _ := hv.Content().Get("history_visibility").Str(); v == "world_readable" {
			return sr, info.HeadSeq, nil
		}
	}
	return sr, 0, httpx.Forbidden("you are not in the room " + roomID)
}

// seer applies history visibility to the events a user reads, loading the
// room's visibility only for events at or before the user's latest
// membership change: after it, a user who may read the room at all
// (visibleUpTo) sees everything up to upTo.
type seer struct {
	a      *API
	info   roomserver.RoomInfo
	userID string
	vis    *roomserver.Visibility
	// freeAfter is the room_seq after which every event is visible.
	freeAfter int64
	loaded    bool
}

// visible reports whether the user may see e.
func (sr *seer) visible(ctx context.Context, e *roomserver.StoredEvent) (bool, error) {
	if e.RoomSeq > sr.freeAfter {
		return true, nil
	}
	if !sr.loaded {
		vis, err := sr.a.rooms.Visibility(ctx, sr.info.Version, sr.info.ID, sr.userID)
		if err != nil {
			return false, err
		}
		sr.vis, sr.loaded = vis, true
	}
	return sr.vis.Visible(e), nil
}

// keep returns the events of evs the user may see.
func (sr *seer) keep(ctx context.Context, evs []*roomserver.StoredEvent) ([]*roomserver.StoredEvent, error) {
	out := evs[:0:0]
	for _, e := range evs {
		ok, err := sr.visible(ctx, e)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, e)
		}
	}
	return out, nil
}

// visibleEvent returns the event of the room that the user may see, or
// M_NOT_FOUND.
func (a *API) visibleEvent(ctx context.Context, sr *seer, upTo int64, eventID string) (*roomserver.StoredEvent, error) {
	info := sr.info
	ev, err := a.rooms.Event(ctx, info.Version, eventID)
	notFound := httpx.NotFound("no such event in the room, or not visible to you")
	if errors.Is(err, roomserver.ErrNotFound) || (err == nil && (ev.RoomID() != info.ID || ev.RoomSeq > upTo)) {
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	if ok, err := sr.visible(ctx, ev); err != nil || !ok {
		if err == nil {
			err = notFound
		}
		return nil, err
	}
	return ev, nil
}

// readable validates {roomId} and returns the room and the last room_seq
// the user may read (visibleUpTo).
func (a *API) readable(r *http.Request, d Device) (string, roomserver.RoomInfo, int64, error) {
	roomID, err := roomIDParam(r)
	if err != nil {
		return "", roomserver.RoomInfo{}, 0, err
	}
	info, upTo, err := a.visibleUpTo(r.Context(), roomID, d.UserID)
	return roomID, info, upTo, err
}

// readableSeen is readable with the seer of the user's reads.
func (a *API) readableSeen(r *http.Request, d Device) (string, *seer, int64, error) {
	roomID, err := roomIDParam(r)
	if err != nil {
		return "", nil, 0, err
	}
	sr, upTo, err := a.access(r.Context(), roomID, d.UserID)
	return roomID, sr, upTo, err
}

// limitParam reads ?limit= (default 10, at most maxMessagesLimit).
func limitParam(r *http.Request) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return 10, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, httpx.InvalidParam("limit must be a non-negative integer")
	}
	return min(n, maxMessagesLimit), nil
}

func (a *API) client(e *roomserver.StoredEvent) roomserver.ClientEvent {
	return roomserver.ToClient(e, roomserver.FormatOptions{NowMS: a.cfg.Now().UnixMilli()})
}

func (a *API) clientAll(evs []*roomserver.StoredEvent) []roomserver.ClientEvent {
	out := make([]roomserver.ClientEvent, len(evs))
	for i, e := range evs {
		out[i] = a.client(e)
	}
	return out
}

func (a *API) getAllState(w http.ResponseWriter, r *http.Request, d Device) error {
	roomID, info, upTo, err := a.readable(r, d)
	if err != nil {
		return err
	}
	state, err := a.rooms.StateAt(r.Context(), info.Version, roomID, upTo)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, a.clientAll(state))
}

func (a *API) getState(w http.ResponseWriter, r *http.Request, d Device) error {
	roomID, info, upTo, err := a.readable(r, d)
	if err != nil {
		return err
	}
	ev, err := a.rooms.StateEvent(r.Context(), info.Version, roomID, upTo, r.PathValue("eventType"), r.PathValue("stateKey"))
	if errors.Is(err, roomserver.ErrNotFound) {
		return httpx.NotFound("the room has no such state")
	}
	if err != nil {
		return err
	}
	if r.URL.Query().Get("format") == "event" {
		return httpx.WriteJSON(w, http.StatusOK, a.client(ev))
	}
	return httpx.WriteJSON(w, http.StatusOK, ev.Content())
}

func (a *API) getEvent(w http.ResponseWriter, r *http.Request, d Device) error {
	_, sr, upTo, err := a.readableSeen(r, d)
	if err != nil {
		return err
	}
	ev, err := a.visibleEvent(r.Context(), sr, upTo, r.PathValue("eventId"))
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, a.client(ev))
}

func (a *API) members(w http.ResponseWriter, r *http.Request, d Device) error {
	roomID, info, upTo, err := a.readable(r, d)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	at := upTo
	if tok := q.Get("at"); tok != "" {
		seq, err := a.pagePos(r.Context(), roomID, tok)
		if err != nil {
			return err
		}
		at = min(seq, upTo)
	}
	state, err := a.rooms.StateAt(r.Context(), info.Version, roomID, at, "m.room.member")
	if err != nil {
		return err
	}
	want, not := q.Get("membership"), q.Get("not_membership")
	out := []roomserver.ClientEvent{}
	for _, ev := range state {
		m := ev.Membership()
		// With both filters an event passes when either does (spec:
		// "the two filters are combined with OR").
		keep := true
		switch {
		case want != "" && not != "":
			keep = m == want || m != not
		case want != "":
			keep = m == want
		case not != "":
			keep = m != not
		}
		if keep {
			out = append(out, a.client(ev))
		}
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"chunk": out})
}

func (a *API) joinedMembers(w http.ResponseWriter, r *http.Request, d Device) error {
	roomID, info, upTo, err := a.readable(r, d)
	if err != nil {
		return err
	}
	state, err := a.rooms.StateAt(r.Context(), info.Version, roomID, upTo, "m.room.member")
	if err != nil {
		return err
	}
	type member struct {
		DisplayName *string `json:"display_name,omitempty"`
		AvatarURL   *string `json:"avatar_url,omitempty"`
	}
	joined := map[string]member{}
	for _, ev := range state {
		if ev.Membership() != "join" {
			continue
		}
		sk, _ := ev.StateKey()
		var m member
		if s, ok := ev.Content().Get("displayname").Str(); ok {
			m.DisplayName = &s
		}
		if s, ok := ev.Content().Get("avatar_url").Str(); ok {
			m.AvatarURL = &s
		}
		joined[sk] = m
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"joined": joined})
}

func (a *API) joinedRooms(w http.ResponseWriter, r *http.Request, d Device) error {
	rooms, err := a.rooms.RoomsOf(r.Context(), d.UserID, "join")
	if err != nil {
		return err
	}
	if rooms == nil {
		rooms = []string{}
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"joined_rooms": rooms})
}

// maxMessagesLimit bounds one page of /messages.
const maxMessagesLimit = 1000

// pagePos turns a pagination token into a room_seq: "r<seq>" tokens are
// room positions (the point after that event), "s…" tokens are sync tokens.
func (a *API) pagePos(ctx context.Context, roomID, tok string) (int64, error) {
	switch {
	case strings.HasPrefix(tok, "r"):
		// Positions from 1 up are the timeline's; 0 and below, the
		// history fetched from other servers (roomserver History).
		n, err := strconv.ParseInt(tok[1:], 10, 64)
		if err != nil || n < historyFloor {
			return 0, httpx.InvalidParam("not a pagination token: " + tok)
		}
		return n, nil
	case strings.HasPrefix(tok, "s"):
		t, ok := syncapi.ParseToken(tok)
		if !ok {
			return 0, httpx.InvalidParam("not a pagination token: " + tok)
		}
		return syncapi.RoomSeqAt(ctx, a.db, roomID, t.Events)
	}
	return 0, httpx.InvalidParam("not a pagination token: " + tok)
}

func (a *API) messages(w http.ResponseWriter, r *http.Request, d Device) error {
	roomID, sr, upTo, err := a.readableSeen(r, d)
	if err != nil {
		return err
	}
	info := sr.info
	q := r.URL.Query()
	dir := q.Get("dir")
	if dir != "b" && dir != "f" {
		return httpx.InvalidParam("dir must be b or f")
	}
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	var filter syncapi.RoomEventFilter
	if s := q.Get("filter"); s != "" {
		if err := decodeFilter(s, &filter); err != nil {
			return err
		}
	}
	var from int64
	if tok := q.Get("from"); tok != "" {
		if from, err = a.pagePos(r.Context(), roomID, tok); err != nil {
			return err
		}
	} else if dir == "b" {
		from = upTo
	}
	to := int64(noPos)
	if tok := q.Get("to"); tok != "" {
		if to, err = a.pagePos(r.Context(), roomID, tok); err != nil {
			return err
		}
	}
	var evs []*roomserver.StoredEvent
	var end int64
	more := false // whether to give an end token however many came
	if dir == "b" {
		lo := int64(historyFloor)
		if to != noPos {
			lo = to + 1
		}
		evs, more, err = a.pageBack(r.Context(), info.Version, roomID, lo, min(from, upTo), limit)
		end = lo - 1
		if len(evs) > 0 {
			end = evs[len(evs)-1].RoomSeq - 1
		}
	} else {
		hi := upTo
		if to != noPos {
			hi = min(hi, to)
		}
		evs, err = a.pageForward(r.Context(), info.Version, roomID, from+1, hi, limit)
		end = hi
		if len(evs) > 0 {
			end = evs[len(evs)-1].RoomSeq
		}
	}
	if err != nil {
		return err
	}
	seen, err := sr.keep(r.Context(), evs)
	if err != nil {
		return err
	}
	chunk := []roomserver.ClientEvent{}
	senders := map[string]bool{}
	for _, e := range seen {
		if !filter.Allows(e.Type(), e.Sender()) {
			continue
		}
		chunk = append(chunk, a.client(e))
		senders[e.Sender()] = true
	}
	resp := map[string]any{"chunk": chunk, "start": q.Get("from")}
	if resp["start"] == "" {
		resp["start"] = "r" + strconv.FormatInt(from, 10)
	}
	// An end token only while there may be more in that direction.
	if (len(evs) == limit && limit > 0) || more {
		resp["end"] = "r" + strconv.FormatInt(end, 10)
	}
	if filter.LazyLoadMembers && len(senders) > 0 {
		var state []roomserver.ClientEvent
		names := make([]string, 0, len(senders))
		for s := range senders {
			names = append(names, s)
		}
		slices.Sort(names)
		for _, s := range names {
			ev, err := a.rooms.StateEvent(r.Context(), info.Version, roomID, upTo, "m.room.member", s)
			if err == nil {
				state = append(state, a.client(ev))
			}
		}
		resp["state"] = state
	}
	return httpx.WriteJSON(w, http.StatusOK, resp)
}

func (a *API) context(w http.ResponseWriter, r *http.Request, d Device) error {
	roomID, sr, upTo, err := a.readableSeen(r, d)
	if err != nil {
		return err
	}
	info := sr.info
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	var filter syncapi.RoomEventFilter
	if s := r.URL.Query().Get("filter"); s != "" {
		if err := decodeFilter(s, &filter); err != nil {
			return err
		}
	}
	ev, err := a.visibleEvent(r.Context(), sr, upTo, r.PathValue("eventId"))
	if err != nil {
		return err
	}
	before, err := a.rooms.Events(r.Context(), info.Version, roomID, 1, ev.RoomSeq-1, limit/2, true)
	if err != nil {
		return err
	}
	after, err := a.rooms.Events(r.Context(), info.Version, roomID, ev.RoomSeq+1, upTo, limit-limit/2, false)
	if err != nil {
		return err
	}
	startSeq, endSeq := ev.RoomSeq-1, ev.RoomSeq
	if len(before) > 0 {
		startSeq = before[len(before)-1].RoomSeq - 1
	}
	if len(after) > 0 {
		endSeq = after[len(after)-1].RoomSeq
	}
	lastSeq := ev.RoomSeq
	if len(after) > 0 {
		lastSeq = after[len(after)-1].RoomSeq
	}
	state, err := a.rooms.StateAt(r.Context(), info.Version, roomID, lastSeq)
	if err != nil {
		return err
	}
	keep := func(evs []*roomserver.StoredEvent) ([]*roomserver.StoredEvent, error) {
		evs, err := sr.keep(r.Context(), evs)
		return slices.DeleteFunc(evs, func(e *roomserver.StoredEvent) bool { return !filter.Allows(e.Type(), e.Sender()) }), err
	}
	if before, err = keep(before); err != nil {
		return err
	}
	if after, err = keep(after); err != nil {
		return err
	}
	if filter.LazyLoadMembers {
		senders := map[string]bool{ev.Sender(): true, d.UserID: true}
		for _, e := range append(slices.Clone(before), after...) {
			senders[e.Sender()] = true
		}
		state = slices.DeleteFunc(state, func(e *roomserver.StoredEvent) bool {
			sk, _ := e.StateKey()
			return e.Type() == "m.room.member" && !senders[sk]
		})
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{
		"event":         a.client(ev),
		"events_before": a.clientAll(before),
		"events_after":  a.clientAll(after),
		"start":         "r" + strconv.FormatInt(startSeq, 10),
		"end":           "r" + strconv.FormatInt(endSeq, 10),
		"state":         a.clientAll(state),
	})
}

// Pagination positions: the timeline's room_seq from 1 up, the history's
// hist_seq from 0 down (never below historyFloor); noPos is none.
const (
	historyFloor = -1 << 60
	noPos        = historyFloor - 1
)

// pageBack returns the room's events at positions [lo, hi], newest first,
// at most limit: the timeline, then the history. When that runs out
// before limit, the history is extended from other servers once
// (Config.Backfill); more is then true if it grew, so that the client
// keeps paging even on a short page.
func (a *API) pageBack(ctx context.Context, v *roomversion.Version, roomID string, lo, hi int64, limit int) (evs []*roomserver.StoredEvent, more bool, err error) {
	if hi >= 1 {
		if evs, err = a.rooms.Events(ctx, v, roomID, max(lo, 1), hi, limit, true); err != nil {
			return nil, false, err
		}
	}
	if len(evs) >= limit || lo > 0 {
		return evs, false, nil
	}
	from := min(hi, 0)
	for round := 0; ; round++ {
		if len(evs) > 0 && evs[len(evs)-1].RoomSeq <= 0 {
			from = evs[len(evs)-1].RoomSeq - 1
		}
		hist, err := a.rooms.History(ctx, v, roomID, lo, from, limit-len(evs), true)
		if err != nil {
			return nil, false, err
		}
		evs = append(evs, hist...)
		if len(evs) >= limit || round == 1 || a.cfg.Backfill == nil {
			return evs, more, nil
		}
		added, err := a.cfg.Backfill(ctx, roomID)
		if err != nil {
			// The page is served from what this server has.
			a.cfg.Logger.Warn("clientapi: backfill failed", "room_id", roomID, "err", err)
			return evs, false, nil
		}
		if !added {
			return evs, false, nil
		}
		more = true
	}
}

// pageForward returns the room's events at positions [lo, hi], oldest
// first, at most limit: the history, then the timeline.
func (a *API) pageForward(ctx context.Context, v *roomversion.Version, roomID string, lo, hi int64, limit int) ([]*roomserver.StoredEvent, error) {
	var evs []*roomserver.StoredEvent
	if lo <= 0 {
		hist, err := a.rooms.History(ctx, v, roomID, lo, min(hi, 0), limit, false)
		if err != nil {
			return nil, err
		}
		evs = hist
	}
	if len(evs) >= limit || hi < 1 {
		return evs, nil
	}
	tl, err := a.rooms.Events(ctx, v, roomID, max(lo, 1), hi, limit-len(evs), false)
	return append(evs, tl...), err
}
