// Package coord decides which worker owns which partition of a resource
// (room partitions, federation destinations, singletons such as the sync
// indexer). Ownership only removes contention: correctness never depends
// on it (see services/roomserver), so a worker that still believes it owns
// a partition it lost cannot corrupt anything.
//
// This file has the interface and the in-process coordinator of the
// single-process default, which owns everything. The etcd-backed one, with
// leases that rebalance as workers come and go, implements the same
// interface (cluster mode). Manual (manual.go) owns what it is told to:
// tests use one per simulated process to split partitions between them
// and move them mid-stream.
//
// It never touches the database or NATS.
package coord

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
)

// Coordinator runs work for the partitions this process owns.
type Coordinator interface {
	// Own calls run once for every partition of resource (0 ≤ p < n) that
	// this process comes to own, each in its own goroutine, with a context
	// cancelled when ownership is lost or ctx ends. run must return
	// promptly after its context is cancelled (draining in-flight work
	// first). Own blocks until ctx ends and every run has returned.
	Own(ctx context.Context, resource string, n int, run func(ctx context.Context, partition int)) error
	// Owned reports the partitions of resource this process owns now.
	Owned(resource string) []int
}

// Local owns every partition of every resource: the single-process
// default, where nobody else could.
type Local struct {
	log *slog.Logger
	mu  sync.Mutex
	own map[string][]int
}

var _ Coordinator = (*Local)(nil)

// NewLocal returns the in-process coordinator.
func NewLocal(log *slog.Logger) *Local {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Local{log: log, own: make(map[string][]int)}
}

// Own implements Coordinator.
func (l *Local) Own(ctx context.Context, resource string, n int, run func(ctx context.Context, partition int)) error {
	if n < 1 {
		return fmt.Errorf("coord: %s: %d partitions", resource, n)
	}
	parts := make([]int, n)
	for i := range parts {
		parts[i] = i
	}
	l.mu.Lock()
	if _, dup := l.own[resource]; dup {
		l.mu.Unlock()
		return fmt.Errorf("coord: %s is already owned by this process", resource)
	}
	l.own[resource] = parts
	l.mu.Unlock()
	l.log.Info("coord: owning partitions", "resource", resource, "partitions", n)
	var wg sync.WaitGroup
	for _, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run(ctx, p)
		}()
	}
	wg.Wait()
	l.mu.Lock()
	delete(l.own, resource)
	l.mu.Unlock()
	return nil
}

// Owned implements Coordinator.
func (l *Local) Owned(resource string) []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int(nil), l.own[resource]...)
}
