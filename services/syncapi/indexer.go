package syncapi

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/axon-hs/axon/internal/bus"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/roomversion"
	"github.com/axon-hs/axon/services/roomserver"
)

// IndexerResource is the coordinator resource of the indexer: one
// partition, so exactly one sync worker indexes at a time (positions must
// be indexed contiguously, in stream order).
const IndexerResource = "sync-indexer"

// Indexer consumes ROOM_EVENTS in stream order, writes the sync index and
// wakes long-polls.
type Indexer struct {
	db   *store.DB
	bus  *bus.Bus
	log  *slog.Logger
	wake func(w Wake)
	push *defaultPush
	// PollWait is passed to the consumer (tests shorten it).
	PollWait time.Duration
}

// Wake tells sync workers that the index moved: the new position and the
// rooms and users concerned.
type Wake struct {
	// Origin identifies the publishing process (WakePublisher), which
	// has woken its own notifier already.
	Origin string   `json:"origin,omitempty"`
	Pos    int64    `json:"pos"`
	Rooms  []string `json:"rooms,omitempty"`
	Users  []string `json:"users,omitempty"`
}

// NewIndexer returns an indexer; wake is called after each committed batch.
func NewIndexer(db *store.DB, b *bus.Bus, log *slog.Logger, wake func(Wake)) *Indexer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Indexer{db: db, bus: b, log: log, wake: wake, push: newDefaultPush(roomserver.NewReader(db))}
}

// Run indexes until ctx ends. It reads ROOM_EVENTS with an ordered
// consumer from the position after the stored one (bus.ConsumeOrdered):
// positions are stream sequences, so the index must be written in stream
// order without gaps, which a durable consumer's redeliveries do not
// promise.
func (ix *Indexer) Run(ctx context.Context) error {
	// The durable consumer that earlier versions used would keep every
	// message it never acks; remove it (best effort, once).
	if err := ix.bus.DeleteConsumer(ctx, bus.RoomEvents, "sync-indexer"); err != nil {
		ix.log.Debug("sync: no old durable indexer consumer removed", "err", err)
	}
	from := func(ctx context.Context) (uint64, error) {
		pos, err := currentPos(ctx, ix.db)
		return uint64(pos) + 1, err
	}
	return ix.bus.ConsumeOrdered(ctx, bus.RoomEvents, from, 500, ix.handle,
		bus.ConsumeOptions{Logger: ix.log, PollWait: ix.PollWait})
}

func (ix *Indexer) handle(ctx context.Context, msgs []bus.Msg) error {
	type member struct{ user, membership, sender string }
	type row struct {
		pos int64
		o   roomserver.Output
		typ string
		sk  *string
		snd string
		// timeline is false for an event clients never see (soft-failed)
		// whose state changes still count.
		timeline bool
		members  []member
		// notification and mention data (see migrations 0300, 0302)
		notifies                bool
		mentions                any
		pushPlain, pushMentions int64
	}
	rows := make([]row, 0, len(msgs))
	var last int64
	for _, m := range msgs {
		last = int64(m.StreamSeq)
		var o roomserver.Output
		if err := json.Unmarshal(m.Data, &o); err != nil {
			ix.log.Error("sync: undecodable room event skipped", "stream_seq", m.StreamSeq, "err", err)
			continue
		}
		if o.Rejected {
			continue
		}
		pdu, err := cjson.Parse(o.PDU, cjson.Lenient)
		if err != nil {
			ix.log.Error("sync: undecodable PDU skipped", "event_id", o.EventID, "err", err)
			continue
		}
		r := row{pos: int64(m.StreamSeq), o: o, timeline: !o.SoftFailed && !o.OutOfRoom}
		r.typ, _ = pdu.Get("type").Str()
		r.snd, _ = pdu.Get("sender").Str()
		if sk, ok := pdu.Get("state_key").Str(); ok {
			r.sk = &sk
			if r.typ == "m.room.member" && o.StateChanged && len(o.StateDelta) == 0 {
				mem, _ := pdu.Path("content", "membership").Str()
				r.members = append(r.members, member{user: sk, membership: mem, sender: r.snd})
			}
		}
		for _, d := range o.StateDelta {
			if d.Type == "m.room.member" {
				mem := d.Membership
				if d.EventID == "" {
					mem = "leave" // out of the state altogether
				}
				r.members = append(r.members, member{user: d.StateKey, membership: mem, sender: d.Sender})
			}
		}
		if !r.timeline {
			if len(r.members) > 0 {
				rows = append(rows, r)
			}
			continue
		}
		var mentioned []string
		if m := pdu.Path("content", "m.mentions"); m.Exists() {
			mentioned = mentionIDs(m)
			if len(mentioned) > 0 {
				r.mentions = " " + strings.Join(mentioned, " ") + " "
			}
		}
		v, _ := roomversion.Lookup(o.RoomVersion)
		if r.pushPlain, r.pushMentions, err = ix.push.decide(ctx, v, o.RoomSeq, pdu, mentioned); err != nil {
			return err
		}
		r.notifies = r.pushPlain&pushNotify != 0
		rows = append(rows, r)
	}
	err := ix.db.Tx(ctx, func(ctx context.Context, tx *store.Tx) error {
		// Another indexer (a worker paused past its lease, whose
		// successor has gone on) may have indexed this batch already:
		// positions at or before the stored one are never written again,
		// so the index behind a position that clients have read is
		// never changed.
		var stored int64
		err := tx.QueryRow(ctx, `SELECT pos FROM sync_positions WHERE stream = 'events'`).Scan(&stored)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		for _, r := range rows {
			if r.pos <= stored {
				continue
			}
			var dev, txn any
			if r.o.TxnID != "" {
				dev, txn = r.o.DeviceID, r.o.TxnID
			}
			var sk any
			if r.sk != nil {
				sk = *r.sk
			}
			if r.timeline {
				tx.Defer(`INSERT INTO sync_events (pos, room_id, event_id, room_seq, type, state_key, sender, device_id, txn_id,
						notifies, mentions, push_plain, push_mention)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (pos) DO NOTHING`,
					r.pos, r.o.RoomID, r.o.EventID, r.o.RoomSeq, r.typ, sk, r.snd, dev, txn, r.notifies, r.mentions,
					r.pushPlain, r.pushMentions)
			}
			if r.o.Redacts != "" {
				// The first redaction applied wins, as in the events table.
				tx.Defer(`UPDATE sync_events SET redacted_by = $1 WHERE event_id = $2 AND redacted_by IS NULL`,
					r.o.EventID, r.o.Redacts)
			}
			for _, m := range r.members {
				tx.Defer(`INSERT INTO sync_memberships (user_id, pos, room_id, membership, sender)
					VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, pos) DO NOTHING`,
					m.user, r.pos, r.o.RoomID, m.membership, m.sender)
			}
		}
		tx.Defer(`INSERT INTO sync_positions (stream, pos) VALUES ('events', $1)
			ON CONFLICT (stream) DO UPDATE SET pos = excluded.pos WHERE sync_positions.pos < excluded.pos`, last)
		return nil
	})
	if err != nil {
		return err
	}
	if ix.wake != nil {
		w := Wake{Pos: last}
		seen := map[string]bool{}
		for _, r := range rows {
			if !seen[r.o.RoomID] {
				seen[r.o.RoomID] = true
				w.Rooms = append(w.Rooms, r.o.RoomID)
			}
			for _, m := range r.members {
				w.Users = append(w.Users, m.user)
			}
		}
		ix.wake(w)
	}
	return nil
}

// maxIndexedMentions bounds the user IDs of one event's m.mentions kept
// in the index.
const maxIndexedMentions = 50

// mentionIDs returns the user IDs of m.mentions.user_ids, at most
// maxIndexedMentions. The index keeps them as " @a:x @b:y ", so that
// "contains ' @a:x '" finds a mention exactly.
func mentionIDs(m cjson.Value) []string {
	ids, _ := m.Get("user_ids").Strings()
	return ids[:min(len(ids), maxIndexedMentions)]
}
