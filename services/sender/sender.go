// Package sender is the sender role's federation half: it delivers the
// events this server makes to the other servers of their rooms, and its
// users' EDUs (typing, read receipts, presence, send-to-device messages,
// device list updates: devicelists.go) to the servers concerned.
//
// # Queues
//
// One consumer of ROOM_EVENTS (the coordinator resource QueueResource, so
// one owner at a time, in any sender process) takes every accepted event
// sent by a user of this server and queues it, in one transaction per
// batch, for each other server with a user joined to the room (and the
// server of the target of a membership event: an invite or a kick reaches
// its subject). The queue rows (sender_queue) are the durable truth: a
// destination's worker sends them in order, in transactions of at most 50
// PDUs whose ID is derived from the first and last row, so a transaction
// retried after an unclear failure is recognised by the destination; rows
// are deleted once a transaction is answered 200. A worker that dies
// leaves its rows for the next owner, which starts a worker for every
// destination with rows.
//
// # Destination partitions
//
// Delivery is spread over the sender workers by destination: a
// destination belongs to partition DestinationPartition(server name), a
// stable FNV-1a hash of the name modulo DestinationPartitions (64), and
// the partitions of the coordinator resource DestinationResource are
// owned by one sender process each (internal/coord: every partition in
// the single-process default; leases in cluster mode). The count and the
// hash are a contract between sender workers: every worker must compute
// the same partition for the same destination, so neither may change
// while two versions run side by side (a rolling deploy).
//
// A process sends only to the destinations of the partitions it owns.
// When it gains a partition it sweeps: every destination of that
// partition with rows in sender_queue or sender_edus gets a worker (one
// query of the queued destinations serves all the partitions gained at
// once, as at start). When the partition's context ends (ownership lost,
// or shutdown) its destination workers stop: a transaction in flight is
// abandoned (not counted as the destination's failure), and one already
// answered 200 still has its rows deleted. Rows are only deleted after a
// 200, so the next owner resends whatever was not acknowledged: under the
// same derived transaction ID when it carries the same rows (the
// destination answers it from its cache), or else in a transaction that
// also carries what was queued meanwhile, whose PDUs and EDUs the
// destination recognises (event IDs, message_id). Within one process a
// failed transaction is retried as it was, with the same ID, until it is
// answered (Sender.sameAsFailed); rows queued since wait for the next
// one. Backoff is
// kept in the database (sender_destinations), so a destination's new
// owner keeps waiting out the backoff its old owner started.
//
// New rows reach their destination's owner by pokes: the queue consumer,
// after committing a batch, and a Queue (edus.go), after queuing EDUs,
// name the destinations. A poke goes to every sender process over core
// NATS (PokeSubject; each ignores destinations it does not own) and
// straight to this process's workers when it owns the destination
// (Sender.Poke). A lost poke only delays: every process sweeps its owned
// partitions once a minute.
//
// Correctness never depends on ownership. Two processes that both
// believe they own a destination for a while (a paused process, a lease
// that expired) both send its queue from its head, and each deletes only
// rows that a transaction of its own carried and that were answered 200
// (EDU rows only if not replaced since they were read), so nothing is
// lost and no row is corrupted. (A transaction's ID hashes every row it
// carries, so two transactions with the same ID carry the same rows.) The
// destination gets some PDUs and EDUs twice, under the same transaction
// ID or not, and recognises them as it does any retry (event IDs,
// message_id). The cost is duplicate sends
// and, at worst, PDUs out of order (handled by the destination as after
// any gap) or a replaced typing, receipt or presence state arriving after
// its replacement, until the next one.
//
// # EDUs (edus.go)
//
// Local users' EDUs are queued by a Queue, which any process may hold
// (the client role's userdata service does, as its userdata.Outbound): it
// needs only the database and NATS, writes this package's own table
// sender_edus, and then pokes the destinations' owners. The destinations
// are computed when an EDU is queued: typing and public read receipts
// (m.read; private ones never leave the server) go to every other server
// with a user joined to the room, presence to every server sharing a room
// with the user (which reads the members of all the user's rooms: cheap
// for most users, a cost for one in many large rooms), send-to-device to
// the recipients' server, one EDU per server with a message_id derived
// from the sending device, the client's transaction ID and the server (so
// a retried request yields the same EDU).
//
// Rows are coalesced by key: the latest typing state per room and user,
// the latest receipt per room, user and thread, the latest presence per
// user replace the queued one, so those rows are bounded by users and
// rooms, however long a destination is away. A typing notification that
// expires before it could be sent (its timeout; a stop after a minute) is
// dropped unsent. Send-to-device EDUs are never coalesced (a repeated
// sender and message_id is queued once) and are bounded per destination
// by QueueConfig.MaxToDeviceQueue (10,000): beyond, new ones are dropped
// with a log. All of them are durable rows, deleted after the transaction
// carrying them succeeded, so receipts and send-to-device messages survive
// any worker's death; typing and presence do too, which costs a write per
// typing update and destination.
//
// A destination's worker sends its EDUs, oldest first, in the same
// transactions as its PDUs: at most 50 PDUs and 100 EDUs each, and
// transactions of EDUs alone when no PDU waits. The transaction ID is the
// PDU range with a hash of every PDU row and of the EDUs' keys and
// versions: the same transaction retried after an unclear failure keeps
// its ID, one with other rows gets a new one (the destination would
// otherwise answer it from its cache without applying them). A
// row replaced while its transaction was in flight is not deleted by that
// transaction's success.
//
// # Backoff
//
// A failed transaction puts its destination in backoff (sender_destinations):
// 2 s after the first failure, doubling up to an hour, with up to 25%
// jitter so that many destinations do not retry together. New events are
// queued meanwhile and go in order once the destination answers again.
// At most Config.MaxActive destinations are sent to at once by one
// process (the others wait their turn in a first-come queue, with no
// goroutine); the connection limits are the federation transport's (per
// destination and in total).
//
// # Catch-up
//
// A destination coming back after failures with more than
// catchUpThreshold (100) queued events gets each room's latest event
// only: the rest are deleted (in batches) before its first transaction,
// and the destination fetches what it lacks when that event arrives
// (/get_missing_events, then /state_ids across a wider gap), as it would
// after any gap. A shorter queue, or one of a destination that never
// failed, is sent whole and in order.
//
// # What it does not do yet
//
// m.signing_key_update, the keys of m.device_list_update, and announcing
// a user's devices to servers that start sharing a room with them (there
// is no end-to-end key store yet); presence timeouts (idle, offline) are
// not announced, only changes that a user or /sync makes; metrics of
// partition ownership and queue depth.
package sender

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/axon-hs/axon/internal/bus"
	"github.com/axon-hs/axon/internal/coord"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/services/federation/fedclient"
	"github.com/axon-hs/axon/services/roomserver"
	"github.com/nats-io/nats.go"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the package's migrations (versions 0900–0999).
func Migrations() fs.FS { return store.MigrationsDir(migrations) }

// QueueResource is the coordinator resource of the queue consumer (one
// partition: one consumer at a time, in any sender process).
const QueueResource = "federation-sender"

// DestinationResource is the coordinator resource of the destination
// partitions: the owner of partition DestinationPartition(d) delivers d's
// queue.
const DestinationResource = "federation-destinations"

// DestinationPartitions is the number of partitions of
// DestinationResource. It is a contract between sender workers, as
// DestinationPartition is: it must be the same in every worker and must
// not change during a rolling deploy.
const DestinationPartitions = 64

// DestinationPartition returns the partition of destination (a server
// name): the FNV-1a 32-bit hash of the name, modulo DestinationPartitions.
// Every sender worker must compute the same partition for the same
// destination, so this must not change during a rolling deploy.
func DestinationPartition(destination string) int {
	h := fnv.New32a()
	h.Write([]byte(destination)) // never fails
	return int(h.Sum32() % DestinationPartitions)
}

// Limits.
const (
	maxTxnPDUs = 50
	// DefaultMaxActive is Config.MaxActive's default.
	DefaultMaxActive = 256
	backoffFirst     = 2 * time.Second
	backoffMax       = time.Hour
	// maxPokeDests bounds the destinations named in one message on
	// PokeSubject.
	maxPokeDests = 500
	// finishTimeout bounds the deletion of a transaction's rows after its
	// 200, which goes on when the partition is lost meanwhile (saving the
	// next owner a duplicate send).
	finishTimeout = 10 * time.Second
	// sweepRetry is the wait before a failed sweep of newly gained
	// partitions is tried again.
	sweepRetry = 5 * time.Second
)

// Config configures the Sender.
type Config struct {
	ServerName string
	Client     *fedclient.Client
	Reader     *roomserver.Reader
	// MaxActive bounds the destinations this process sends to at once
	// (default 256).
	MaxActive int
	Now       func() time.Time
	Logger    *slog.Logger
}

// Sender queues and delivers this server's events.
type Sender struct {
	db  *store.DB
	bus *bus.Bus
	cfg Config
	log *slog.Logger
	// sweepEvery is the period of the sweep (sweepInterval; tests
	// lengthen it to show that pokes alone deliver).
	sweepEvery time.Duration
	// sweepReq asks the sweeper for a sweep now: a partition was gained.
	sweepReq chan struct{}

	mu sync.Mutex
	// parts are the destination partitions this process owns.
	parts   map[int]*destPartition
	active  map[string]bool // destinations with a worker
	pending map[string]bool // poked while their worker ran
	timers  map[string]*time.Timer
	// waiting are destinations with work while MaxActive workers run,
	// oldest first (queued is the same set): a worker that ends starts
	// the next, so there are never more than MaxActive goroutines.
	waiting []string
	queued  map[string]bool
	// retries are the rows of each destination's failed transaction,
	// sent again as they were (the same ID) until answered.
	retries map[string]retryRows
	wg      sync.WaitGroup // the sweeper
}

// retryRows names what a failed transaction carried: its PDU rows, and
// its EDUs as the first edus of the destination's EDU queue (EDUs queued
// since come after them). Some 450 bytes per failing destination.
type retryRows struct {
	seqs []int64
	edus int
}

// destPartition is an owned destination partition.
type destPartition struct {
	p   int
	ctx context.Context // ends when the partition is lost
	wg  sync.WaitGroup  // its destination workers
	// swept is set once a sweep that began after the partition was
	// gained has poked its destinations.
	swept bool
}

// New returns a Sender.
func New(db *store.DB, b *bus.Bus, cfg Config) *Sender {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxActive <= 0 {
		cfg.MaxActive = DefaultMaxActive
	}
	return &Sender{db: db, bus: b, cfg: cfg, log: cfg.Logger, sweepEvery: sweepInterval, sweepReq: make(chan struct{}, 1),
		parts: map[int]*destPartition{}, active: map[string]bool{}, pending: map[string]bool{},
		timers: map[string]*time.Timer{}, queued: map[string]bool{}}
}

// Run is the sender role until ctx ends: through c it owns QueueResource
// (consuming ROOM_EVENTS into the queues while it owns it) and the
// partitions of DestinationResource (delivering their destinations'
// queues), and it listens for pokes on PokeSubject. It returns once every
// worker has stopped.
func (s *Sender) Run(ctx context.Context, c coord.Coordinator) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Queues are written by other processes too (the queue consumer may
	// run elsewhere, a Queue anywhere), which poke over NATS.
	sub, err := s.bus.Conn().Subscribe(PokeSubject, func(m *nats.Msg) { s.handlePoke(m.Data) })
	if err != nil {
		return fmt.Errorf("sender: subscribe to %s: %w", PokeSubject, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	s.wg.Go(func() { s.sweep(ctx) })
	var wg sync.WaitGroup
	var qerr, derr error
	wg.Go(func() {
		if qerr = c.Own(ctx, QueueResource, 1, func(ctx context.Context, _ int) { s.consume(ctx) }); qerr != nil {
			cancel()
		}
	})
	wg.Go(func() {
		if derr = c.Own(ctx, DestinationResource, DestinationPartitions, s.runPartition); derr != nil {
			cancel()
		}
	})
	wg.Wait()
	cancel()
	s.wg.Wait()
	return errors.Join(qerr, derr)
}

// consume queues ROOM_EVENTS for their destinations while this process
// owns QueueResource.
func (s *Sender) consume(ctx context.Context) {
	s.log.Info("sender: consuming events into the queues")
	err := s.bus.ConsumeBatch(ctx, bus.RoomEvents, bus.AllPartitions, "federation-sender", 500, s.handle,
		bus.ConsumeOptions{Logger: s.log})
	if err != nil && ctx.Err() == nil {
		s.log.Error("sender: the queue consumer stopped", "err", err)
	}
}

// runPartition delivers the destinations of partition p while this
// process owns it: it asks for a sweep (which starts a worker for each of
// its destinations with rows), and once ctx ends it stops them.
func (s *Sender) runPartition(ctx context.Context, p int) {
	part := s.gain(ctx, p)
	<-ctx.Done()
	s.release(part)
}

// gain makes p an owned partition and asks for a sweep.
func (s *Sender) gain(ctx context.Context, p int) *destPartition {
	part := &destPartition{p: p, ctx: ctx}
	s.mu.Lock()
	s.parts[p] = part
	s.mu.Unlock()
	s.requestSweep()
	return part
}

// release gives part up: no worker starts for its destinations any more,
// their backoff timers and turns in the waiting line go (the next owner
// reads the backoff from the database), and it returns once its running
// workers, whose context has ended, have returned.
func (s *Sender) release(part *destPartition) {
	s.mu.Lock()
	if s.parts[part.p] == part {
		delete(s.parts, part.p)
	}
	if _, again := s.parts[part.p]; !again {
		for dest, t := range s.timers {
			if DestinationPartition(dest) == part.p {
				t.Stop()
				delete(s.timers, dest)
			}
		}
		for dest := range s.retries {
			if DestinationPartition(dest) == part.p {
				delete(s.retries, dest)
			}
		}
		s.waiting = slices.DeleteFunc(s.waiting, func(dest string) bool {
			if DestinationPartition(dest) != part.p {
				return false
			}
			delete(s.queued, dest)
			return true
		})
	}
	s.mu.Unlock()
	part.wg.Wait()
}

// ownerLocked returns the owned partition of dest, or nil. s.mu is held.
func (s *Sender) ownerLocked(dest string) *destPartition {
	part := s.parts[DestinationPartition(dest)]
	if part == nil || part.ctx.Err() != nil {
		return nil
	}
	return part
}

// handle queues a batch of ROOM_EVENTS for its destinations.
func (s *Sender) handle(ctx context.Context, msgs []bus.Msg) error {
	type row struct {
		dest, room, id string
		seq            int64
		pdu            []byte
	}
	var rows []row
	servers := map[string][]string{} // resident servers by room, once per batch
	for _, m := range msgs {
		var o roomserver.Output
		// Out-of-room memberships (a remote invite, its rejection) went
		// to the servers concerned directly.
		if err := json.Unmarshal(m.Data, &o); err != nil || o.Rejected || o.SoftFailed || o.OutOfRoom {
			continue
		}
		var head struct {
			Sender   string  `json:"sender"`
			Type     string  `json:"type"`
			StateKey *string `json:"state_key"`
		}
		if json.Unmarshal(o.PDU, &head) != nil || serverOf(head.Sender) != s.cfg.ServerName {
			continue // only this server's events are ours to send
		}
		dests, ok := servers[o.RoomID]
		if !ok {
			var err error
			if dests, err = s.cfg.Reader.ResidentServers(ctx, o.RoomID); err != nil {
				return err
			}
			servers[o.RoomID] = dests
		}
		targets := dests
		if head.Type == "m.room.member" && head.StateKey != nil {
			targets = append(targets[:len(targets):len(targets)], serverOf(*head.StateKey))
		}
		seen := map[string]bool{s.cfg.ServerName: true, "": true}
		for _, d := range targets {
			if !seen[d] {
				seen[d] = true
				rows = append(rows, row{dest: d, room: o.RoomID, id: o.EventID, seq: int64(m.StreamSeq), pdu: o.PDU})
			}
		}
	}
	if len(rows) == 0 {
		return nil
	}
	err := s.db.Tx(ctx, func(ctx context.Context, tx *store.Tx) error {
		for _, r := range rows {
			tx.Defer(`INSERT INTO sender_queue (destination, seq, room_id, event_id, pdu) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (destination, seq) DO NOTHING`, r.dest, r.seq, r.room, r.id, r.pdu)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sender: queue events: %w", err)
	}
	seen := map[string]bool{}
	var dests []string
	for _, r := range rows {
		if !seen[r.dest] {
			seen[r.dest] = true
			dests = append(dests, r.dest)
		}
	}
	s.Poke(dests)
	return nil
}

func serverOf(userID string) string {
	_, server, _ := strings.Cut(userID, ":")
	return server
}

// Poke tells the owners of dests that their queues have new rows: this
// process's workers directly for the destinations it owns, every sender
// process over PokeSubject for the others (each ignores those it does
// not own). It suits QueueConfig.Poke in a process that runs the sender
// role. A lost poke only delays until the owner's next sweep.
func (s *Sender) Poke(dests []string) {
	var others []string
	for _, d := range dests {
		if d != "" && d != s.cfg.ServerName && !s.poke(d) {
			others = append(others, d)
		}
	}
	if len(others) == 0 || s.bus == nil {
		return
	}
	for chunk := range slices.Chunk(others, maxPokeDests) {
		if err := s.bus.Conn().Publish(PokeSubject, EncodePoke(chunk)); err != nil {
			s.log.Warn("sender: poking the other sender workers failed; their sweep will find the rows", "err", err)
			return
		}
	}
}

// pokeQueued pokes every destination with queued events or EDUs (poke
// skips those of partitions this process does not own).
func (s *Sender) pokeQueued(ctx context.Context) error {
	rows, err := s.db.Query(ctx, `SELECT DISTINCT destination FROM sender_queue
		UNION SELECT DISTINCT destination FROM sender_edus`)
	if err != nil {
		return err
	}
	var dests []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			rows.Close()
			return err
		}
		dests = append(dests, d)
	}
	rows.Close()
	for _, d := range dests {
		s.poke(d)
	}
	return rows.Err()
}

// poke makes sure destination's queue is being sent (or will be, after
// its backoff) if this process owns its partition, and reports whether it
// does.
func (s *Sender) poke(dest string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	part := s.ownerLocked(dest)
	if part == nil {
		return false
	}
	if s.active[dest] {
		s.pending[dest] = true
		return true
	}
	if _, waiting := s.timers[dest]; waiting {
		return true // its backoff timer pokes it
	}
	if len(s.active) >= s.cfg.MaxActive {
		if !s.queued[dest] {
			s.queued[dest] = true
			s.waiting = append(s.waiting, dest)
		}
		return true
	}
	s.startLocked(dest, part)
	return true
}

// startLocked starts dest's worker in its partition. s.mu is held, and
// part is owned (so release has not begun waiting for its workers).
func (s *Sender) startLocked(dest string, part *destPartition) {
	s.active[dest] = true
	part.wg.Add(1)
	go s.work(part, dest)
}

// work sends dest's queue until it is empty, a transaction fails or the
// partition is lost, then hands its place to the longest-waiting
// destination.
func (s *Sender) work(part *destPartition, dest string) {
	defer part.wg.Done()
	retryIn, err := s.drain(part.ctx, dest)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.active, dest)
	again := s.pending[dest]
	delete(s.pending, dest)
	switch owner := s.ownerLocked(dest); {
	case owner == nil:
		// Lost (or shutting down): the next owner sweeps the queue.
	case owner != part:
		// Lost and gained again while this worker drained: go on under
		// the new ownership.
		s.startLocked(dest, owner)
	case err != nil:
		s.log.Info("sender: destination failed; backing off", "destination", dest, "retry_in", retryIn, "err", err)
		var t *time.Timer
		t = time.AfterFunc(retryIn, func() {
			s.mu.Lock()
			if s.timers[dest] == t {
				delete(s.timers, dest)
			}
			s.mu.Unlock()
			s.poke(dest)
		})
		s.timers[dest] = t
	case again:
		s.startLocked(dest, owner)
	}
	for len(s.waiting) > 0 && len(s.active) < s.cfg.MaxActive {
		next := s.waiting[0]
		s.waiting = s.waiting[1:]
		delete(s.queued, next)
		if _, backingOff := s.timers[next]; s.active[next] || backingOff {
			continue
		}
		if owner := s.ownerLocked(next); owner != nil {
			s.startLocked(next, owner)
		}
	}
}

// drain sends dest's queued events in order, with its queued EDUs, until
// both queues are empty. After a failure it returns how long to wait
// before trying again.
func (s *Sender) drain(ctx context.Context, dest string) (time.Duration, error) {
	if wait, err := s.backoffLeft(ctx, dest); err != nil || wait > 0 {
		if err == nil {
			err = errors.New("in backoff")
		}
		return wait, err
	}
	if err := s.catchUp(ctx, dest); err != nil {
		return backoffFirst, err
	}
	for ctx.Err() == nil {
		seqs, pdus, err := s.queuedPDUs(ctx, dest)
		if err != nil {
			return backoffFirst, err
		}
		edus, expired, err := s.queuedEDUs(ctx, dest)
		if err != nil {
			return backoffFirst, err
		}
		if len(seqs) == 0 && len(edus) == 0 {
			if len(expired) == 0 {
				return 0, nil
			}
			// Only stale typing notifications: drop them and look again.
			if err := s.db.Tx(ctx, func(ctx context.Context, tx *store.Tx) error {
				deleteEDUs(tx, dest, expired)
				return nil
			}); err != nil {
				return backoffFirst, err
			}
			continue
		}
		seqs, pdus, edus = s.sameAsFailed(dest, seqs, pdus, edus)
		body := map[string]any{"origin": s.cfg.ServerName, "origin_server_ts": s.cfg.Now().UnixMilli(), "pdus": pdus}
		if len(edus) > 0 {
			list := make([]json.RawMessage, len(edus))
			for i, e := range edus {
				list[i] = e.edu
			}
			body["edus"] = list
		}
		id := txnID(seqs, edus)
		err = s.cfg.Client.SendJSON(ctx, dest, http.MethodPut, "/_matrix/federation/v1/send/"+url.PathEscape(id), body, nil)
		if err != nil {
			s.setRetry(dest, retryRows{seqs: seqs, edus: len(edus)})
			if ctx.Err() != nil {
				// Abandoned (the partition was lost, or shutdown): not the
				// destination's failure. Its rows stay for the next owner.
				return 0, ctx.Err()
			}
			return s.failed(ctx, dest), err
		}
		// Answered 200: delete what it carried even if the partition is
		// lost meanwhile, so that the next owner need not send it again.
		err = s.finish(ctx, func(ctx context.Context, tx *store.Tx) error {
			deleteQueued(tx, dest, seqs)
			deleteEDUs(tx, dest, edus)
			deleteEDUs(tx, dest, expired)
			tx.Defer(`DELETE FROM sender_destinations WHERE destination = $1`, dest)
			return nil
		})
		s.setRetry(dest, retryRows{})
		if err != nil {
			return backoffFirst, err
		}
	}
	return 0, ctx.Err()
}

// sameAsFailed keeps, of the rows read for dest's next transaction, those
// of its failed transaction if it has one: the spec has a transaction
// retried with the same ID until it is answered, and the ID names the
// rows (txnID). Rows queued since wait for the next transaction. Rows of
// the failed one that are gone (catch-up dropped them) or EDUs replaced
// meanwhile make it another transaction, with another ID, as it must be.
func (s *Sender) sameAsFailed(dest string, seqs []int64, pdus []json.RawMessage, edus []sentEDU) ([]int64, []json.RawMessage, []sentEDU) {
	s.mu.Lock()
	r, ok := s.retries[dest]
	s.mu.Unlock()
	if !ok {
		return seqs, pdus, edus
	}
	keepSeqs, keepPDUs := seqs[:0:0], pdus[:0:0]
	for i, seq := range seqs {
		if slices.Contains(r.seqs, seq) {
			keepSeqs, keepPDUs = append(keepSeqs, seq), append(keepPDUs, pdus[i])
		}
	}
	keepEDUs := edus[:min(len(edus), r.edus)]
	if len(keepSeqs) == 0 && len(keepEDUs) == 0 {
		return seqs, pdus, edus // all of it was sent or dropped meanwhile
	}
	return keepSeqs, keepPDUs, keepEDUs
}

// setRetry records dest's failed transaction (none: its success).
func (s *Sender) setRetry(dest string, r retryRows) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if (r.seqs == nil && r.edus == 0) || s.ownerLocked(dest) == nil {
		delete(s.retries, dest)
		return
	}
	if s.retries == nil {
		s.retries = map[string]retryRows{}
	}
	s.retries[dest] = r
}

// deleteQueued deletes the sent rows seqs of dest's queue inside tx: those
// rows only, not the range they span, so that a row that joined the range
// after it was read (the queue consumer of another process, briefly
// overlapping) stays queued.
func deleteQueued(tx *store.Tx, dest string, seqs []int64) {
	if len(seqs) == 0 {
		return
	}
	args := make([]any, 0, len(seqs)+1)
	args = append(args, dest)
	ph := make([]string, len(seqs))
	for i, seq := range seqs {
		args = append(args, seq)
		ph[i] = "$" + strconv.Itoa(i+2)
	}
	tx.Defer(`DELETE FROM sender_queue WHERE destination = $1 AND seq IN (`+strings.Join(ph, ", ")+`)`, args...)
}

// finish runs the transaction f that records a delivered transaction,
// bounded by finishTimeout and not cancelled with ctx.
func (s *Sender) finish(ctx context.Context, f func(ctx context.Context, tx *store.Tx) error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	return s.db.Tx(ctx, f)
}

// queuedPDUs reads up to maxTxnPDUs of dest's queued events, in order.
func (s *Sender) queuedPDUs(ctx context.Context, dest string) ([]int64, []json.RawMessage, error) {
	rows, err := s.db.Query(ctx, `SELECT seq, pdu FROM sender_queue WHERE destination = $1 ORDER BY seq LIMIT $2`, dest, maxTxnPDUs)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var seqs []int64
	pdus := []json.RawMessage{}
	for rows.Next() {
		var seq int64
		var pdu []byte
		if err := rows.Scan(&seq, &pdu); err != nil {
			return nil, nil, err
		}
		seqs = append(seqs, seq)
		pdus = append(pdus, pdu)
	}
	return seqs, pdus, rows.Err()
}

// backoffLeft returns how long dest is still in backoff.
// catchUpThreshold is the queue length beyond which a destination that
// comes back from a failure gets only each room's latest event.
const catchUpThreshold = 100

// catchUpBatch bounds the rows one statement of catchUp deletes.
const catchUpBatch = 1000

// catchUp thins the queue of a destination coming back after failures,
// when it has grown beyond catchUpThreshold: only each room's latest
// event stays, and the destination fetches what it lacks when that event
// arrives (/get_missing_events, /state_ids), as it would after any gap.
// A server away for hours is not sent everything it missed, one
// transaction of 50 after another. Rows go in batches of catchUpBatch.
func (s *Sender) catchUp(ctx context.Context, dest string) error {
	var failures int
	err := s.db.QueryRow(ctx, `SELECT failures FROM sender_destinations WHERE destination = $1`, dest).Scan(&failures)
	if errors.Is(err, store.ErrNoRows) {
		return nil // never failed: its queue is simply sent
	}
	if err != nil {
		return err
	}
	var n int
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM sender_queue WHERE destination = $1`, dest).Scan(&n); err != nil {
		return err
	}
	if n <= catchUpThreshold {
		return nil
	}
	dropped := 0
	for {
		res, err := s.db.Exec(ctx, fmt.Sprintf(`DELETE FROM sender_queue WHERE destination = $1 AND seq IN (
			SELECT q.seq FROM sender_queue q WHERE q.destination = $1 AND q.seq < (
				SELECT MAX(l.seq) FROM sender_queue l WHERE l.destination = $1 AND l.room_id = q.room_id)
			LIMIT %d)`, catchUpBatch), dest)
		if err != nil {
			return fmt.Errorf("sender: catch-up of %s: %w", dest, err)
		}
		k, err := res.RowsAffected()
		if err != nil {
			return err
		}
		dropped += int(k)
		if k < catchUpBatch {
			break
		}
	}
	s.log.Info("sender: destination back after failures; sending each room's latest event only",
		"destination", dest, "queued", n, "dropped", dropped)
	return nil
}

func (s *Sender) backoffLeft(ctx context.Context, dest string) (time.Duration, error) {
	var retryAt int64
	err := s.db.QueryRow(ctx, `SELECT retry_at FROM sender_destinations WHERE destination = $1`, dest).Scan(&retryAt)
	if errors.Is(err, store.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return backoffFirst, err
	}
	return max(0, time.UnixMilli(retryAt).Sub(s.cfg.Now())), nil
}

// failed records a failure of dest and returns the backoff before the next
// try.
func (s *Sender) failed(ctx context.Context, dest string) time.Duration {
	var failures int64
	err := s.db.QueryRow(ctx, `SELECT failures FROM sender_destinations WHERE destination = $1`, dest).Scan(&failures)
	if err != nil && !errors.Is(err, store.ErrNoRows) {
		return backoffFirst
	}
	failures++
	wait := Backoff(int(failures), rand.Float64())
	_, err = s.db.Exec(ctx, `INSERT INTO sender_destinations (destination, failures, retry_at) VALUES ($1, $2, $3)
		ON CONFLICT (destination) DO UPDATE SET failures = excluded.failures, retry_at = excluded.retry_at`,
		dest, failures, s.cfg.Now().Add(wait).UnixMilli())
	if err != nil {
		s.log.Warn("sender: recording a failure failed", "destination", dest, "err", err)
	}
	return wait
}

// Backoff is the wait after the n-th consecutive failure (n >= 1): 2 s
// doubling up to an hour, plus jitter of up to 25% (j in [0, 1)).
func Backoff(n int, j float64) time.Duration {
	d := backoffFirst
	for i := 1; i < n && d < backoffMax; i++ {
		d *= 2
	}
	d = min(d, backoffMax)
	return d + time.Duration(float64(d)*0.25*j)
}
