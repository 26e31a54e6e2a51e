package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/axon-hs/axon/internal/bus"
	"github.com/axon-hs/axon/internal/devcluster"
	"github.com/axon-hs/axon/services/roomserver"
	"github.com/axon-hs/axon/services/sender"
	"github.com/axon-hs/axon/services/syncapi"
)

// Case 1: every worker is replaced, one at a time, the way a rolling
// Deployment does it; no client request may fail.
func (s *suite) caseRolling(e *caseEnv) {
	old := s.c.Workers()
	for _, w := range old {
		e.step("replace "+w.Name, func(func()) error {
			nw, err := s.c.ReplaceWorker(e.ctx, w)
			if err == nil {
				e.t.Logf("%s replaced by %s", w.Name, nw.Name)
			}
			return err
		})
	}
	if err := s.c.WaitDrained(); err != nil {
		e.t.Error(err)
	}
	st := e.d.stats()
	failed := 0
	for _, p := range phases {
		failed += st[p].sendFailed + st[p].syncFailed
	}
	if failed > 0 {
		e.t.Errorf("rolling redeploy: %d client requests failed; want 0", failed)
	}
}

// ownership is a coordinated resource: its name, the roles that own it,
// and how many partitions it has.
type ownership struct {
	resource   string
	role       devcluster.Role
	partitions int
}

var ownerships = []ownership{
	{roomserver.Resource, devcluster.RoleRoom, bus.DefaultPartitions},
	{sender.QueueResource, devcluster.RoleSender, 1},
	{sender.DestinationResource, devcluster.RoleSender, sender.DestinationPartitions},
	{syncapi.IndexerResource, devcluster.RoleSync, 1},
}

// owned sums axon_coord_partitions_owned of a resource over the live
// workers of its role. ok is false when a worker exports no such series
// (the coordinator's metrics are missing).
func (s *suite) owned(ctx context.Context, o ownership) (total int, perWorker []int, ok bool) {
	ok = true
	series := `axon_coord_partitions_owned{resource="` + o.resource + `"}`
	for _, w := range s.c.Workers(o.role) {
		m, err := w.Scrape(ctx)
		v, has := m[series]
		if err != nil || !has {
			ok = false
		}
		total += int(v)
		perWorker = append(perWorker, int(v))
	}
	return total, perWorker, ok
}

// ownerOf is the worker that owns partition 0 of resource now (nil when
// none says so).
func (s *suite) ownerOf(ctx context.Context, ws []*devcluster.Worker, resource string) *devcluster.Worker {
	series := `axon_coord_partitions_owned{resource="` + resource + `"}`
	for _, w := range ws {
		if m, err := w.Scrape(ctx); err == nil && m[series] > 0 {
			return w
		}
	}
	return nil
}

// waitOwned waits until the live workers own every partition of each
// resource of role exactly once (and, with balanced, each owns some); it
// returns how long that took, or an error.
func (s *suite) waitOwned(ctx context.Context, role devcluster.Role, balanced bool, within time.Duration) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(within)
	var last string
	for time.Now().Before(deadline) && ctx.Err() == nil {
		all := true
		var state []string
		for _, o := range ownerships {
			if o.role != role {
				continue
			}
			total, per, ok := s.owned(ctx, o)
			if !ok {
				return 0, fmt.Errorf("the %s workers export no axon_coord_partitions_owned{resource=%q}", role, o.resource)
			}
			state = append(state, fmt.Sprintf("%s %v", o.resource, per))
			good := total == o.partitions
			if balanced && o.partitions >= len(per) {
				for _, n := range per {
					good = good && n > 0
				}
			}
			all = all && good
		}
		last = strings.Join(state, ", ")
		if all {
			return time.Since(start), nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return 0, fmt.Errorf("partitions not owned exactly once within %s: %s", within, last)
}

// Case 2: one worker of each role is killed with SIGKILL, at random
// except for the sync role, where it is the owner of the sync indexer (the
// role's one singleton); the survivors must take over its partitions
// within the lease TTL, then replacements start as a Deployment would
// start them.
func (s *suite) caseKill(e *caseEnv) {
	var victims []*devcluster.Worker
	for _, r := range devcluster.Roles() {
		ws := s.c.Workers(r)
		if len(ws) == 0 {
			continue
		}
		victim := ws[rand.IntN(len(ws))]
		if r == devcluster.RoleSync {
			if w := s.ownerOf(e.ctx, ws, syncapi.IndexerResource); w != nil {
				victim = w
			}
		}
		victims = append(victims, victim)
	}
	var names []string
	for _, w := range victims {
		names = append(names, w.Name)
	}
	e.step("SIGKILL "+strings.Join(names, ", "), func(over func()) error {
		var wg sync.WaitGroup
		errs := make([]error, len(victims))
		for i, w := range victims {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = s.c.KillWorker(w) }()
		}
		wg.Wait()
		over()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		// The survivors take the partitions over; each role's time counts
		// from the kill.
		killed := time.Now()
		roles := []devcluster.Role{devcluster.RoleRoom, devcluster.RoleSender, devcluster.RoleSync}
		moved := make([]string, len(roles))
		var mwg sync.WaitGroup
		for i, r := range roles {
			if len(s.c.Workers(r)) == 0 {
				continue
			}
			mwg.Add(1)
			go func() {
				defer mwg.Done()
				if _, err := s.waitOwned(e.ctx, r, false, recoverWithin); err != nil {
					e.t.Errorf("after the SIGKILL, %s: %v", r, err)
					moved[i] = fmt.Sprintf("%s partitions: %v", r, err)
					return
				}
				moved[i] = fmt.Sprintf("%s partitions re-owned %s after the kill", r, ms(time.Since(killed)))
			}()
		}
		mwg.Wait()
		e.res.notes = append(e.res.notes, strings.Join(moved, ", ")+" (lease TTL 10s)")
		return nil
	})
	e.step("replacements start", func(func()) error {
		for _, w := range victims {
			if _, err := s.c.AddWorker(e.ctx, w.Role); err != nil {
				return err
			}
		}
		return nil
	})
}

// Case 3: one NATS node is restarted, then the whole NATS cluster;
// processing must resume by itself.
func (s *suite) caseNATS(e *caseEnv) {
	i := rand.IntN(s.c.NATSNodes())
	e.step(fmt.Sprintf("restart NATS node %d (down 5s)", i), func(func()) error {
		if err := s.c.StopNATS(i); err != nil {
			return err
		}
		time.Sleep(5 * time.Second)
		return s.c.StartNATS(e.ctx, i)
	})
	e.step("restart all NATS nodes (down 5s)", func(func()) error {
		if err := s.c.StopAllNATS(); err != nil {
			return err
		}
		time.Sleep(5 * time.Second)
		return s.c.StartAllNATS(e.ctx)
	})
	s.checkNoRestarts(e)
}

// Case 4: PostgreSQL is restarted; then etcd is stopped for 30 s. Workers
// go unready and come back by themselves, without restarts.
func (s *suite) casePostgresEtcd(e *caseEnv) {
	before := pids(s.c.Workers())
	e.step("restart PostgreSQL", func(func()) error { return s.c.RestartPostgres(e.ctx) })
	var unready map[string]time.Duration
	var readyAgain time.Duration
	st := e.step("stop etcd for 30s", func(over func()) error {
		if err := s.c.StopEtcd(); err != nil {
			return err
		}
		stopped := time.Now()
		unready = s.watchUnready(e.ctx, 30*time.Second)
		if err := s.c.StartEtcd(e.ctx); err != nil {
			return err
		}
		started := time.Now()
		over()
		e.t.Logf("etcd down for %s", started.Sub(stopped).Round(100*time.Millisecond))
		// Every worker ready again, by itself.
		deadline := started.Add(recoverWithin)
		for time.Now().Before(deadline) {
			if s.allReady(e.ctx) == nil {
				readyAgain = time.Since(started)
				return nil
			}
			time.Sleep(250 * time.Millisecond)
		}
		return fmt.Errorf("workers not ready %s after etcd came back: %v", recoverWithin, s.allReady(e.ctx))
	})
	var went, stayed []string
	for _, w := range s.c.Workers() {
		if d, ok := unready[w.Name]; ok {
			went = append(went, fmt.Sprintf("%s after %s", w.Name, ms(d)))
		} else {
			stayed = append(stayed, w.Name)
		}
	}
	st.extra = append(st.extra, fmt.Sprintf("unready: %s; stayed ready: %s; all ready %s after etcd's return",
		orNone(went), orNone(stayed), ms(readyAgain)))
	for _, w := range s.c.Workers(devcluster.RoleRoom, devcluster.RoleSender) {
		if _, ok := unready[w.Name]; !ok {
			e.t.Errorf("%s (which owns partitions through etcd) stayed ready while etcd was down", w.Name)
		}
	}
	// The roles behind the proxy serve without etcd (the sync indexer
	// waits, /sync answers): they stay in the load balancer.
	for _, w := range s.c.Workers(devcluster.RoleClient, devcluster.RoleFederation, devcluster.RoleSync) {
		if d, ok := unready[w.Name]; ok {
			e.t.Errorf("%s went unready %s after etcd stopped: it does not need etcd to serve", w.Name, ms(d))
		}
	}
	after := pids(s.c.Workers())
	if fmt.Sprint(before) != fmt.Sprint(after) {
		e.t.Errorf("workers changed: %v before, %v after", before, after)
	}
	s.checkNoRestarts(e)
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}

func pids(ws []*devcluster.Worker) map[string]int {
	out := map[string]int{}
	for _, w := range ws {
		out[w.Name] = w.PID()
	}
	return out
}

// watchUnready polls every worker's /readyz for d and returns when each
// one that went unready did so.
func (s *suite) watchUnready(ctx context.Context, d time.Duration) map[string]time.Duration {
	start := time.Now()
	out := map[string]time.Duration{}
	for time.Since(start) < d && ctx.Err() == nil {
		for _, w := range s.c.Workers() {
			if _, ok := out[w.Name]; ok {
				continue
			}
			if w.Ready(ctx) != nil {
				out[w.Name] = time.Since(start)
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	return out
}

func (s *suite) allReady(ctx context.Context) error {
	var errs []error
	for _, w := range s.c.Workers() {
		if err := w.Ready(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", w.Name, err))
		}
	}
	return errors.Join(errs...)
}

// checkNoRestarts fails the case when a worker exited on its own.
func (s *suite) checkNoRestarts(e *caseEnv) {
	for _, w := range s.c.Workers() {
		if w.Process().Exited() {
			e.t.Errorf("%s exited by itself (%v); log: %s", w.Name, w.Process().ExitErr(), w.Process().LogTail(2000))
		}
	}
}

// Case 5: room workers scaled 1 → 3 → 1 and sender workers 1 → 2 → 1
// under load, with the throughput of 1, 2 and 3 room workers measured by a
// burst into rooms spread over the partitions.
func (s *suite) caseScaling(e *caseEnv) {
	scaleTo := func(role devcluster.Role, n int) error {
		for len(s.c.Workers(role)) > n {
			ws := s.c.Workers(role)
			if err := s.c.RemoveWorker(ws[len(ws)-1]); err != nil {
				return err
			}
		}
		for len(s.c.Workers(role)) < n {
			if _, err := s.c.AddWorker(e.ctx, role); err != nil {
				return err
			}
		}
		d, err := s.waitOwned(e.ctx, role, true, time.Minute)
		if err == nil {
			e.t.Logf("%s workers: %d, partitions balanced after %s", role, n, ms(d))
		}
		return err
	}
	for _, n := range []int{1, 2, 3} {
		st := e.step(fmt.Sprintf("room workers → %d", n), func(func()) error { return scaleTo(devcluster.RoleRoom, n) })
		if e.broken {
			break
		}
		b := s.burst(e.ctx, 6*time.Second)
		st.extra = append(st.extra, fmt.Sprintf("burst: %.0f events/s acknowledged by %d room worker(s), p99 %s, %d failed", b.rate, n, ms(b.p99), b.failed))
		e.res.notes = append(e.res.notes, fmt.Sprintf("throughput with %d room worker(s): %.0f events/s (closed loop, %d senders into %d rooms; p99 %s)", n, b.rate, benchRooms, benchRooms, ms(b.p99)))
	}
	e.step("room workers → 1", func(func()) error { return scaleTo(devcluster.RoleRoom, 1) })
	for _, n := range []int{1, 2, 1} {
		e.step(fmt.Sprintf("sender workers → %d", n), func(func()) error { return scaleTo(devcluster.RoleSender, n) })
	}
	if e.broken {
		return
	}
	// Back to the suite's shape.
	if err := scaleTo(devcluster.RoleRoom, suiteWorkers[devcluster.RoleRoom]); err != nil {
		e.t.Error(err)
	}
	if err := scaleTo(devcluster.RoleSender, suiteWorkers[devcluster.RoleSender]); err != nil {
		e.t.Error(err)
	}
	s.checkNoRestarts(e)
}

type burstResult struct {
	rate   float64
	p99    time.Duration
	failed int
}

// burst sends back to back into the bench rooms, one sender per room, for
// d, and measures the acknowledged rate.
func (s *suite) burst(ctx context.Context, d time.Duration) burstResult {
	var acked, failed atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	run := fmt.Sprintf("b%d", time.Now().UnixNano()%1e9)
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for j, room := range s.bench {
		c := s.senders[j%numSenders]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; time.Now().Before(end) && ctx.Err() == nil; n++ {
				t0 := time.Now()
				_, err := c.send(ctx, room, fmt.Sprintf("%s-%d-%d", run, j, n), map[string]any{"msgtype": "m.text", "body": "burst"})
				if err != nil {
					failed.Add(1)
					time.Sleep(100 * time.Millisecond)
					continue
				}
				acked.Add(1)
				mu.Lock()
				lat = append(lat, time.Since(t0))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return burstResult{rate: float64(acked.Load()) / time.Since(start).Seconds(), p99: percentile(lat, 0.99), failed: int(failed.Load())}
}
