// This file has the Coordinator interface and Local, the in-process
// coordinator of the single-process default; see doc.go for the package.

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
