package roomserver

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/axon-hs/axon/matrix/auth"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/roomversion"
	"github.com/axon-hs/axon/matrix/stateres"
)

// applyJoin creates a room this server joins through another one, from
// the state the resident server answered (Input.Join): the state and its
// auth chain become outliers, each checked against its own auth events;
// the join event, allowed by that state, is the room's first timeline
// event, whose state before is the answered state.
func (w *partitionWorker) applyJoin(ctx context.Context, b *batch, in *Input) (Result, error) {
	if b.writes[in.RoomID] != nil {
		return fail("M_UNKNOWN", "the room is being written already; retry"), nil
	}
	switch _, err := w.room(ctx, in.RoomID); {
	case err == nil:
		// Known already (a rejoin): the join is a received event like
		// any, after the events missed since this server left.
		return w.applyRemote(ctx, b, &Input{RoomID: in.RoomID, PDUs: append(byDepth(in.RoomVersion, in.Join.Missed), in.Join.Event),
			Outliers: append(slices.Clone(in.Join.State), in.Join.AuthChain...), ReplyTo: in.ReplyTo})
	case !errors.Is(err, errNoRoom):
		return Result{}, err
	}
	v, ok := roomversion.Lookup(in.RoomVersion)
	if !ok {
		return fail("M_UNSUPPORTED_ROOM_VERSION", "unsupported room version "+in.RoomVersion), nil
	}
	join, err := event.Parse(v, in.Join.Event)
	if err != nil || join.RoomID() != in.RoomID || join.Type() != "m.room.member" || join.Membership() != "join" {
		return fail("M_BAD_JSON", "the join event is not a join of room "+in.RoomID), nil
	}
	// Every event of the answer, once, oldest first.
	byID := map[string]*event.Event{}
	stateIDs := map[string]bool{}
	add := func(raw []byte, state bool) {
		ev, err := event.Parse(v, raw)
		if err != nil || ev.RoomID() != in.RoomID {
			return
		}
		byID[ev.ID()] = ev
		if state {
			stateIDs[ev.ID()] = true
		}
	}
	for _, raw := range in.Join.AuthChain {
		add(raw, false)
	}
	for _, raw := range in.Join.State {
		add(raw, true)
	}
	all := make([]*event.Event, 0, len(byID))
	for _, ev := range byID {
		all = append(all, ev)
	}
	slices.SortFunc(all, func(a, b *event.Event) int {
		if c := cmp.Compare(a.Depth(), b.Depth()); c != 0 {
			return c
		}
		return strings.Compare(a.ID(), b.ID())
	})
	// The create event names the room.
	var create *event.Event
	for _, ev := range all {
		if ev.StateKeyIs("m.room.create", "") {
			create = ev
		}
	}
	if create == nil {
		return fail("M_BAD_JSON", "the room state has no m.room.create event"), nil
	}
	if v.RoomIDFromCreate && "!"+strings.TrimPrefix(create.ID(), "$") != in.RoomID {
		return fail("M_BAD_JSON", "the room ID is not the one of its create event"), nil
	}
	createKey := auth.StateKey{Type: "m.room.create"}
	// Each event is checked against its own auth events; a rejected one
	// takes no part in the state.
	rejected := map[string]bool{}
	isRejected := func(id string) bool { return rejected[id] }
	for _, ev := range all {
		var authEvs []*event.Event
		for _, a := range ev.AuthEvents() {
			if x := byID[a]; x != nil {
				authEvs = append(authEvs, x)
			}
		}
		as := auth.MapState{createKey: create}
		for _, a := range authEvs {
			sk, _ := a.StateKey()
			as[auth.StateKey{Type: a.Type(), StateKey: sk}] = a
		}
		switch {
		case len(authEvs) != len(ev.AuthEvents()):
			rejected[ev.ID()] = true
		case auth.CheckAuthEvents(ev, authEvs, isRejected) != nil:
			rejected[ev.ID()] = true
		case auth.Check(ev, as) != nil:
			rejected[ev.ID()] = true
		}
	}
	state := map[auth.StateKey]*event.Event{}
	for id := range stateIDs {
		ev := byID[id]
		sk, isState := ev.StateKey()
		if !isState || rejected[id] {
			continue
		}
		k := auth.StateKey{Type: ev.Type(), StateKey: sk}
		if state[k] != nil {
			return fail("M_BAD_JSON", "the room state names two events for "+k.Type+" "+k.StateKey), nil
		}
		state[k] = ev
	}
	if state[createKey] == nil {
		return fail("M_BAD_JSON", "the room state has no valid m.room.create event"), nil
	}
	if err := auth.Check(join, auth.MapState(state)); err != nil {
		return fail("M_FORBIDDEN", "the room's state does not allow the join: "+err.Error()), nil
	}

	r := &room{id: in.RoomID, version: v, state: map[auth.StateKey]*event.Event{}}
	rw := &roomWrite{r: r, create: true}
	for _, ev := range all {
		if ev.ID() == join.ID() {
			continue
		}
		r.applyChanges(nil, nil)
		rw.events = append(rw.events, &persisted{inputSeq: w.curSeq, ev: ev, roomSeq: r.headSeq, remote: true,
			outlier: true, rejected: rejected[ev.ID()]})
	}
	before := stateMapOf(state)
	after := map[auth.StateKey]*event.Event{}
	for k, ev := range state {
		after[k] = ev
	}
	sk, _ := join.StateKey()
	after[auth.StateKey{Type: "m.room.member", StateKey: sk}] = join
	changes := make([]stateChange, 0, len(after))
	for k, ev := range after {
		changes = append(changes, stateChange{key: k, ev: ev})
	}
	sortChanges(changes)
	r.applyChanges(changes, []*event.Event{join})
	p := &persisted{inputSeq: w.curSeq, ev: join, roomSeq: r.headSeq, remote: true, changes: changes,
		before: before, delta: deltaOf(stateres.StateMap{}, before)}
	w.finishRemote(r, p)
	rw.events = append(rw.events, p)
	r.mark()
	r.committedSeq = 0
	b.writes[r.id] = rw
	b.order = append(b.order, rw)
	w.s.cache.put(r)
	return Result{RoomID: r.id, EventIDs: []string{join.ID()}}, nil
}

// byDepth returns events sorted by depth, then ID, so that each comes
// after those it cites; unparsable ones are left out.
func byDepth(version string, raws []json.RawMessage) []json.RawMessage {
	v, ok := roomversion.Lookup(version)
	if !ok || len(raws) == 0 {
		return nil
	}
	evs := make([]*event.Event, 0, len(raws))
	for _, raw := range raws {
		if ev, err := event.Parse(v, raw); err == nil {
			evs = append(evs, ev)
		}
	}
	slices.SortFunc(evs, func(a, b *event.Event) int {
		if c := cmp.Compare(a.Depth(), b.Depth()); c != 0 {
			return c
		}
		return strings.Compare(a.ID(), b.ID())
	})
	out := make([]json.RawMessage, len(evs))
	for i, ev := range evs {
		out[i] = ev.Canonical()
	}
	return out
}
