package roomserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/axon-hs/axon/internal/bus"
	"github.com/axon-hs/axon/matrix/auth"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// partitionWorker handles the input of one partition. It is used by one
// goroutine at a time.
type partitionWorker struct {
	s   *Server
	p   int
	log *slog.Logger
	// done records, per room, the highest room_seq published to
	// ROOM_EVENTS whose outbox row is not deleted yet; the next
	// transaction deletes them.
	done map[string]int64
	// streamCreated identifies the ROOM_INPUT stream (its creation time in
	// ns) for the input_stream column of events.
	streamCreated int64
	// curSeq is the stream sequence of the input being applied.
	curSeq uint64
	// lastCleanup is when published outbox rows were last deleted.
	lastCleanup time.Time
	// recheck makes every input of the next batch be looked up as possibly
	// applied (after a compare-and-set conflict: another writer may have
	// applied some of them).
	recheck bool
}

// batch is the work of one handler call.
type batch struct {
	writes  map[string]*roomWrite
	order   []*roomWrite
	replies []reply
	txns    map[Txn]string // txn seen in this batch (sender|device, txn, scope) → event ID
	// lookupTxns looks every client transaction ID up before applying
	// its input. Without it an ID is taken for new, as it almost always
	// is, and its insert's conflict (errTxnTaken) sends the batch round
	// again with lookups: a database read per input saved.
	lookupTxns bool
}

type reply struct {
	to  string
	res Result
}

// handle is the partition's bus.BatchHandler.
func (w *partitionWorker) handle(ctx context.Context, msgs []bus.Msg) error {
	err := w.handleOnce(ctx, msgs, false)
	if errors.Is(err, errTxnTaken) {
		// A client repeated a request whose event is recorded.
		err = w.handleOnce(ctx, msgs, true)
	}
	return err
}

func (w *partitionWorker) handleOnce(ctx context.Context, msgs []bus.Msg, lookupTxns bool) error {
	start := time.Now()
	// Tell the group commit (if any) that this partition has a batch
	// coming.
	ticket := w.s.gc.begin()
	defer ticket.end()
	b := &batch{writes: make(map[string]*roomWrite), txns: make(map[Txn]string), lookupTxns: lookupTxns}
	recheck := w.recheck
	for _, m := range msgs {
		if recheck || m.NumDelivered > 1 {
			// Delivered again: maybe applied before a crash that came
			// before the ack.
			done, err := inputApplied(ctx, w.s.db, w.streamCreated, m.StreamSeq)
			if err != nil {
				w.discard(b)
				return err
			}
			if done {
				w.log.Info("roomserver: skipping an input applied already", "stream_seq", m.StreamSeq)
				continue
			}
		}
		w.curSeq = m.StreamSeq
		var in Input
		if err := json.Unmarshal(m.Data, &in); err != nil {
			w.log.Error("roomserver: undecodable input dropped", "stream_seq", m.StreamSeq, "err", err)
			continue
		}
		res, err := w.apply(ctx, b, &in)
		if err != nil {
			w.discard(b)
			return err
		}
		if in.ReplyTo != "" {
			b.replies = append(b.replies, reply{to: in.ReplyTo, res: res})
		}
	}
	if len(b.order) > 0 {
		err := w.s.writeEvents(ctx, ticket, w.p, b.order, w.s.cfg.Now().UnixMilli(), w.streamCreated)
		if err != nil {
			w.discard(b)
			if errors.Is(err, errConflict) {
				w.log.Warn("roomserver: room head moved under this worker; reloading and retrying")
				w.recheck = true
			}
			return err
		}
		w.recheck = false
		for _, rw := range b.order {
			rw.r.committedSeq = rw.r.headSeq
		}
	}
	// The writers are answered as soon as their events are committed; the
	// relay to ROOM_EVENTS follows (the outbox guarantees it).
	local := w.s.local.Load()
	for _, rp := range b.replies {
		if local != nil && local.deliver(rp.to, rp.res) {
			continue
		}
		data, _ := json.Marshal(rp.res)
		if err := w.s.bus.Conn().Publish(rp.to, data); err != nil {
			w.log.Warn("roomserver: reply failed", "err", err)
		}
	}
	if len(b.order) > 0 {
		if err := w.publish(ctx, b.order); err != nil {
			// Committed but not relayed. Failing the batch would apply it
			// again, and moving on would let later events of these rooms
			// overtake these in ROOM_EVENTS, so keep retrying here
			// (publishing is idempotent); the outbox covers a crash.
			w.publishRetrying(ctx, b.order)
		}
	}
	w.cleanupOutbox(ctx, false)
	w.s.m.observeBatch(len(msgs), countEvents(b.order), time.Since(start))
	return nil
}

// outboxCleanupInterval spaces the deletions of published outbox rows.
const outboxCleanupInterval = time.Second

// cleanupOutbox deletes the outbox rows published so far, at most once per
// outboxCleanupInterval unless forced, in a transaction of its own: in the
// batch's transaction the range delete made concurrent partitions' inserts
// into the outbox fail as serialization conflicts on PostgreSQL, almost
// once per batch. Rows left behind by a crash are published again by the
// next owner (de-duplicated) and deleted then.
func (w *partitionWorker) cleanupOutbox(ctx context.Context, force bool) {
	if len(w.done) == 0 || (!force && time.Since(w.lastCleanup) < outboxCleanupInterval) {
		return
	}
	w.lastCleanup = time.Now()
	if err := writeBatch(ctx, w.s.db, w.p, nil, w.done, w.s.cfg.Now().UnixMilli(), 0); err != nil {
		w.log.Warn("roomserver: deleting published outbox rows failed; will retry", "err", err)
		return
	}
	clear(w.done)
}

func countEvents(ws []*roomWrite) int {
	n := 0
	for _, rw := range ws {
		n += len(rw.events)
	}
	return n
}

// discard forgets the cached rooms a failed batch touched: their in-memory
// heads include events that were never committed.
func (w *partitionWorker) discard(b *batch) {
	for _, rw := range b.order {
		w.s.cache.drop(rw.r.id)
	}
}

// room returns the room's cached head, loading it if needed.
func (w *partitionWorker) room(ctx context.Context, roomID string) (*room, error) {
	if r := w.s.cache.get(roomID); r != nil {
		return r, nil
	}
	r, err := loadRoom(ctx, w.s.db, roomID)
	if err != nil {
		return nil, err
	}
	w.s.cache.put(r)
	return r, nil
}

func fail(code, msg string) Result { return Result{Error: &Failure{Code: code, Message: msg}} }

// apply stages one Input into the batch. A refused Input changes nothing
// and yields a Result with an Error; an error return is an infrastructure
// failure that fails the whole batch.
func (w *partitionWorker) apply(ctx context.Context, b *batch, in *Input) (Result, error) {
	if in.Join != nil {
		return w.applyJoin(ctx, b, in)
	}
	if len(in.Backfill) > 0 {
		return w.applyBackfill(ctx, b, in)
	}
	if len(in.PDUs) > 0 || len(in.Outliers) > 0 {
		return w.applyRemote(ctx, b, in)
	}
	var r *room
	rw := b.writes[in.RoomID]
	if in.Create != nil {
		if rw != nil {
			return fail("M_ROOM_IN_USE", "the room already exists"), nil
		}
		existing, err := w.room(ctx, in.RoomID)
		switch {
		case err == nil:
			// A redelivered or repeated creation: the room is there.
			_ = existing
			return Result{RoomID: in.RoomID}, nil
		case !errors.Is(err, errNoRoom):
			return Result{}, err
		}
		v, ok := roomversion.Lookup(in.RoomVersion)
		if !ok {
			return fail("M_UNSUPPORTED_ROOM_VERSION", "unsupported room version "+in.RoomVersion), nil
		}
		create, err := event.Parse(v, in.Create)
		if err != nil || create.Type() != "m.room.create" || create.RoomID() != in.RoomID {
			return fail("M_BAD_JSON", "the create event is not valid"), nil
		}
		if err := auth.Check(create, &room{state: map[auth.StateKey]*event.Event{}}); err != nil {
			return fail("M_FORBIDDEN", err.Error()), nil
		}
		r = &room{id: in.RoomID, version: v, state: make(map[auth.StateKey]*event.Event)}
		rw = &roomWrite{r: r, create: true}
		r.apply(create)
		rw.events = append(rw.events, w.persisted(r, create, nil, ""))
	} else {
		if rw != nil {
			r = rw.r
		} else {
			var err error
			r, err = w.room(ctx, in.RoomID)
			if errors.Is(err, errNoRoom) {
				return fail("M_NOT_FOUND", "unknown room "+in.RoomID), nil
			}
			if err != nil {
				return Result{}, err
			}
			rw = &roomWrite{r: r, fromSeq: r.committedSeq}
		}
	}
	mark := len(rw.events)
	res := Result{RoomID: in.RoomID}
	if in.Create != nil {
		res.EventIDs = append(res.EventIDs, rw.events[0].ev.ID())
	}
	var newTxns []Txn
	refuse := func(code, msg string) (Result, error) {
		r.rollback()
		rw.events = rw.events[:mark]
		for _, t := range newTxns {
			delete(b.txns, t)
		}
		if in.Create != nil {
			w.s.cache.drop(r.id)
		}
		return fail(code, msg), nil
	}
	for i := range in.Events {
		t := &in.Events[i]
		if t.Txn != nil {
			key := Txn{DeviceID: t.Sender + "|" + t.Txn.DeviceID, TxnID: t.Txn.TxnID, Scope: t.Txn.Scope}
			if id, ok := b.txns[key]; ok {
				res.EventIDs = append(res.EventIDs, id)
				continue
			}
			if b.lookupTxns {
				id, err := lookupTxn(ctx, w.s.db, t.Sender, t.Txn)
				if err != nil {
					return Result{}, err
				}
				if id != "" {
					res.EventIDs = append(res.EventIDs, id)
					continue
				}
			}
		}
		content, err := cjson.Parse(t.Content, event.JSONRules(r.version))
		if err != nil || content.Kind() != cjson.Object {
			return refuse("M_BAD_JSON", fmt.Sprintf("event %d: content is not a valid JSON object for room version %s", i, r.version.ID))
		}
		if t.SkipIfUnchanged && t.StateKey != nil {
			if cur := r.Get(t.Type, *t.StateKey); cur != nil && cur.Content().Equal(content) {
				res.EventIDs = append(res.EventIDs, cur.ID())
				continue
			}
		}
		ev, err := w.s.b.build(r, t, content, r.extremities)
		if err != nil {
			var be *buildError
			if errors.As(err, &be) {
				return refuse(be.code, be.msg)
			}
			return Result{}, err
		}
		if err := auth.Check(ev, r); err != nil {
			return refuse("M_FORBIDDEN", err.Error())
		}
		redacts := ""
		if target := ev.Redacts(); target != "" && ev.Type() == "m.room.redaction" {
			tev, err := w.findEvent(ctx, r, rw, target)
			if err != nil {
				return Result{}, err
			}
			if tev != nil && auth.RedactionApplies(ev, tev, r) {
				redacts = target
			}
		}
		r.apply(ev)
		rw.events = append(rw.events, w.persisted(r, ev, t.Txn, redacts))
		if t.Txn != nil {
			key := Txn{DeviceID: t.Sender + "|" + t.Txn.DeviceID, TxnID: t.Txn.TxnID, Scope: t.Txn.Scope}
			b.txns[key] = ev.ID()
			newTxns = append(newTxns, key)
		}
		res.EventIDs = append(res.EventIDs, ev.ID())
	}
	r.mark()
	if len(rw.events) > 0 && b.writes[r.id] == nil {
		b.writes[r.id] = rw
		b.order = append(b.order, rw)
		if in.Create != nil {
			w.s.cache.put(r)
		}
	}
	return res, nil
}

// findEvent finds a redaction's target in the batch or the database.
func (w *partitionWorker) findEvent(ctx context.Context, r *room, rw *roomWrite, id string) (*event.Event, error) {
	for _, p := range rw.events {
		if p.ev.ID() == id {
			return p.ev, nil
		}
	}
	evs, err := loadEvents(ctx, w.s.db, r.version, []string{id})
	if err != nil || len(evs) == 0 {
		return nil, err
	}
	if evs[0].RoomID() != r.id {
		return nil, nil
	}
	return evs[0], nil
}

func (w *partitionWorker) persisted(r *room, ev *event.Event, txn *Txn, redacts string) *persisted {
	sk, isState := ev.StateKey()
	p := &persisted{inputSeq: w.curSeq, ev: ev, roomSeq: r.headSeq, redacts: redacts, txn: txn}
	if isState {
		p.changes = []stateChange{{key: auth.StateKey{Type: ev.Type(), StateKey: sk}, ev: ev}}
	}
	o := Output{RoomID: r.id, RoomVersion: r.version.ID, RoomSeq: p.roomSeq, EventID: ev.ID(),
		PDU: p.canonical(), StateChanged: isState, Redacts: redacts}
	if txn != nil {
		o.TxnID, o.DeviceID = txn.TxnID, txn.DeviceID
	}
	p.out = o.Encode()
	return p
}
