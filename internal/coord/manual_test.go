package coord

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// runLog records which partitions run, and which runs have ended.
type runLog struct {
	mu      sync.Mutex
	running map[int]int // partition → live runs
	starts  map[int]int
}

func newRunLog() *runLog { return &runLog{running: map[int]int{}, starts: map[int]int{}} }

func (l *runLog) run(ctx context.Context, p int) {
	l.mu.Lock()
	l.running[p]++
	l.starts[p]++
	l.mu.Unlock()
	<-ctx.Done()
	time.Sleep(time.Millisecond) // a run drains before it returns
	l.mu.Lock()
	l.running[p]--
	l.mu.Unlock()
}

// live returns the partitions with a run that has not returned.
func (l *runLog) live() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []int
	for p, n := range l.running {
		if n > 0 {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

func (l *runLog) started(p int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.starts[p]
}

func waitFor(t *testing.T, msg string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("not within 5s: " + msg)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Manual runs exactly the partitions assigned to it (before or during
// Own, in range), stops a revoked one before Revoke returns, hands
// partitions over with Move, and stops everything when ctx ends.
func TestManualAssignRevokeMove(t *testing.T) {
	a, b := NewManual(nil), NewManual(nil)
	la, lb := newRunLog(), newRunLog()
	a.Assign("dests", 0, 1, 9) // 9 is out of range
	ctx, cancel := context.WithCancel(context.Background())
	doneA, doneB := make(chan error), make(chan error)
	go func() { doneA <- a.Own(ctx, "dests", 4, la.run) }()
	go func() { doneB <- b.Own(ctx, "dests", 4, lb.run) }()

	waitFor(t, "a runs its assigned partitions", func() bool { return slices.Equal(la.live(), []int{0, 1}) })
	if got := a.Owned("dests"); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("a owns %v, want [0 1]", got)
	}
	if got := b.Owned("dests"); len(got) != 0 {
		t.Errorf("b owns %v before anything was assigned to it", got)
	}
	if err := a.Own(ctx, "dests", 4, la.run); err == nil {
		t.Error("owning a resource twice should fail")
	}

	b.Assign("dests", 2, 3)
	waitFor(t, "b runs what it was assigned", func() bool { return slices.Equal(lb.live(), []int{2, 3}) })
	a.Assign("dests", 1) // already running: not started twice
	if n := la.started(1); n != 1 {
		t.Errorf("partition 1 started %d times", n)
	}

	a.Revoke("dests", 1)
	if got := la.live(); !slices.Equal(got, []int{0}) {
		t.Errorf("after Revoke(1) a still runs %v", got)
	}
	a.Move(b, "dests", 0)
	if got := la.live(); len(got) != 0 {
		t.Errorf("after Move a still runs %v", got)
	}
	waitFor(t, "b runs the moved partition", func() bool { return slices.Equal(lb.live(), []int{0, 2, 3}) })
	if got := b.Owned("dests"); !slices.Equal(got, []int{0, 2, 3}) {
		t.Errorf("b owns %v, want [0 2 3]", got)
	}
	b.Move(a, "dests", 0)
	waitFor(t, "a runs partition 0 again", func() bool { return slices.Equal(la.live(), []int{0}) })
	if n := la.started(0); n != 2 {
		t.Errorf("partition 0 started %d times on a, want 2", n)
	}

	cancel()
	for _, done := range []chan error{doneA, doneB} {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if len(la.live()) != 0 || len(lb.live()) != 0 {
		t.Errorf("runs left after Own returned: %v %v", la.live(), lb.live())
	}
	if got := a.Owned("dests"); len(got) != 0 {
		t.Errorf("still owned after Own returned: %v", got)
	}
	if err := a.Own(context.Background(), "x", 0, nil); err == nil {
		t.Error("zero partitions should fail")
	}
}

// Two Manuals may own the same partition at once: nothing in Manual
// prevents it (tests use it to show that ownership is not needed for
// correctness).
func TestManualOverlap(t *testing.T) {
	a, b := NewManual(nil), NewManual(nil)
	la, lb := newRunLog(), newRunLog()
	a.Assign("r", 0)
	b.Assign("r", 0)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = a.Own(ctx, "r", 1, la.run) })
	wg.Go(func() { _ = b.Own(ctx, "r", 1, lb.run) })
	waitFor(t, "both run partition 0", func() bool {
		return slices.Equal(la.live(), []int{0}) && slices.Equal(lb.live(), []int{0})
	})
	cancel()
	wg.Wait()
}
