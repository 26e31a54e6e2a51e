package roomserver

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/axon-hs/axon/internal/bus"
	"github.com/axon-hs/axon/internal/coord"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/keys"
	"github.com/nats-io/nats.go/jetstream"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the room role's migrations (versions 0200–0299).
func Migrations() fs.FS { return store.MigrationsDir(migrations) }

// Config configures the room role.
type Config struct {
	ServerName string
	Key        *keys.SigningKey
	// MaxBatch bounds the inputs persisted in one transaction (default 200).
	MaxBatch int
	// CacheRooms bounds the rooms whose state is kept in memory
	// (default 10,000).
	CacheRooms int
	Now        func() time.Time
	Rand       io.Reader
	Logger     *slog.Logger
	Metrics    *Metrics // nil: no metrics
}

// Server is the room role: it owns room partitions, and for each one
// consumes ROOM_INPUT, builds, authorises and persists events, and relays
// them to ROOM_EVENTS.
type Server struct {
	db    *store.DB
	bus   *bus.Bus
	cfg   Config
	log   *slog.Logger
	cache *cache
	b     *builder
	m     *Metrics
	// gc merges the commits of concurrent partitions (not on CockroachDB:
	// see groupCommit); nil means each batch commits on its own.
	gc *groupCommit
	// local is this process's Submitter, if any (ReplyLocally).
	local atomic.Pointer[Submitter]
}

// ReplyLocally makes the partitions answer the inputs of sub, the
// Submitter of this same process, by handing it their Results directly
// instead of publishing them on its reply subjects: a send then waits for
// no NATS round trip after its commit. Inputs of other processes are
// answered over NATS as before.
func (s *Server) ReplyLocally(sub *Submitter) { s.local.Store(sub) }

// New returns the room role. Run starts it.
func New(db *store.DB, b *bus.Bus, cfg Config) (*Server, error) {
	if cfg.Key == nil || cfg.ServerName == "" {
		return nil, errors.New("roomserver: a server name and signing key are required")
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 200
	}
	if cfg.CacheRooms <= 0 {
		cfg.CacheRooms = 10_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Rand = defaultRand(cfg.Rand)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		db: db, bus: b, cfg: cfg, log: cfg.Logger, m: cfg.Metrics,
		cache: newCache(cfg.CacheRooms),
		b:     &builder{origin: cfg.ServerName, key: cfg.Key, now: cfg.Now, rand: cfg.Rand},
	}
	if db.Kind() != store.KindCockroach {
		s.gc = newGroupCommit(db, cfg.Metrics)
	}
	return s, nil
}

// writeEvents commits a partition's batch: merged with other partitions'
// concurrent batches on SQLite, on its own elsewhere (where partitions
// write in parallel and usually live in different processes).
func (s *Server) writeEvents(ctx context.Context, t *applyTicket, partition int, writes []*roomWrite, now, stream int64) error {
	if s.gc != nil {
		return s.gc.commit(ctx, t, partition, writes, now, stream)
	}
	s.m.observeCommit(1)
	return writeBatch(ctx, s.db, partition, writes, nil, now, stream)
}

// Resource is the coordinator resource name of room partitions.
const Resource = "room-partitions"

// Run owns room partitions through c until ctx ends, then drains.
func (s *Server) Run(ctx context.Context, c coord.Coordinator) error {
	return c.Own(ctx, Resource, s.bus.Partitions(), func(ctx context.Context, p int) {
		s.runPartition(ctx, p)
	})
}

// runPartition first publishes what a previous owner committed but did
// not relay (so that ROOM_EVENTS keeps each room's order), then consumes
// the partition's input until ctx ends.
func (s *Server) runPartition(ctx context.Context, p int) {
	log := s.log.With("partition", p)
	w := &partitionWorker{s: s, p: p, log: log, done: make(map[string]int64)}
	for ctx.Err() == nil {
		var err error
		var info *jetstream.StreamInfo
		if info, err = s.bus.StreamInfo(ctx, bus.RoomInput); err == nil {
			w.streamCreated = info.Created.UnixNano()
			err = w.relayPending(ctx)
		}
		if err != nil {
			log.Warn("roomserver: relaying the outbox failed; retrying", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		break
	}
	if ctx.Err() != nil {
		return
	}
	durable := fmt.Sprintf("room-input-%d", p)
	if err := s.bus.ConsumeBatch(ctx, bus.RoomInput, p, durable, s.cfg.MaxBatch, w.handle, bus.ConsumeOptions{Logger: log}); err != nil {
		log.Error("roomserver: partition consumer stopped", "err", err)
	}
	// Delete what was published since the last cleanup, best effort: rows
	// left behind are published again (de-duplicated) by the next owner.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	w.cleanupOutbox(dctx, true)
}
