package roomserver

import (
	"context"
	"time"

	"github.com/axon-hs/axon/internal/bus"
)

// The outbox relay. Each committed event has an outbox row written in the
// same transaction. Right after the commit the partition worker publishes
// the batch's events to ROOM_EVENTS itself (message ID = event ID, so a
// repeat is stored once) and remembers them as done; the next transaction
// deletes their rows. When a worker dies between commit and delete, the
// next owner of the partition publishes the leftover rows before it
// consumes any input, so each room's events reach ROOM_EVENTS in order.

func (w *partitionWorker) publish(ctx context.Context, ws []*roomWrite) error {
	var msgs []bus.Message
	for _, rw := range ws {
		subj := w.s.bus.RoomSubject(bus.RoomEvents, rw.r.id)
		for _, p := range rw.events {
			if p.out != nil { // outliers are not published
				msgs = append(msgs, bus.Message{Subject: subj, Data: p.out, MsgID: p.ev.ID()})
			}
		}
	}
	if err := w.s.bus.PublishAll(ctx, msgs); err != nil {
		return err
	}
	for _, rw := range ws {
		if n := len(rw.events); n > 0 {
			w.done[rw.r.id] = rw.events[n-1].roomSeq
		}
	}
	return nil
}

// publishRetrying publishes until it succeeds or ctx ends. While it fails
// the partition waits: a later event must not reach ROOM_EVENTS before an
// earlier one of its room.
func (w *partitionWorker) publishRetrying(ctx context.Context, ws []*roomWrite) {
	delay := 100 * time.Millisecond
	for {
		err := w.publish(ctx, ws)
		if err == nil || ctx.Err() != nil {
			return
		}
		w.log.Warn("roomserver: publishing committed events failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// relayPending publishes the partition's leftover outbox rows, in room
// order, and deletes them.
func (w *partitionWorker) relayPending(ctx context.Context) error {
	for {
		rows, err := pendingOutbox(ctx, w.s.db, w.p, 500)
		if err != nil || len(rows) == 0 {
			return err
		}
		msgs := make([]bus.Message, len(rows))
		done := make(map[string]int64)
		for i, o := range rows {
			var out struct {
				EventID string `json:"event_id"`
			}
			if err := jsonUnmarshal(o.payload, &out); err != nil {
				return err
			}
			msgs[i] = bus.Message{Subject: w.s.bus.RoomSubject(bus.RoomEvents, o.roomID), Data: o.payload, MsgID: out.EventID}
			done[o.roomID] = max(done[o.roomID], o.roomSeq)
		}
		if err := w.s.bus.PublishAll(ctx, msgs); err != nil {
			return err
		}
		if err := writeBatch(ctx, w.s.db, w.p, nil, done, w.s.cfg.Now().UnixMilli(), 0); err != nil {
			return err
		}
		w.log.Info("roomserver: relayed leftover outbox rows", "rows", len(rows))
	}
}
