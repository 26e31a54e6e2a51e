package coord

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
)

// Manual is a Coordinator whose ownership is given and taken by hand
// (Assign, Revoke, Move) instead of by leases: one Manual stands for one
// process, so tests can run several "processes" over one database and
// bus and move partitions between them mid-stream. Nothing is owned until
// assigned. Nothing stops two Manuals owning the same partition at once,
// which is how a test shows that correctness does not depend on
// ownership.
type Manual struct {
	log      *slog.Logger
	mu       sync.Mutex
	assigned map[string]map[int]bool // by resource, whether or not Own runs
	owning   map[string]*manualOwn   // resources under Own
}

// manualOwn is one call of Own.
type manualOwn struct {
	ctx    context.Context
	n      int
	run    func(context.Context, int)
	runs   map[int]*manualRun // partitions whose run has not returned
	closed bool               // Own is returning: start nothing more
	wg     sync.WaitGroup
}

type manualRun struct {
	cancel context.CancelFunc
	done   chan struct{}
}

var _ Coordinator = (*Manual)(nil)

// NewManual returns a Manual that owns nothing.
func NewManual(log *slog.Logger) *Manual {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manual{log: log, assigned: map[string]map[int]bool{}, owning: map[string]*manualOwn{}}
}

// Own implements Coordinator: it runs the assigned partitions of
// resource (those in [0, n)), and those assigned later, until they are
// revoked or ctx ends.
func (m *Manual) Own(ctx context.Context, resource string, n int, run func(ctx context.Context, partition int)) error {
	if n < 1 {
		return fmt.Errorf("coord: %s: %d partitions", resource, n)
	}
	o := &manualOwn{ctx: ctx, n: n, run: run, runs: map[int]*manualRun{}}
	m.mu.Lock()
	if _, dup := m.owning[resource]; dup {
		m.mu.Unlock()
		return fmt.Errorf("coord: %s is already owned by this process", resource)
	}
	m.owning[resource] = o
	for p := range m.assigned[resource] {
		m.startLocked(resource, o, p)
	}
	m.mu.Unlock()

	<-ctx.Done()
	m.mu.Lock()
	o.closed = true
	for _, r := range o.runs {
		r.cancel()
	}
	m.mu.Unlock()
	o.wg.Wait()
	m.mu.Lock()
	delete(m.owning, resource)
	m.mu.Unlock()
	return nil
}

// startLocked starts partition p's run unless it is out of range or runs
// already. m.mu is held.
func (m *Manual) startLocked(resource string, o *manualOwn, p int) {
	if o.closed || p < 0 || p >= o.n || o.runs[p] != nil {
		return
	}
	ctx, cancel := context.WithCancel(o.ctx)
	r := &manualRun{cancel: cancel, done: make(chan struct{})}
	o.runs[p] = r
	o.wg.Add(1)
	m.log.Info("coord: partition gained", "resource", resource, "partition", p)
	go func() {
		defer o.wg.Done()
		defer close(r.done)
		defer cancel()
		o.run(ctx, p)
		m.mu.Lock()
		if o.runs[p] == r {
			delete(o.runs, p)
		}
		m.mu.Unlock()
	}()
}

// Assign gives this process partitions of resource: under Own, their
// runs start at once; otherwise when Own is called. Partitions outside
// [0, n) of Own are never run.
func (m *Manual) Assign(resource string, partitions ...int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	set := m.assigned[resource]
	if set == nil {
		set = map[int]bool{}
		m.assigned[resource] = set
	}
	o := m.owning[resource]
	for _, p := range partitions {
		set[p] = true
		if o != nil {
			m.startLocked(resource, o, p)
		}
	}
}

// Revoke takes partitions of resource away from this process: their
// runs' contexts are cancelled, and Revoke returns once those runs have
// returned (a clean hand-over, as a lease released on purpose).
func (m *Manual) Revoke(resource string, partitions ...int) {
	m.mu.Lock()
	var wait []*manualRun
	o := m.owning[resource]
	for _, p := range partitions {
		delete(m.assigned[resource], p)
		if o == nil {
			continue
		}
		if r := o.runs[p]; r != nil {
			delete(o.runs, p)
			r.cancel()
			wait = append(wait, r)
			m.log.Info("coord: partition revoked", "resource", resource, "partition", p)
		}
	}
	m.mu.Unlock()
	for _, r := range wait {
		<-r.done
	}
}

// Move revokes partitions of resource from m, waiting for their runs to
// return, then assigns them to to.
func (m *Manual) Move(to *Manual, resource string, partitions ...int) {
	m.Revoke(resource, partitions...)
	to.Assign(resource, partitions...)
}

// Owned implements Coordinator: the partitions of resource that are
// assigned and running under Own (not revoked, nor returned on their
// own).
func (m *Manual) Owned(resource string) []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	o := m.owning[resource]
	if o == nil {
		return nil
	}
	var out []int
	for p := range o.runs {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}
