package roomserver

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/axon-hs/axon/internal/store"
)

// groupCommit merges the batches that partitions of one process commit at
// the same time into one transaction. On SQLite, where there is a single
// writer anyway, sixteen partitions committing one event each otherwise
// pay sixteen times for the transaction and its WAL frames, and that was
// the largest part of the room role's cost when many rooms are busy. On
// PostgreSQL it saves the round trips of BEGIN, COMMIT and the head
// updates, and a WAL flush, per partition (make bench (b): p99 halved).
// It is not used on CockroachDB, where a transaction spanning many rooms'
// ranges becomes a distributed one, slower than the parallel commits it
// would replace.
//
// There is no goroutine of its own: the first committer leads, waits
// briefly for the partitions still applying a batch (gather), writes its
// batch together with every batch queued meanwhile, answers them, and hands
// the lead to the first batch queued while it was writing. Each batch keeps
// its compare-and-set guards; if the merged transaction fails, every batch
// is written again on its own, so that one partition's conflict fails only
// that partition.
type groupCommit struct {
	db    *store.DB
	m     *Metrics
	mu    sync.Mutex
	busy  bool
	queue []*commitReq
	// applying counts the partitions between taking a batch and calling
	// commit (or giving up on it); arrived is signalled whenever one of
	// them gets there. A leader waits for them, at most maxGather, so
	// that batches applied at the same time are committed together.
	applying atomic.Int32
	arrived  chan struct{}
}

// maxGather bounds how long a leader waits for partitions that are still
// applying their batches.
const maxGather = time.Millisecond

func newGroupCommit(db *store.DB, m *Metrics) *groupCommit {
	return &groupCommit{db: db, m: m, arrived: make(chan struct{}, 1)}
}

// applyTicket marks one partition's batch between begin and its commit
// (or its end without one).
type applyTicket struct {
	g    *groupCommit
	done bool
}

// begin is called when a partition starts applying a batch. The ticket's
// end must be called when the batch is over (commit ends it earlier).
func (g *groupCommit) begin() *applyTicket {
	if g == nil {
		return nil
	}
	g.applying.Add(1)
	return &applyTicket{g: g}
}

// end takes the batch out of the applying count; later calls do nothing.
func (t *applyTicket) end() {
	if t == nil || t.done {
		return
	}
	t.done = true
	t.g.applying.Add(-1)
	select {
	case t.g.arrived <- struct{}{}:
	default:
	}
}

// commitReq is one partition's batch.
type commitReq struct {
	partition   int
	writes      []*roomWrite
	now, stream int64
	done        chan commitResult // buffered: the leader never blocks
}

type commitResult struct {
	err  error
	lead bool // the receiver leads the next round instead
}

// commit writes the partition's rooms and returns when they are committed
// (or failed).
func (g *groupCommit) commit(ctx context.Context, t *applyTicket, partition int, writes []*roomWrite, now, stream int64) error {
	req := &commitReq{partition: partition, writes: writes, now: now, stream: stream, done: make(chan commitResult, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, req)
	t.end()
	if g.busy {
		g.mu.Unlock()
		if r := <-req.done; !r.lead {
			return r.err
		}
		g.mu.Lock()
	}
	g.busy = true
	g.mu.Unlock()
	g.gather()
	g.mu.Lock()
	round := g.queue
	g.queue = nil
	g.mu.Unlock()

	// The leader's cancellation must not fail the batches of others it
	// writes; statement timeouts still bound the transaction.
	errs := g.write(context.WithoutCancel(ctx), round)
	var own error
	for i, r := range round {
		if r == req {
			own = errs[i]
			continue
		}
		r.done <- commitResult{err: errs[i]}
	}

	g.mu.Lock()
	if len(g.queue) > 0 {
		g.queue[0].done <- commitResult{lead: true}
	} else {
		g.busy = false
	}
	g.mu.Unlock()
	return own
}

// gather waits until no partition is still applying a batch, or maxGather.
func (g *groupCommit) gather() {
	if g.applying.Load() <= 0 {
		return
	}
	t := time.NewTimer(maxGather)
	defer t.Stop()
	for g.applying.Load() > 0 {
		select {
		case <-g.arrived:
		case <-t.C:
			return
		}
	}
}

// write commits the round in one transaction, or each batch on its own
// when that fails.
func (g *groupCommit) write(ctx context.Context, round []*commitReq) []error {
	errs := make([]error, len(round))
	if len(round) > 1 {
		err := g.db.Tx(ctx, func(ctx context.Context, tx *store.Tx) error {
			for _, r := range round {
				for _, w := range r.writes {
					if err := writeRoom(ctx, tx, r.partition, w, r.now, r.stream); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err == nil {
			g.m.observeCommit(len(round))
			return errs
		}
	}
	for i, r := range round {
		g.m.observeCommit(1)
		errs[i] = writeBatch(ctx, g.db, r.partition, r.writes, nil, r.now, r.stream)
	}
	return errs
}
