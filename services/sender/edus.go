package sender

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/services/roomserver"
)

// PokeSubject is the core NATS subject on which a Queue, or the queue
// consumer, tells every sender worker that destinations have new rows
// (the data is a JSON array of server names, EncodePoke); each worker
// pokes those of its destination partitions and ignores the others. A
// lost poke only delays those rows until the owner's next sweep of the
// queues (sweepInterval) or the destination's next poke.
const PokeSubject = "axon.sender.poke"

// EDU limits.
const (
	maxTxnEDUs = 100
	// DefaultMaxToDeviceQueue is QueueConfig.MaxToDeviceQueue's default.
	DefaultMaxToDeviceQueue = 10_000
	// typingStopTTL is how long a queued "stopped typing" is worth
	// sending: after it, the destination has timed the user out anyway.
	typingStopTTL = time.Minute
	sweepInterval = time.Minute
)

// The EDU types the queue carries (spec "EDUs").
const (
	EDUTyping   = "m.typing"
	EDUReceipt  = "m.receipt"
	EDUPresence = "m.presence"
	EDUToDevice = "m.direct_to_device"
)

// Key prefixes of sender_edus.edu_key: one kind per prefix, so that a
// destination's send-to-device rows are one range of the primary key.
const (
	keyTyping   = "t|"
	keyReceipt  = "r|"
	keyPresence = "p|"
	keyToDevice = "d|"
)

// QueueConfig configures a Queue.
type QueueConfig struct {
	ServerName string
	// Reader finds the servers of a room (typing, receipts) and the rooms
	// of a user (presence).
	Reader *roomserver.Reader
	// Poke tells the destinations' owners that dests have new EDUs:
	// publish them on PokeSubject, or, in a process that runs the sender
	// role, its Sender.Poke (which pokes its own destinations directly
	// and publishes the rest). Nil: the owners' sweeps find them.
	Poke func(dests []string)
	// MaxToDeviceQueue bounds the send-to-device EDUs queued for one
	// destination (default 10,000); beyond, new ones are dropped with a
	// log, as a full device queue does locally.
	MaxToDeviceQueue int
	Now              func() time.Time
	Logger           *slog.Logger
}

// Queue puts the EDUs of this server's users into the destinations'
// queues (sender_edus). It needs only the database and NATS, so any
// process may use it (the client role does); the sender role sends what
// it queued. Its methods match userdata.Outbound.
type Queue struct {
	db  *store.DB
	cfg QueueConfig
	log *slog.Logger
	// last is the last queued_ns written: each write takes a later one,
	// so that a replaced row is never mistaken for the one sent.
	last atomic.Int64
}

// NewQueue returns a Queue.
func NewQueue(db *store.DB, cfg QueueConfig) *Queue {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxToDeviceQueue <= 0 {
		cfg.MaxToDeviceQueue = DefaultMaxToDeviceQueue
	}
	return &Queue{db: db, cfg: cfg, log: cfg.Logger}
}

// queuedEDU is one row to write.
type queuedEDU struct {
	key, typ string
	content  []byte
	expires  int64 // ms, 0 = never
}

// Typing queues userID's typing state in roomID for the room's other
// servers, replacing a queued one.
func (q *Queue) Typing(ctx context.Context, roomID, userID string, typing bool, timeout time.Duration) error {
	dests, err := q.roomServers(ctx, roomID)
	if err != nil || len(dests) == 0 {
		return err
	}
	content, err := json.Marshal(map[string]any{"room_id": roomID, "user_id": userID, "typing": typing})
	if err != nil {
		return err
	}
	ttl := typingStopTTL
	if typing {
		ttl = timeout
	}
	return q.put(ctx, dests, queuedEDU{key: keyTyping + roomID + "|" + userID, typ: EDUTyping, content: content,
		expires: q.cfg.Now().Add(ttl).UnixMilli()})
}

// Receipt queues userID's public read receipt (m.read) in roomID for the
// room's other servers, replacing the queued one of the same thread.
// threadID "" is an unthreaded receipt.
func (q *Queue) Receipt(ctx context.Context, roomID, userID, eventID, threadID string, ts int64) error {
	dests, err := q.roomServers(ctx, roomID)
	if err != nil || len(dests) == 0 {
		return err
	}
	data := map[string]any{"ts": ts}
	if threadID != "" {
		data["thread_id"] = threadID
	}
	content, err := json.Marshal(map[string]any{roomID: map[string]any{"m.read": map[string]any{
		userID: map[string]any{"event_ids": []string{eventID}, "data": data}}}})
	if err != nil {
		return err
	}
	return q.put(ctx, dests, queuedEDU{key: keyReceipt + roomID + "|" + userID + "|" + threadID, typ: EDUReceipt, content: content})
}

// Presence queues userID's presence for every server that shares a room
// with the user, replacing the queued one. statusMsg nil means none.
func (q *Queue) Presence(ctx context.Context, userID, presence string, statusMsg *string, lastActiveAgo int64, currentlyActive bool) error {
	dests, err := q.userServers(ctx, userID)
	if err != nil || len(dests) == 0 {
		return err
	}
	p := map[string]any{"user_id": userID, "presence": presence, "last_active_ago": lastActiveAgo, "currently_active": currentlyActive}
	if statusMsg != nil {
		p["status_msg"] = *statusMsg
	}
	content, err := json.Marshal(map[string]any{"push": []any{p}})
	if err != nil {
		return err
	}
	return q.put(ctx, dests, queuedEDU{key: keyPresence + userID, typ: EDUPresence, content: content})
}

// ToDevice queues a send-to-device EDU for destination: messages are by
// user (of destination) and device ID ("*" for all). The same sender and
// messageID are queued once; a destination with MaxToDeviceQueue of them
// queued drops new ones (with a log, and no error: one unreachable server
// must not fail a sender's messages to everyone else).
func (q *Queue) ToDevice(ctx context.Context, destination, sender, typ, messageID string, messages map[string]map[string]json.RawMessage) error {
	if destination == "" || destination == q.cfg.ServerName {
		return fmt.Errorf("sender: send-to-device for destination %q", destination)
	}
	content, err := json.Marshal(map[string]any{"sender": sender, "type": typ, "message_id": messageID, "messages": messages})
	if err != nil {
		return err
	}
	full := false
	err = q.db.Tx(ctx, func(ctx context.Context, tx *store.Tx) error {
		var n int
		err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM sender_edus
			WHERE destination = $1 AND edu_key >= $2 AND edu_key < $3 LIMIT $4) queued`,
			destination, keyToDevice, keyRangeEnd(keyToDevice), q.cfg.MaxToDeviceQueue).Scan(&n)
		if err != nil {
			return err
		}
		if full = n >= q.cfg.MaxToDeviceQueue; full {
			return nil
		}
		tx.Defer(`INSERT INTO sender_edus (destination, edu_key, edu_type, content, queued_ns, expires_ts)
			VALUES ($1, $2, $3, $4, $5, 0) ON CONFLICT (destination, edu_key) DO NOTHING`,
			destination, keyToDevice+sender+"|"+messageID, EDUToDevice, content, q.stamp())
		return nil
	})
	if err != nil {
		return fmt.Errorf("sender: queue send-to-device: %w", err)
	}
	if full {
		q.log.Warn("sender: send-to-device EDU dropped: the destination's queue is full", "destination", destination,
			"message_id", messageID)
		return nil
	}
	q.poke([]string{destination})
	return nil
}

// keyRangeEnd is the first key after every key with prefix p (p ends
// with '|').
func keyRangeEnd(p string) string { return p[:len(p)-1] + "}" }

// put writes e for every destination in one transaction, replacing the
// queued EDU of the same key, and pokes the sender.
func (q *Queue) put(ctx context.Context, dests []string, e queuedEDU) error {
	ns := q.stamp()
	err := q.db.Tx(ctx, func(ctx context.Context, tx *store.Tx) error {
		for _, d := range dests {
			tx.Defer(`INSERT INTO sender_edus (destination, edu_key, edu_type, content, queued_ns, expires_ts)
				VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (destination, edu_key) DO UPDATE SET
				edu_type = excluded.edu_type, content = excluded.content, queued_ns = excluded.queued_ns, expires_ts = excluded.expires_ts`,
				d, e.key, e.typ, e.content, ns, e.expires)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sender: queue %s: %w", e.typ, err)
	}
	q.poke(dests)
	return nil
}

// stamp returns the queued_ns of a write: the clock, or one more than the
// last stamp if the clock has not moved past it.
func (q *Queue) stamp() int64 {
	for {
		last := q.last.Load()
		ns := max(q.cfg.Now().UnixNano(), last+1)
		if q.last.CompareAndSwap(last, ns) {
			return ns
		}
	}
}

func (q *Queue) poke(dests []string) {
	if q.cfg.Poke != nil {
		q.cfg.Poke(dests)
	}
}

// roomServers lists the other servers with a user joined to the room.
func (q *Queue) roomServers(ctx context.Context, roomID string) ([]string, error) {
	servers, err := q.cfg.Reader.ResidentServers(ctx, roomID)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(servers, func(s string) bool { return s == q.cfg.ServerName || s == "" }), nil
}

// userServers lists the other servers that share a room with userID. It
// reads every member of the user's rooms: presence changes are rare next
// to typing and receipts, but a user in many large rooms makes each one
// cost (see the package doc).
func (q *Queue) userServers(ctx context.Context, userID string) ([]string, error) {
	rooms, err := q.cfg.Reader.RoomsOf(ctx, userID, "join")
	if err != nil || len(rooms) == 0 {
		return nil, err
	}
	users, err := q.cfg.Reader.JoinedMembersOf(ctx, rooms)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{q.cfg.ServerName: true, "": true}
	var out []string
	for _, u := range users {
		if s := serverOf(u); !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out, nil
}

// EncodePoke is the data of a poke on PokeSubject.
func EncodePoke(dests []string) []byte {
	data, _ := json.Marshal(dests)
	return data
}

// sentEDU is one queued EDU read for a transaction.
type sentEDU struct {
	key      string
	queuedNS int64
	edu      json.RawMessage // {"edu_type", "content"}
}

// queuedEDUs reads up to maxTxnEDUs of dest's EDUs, oldest first: the
// ones to send and the keys of typing notifications that expired unsent
// (to delete).
func (s *Sender) queuedEDUs(ctx context.Context, dest string) (live []sentEDU, expired []sentEDU, err error) {
	rows, err := s.db.Query(ctx, `SELECT edu_key, edu_type, content, queued_ns, expires_ts FROM sender_edus
		WHERE destination = $1 ORDER BY queued_ns, edu_key LIMIT $2`, dest, maxTxnEDUs)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	now := s.cfg.Now().UnixMilli()
	for rows.Next() {
		var e sentEDU
		var typ string
		var content []byte
		var expires int64
		if err := rows.Scan(&e.key, &typ, &content, &e.queuedNS, &expires); err != nil {
			return nil, nil, err
		}
		if expires > 0 && expires <= now {
			expired = append(expired, e)
			continue
		}
		if e.edu, err = json.Marshal(struct {
			Type    string          `json:"edu_type"`
			Content json.RawMessage `json:"content"`
		}{typ, content}); err != nil {
			return nil, nil, err
		}
		live = append(live, e)
	}
	return live, expired, rows.Err()
}

// txnID names a transaction after what it carries, so that the same
// transaction sent again after an unclear failure has the same ID (and
// the destination answers it from its cache), while one with other rows
// (rows queued meanwhile between its first and last, which belong to
// other destinations too, so a range names no content; a coalesced typing
// state replaced meanwhile) gets a new ID and is processed. The ID is the
// PDU rows' range, for reading logs, and a hash of every row.
func txnID(seqs []int64, edus []sentEDU) string {
	h := sha256.New()
	var b [8]byte
	for _, seq := range seqs {
		binary.BigEndian.PutUint64(b[:], uint64(seq))
		h.Write(b[:])
	}
	h.Write([]byte{0}) // no PDU row's key starts with a zero byte
	for _, e := range edus {
		h.Write([]byte(e.key))
		binary.BigEndian.PutUint64(b[:], uint64(e.queuedNS))
		h.Write(b[:])
	}
	sum := hex.EncodeToString(h.Sum(nil)[:12])
	if len(seqs) == 0 {
		return "e" + sum
	}
	return strconv.FormatInt(seqs[0], 10) + "-" + strconv.FormatInt(seqs[len(seqs)-1], 10) + "-" + sum
}

// deleteEDUs deletes sent (or expired) EDUs inside tx, each only if it
// was not replaced since it was read.
func deleteEDUs(tx *store.Tx, dest string, edus []sentEDU) {
	for _, e := range edus {
		tx.Defer(`DELETE FROM sender_edus WHERE destination = $1 AND edu_key = $2 AND queued_ns = $3`, dest, e.key, e.queuedNS)
	}
}

// handlePoke pokes the destinations of a message on PokeSubject (poke
// skips those this process does not own).
func (s *Sender) handlePoke(data []byte) {
	var dests []string
	if err := json.Unmarshal(data, &dests); err != nil {
		s.log.Warn("sender: undecodable poke", "err", err)
		return
	}
	for _, d := range dests {
		if d != "" && d != s.cfg.ServerName {
			s.poke(d)
		}
	}
}

// requestSweep asks the sweeper for a sweep soon (a partition was
// gained); requests made while one waits are served by the same sweep.
func (s *Sender) requestSweep() {
	select {
	case s.sweepReq <- struct{}{}:
	default:
	}
}

// sweep pokes every destination with queued rows in the partitions this
// process owns: when asked (a partition was gained), and every
// sweepEvery for the pokes that NATS lost. One query serves every
// partition gained since the last sweep.
func (s *Sender) sweep(ctx context.Context) {
	t := time.NewTicker(s.sweepEvery)
	defer t.Stop()
	for {
		tick := false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			tick = true
		case <-s.sweepReq:
		}
		// The partitions gained before the query starts are covered by it.
		s.mu.Lock()
		var fresh []*destPartition
		for _, part := range s.parts {
			if !part.swept {
				fresh = append(fresh, part)
			}
		}
		s.mu.Unlock()
		if !tick && len(fresh) == 0 {
			continue // an earlier sweep covered the partitions that asked
		}
		if err := s.pokeQueued(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("sender: sweeping the queues failed", "err", err)
			if len(fresh) > 0 {
				// Gained partitions must not wait for the next tick.
				select {
				case <-ctx.Done():
					return
				case <-time.After(sweepRetry):
				}
				s.requestSweep()
			}
			continue
		}
		s.mu.Lock()
		for _, part := range fresh {
			part.swept = true
		}
		s.mu.Unlock()
	}
}
