package coord

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// resource is one call of Etcd.Own.
//
// Keys, under the coordinator's prefix:
//
//	<resource>/members/<worker ID>  = number of partitions, under the worker's lease
//	<resource>/owners/<partition>   = worker ID, under the owner's lease
type resource struct {
	e      *Etcd
	name   string
	n      int
	run    func(context.Context, int)
	prefix string // "<prefix><resource>/"
	log    *slog.Logger

	mu    sync.Mutex
	owned []int // partitions held and running, sorted
}

func (r *resource) memberKey(id string) string { return r.prefix + "members/" + id }
func (r *resource) ownerKey(p int) string      { return r.prefix + "owners/" + strconv.Itoa(p) }

func (r *resource) ownedNow() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.owned)
}

// keyState is what a round knows of one key: whether it exists, and as
// of which revision (events older than that are stale and ignored).
type keyState struct {
	present   bool
	lease     clientv3.LeaseID
	createRev int64
	rev       int64
	value     string
}

// partRun is a running (or stopping) run of one partition.
type partRun struct {
	cancel    context.CancelFunc
	createRev int64 // of the owner key it runs under
	stopping  bool  // cancelled to hand the partition over: release the key when it returns
	lost      bool  // cancelled because the key is no longer ours
}

// round is a resource under one session: it registers the worker as a
// member, follows the resource's keys (a snapshot, then a watch),
// computes which partitions this worker should own, and acquires,
// runs, hands over and releases them.
type round struct {
	r   *resource
	s   *session
	own context.Context // Own's
	cli *clientv3.Client

	runCtx   context.Context // parent of the runs and of requests that start work: ends with the session or Own's ctx
	stopRuns context.CancelFunc

	synced   bool // members and owners reflect a snapshot plus the watch
	syncAt   time.Time
	syncWait time.Duration
	retryAt  time.Time // a failed request wants another reconcile then
	members  map[string]keyState
	owners   map[int]keyState
	desired  []string // assign's result, nil when members changed
	runs     map[int]*partRun
	done     chan int // partitions whose run returned
	cooling  map[int]time.Time
}

// serve runs the resource under session s until s ends or ctx does, and
// returns once every run it started has returned.
func (r *resource) serve(ctx context.Context, s *session) {
	rd := &round{r: r, s: s, own: ctx, cli: s.cli, syncWait: retryMin,
		members: map[string]keyState{}, owners: map[int]keyState{}, runs: map[int]*partRun{},
		done: make(chan int, r.n), cooling: map[int]time.Time{}}
	rd.runCtx, rd.stopRuns = context.WithCancel(s.ctx)
	stop := context.AfterFunc(ctx, rd.stopRuns)
	defer stop()
	rd.loop()
	rd.finish()
}

func (rd *round) loop() {
	var watch clientv3.WatchChan
	cancelWatch := func() {}
	defer func() { cancelWatch() }()
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()
	for rd.own.Err() == nil && rd.s.ctx.Err() == nil {
		if !rd.synced && !time.Now().Before(rd.syncAt) {
			rev, ok := rd.sync()
			if ok {
				wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(rd.s.ctx))
				cancelWatch = cancel
				watch = rd.cli.Watch(wctx, rd.r.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
			}
		}
		rd.reconcile()
		rd.publish()
		wake.Reset(time.Until(rd.nextWake()))
		select {
		case <-rd.own.Done():
		case <-rd.s.ctx.Done():
		case <-wake.C:
		case p := <-rd.done:
			rd.ended(p)
		case wr, ok := <-watch:
			if !ok || wr.Err() != nil {
				err := wr.Err()
				if !ok && err == nil {
					err = context.Canceled
				}
				if rd.s.ctx.Err() == nil {
					rd.r.log.Warn("coord: the etcd watch ended; reading the keys again", "err", err)
				}
				cancelWatch()
				cancelWatch, watch = func() {}, nil
				rd.unsync()
				continue
			}
			for _, ev := range wr.Events {
				rd.apply(ev)
			}
		}
	}
}

// nextWake is when the loop must look again without an event.
func (rd *round) nextWake() time.Time {
	t := time.Now().Add(time.Hour)
	if !rd.synced {
		t = rd.syncAt
	}
	if !rd.retryAt.IsZero() && rd.retryAt.Before(t) {
		t = rd.retryAt
	}
	for _, c := range rd.cooling {
		if c.Before(t) {
			t = c
		}
	}
	return t
}

// retrySoon asks for another reconcile after a failed request.
func (rd *round) retrySoon() {
	at := time.Now().Add(retryMin * 5)
	if rd.retryAt.IsZero() || at.Before(rd.retryAt) {
		rd.retryAt = at
	}
}

// unsync forgets the keys' state until the next snapshot, backing off.
func (rd *round) unsync() {
	rd.synced = false
	rd.syncAt = time.Now().Add(rd.syncWait)
	rd.syncWait = min(2*rd.syncWait, retryMax)
}

// sync registers this worker as a member and reads every key of the
// resource; it returns the revision read.
func (rd *round) sync() (int64, bool) {
	if !rd.register() {
		rd.unsync()
		return 0, false
	}
	ctx, cancel := context.WithTimeout(rd.runCtx, opTimeout)
	defer cancel()
	resp, err := rd.cli.Get(ctx, rd.r.prefix, clientv3.WithPrefix())
	if err != nil {
		if rd.runCtx.Err() == nil {
			rd.r.log.Warn("coord: reading the partition keys failed; retrying", "err", err)
		}
		rd.unsync()
		return 0, false
	}
	rev := resp.Header.Revision
	rd.members = map[string]keyState{}
	rd.owners = map[int]keyState{}
	for p := range rd.r.n {
		rd.owners[p] = keyState{rev: rev}
	}
	for _, kv := range resp.Kvs {
		st := keyState{present: true, lease: clientv3.LeaseID(kv.Lease), createRev: kv.CreateRevision, rev: rev, value: string(kv.Value)}
		rel, _ := strings.CutPrefix(string(kv.Key), rd.r.prefix)
		if id, ok := strings.CutPrefix(rel, "members/"); ok {
			rd.members[id] = st
		} else if p, ok := rd.partitionOf(rel); ok {
			rd.owners[p] = st
		}
	}
	rd.desired = nil
	rd.synced, rd.syncWait = true, retryMin
	return rev, true
}

// apply takes a watch event into the state, unless it is older than
// what is known of its key.
func (rd *round) apply(ev *clientv3.Event) {
	st := keyState{rev: ev.Kv.ModRevision}
	if ev.Type == clientv3.EventTypePut {
		st = keyState{present: true, lease: clientv3.LeaseID(ev.Kv.Lease), createRev: ev.Kv.CreateRevision,
			rev: ev.Kv.ModRevision, value: string(ev.Kv.Value)}
	}
	rd.store(string(ev.Kv.Key), st)
}

// store records the state of key unless a newer one is known.
func (rd *round) store(key string, st keyState) {
	rel, ok := strings.CutPrefix(key, rd.r.prefix)
	if !ok {
		return
	}
	if id, ok := strings.CutPrefix(rel, "members/"); ok {
		if old, seen := rd.members[id]; seen && old.rev >= st.rev {
			return
		}
		if st.present {
			rd.members[id] = st
		} else {
			rd.members[id] = keyState{rev: st.rev}
		}
		rd.desired = nil
		return
	}
	if p, ok := rd.partitionOf(rel); ok {
		if old := rd.owners[p]; old.rev >= st.rev {
			return
		}
		rd.owners[p] = st
	}
}

// partitionOf parses "owners/<p>"; false for other keys and for
// partitions beyond n (those of a worker with more of them).
func (rd *round) partitionOf(rel string) (int, bool) {
	ps, ok := strings.CutPrefix(rel, "owners/")
	if !ok {
		return 0, false
	}
	p, err := strconv.Atoi(ps)
	if err != nil || p < 0 || p >= rd.r.n {
		return 0, false
	}
	return p, true
}

// register writes this worker's member key under the session's lease.
func (rd *round) register() bool {
	ctx, cancel := context.WithTimeout(rd.runCtx, opTimeout)
	defer cancel()
	id := rd.r.e.cfg.ID
	resp, err := rd.cli.Put(ctx, rd.r.memberKey(id), strconv.Itoa(rd.r.n), clientv3.WithLease(rd.s.lease))
	if err != nil {
		if rd.runCtx.Err() == nil {
			rd.r.log.Warn("coord: registering as a member failed; retrying", "err", err)
		}
		return false
	}
	rev := resp.Header.Revision
	rd.store(rd.r.memberKey(id), keyState{present: true, lease: rd.s.lease, createRev: rev, rev: rev, value: strconv.Itoa(rd.r.n)})
	return true
}

// liveMembers lists the members whose key exists, sorted by ID.
func (rd *round) liveMembers() []member {
	var ms []member
	for id, st := range rd.members {
		if !st.present {
			continue
		}
		n, err := strconv.Atoi(st.value)
		if err != nil || n < 1 {
			continue
		}
		ms = append(ms, member{id: id, n: n})
	}
	slices.SortFunc(ms, func(a, b member) int { return strings.Compare(a.id, b.id) })
	return ms
}

// reconcile moves toward the assignment: hand over what is not this
// worker's any more, take what is and is free, notice what was lost.
func (rd *round) reconcile() {
	now := time.Now()
	if !rd.retryAt.IsZero() && !now.Before(rd.retryAt) {
		rd.retryAt = time.Time{}
	}
	for p, until := range rd.cooling {
		if !now.Before(until) {
			delete(rd.cooling, p)
		}
	}
	if !rd.synced || rd.own.Err() != nil || rd.s.ctx.Err() != nil {
		return
	}
	id, lease := rd.r.e.cfg.ID, rd.s.lease
	if me := rd.members[id]; !me.present || me.lease != lease {
		// Our member key went away under a live session (deleted by
		// hand, or the lease is gone): check the lease, put it back.
		rd.s.suspect()
		if !rd.register() {
			rd.retrySoon()
		}
	}
	if rd.desired == nil {
		ms := rd.liveMembers()
		rd.desired = assign(rd.r.name, ms, rd.r.n)
		rd.r.e.m.members.WithLabelValues(rd.r.name).Set(float64(len(ms)))
	}
	waiting := 0
	for p := range rd.r.n {
		o := rd.owners[p]
		mine := o.present && o.lease == lease
		want := rd.desired[p] == id
		_, cooling := rd.cooling[p]
		switch run := rd.runs[p]; {
		case run != nil:
			if run.stopping || run.lost {
				continue
			}
			if !mine || o.createRev != run.createRev {
				run.lost = true
				run.cancel()
				rd.r.e.m.changes.WithLabelValues(rd.r.name, changeLost).Inc()
				rd.r.log.Warn("coord: partition lost: its key was deleted or taken", "partition", p)
				rd.s.suspect()
			} else if !want {
				run.stopping = true
				run.cancel()
				rd.r.log.Info("coord: handing partition over", "partition", p, "to", rd.desired[p])
			}
		case mine:
			// Held without a run: a release that failed, or a run
			// that returned on its own.
			if want && !cooling {
				rd.start(p, o.createRev)
			} else if !cooling {
				rd.release(p, o.createRev)
			}
		case want && !o.present && !cooling:
			if !rd.acquire(p) && rd.owners[p].present {
				waiting++ // someone was first
			}
		case want && o.present:
			waiting++
		}
	}
	rd.r.e.m.waiting.WithLabelValues(rd.r.name).Set(float64(waiting))
}

// publish updates what Owned reports.
func (rd *round) publish() {
	var owned []int
	for p, run := range rd.runs {
		if !run.stopping && !run.lost {
			owned = append(owned, p)
		}
	}
	slices.Sort(owned)
	rd.r.mu.Lock()
	rd.r.owned = owned
	rd.r.mu.Unlock()
	rd.r.e.m.owned.WithLabelValues(rd.r.name).Set(float64(len(owned)))
}

// acquire takes partition p's owner key if it does not exist, and starts
// the run on success.
func (rd *round) acquire(p int) bool {
	ctx, cancel := context.WithTimeout(rd.runCtx, opTimeout)
	defer cancel()
	key := rd.r.ownerKey(p)
	resp, err := rd.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, rd.r.e.cfg.ID, clientv3.WithLease(rd.s.lease))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		if rd.runCtx.Err() == nil {
			rd.r.log.Warn("coord: acquiring a partition failed; retrying", "partition", p, "err", err)
			rd.retrySoon()
		}
		return false
	}
	rev := resp.Header.Revision
	if resp.Succeeded {
		rd.store(key, keyState{present: true, lease: rd.s.lease, createRev: rev, rev: rev, value: rd.r.e.cfg.ID})
		rd.start(p, rev)
		return true
	}
	// Someone was first: remember who, as of this revision.
	if rr := resp.Responses[0].GetResponseRange(); rr != nil && len(rr.Kvs) > 0 {
		kv := rr.Kvs[0]
		rd.store(key, keyState{present: true, lease: clientv3.LeaseID(kv.Lease), createRev: kv.CreateRevision, rev: rev, value: string(kv.Value)})
	}
	return false
}

// start runs partition p, whose owner key (created at createRev) this
// worker holds.
func (rd *round) start(p int, createRev int64) {
	if !rd.s.addRun() {
		return
	}
	ctx, cancel := context.WithCancel(rd.runCtx)
	rd.runs[p] = &partRun{cancel: cancel, createRev: createRev}
	rd.r.e.m.changes.WithLabelValues(rd.r.name, changeAcquired).Inc()
	rd.r.log.Info("coord: partition acquired", "partition", p)
	go func() {
		defer func() { rd.done <- p }()
		defer rd.s.runDone()
		defer cancel()
		rd.r.run(ctx, p)
	}()
}

// ended deals with a run that returned.
func (rd *round) ended(p int) {
	run := rd.runs[p]
	delete(rd.runs, p)
	switch {
	case run.lost:
	case run.stopping:
		rd.release(p, run.createRev)
	default:
		rd.r.log.Warn("coord: a partition's run returned while it was owned; running it again shortly", "partition", p)
		rd.cooling[p] = time.Now().Add(runCooldown)
		rd.release(p, run.createRev)
	}
}

// release deletes partition p's owner key if it is still the one created
// at createRev. On failure the key stays and reconcile tries again.
func (rd *round) release(p int, createRev int64) {
	ctx, cancel := context.WithTimeout(rd.s.ctx, opTimeout)
	defer cancel()
	key := rd.r.ownerKey(p)
	resp, err := rd.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", createRev)).
		Then(clientv3.OpDelete(key)).
		Commit()
	if err != nil {
		if rd.s.ctx.Err() == nil {
			rd.r.log.Warn("coord: releasing a partition failed; retrying", "partition", p, "err", err)
			rd.retrySoon()
		}
		return
	}
	if resp.Succeeded {
		rd.store(key, keyState{rev: resp.Header.Revision})
		rd.r.e.m.changes.WithLabelValues(rd.r.name, changeReleased).Inc()
		rd.r.log.Info("coord: partition released", "partition", p)
	}
}

// finish stops every run and waits for them. While the session lives
// (Own's ctx ended), the member key goes first, so that the others
// compute the new assignment at once, then each partition is released
// as soon as its run has returned. After a lost session the keys are
// left to the lease.
func (rd *round) finish() {
	rd.stopRuns()
	live := func() bool { return rd.s.ctx.Err() == nil }
	if live() {
		ctx, cancel := context.WithTimeout(rd.s.ctx, opTimeout)
		if _, err := rd.cli.Delete(ctx, rd.r.memberKey(rd.r.e.cfg.ID)); err != nil && live() {
			rd.r.log.Warn("coord: deregistering failed; the lease will", "err", err)
		}
		cancel()
	}
	for len(rd.runs) > 0 {
		p := <-rd.done
		run := rd.runs[p]
		delete(rd.runs, p)
		switch {
		case run.lost:
		case live():
			rd.release(p, run.createRev)
		default:
			rd.r.e.m.changes.WithLabelValues(rd.r.name, changeLost).Inc()
		}
	}
	if live() {
		// Keys held without a run (a release that had failed).
		for p, o := range rd.owners {
			if o.present && o.lease == rd.s.lease {
				rd.release(p, o.createRev)
			}
		}
	} else if rd.own.Err() == nil {
		rd.r.log.Warn("coord: every partition was given up with the session")
	}
	rd.publish()
	rd.r.e.m.waiting.WithLabelValues(rd.r.name).Set(0)
}
