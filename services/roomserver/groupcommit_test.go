package roomserver

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/store/storetest"
	"github.com/axon-hs/axon/internal/testenv"
	"github.com/axon-hs/axon/matrix/roomversion"
)

// A round of merged commits in which one batch conflicts: that batch alone
// fails, every other one is committed, and each caller gets its own answer.
func TestGroupCommitIsolatesAConflict(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db := storetest.Open(t, e, Migrations())
		v, _ := roomversion.Lookup("12")
		create := func(id string) []*roomWrite {
			return []*roomWrite{{r: &room{id: id, version: v, headSeq: 0}, create: true}}
		}
		g := newGroupCommit(db, nil)
		// Creating a room that exists is a compare-and-set conflict.
		if err := g.commit(ctx, g.begin(), 0, create("!taken:test"), 1, 1); err != nil {
			t.Fatal(err)
		}

		// Hold the lead so that every batch below queues, then hand the
		// lead over: they are all written in one round.
		g.mu.Lock()
		g.busy = true
		g.mu.Unlock()
		const n = 6
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("!r%d:test", i)
				if i == 3 {
					id = "!taken:test"
				}
				errs[i] = g.commit(ctx, g.begin(), i%4, create(id), 1, 1)
			}()
		}
		testenv.Eventually(t, 10*time.Second, "every batch queued", func() bool {
			g.mu.Lock()
			defer g.mu.Unlock()
			return len(g.queue) == n
		})
		g.mu.Lock()
		g.queue[0].done <- commitResult{lead: true}
		g.mu.Unlock()
		wg.Wait()

		for i, err := range errs {
			if i == 3 {
				if !errors.Is(err, errConflict) {
					t.Errorf("batch %d: %v, want the conflict", i, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("batch %d: %v", i, err)
			}
		}
		var rooms int
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM rooms`).Scan(&rooms); err != nil {
			t.Fatal(err)
		}
		if rooms != n {
			t.Errorf("%d rooms stored, want %d", rooms, n)
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.busy || len(g.queue) != 0 {
			t.Errorf("after the round: busy %v, %d queued", g.busy, len(g.queue))
		}
	})
}

// Commits from many goroutines at once all land, whatever rounds they are
// merged into.
func TestGroupCommitConcurrent(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db := storetest.Open(t, e, Migrations())
		v, _ := roomversion.Lookup("12")
		g := newGroupCommit(db, nil)
		const n = 40
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w := []*roomWrite{{r: &room{id: fmt.Sprintf("!c%d:test", i), version: v}, create: true}}
				errs <- g.commit(ctx, g.begin(), i%4, w, 1, 1)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		var rooms int
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM rooms`).Scan(&rooms); err != nil {
			t.Fatal(err)
		}
		if rooms != n {
			t.Errorf("%d rooms stored, want %d", rooms, n)
		}
	})
}
