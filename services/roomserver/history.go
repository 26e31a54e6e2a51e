package roomserver

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"

	"github.com/axon-hs/axon/matrix/auth"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// historyRow is one event added to a room's history (history_events).
type historyRow struct {
	seq     int64
	eventID string
}

// applyBackfill stores events from before the start of the room's
// timeline here (Input.Backfill), newest first, below what the history
// holds: each must be allowed by its auth events, which must be known.
// They become outliers listed in history_events; the room's state,
// extremities and timeline do not change, and nothing is published.
func (w *partitionWorker) applyBackfill(ctx context.Context, b *batch, in *Input) (Result, error) {
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
	var evs []*event.Event
	for _, raw := range in.Backfill {
		ev, err := event.Parse(r.version, raw)
		if err != nil {
			continue
		}
		if ev.RoomID() != r.id {
			res.PDUs[ev.ID()] = "the event is not in room " + r.id
			continue
		}
		evs = append(evs, ev)
	}
	slices.SortFunc(evs, func(a, b *event.Event) int {
		if c := cmp.Compare(b.Depth(), a.Depth()); c != 0 {
			return c
		}
		return strings.Compare(b.ID(), a.ID())
	})
	next, err := w.nextHistorySeq(ctx, rw)
	if err != nil {
		return Result{}, err
	}
	for _, ev := range evs {
		shown, err := w.shown(ctx, ds, rw, ev.ID())
		if err != nil {
			return Result{}, err
		}
		if shown {
			res.PDUs[ev.ID()] = ""
			continue
		}
		authEvs, err := ds.events(ctx, ev.AuthEvents())
		if err != nil {
			return Result{}, err
		}
		if len(authEvs) != len(ev.AuthEvents()) {
			res.PDUs[ev.ID()] = OutcomeMissingAuth
			continue
		}
		if err := auth.CheckAuthEvents(ev, authEvs, ds.Rejected); err != nil {
			res.PDUs[ev.ID()] = OutcomeRejected + err.Error()
			continue
		}
		if err := auth.Check(ev, authState(r, authEvs)); err != nil {
			res.PDUs[ev.ID()] = OutcomeRejected + err.Error()
			continue
		}
		if err := w.stageOutlier(ctx, ds, ev); err != nil {
			return Result{}, err
		}
		rw.history = append(rw.history, historyRow{seq: next, eventID: ev.ID()})
		next--
		res.PDUs[ev.ID()] = ""
	}
	r.mark()
	if (len(rw.events) > 0 || len(rw.history) > 0) && b.writes[r.id] == nil {
		b.writes[r.id] = rw
		b.order = append(b.order, rw)
	}
	return res, nil
}

// nextHistorySeq is the hist_seq below everything the room's history
// holds, staged rows included.
func (w *partitionWorker) nextHistorySeq(ctx context.Context, rw *roomWrite) (int64, error) {
	if n := len(rw.history); n > 0 {
		return rw.history[n-1].seq - 1, nil
	}
	var least sql.NullInt64
	if err := w.s.db.QueryRow(ctx, `SELECT MIN(hist_seq) FROM history_events WHERE room_id = $1`, rw.r.id).Scan(&least); err != nil {
		return 0, err
	}
	return min(least.Int64, 0) - 1, nil
}

// shown reports whether a client can already page to the event: it is in
// the timeline or in the history.
func (w *partitionWorker) shown(ctx context.Context, ds *dagSource, rw *roomWrite, id string) (bool, error) {
	if in, err := ds.inTimeline(ctx, id); err != nil || in {
		return in, err
	}
	for _, h := range rw.history {
		if h.eventID == id {
			return true, nil
		}
	}
	var one int
	err := w.s.db.QueryRow(ctx, `SELECT 1 FROM history_events WHERE event_id = $1`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// History returns the room's backfilled events with hist_seq in
// [from, to] (both at most 0), as StoredEvents whose RoomSeq is the
// hist_seq, newest first when backwards.
func (rd *Reader) History(ctx context.Context, v *roomversion.Version, roomID string, from, to int64, limit int, backwards bool) ([]*StoredEvent, error) {
	order := "ASC"
	if backwards {
		order = "DESC"
	}
	rows, err := rd.db.Query(ctx, `SELECT e.event_id, e.pdu, h.hist_seq, e.redacted_by FROM history_events h
		JOIN events e ON e.event_id = h.event_id
		WHERE h.room_id = $1 AND h.hist_seq >= $2 AND h.hist_seq <= $3 AND NOT e.rejected
		ORDER BY h.hist_seq `+order+` LIMIT $4`, roomID, from, to, limit)
	if err != nil {
		return nil, err
	}
	return rd.scanWithRedactions(ctx, rows, v)
}

// BackwardExtremities returns the events a client paging back through the
// room would need next: the prev_events of the earliest events shown
// (history, else timeline) that are not shown themselves. None means the
// start of the room (its create event) is reached.
func (rd *Reader) BackwardExtremities(ctx context.Context, v *roomversion.Version, roomID string) ([]string, error) {
	const earliest = 5
	evs, err := rd.History(ctx, v, roomID, -1<<62, 0, earliest, false)
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		if evs, err = rd.Events(ctx, v, roomID, 1, 1<<62, earliest, false); err != nil {
			return nil, err
		}
	}
	seen := map[string]bool{}
	for _, e := range evs {
		seen[e.ID()] = true
	}
	var out []string
	for _, e := range evs {
		for _, p := range e.PrevEvents() {
			if seen[p] {
				continue
			}
			seen[p] = true
			var one int
			err := rd.db.QueryRow(ctx, `SELECT 1 FROM events e WHERE e.event_id = $1 AND (NOT e.outlier
				OR EXISTS (SELECT 1 FROM history_events h WHERE h.event_id = e.event_id))`, p).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				out = append(out, p)
			} else if err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}
