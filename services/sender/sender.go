// Package sender is the sender role's federation half: it delivers the
// events this server makes to the other servers of their rooms, and its
// users' EDUs (typing, read receipts, presence, send-to-device messages)
// to the servers concerned.
//
// # Queues
//
// One consumer of ROOM_EVENTS (the coordinator resource QueueResource, so
// one owner at a time) takes every accepted event sent by a user of this
// server and queues it, in one transaction per batch, for each other
// server with a user joined to the room (and the server of the target of
// a membership event: an invite or a kick reaches its subject). The queue
// rows (sender_queue) are the durable truth: a destination's worker sends
// them in order, in transactions of at most 50 PDUs whose ID is derived
// from the first and last row, so a transaction retried after an unclear
// failure is recognised by the destination; rows are deleted once a
// transaction is answered 200. A worker that dies leaves its rows for the
// next owner, which starts a worker for every destination with rows.
//
// # EDUs (edus.go)
//
// Local users' EDUs are queued by a Queue, which any process may hold
// (the client role's userdata service does, as its userdata.Outbound): it
// needs only the database and NATS, writes this package's own table
// sender_edus, and then pokes the sender role on PokeSubject (core NATS).
// A lost poke only delays: the queue owner sweeps every destination with
// rows once a minute, and at start. The destinations are computed when an
// EDU is queued: typing and public read receipts (m.read; private ones
// never leave the server) go to every other server with a user joined to
// the room, presence to every server sharing a room with the user (which
// reads the members of all the user's rooms: cheap for most users, a cost
// for one in many large rooms), send-to-device to the recipients' server,
// one EDU per server with a message_id derived from the sending device,
// the client's transaction ID and the server (so a retried request yields
// the same EDU).
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
// PDU range with a hash of the EDUs' keys and versions: the same
// transaction retried after an unclear failure keeps its ID, one whose
// EDUs were replaced meanwhile gets a new one (the destination would
// otherwise answer it from its cache without applying the new EDUs). A
// row replaced while its transaction was in flight is not deleted by that
// transaction's success.
//
// # Backoff
//
// A failed transaction puts its destination in backoff (sender_destinations):
// 2 s after the first failure, doubling up to an hour, with up to 25%
// jitter so that many destinations do not retry together. New events are
// queued meanwhile and go in order once the destination answers again.
// At most Config.MaxActive destinations are sent to at once (the others wait
// their turn in a first-come queue, with no goroutine); the connection
// limits are the federation transport's (per destination and in total).
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
// Outbound m.device_list_update and m.signing_key_update (there is no
// end-to-end key store yet); presence timeouts (idle, offline) are not
// announced, only changes that a user or /sync makes; partitioning
// destinations across several sender workers (one worker owns every queue
// for now).
package sender

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/axon-hs/axon/internal/bus"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/services/federation/fedclient"
	"github.com/axon-hs/axon/services/roomserver"
	"github.com/nats-io/nats.go"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the package's migrations (versions 0900–0999).
func Migrations() fs.FS { return store.MigrationsDir(migrations) }

// QueueResource is the coordinator resource of the queue consumer.
const QueueResource = "federation-sender"

// Limits.
const (
	maxTxnPDUs = 50
	// DefaultMaxActive is Config.MaxActive's default.
	DefaultMaxActive = 256
	backoffFirst     = 2 * time.Second
	backoffMax       = time.Hour
)

// Config configures the Sender.
type Config struct {
	ServerName string
	Client     *fedclient.Client
	Reader     *roomserver.Reader
	// MaxActive bounds the destinations sent to at once (default 256).
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

	mu      sync.Mutex
	active  map[string]bool // destinations with a worker
	pending map[string]bool // poked while their worker ran
	timers  map[string]*time.Timer
	// waiting are destinations with work while MaxActive workers run,
	// oldest first (queued is the same set): a worker that ends starts
	// the next, so there are never more than MaxActive goroutines.
	waiting []string
	queued  map[string]bool
	wg      sync.WaitGroup
	ctx     context.Context
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
	return &Sender{db: db, bus: b, cfg: cfg, log: cfg.Logger, active: map[string]bool{}, pending: map[string]bool{},
		timers: map[string]*time.Timer{}, queued: map[string]bool{}}
}

// Run consumes ROOM_EVENTS into the queues and sends them until ctx ends.
// Only one process's Run should consume at a time (QueueResource).
func (s *Sender) Run(ctx context.Context) error {
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	if err := s.pokeQueued(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("sender: reading the queues failed", "err", err)
	}
	// EDUs are queued by other processes (Queue), which poke over NATS.
	sub, err := s.bus.Conn().Subscribe(PokeSubject, func(m *nats.Msg) { s.handlePoke(m.Data) })
	if err != nil {
		return fmt.Errorf("sender: subscribe to %s: %w", PokeSubject, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.sweep(ctx)
	}()
	err = s.bus.ConsumeBatch(ctx, bus.RoomEvents, bus.AllPartitions, "federation-sender", 500, s.handle,
		bus.ConsumeOptions{Logger: s.log})
	s.mu.Lock()
	for _, t := range s.timers {
		t.Stop()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
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
	for _, r := range rows {
		s.poke(r.dest)
	}
	return nil
}

func serverOf(userID string) string {
	_, server, _ := strings.Cut(userID, ":")
	return server
}

// pokeQueued starts a worker for every destination with queued events or
// EDUs.
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
// its backoff).
func (s *Sender) poke(dest string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil || s.ctx.Err() != nil {
		return
	}
	if s.active[dest] {
		s.pending[dest] = true
		return
	}
	if _, waiting := s.timers[dest]; waiting {
		return // its backoff timer pokes it
	}
	if len(s.active) >= s.cfg.MaxActive {
		if !s.queued[dest] {
			s.queued[dest] = true
			s.waiting = append(s.waiting, dest)
		}
		return
	}
	s.startLocked(dest)
}

// startLocked starts dest's worker. s.mu is held.
func (s *Sender) startLocked(dest string) {
	s.active[dest] = true
	s.wg.Add(1)
	go s.work(s.ctx, dest)
}

// work sends dest's queue until it is empty or a transaction fails, then
// hands its place to the longest-waiting destination.
func (s *Sender) work(ctx context.Context, dest string) {
	defer s.wg.Done()
	retryIn, err := s.drain(ctx, dest)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.active, dest)
	again := s.pending[dest]
	delete(s.pending, dest)
	switch {
	case ctx.Err() != nil:
		return
	case err != nil:
		s.log.Info("sender: destination failed; backing off", "destination", dest, "retry_in", retryIn, "err", err)
		s.timers[dest] = time.AfterFunc(retryIn, func() {
			s.mu.Lock()
			delete(s.timers, dest)
			s.mu.Unlock()
			s.poke(dest)
		})
	case again:
		s.startLocked(dest)
		return
	}
	for len(s.waiting) > 0 && len(s.active) < s.cfg.MaxActive {
		next := s.waiting[0]
		s.waiting = s.waiting[1:]
		delete(s.queued, next)
		if !s.active[next] {
			s.startLocked(next)
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
			return s.failed(ctx, dest), err
		}
		err = s.db.Tx(ctx, func(ctx context.Context, tx *store.Tx) error {
			if len(seqs) > 0 {
				tx.Defer(`DELETE FROM sender_queue WHERE destination = $1 AND seq >= $2 AND seq <= $3`, dest, seqs[0], seqs[len(seqs)-1])
			}
			deleteEDUs(tx, dest, edus)
			deleteEDUs(tx, dest, expired)
			tx.Defer(`DELETE FROM sender_destinations WHERE destination = $1`, dest)
			return nil
		})
		if err != nil {
			return backoffFirst, err
		}
	}
	return 0, ctx.Err()
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
