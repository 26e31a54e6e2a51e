package roomserver

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"

	"github.com/axon-hs/axon/matrix/auth"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/stateres"
)

// Outcomes of a received PDU (Result.PDUs): "" when accepted, else one of
// these, the last two followed by the reason.
const (
	// OutcomeMissingAuth: not stored; the writer should fetch the auth
	// events (/event_auth) and send them as outliers.
	OutcomeMissingAuth = "auth events are unknown to this server"
	// OutcomeMissingPrev: not stored; the writer should fetch the missing
	// prev_events (/get_missing_events) and send them first.
	OutcomeMissingPrev = "prev_events are unknown to this server"
	OutcomeRejected    = "rejected: "
	OutcomeSoftFailed  = "soft-failed: "
)

var (
	errMissingAuth = errors.New(OutcomeMissingAuth)
	errMissingPrev = errors.New(OutcomeMissingPrev)
)

// applyRemote stages the events another server sent (Input.PDUs, with
// Input.Outliers). Unlike a client's Input it is not atomic: each PDU is
// accepted, rejected, soft-failed or refused on its own, as the
// Server-Server API's per-PDU results say.
func (w *partitionWorker) applyRemote(ctx context.Context, b *batch, in *Input) (Result, error) {
	res := Result{RoomID: in.RoomID, PDUs: map[string]string{}}
	rw, err := w.existingRoomWrite(ctx, b, in.RoomID)
	if err != nil || rw == nil {
		if err == nil {
			return fail("M_NOT_FOUND", "this server is not in room "+in.RoomID), nil
		}
		return Result{}, err
	}
	r := rw.r
	ds := newDAGSource(w, r, rw)
	for _, raw := range in.Outliers {
		ev, err := event.Parse(r.version, raw)
		if err != nil || ev.RoomID() != r.id {
			continue // the writer checked them; a bad one is simply not stored
		}
		if err := w.stageOutlier(ctx, ds, ev); err != nil {
			return Result{}, err
		}
	}
	evs := make([]*event.Event, 0, len(in.PDUs))
	var lookup []string
	for _, raw := range in.PDUs {
		ev, err := event.Parse(r.version, raw)
		if err != nil {
			continue // the writer checked the format; there is no ID to answer
		}
		evs = append(evs, ev)
		if ev.RoomID() == r.id {
			lookup = append(lookup, ev.ID())
			lookup = append(lookup, ev.PrevEvents()...)
		}
	}
	if err := ds.prefetchTimeline(ctx, lookup); err != nil {
		return Result{}, err
	}
	for _, ev := range evs {
		if ev.RoomID() != r.id {
			res.PDUs[ev.ID()] = "the event is not in room " + r.id
			continue
		}
		outcome, err := w.applyPDU(ctx, ds, ev, in.GapStates[ev.ID()])
		if err != nil {
			return Result{}, err
		}
		res.PDUs[ev.ID()] = outcome
	}
	r.mark()
	if len(rw.events) > 0 && b.writes[r.id] == nil {
		b.writes[r.id] = rw
		b.order = append(b.order, rw)
	}
	return res, nil
}

// existingRoomWrite returns the batch's write of a room this server is in,
// a new one when the batch has none yet; nil when the room is unknown.
func (w *partitionWorker) existingRoomWrite(ctx context.Context, b *batch, roomID string) (*roomWrite, error) {
	if rw := b.writes[roomID]; rw != nil {
		return rw, nil
	}
	r, err := w.room(ctx, roomID)
	if errors.Is(err, errNoRoom) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &roomWrite{r: r, fromSeq: r.committedSeq}, nil
}

// applyPDU runs the checks on receipt of a PDU (spec "Checks performed on
// receipt of a PDU", steps 4 to 6; the writer did 1 to 3) and stages the
// event. The outcome is "" for an event persisted as accepted, or says why
// it was rejected, soft-failed (both persisted) or not persisted at all.
//
// gapState, when not nil, is the state before the event to use when its
// prev_events are unknown (Input.GapStates).
func (w *partitionWorker) applyPDU(ctx context.Context, ds *dagSource, ev *event.Event, gapState []string) (string, error) {
	r, rw := ds.r, ds.rw
	if known, err := ds.inTimeline(ctx, ev.ID()); err != nil || known {
		return "", err
	}
	// 4. The auth events: known, the right ones, and allowing the event.
	authEvs, err := ds.events(ctx, ev.AuthEvents())
	if err != nil {
		return "", err
	}
	if len(authEvs) != len(ev.AuthEvents()) {
		return errMissingAuth.Error(), nil
	}
	rejected := ""
	if err := auth.CheckAuthEvents(ev, authEvs, ds.Rejected); err != nil {
		rejected = err.Error()
	} else if err := auth.Check(ev, authState(r, authEvs)); err != nil {
		rejected = err.Error()
	}
	// 5. The state before the event.
	prevs := ev.PrevEvents()
	gap := false
	for _, p := range prevs {
		known, err := ds.inTimeline(ctx, p)
		if err != nil {
			return "", err
		}
		if !known {
			if gapState == nil {
				return errMissingPrev.Error(), nil
			}
			gap = true
		}
	}
	linear := !gap && len(r.extremities) == 1 && len(prevs) == 1 && prevs[0] == r.extremities[0].ID()
	var before stateres.StateMap
	var beforeState auth.State = r
	if gap {
		// Across a gap: the state another server says the event follows.
		evs, err := ds.events(ctx, gapState)
		if err != nil {
			return "", err
		}
		if len(evs) != len(gapState) {
			return "the state before the event across a gap is not all known", nil
		}
		before = stateres.StateMap{}
		for _, s := range evs {
			sk, isState := s.StateKey()
			if !isState || s.RoomID() != r.id {
				return "the state before the event across a gap holds a non-state event", nil
			}
			before[auth.StateKey{Type: s.Type(), StateKey: sk}] = s.ID()
		}
		if beforeState, err = ds.materialise(ctx, before); err != nil {
			return "", err
		}
	} else if !linear {
		states := make([]stateres.StateMap, 0, len(prevs))
		for _, p := range prevs {
			s, err := ds.stateAfter(ctx, p)
			if err != nil {
				return "", err
			}
			states = append(states, s)
		}
		if before, err = ds.resolve(ctx, states); err != nil {
			if errors.Is(err, stateres.ErrMissingEvent) {
				return "the state before the event cannot be resolved: " + err.Error(), nil
			}
			return "", err
		}
		if beforeState, err = ds.materialise(ctx, before); err != nil {
			return "", err
		}
	}
	if rejected == "" {
		if err := auth.Check(ev, beforeState); err != nil {
			rejected = err.Error()
		}
	}
	// 6. Soft failure: allowed at its place in the DAG but not against
	// the room's current state.
	softFailed := ""
	if rejected == "" && !linear {
		if err := auth.Check(ev, r); err != nil {
			softFailed = err.Error()
		}
	}

	p := &persisted{inputSeq: w.curSeq, ev: ev, remote: true, rejected: rejected != "", softFailed: softFailed != ""}
	ds.known[ev.ID()] = ev
	if !linear {
		cur := stateMapOf(r.state)
		if !maps.Equal(cur, before) {
			p.before = before
			p.delta = deltaOf(cur, before)
		}
	}
	extremities := r.extremities
	var changes []stateChange
	if rejected == "" && softFailed == "" {
		extremities = make([]*event.Event, 0, len(r.extremities)+1)
		for _, x := range r.extremities {
			if !slices.Contains(prevs, x.ID()) {
				extremities = append(extremities, x)
			}
		}
		extremities = append(extremities, ev)
		after := stateAfter(before, ev, linear, r)
		var now stateres.StateMap
		if len(extremities) == 1 {
			now = after
		} else {
			states := []stateres.StateMap{after}
			for _, x := range extremities[:len(extremities)-1] {
				s, err := ds.stateAfter(ctx, x.ID())
				if err != nil {
					return "", err
				}
				states = append(states, s)
			}
			if now, err = ds.resolve(ctx, states); err != nil {
				if errors.Is(err, stateres.ErrMissingEvent) {
					return "the room's new state cannot be resolved: " + err.Error(), nil
				}
				return "", err
			}
		}
		if changes, err = ds.diff(ctx, stateMapOf(r.state), now); err != nil {
			return "", err
		}
	}
	if target := ev.Redacts(); target != "" && ev.Type() == "m.room.redaction" && rejected == "" && softFailed == "" {
		tevs, err := ds.events(ctx, []string{target})
		if err != nil {
			return "", err
		}
		if len(tevs) == 1 && auth.RedactionApplies(ev, tevs[0], beforeState) {
			p.redacts = target
		}
	}
	r.applyChanges(changes, extremities)
	p.roomSeq = r.headSeq
	p.changes = changes
	w.finishRemote(r, p)
	rw.events = append(rw.events, p)
	ds.stage(p)
	switch {
	case rejected != "":
		return OutcomeRejected + rejected, nil
	case softFailed != "":
		return OutcomeSoftFailed + softFailed, nil
	}
	return "", nil
}

// stageOutlier stores ev as an outlier unless it is known already.
func (w *partitionWorker) stageOutlier(ctx context.Context, ds *dagSource, ev *event.Event) error {
	if ds.known[ev.ID()] != nil {
		return nil
	}
	if found, err := ds.events(ctx, []string{ev.ID()}); err != nil || len(found) > 0 {
		return err
	}
	r := ds.r
	r.applyChanges(nil, r.extremities)
	p := &persisted{inputSeq: w.curSeq, ev: ev, roomSeq: r.headSeq, remote: true, outlier: true}
	ds.rw.events = append(ds.rw.events, p)
	ds.known[ev.ID()] = ev
	return nil
}

// finishRemote writes p's Output.
func (w *partitionWorker) finishRemote(r *room, p *persisted) {
	ev := p.ev
	o := Output{RoomID: r.id, RoomVersion: r.version.ID, RoomSeq: p.roomSeq, EventID: ev.ID(), PDU: p.canonical(),
		Rejected: p.rejected, SoftFailed: p.softFailed, Redacts: p.redacts}
	for _, c := range p.changes {
		if c.ev == ev {
			o.StateChanged = true
		}
		d := StateDelta{Type: c.key.Type, StateKey: c.key.StateKey}
		if c.ev != nil {
			d.EventID = c.ev.ID()
			if c.key.Type == "m.room.member" {
				d.Membership, d.Sender = c.ev.Membership(), c.ev.Sender()
			}
		}
		o.StateDelta = append(o.StateDelta, d)
	}
	p.out = o.Encode()
}

// authState is the state formed by an event's auth events; in room
// version 12, where auth_events never name the create event, the room's
// create event is added.
func authState(r *room, authEvs []*event.Event) auth.State {
	m := auth.MapState{}
	for _, a := range authEvs {
		sk, _ := a.StateKey()
		m[auth.StateKey{Type: a.Type(), StateKey: sk}] = a
	}
	createKey := auth.StateKey{Type: "m.room.create"}
	if _, ok := m[createKey]; !ok {
		if c := r.state[createKey]; c != nil {
			m[createKey] = c
		}
	}
	return m
}

// stateAfter is the state after ev: before (or the room's current state
// when linear) plus ev when it is a state event.
func stateAfter(before stateres.StateMap, ev *event.Event, linear bool, r *room) stateres.StateMap {
	var out stateres.StateMap
	if linear {
		out = stateMapOf(r.state)
	} else {
		out = make(stateres.StateMap, len(before)+1)
		for k, v := range before {
			out[k] = v
		}
	}
	if sk, ok := ev.StateKey(); ok {
		out[auth.StateKey{Type: ev.Type(), StateKey: sk}] = ev.ID()
	}
	return out
}

// stateMapOf returns the event IDs of a state.
func stateMapOf(s map[auth.StateKey]*event.Event) stateres.StateMap {
	out := make(stateres.StateMap, len(s))
	for k, ev := range s {
		out[k] = ev.ID()
	}
	return out
}

// deltaOf lists the keys whose value differs from from to to, as stored
// in event_state_deltas ("" for a key to has not).
func deltaOf(from, to stateres.StateMap) []deltaRow {
	var out []deltaRow
	for k, id := range to {
		if from[k] != id {
			out = append(out, deltaRow{key: k, eventID: id})
		}
	}
	for k := range from {
		if _, ok := to[k]; !ok {
			out = append(out, deltaRow{key: k})
		}
	}
	slices.SortFunc(out, func(a, b deltaRow) int { return compareKeys(a.key, b.key) })
	return out
}

// deltaRow is one row of event_state_deltas.
type deltaRow struct {
	key     auth.StateKey
	eventID string
}

func compareKeys(a, b auth.StateKey) int {
	if c := strings.Compare(a.Type, b.Type); c != 0 {
		return c
	}
	return strings.Compare(a.StateKey, b.StateKey)
}

func sortChanges(cs []stateChange) {
	slices.SortFunc(cs, func(a, b stateChange) int { return compareKeys(a.key, b.key) })
}
