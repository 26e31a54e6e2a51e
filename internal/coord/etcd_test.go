package coord

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// These tests run against a real etcd: scripts/with-etcd.sh starts one
// and sets AXON_TEST_ETCD (make test does). Without it they skip, except
// in CI, where a skipped etcd test would hide a broken cluster mode.
func testEtcd(t *testing.T) string {
	t.Helper()
	ep := os.Getenv("AXON_TEST_ETCD")
	if ep == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("AXON_TEST_ETCD is not set: CI must run the etcd tests (scripts/with-etcd.sh sets it)")
		}
		t.Skip("AXON_TEST_ETCD is not set: run under scripts/with-etcd.sh (make test does)")
	}
	return ep
}

// testPrefix is a key prefix of the test's own.
func testPrefix(t *testing.T) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "/axon-test/" + strings.ReplaceAll(t.Name(), "/", "_") + "-" + hex.EncodeToString(b[:]) + "/"
}

// logWriter sends the coordinator's logs to the test log while the test
// runs.
type logWriter struct {
	t    *testing.T
	done atomic.Bool
}

func (w *logWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	w := &logWriter{t: t}
	t.Cleanup(func() { w.done.Store(true) })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// worker is one simulated process: a coordinator and its registry.
type worker struct {
	*Etcd
	id  string
	reg *prometheus.Registry
}

func newWorker(t *testing.T, endpoint, prefix, id string, ttl time.Duration) *worker {
	t.Helper()
	reg := prometheus.NewRegistry()
	e, err := NewEtcd(EtcdConfig{Endpoints: []string{endpoint}, Prefix: prefix, TTL: ttl, ID: id,
		Logger: testLogger(t).With("test_worker", id), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return &worker{Etcd: e, id: id, reg: reg}
}

// crash stops the worker as SIGKILL would: its runs stop, nothing is
// released or revoked, and its keys stay until its lease expires.
func (w *worker) crash() {
	w.abandon.Store(true)
	_ = w.Close()
}

// lease returns the live session's lease (0 without one).
func (w *worker) lease() clientv3.LeaseID {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sess == nil {
		return 0
	}
	return w.sess.lease
}

func (w *worker) counter(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }

// own runs w.Own in the background; the returned function cancels it and
// returns Own's error.
func (w *worker) own(t *testing.T, resource string, n int, run func(context.Context, int)) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Own(ctx, resource, n, run) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				err = errors.New("Own did not return")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// tracker records which worker runs which partition, and every moment
// at which two runs of one partition overlapped.
type tracker struct {
	mu       sync.Mutex
	running  map[int][]string // partition → workers whose run has not returned
	draining map[int][]string // of those, the ones whose context is cancelled
	starts   map[string]int   // worker → runs started
	overlaps []string
}

func newTracker() *tracker {
	return &tracker{running: map[int][]string{}, draining: map[int][]string{}, starts: map[string]int{}}
}

// run returns a run function for worker id; drain, when not nil, is
// waited for after the context ends (a slow drain).
func (tr *tracker) run(id string, drain <-chan struct{}) func(context.Context, int) {
	return func(ctx context.Context, p int) {
		tr.mu.Lock()
		if len(tr.running[p]) > 0 {
			tr.overlaps = append(tr.overlaps, fmt.Sprintf("partition %d: %s started while %v ran", p, id, tr.running[p]))
		}
		tr.running[p] = append(tr.running[p], id)
		tr.starts[id]++
		tr.mu.Unlock()
		<-ctx.Done()
		tr.mu.Lock()
		tr.draining[p] = append(tr.draining[p], id)
		tr.mu.Unlock()
		if drain != nil {
			<-drain
		}
		tr.mu.Lock()
		tr.running[p] = remove(tr.running[p], id)
		tr.draining[p] = remove(tr.draining[p], id)
		tr.mu.Unlock()
	}
}

func remove(s []string, v string) []string {
	if i := slices.Index(s, v); i >= 0 {
		return slices.Delete(s, i, i+1)
	}
	return s
}

// runners returns partition → the one worker running it (partitions run
// by nobody are absent; by several, "+"-joined).
func (tr *tracker) runners() map[int]string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	out := map[int]string{}
	for p, ids := range tr.running {
		if len(ids) > 0 {
			out[p] = strings.Join(ids, "+")
		}
	}
	return out
}

func (tr *tracker) partitionsOf(id string) []int {
	var ps []int
	for p, w := range tr.runners() {
		if w == id {
			ps = append(ps, p)
		}
	}
	slices.Sort(ps)
	return ps
}

func (tr *tracker) isDraining(p int, id string) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Contains(tr.draining[p], id)
}

func (tr *tracker) started(id string) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.starts[id]
}

func (tr *tracker) checkNoOverlap(t *testing.T) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, o := range tr.overlaps {
		t.Error("overlap: " + o)
	}
}

func all(n int) []int {
	ps := make([]int, n)
	for i := range ps {
		ps[i] = i
	}
	return ps
}

// want returns the partitions that assign gives id among ids.
func want(resource string, n int, id string, ids ...string) []int {
	var ps []int
	for p, owner := range assign(resource, members(n, ids...), n) {
		if owner == id {
			ps = append(ps, p)
		}
	}
	return ps
}

func eventually(t *testing.T, within time.Duration, msg string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// One worker owns every partition; a second one joins and they split
// them as assign says, each partition run by exactly one of them at
// every moment; the second leaves (its Own ends) and the first takes
// everything back, joins again, then Closes: the first takes everything
// back at once, long before the lease would have expired.
func TestEtcdSharesPartitionsAndHandsThemOver(t *testing.T) {
	ep := testEtcd(t)
	prefix := testPrefix(t)
	const n, res, single = 16, "rooms", "indexer"
	ttl := 30 * time.Second // a hand-over must never wait for it
	tr, trSingle := newTracker(), newTracker()
	a := newWorker(t, ep, prefix, "worker-a", ttl)
	a.own(t, res, n, tr.run("worker-a", nil))
	a.own(t, single, 1, trSingle.run("worker-a", nil))
	eventually(t, 10*time.Second, "a runs every partition", func() bool {
		return slices.Equal(tr.partitionsOf("worker-a"), all(n)) && slices.Equal(trSingle.partitionsOf("worker-a"), []int{0})
	})
	if got := a.Owned(res); !slices.Equal(got, all(n)) {
		t.Errorf("a.Owned = %v", got)
	}
	if err := a.Healthy(); err != nil {
		t.Errorf("Healthy: %v", err)
	}

	wantA, wantB := want(res, n, "worker-a", "worker-a", "worker-b"), want(res, n, "worker-b", "worker-a", "worker-b")
	if len(wantA) == 0 || len(wantB) == 0 {
		t.Fatalf("the assignment does not split: %v %v", wantA, wantB)
	}
	b := newWorker(t, ep, prefix, "worker-b", ttl)
	split := func() bool {
		return slices.Equal(tr.partitionsOf("worker-a"), wantA) && slices.Equal(tr.partitionsOf("worker-b"), wantB) &&
			slices.Equal(a.Owned(res), wantA) && slices.Equal(b.Owned(res), wantB)
	}
	stopB := b.own(t, res, n, tr.run("worker-b", nil))
	b.own(t, single, 1, trSingle.run("worker-b", nil))
	eventually(t, 10*time.Second, "a and b split the partitions", split)
	if got := trSingle.runners(); len(got) != 1 {
		t.Errorf("the singleton runs on %v", got)
	}

	// b's role stops: its Own returns once its runs have, and a takes
	// its partitions back.
	start := time.Now()
	if err := stopB(); err != nil {
		t.Fatalf("b's Own: %v", err)
	}
	eventually(t, 10*time.Second, "a takes everything back after b's Own ended", func() bool {
		return slices.Equal(tr.partitionsOf("worker-a"), all(n))
	})
	t.Logf("partitions back on a %v after b's Own ended", time.Since(start))
	if got := b.Owned(res); len(got) != 0 {
		t.Errorf("b still reports %v", got)
	}

	b.own(t, res, n, tr.run("worker-b", nil))
	eventually(t, 10*time.Second, "a and b split the partitions again", split)

	// b closes (process shutdown): its lease is revoked, a takes over at
	// once rather than after the 30 s TTL.
	start = time.Now()
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := tr.partitionsOf("worker-b"); len(got) != 0 {
		t.Errorf("b still runs %v after Close returned", got)
	}
	eventually(t, 10*time.Second, "a takes everything back after b closed", func() bool {
		return slices.Equal(tr.partitionsOf("worker-a"), all(n)) && slices.Equal(trSingle.partitionsOf("worker-a"), []int{0})
	})
	t.Logf("partitions back on a %v after b.Close began", time.Since(start))
	if err := b.Healthy(); !errors.Is(err, ErrClosed) {
		t.Errorf("b.Healthy after Close: %v", err)
	}
	tr.checkNoOverlap(t)
	trSingle.checkNoOverlap(t)

	// Metrics: a's view, and the names of the contract.
	if got := testutil.ToFloat64(a.m.owned.WithLabelValues(res)); got != n {
		t.Errorf("axon_coord_partitions_owned{resource=%q} = %v", res, got)
	}
	if got := a.counter(a.m.up); got != 1 {
		t.Errorf("axon_coord_session_up = %v", got)
	}
	if got := a.counter(a.m.changes.WithLabelValues(res, changeReleased)); got != float64(2*len(wantB)) {
		t.Errorf("a released %v partitions, want %d", got, 2*len(wantB))
	}
	names, err := metrics.Names(a.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"axon_coord_session_up", "axon_coord_sessions_total", "axon_coord_partitions_owned",
		"axon_coord_partitions_waiting", "axon_coord_members", "axon_coord_ownership_changes_total"} {
		if !slices.Contains(names, name) {
			t.Errorf("metric %s not registered (have %v)", name, names)
		}
	}
}

// A worker that dies without a word keeps its partitions until its lease
// expires; then the survivor takes them.
func TestEtcdCrashedWorkersPartitionsMoveAfterTheTTL(t *testing.T) {
	ep := testEtcd(t)
	prefix := testPrefix(t)
	const n, res = 8, "rooms"
	ttl := 2 * time.Second
	tr := newTracker()
	a := newWorker(t, ep, prefix, "worker-a", ttl)
	b := newWorker(t, ep, prefix, "worker-b", ttl)
	a.own(t, res, n, tr.run("worker-a", nil))
	b.own(t, res, n, tr.run("worker-b", nil))
	wantB := want(res, n, "worker-b", "worker-a", "worker-b")
	eventually(t, 10*time.Second, "a and b split the partitions", func() bool {
		return slices.Equal(tr.partitionsOf("worker-b"), wantB) && len(tr.runners()) == n
	})

	leaseB := b.lease()
	start := time.Now()
	b.crash()
	// b did not revoke its lease: it lives on for a while.
	cli := testClient(t, ep)
	if left, err := cli.TimeToLive(context.Background(), leaseB); err == nil {
		t.Logf("b's lease has %ds left just after the crash", left.TTL)
	}
	eventually(t, 15*time.Second, "a takes b's partitions once b's lease expired", func() bool {
		return slices.Equal(tr.partitionsOf("worker-a"), all(n))
	})
	t.Logf("b's partitions on a %v after the crash (TTL %v)", time.Since(start), ttl)
	tr.checkNoOverlap(t)
}

func testClient(t *testing.T, ep string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// A session revoked from elsewhere is lost at once: every run is
// cancelled, and the coordinator establishes a new session and owns its
// partitions again by itself.
func TestEtcdRecoversFromARevokedSession(t *testing.T) {
	ep := testEtcd(t)
	const n, res = 4, "rooms"
	tr := newTracker()
	a := newWorker(t, ep, testPrefix(t), "worker-a", 5*time.Second)
	a.own(t, res, n, tr.run("worker-a", nil))
	eventually(t, 10*time.Second, "a runs every partition", func() bool {
		return slices.Equal(tr.partitionsOf("worker-a"), all(n))
	})
	lease := a.lease()
	if _, err := testClient(t, ep).Revoke(context.Background(), lease); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "a runs every partition again under a new session", func() bool {
		return tr.started("worker-a") == 2*n && slices.Equal(tr.partitionsOf("worker-a"), all(n)) &&
			a.Healthy() == nil && a.lease() != lease
	})
	if got := a.counter(a.m.sessions); got != 2 {
		t.Errorf("axon_coord_sessions_total = %v, want 2", got)
	}
	if got := a.counter(a.m.changes.WithLabelValues(res, changeLost)); got != n {
		t.Errorf("lost %v partitions, want %d", got, n)
	}
	tr.checkNoOverlap(t)
}

// While etcd is unreachable the session is lost: runs are cancelled
// before the lease can expire (so the other worker, which still reaches
// etcd, takes the partitions without overlapping them), Healthy says
// why, and once etcd is back the worker rejoins by itself.
func TestEtcdUnreachableThenBack(t *testing.T) {
	ep := testEtcd(t)
	prefix := testPrefix(t)
	const n, res = 8, "rooms"
	ttl := 4 * time.Second
	px := newProxy(t, strings.TrimPrefix(ep, "http://"))
	tr := newTracker()
	a := newWorker(t, ep, prefix, "worker-a", ttl)
	b := newWorker(t, "http://"+px.addr(), prefix, "worker-b", ttl)
	a.own(t, res, n, tr.run("worker-a", nil))
	b.own(t, res, n, tr.run("worker-b", nil))
	wantB := want(res, n, "worker-b", "worker-a", "worker-b")
	eventually(t, 10*time.Second, "a and b split the partitions", func() bool {
		return slices.Equal(tr.partitionsOf("worker-b"), wantB) && len(tr.runners()) == n && b.Healthy() == nil
	})

	px.cut()
	eventually(t, 20*time.Second, "b reports its session lost", func() bool { return b.Healthy() != nil })
	t.Logf("b unhealthy: %v", b.Healthy())
	eventually(t, 20*time.Second, "a takes b's partitions", func() bool {
		return slices.Equal(tr.partitionsOf("worker-a"), all(n))
	})
	if got := b.Owned(res); len(got) != 0 {
		t.Errorf("b reports %v while cut off", got)
	}

	px.restore()
	eventually(t, 60*time.Second, "b rejoins and gets its share back", func() bool {
		return b.Healthy() == nil && slices.Equal(tr.partitionsOf("worker-b"), wantB) && len(tr.runners()) == n
	})
	tr.checkNoOverlap(t)
}

// A partition is handed over only once its old run has returned: the
// newcomer waits while the old owner drains.
func TestEtcdHandoverWaitsForTheDrain(t *testing.T) {
	ep := testEtcd(t)
	prefix := testPrefix(t)
	const n, res = 4, "rooms"
	ttl := 30 * time.Second
	tr := newTracker()
	drain := make(chan struct{})
	var drainOnce sync.Once
	a := newWorker(t, ep, prefix, "worker-a", ttl)
	a.own(t, res, n, tr.run("worker-a", drain))
	t.Cleanup(func() { drainOnce.Do(func() { close(drain) }) }) // before stopping a's Own
	eventually(t, 10*time.Second, "a runs every partition", func() bool {
		return slices.Equal(tr.partitionsOf("worker-a"), all(n))
	})
	wantB := want(res, n, "worker-b", "worker-a", "worker-b")
	if len(wantB) == 0 {
		t.Fatal("b would get nothing")
	}
	b := newWorker(t, ep, prefix, "worker-b", ttl)
	b.own(t, res, n, tr.run("worker-b", nil))
	// a has been asked to stop b's partitions, and b knows they are
	// its own and waits for them.
	eventually(t, 10*time.Second, "a drains b's partitions while b waits", func() bool {
		for _, p := range wantB {
			if !tr.isDraining(p, "worker-a") {
				return false
			}
		}
		return testutil.ToFloat64(b.m.waiting.WithLabelValues(res)) == float64(len(wantB))
	})
	if got := tr.partitionsOf("worker-b"); len(got) != 0 {
		t.Fatalf("b runs %v while a still drains them", got)
	}
	if got := a.Owned(res); slices.ContainsFunc(got, func(p int) bool { return slices.Contains(wantB, p) }) {
		t.Errorf("a reports %v as owned while handing %v over", got, wantB)
	}
	drainOnce.Do(func() { close(drain) })
	eventually(t, 10*time.Second, "b runs its partitions once a's runs returned", func() bool {
		return slices.Equal(tr.partitionsOf("worker-b"), wantB)
	})
	tr.checkNoOverlap(t)
}

// A run that returns on its own while its partition is still owned is
// started again (after a pause), rather than leaving the partition
// unowned.
func TestEtcdRestartsARunThatReturned(t *testing.T) {
	ep := testEtcd(t)
	a := newWorker(t, ep, testPrefix(t), "worker-a", 5*time.Second)
	var runs atomic.Int32
	a.own(t, "rooms", 1, func(ctx context.Context, _ int) {
		if runs.Add(1) == 1 {
			return // gives up at once
		}
		<-ctx.Done()
	})
	eventually(t, 10*time.Second, "the partition runs again", func() bool {
		return runs.Load() == 2 && slices.Equal(a.Owned("rooms"), []int{0})
	})
}

// Own checks its arguments, refuses a resource already under Own, and
// returns ErrClosed when the coordinator closes under it.
func TestEtcdOwnErrors(t *testing.T) {
	ep := testEtcd(t)
	a := newWorker(t, ep, testPrefix(t), "worker-a", 5*time.Second)
	ctx := context.Background()
	nop := func(context.Context, int) {}
	if err := a.Own(ctx, "r", 0, nop); err == nil {
		t.Error("zero partitions should fail")
	}
	if err := a.Own(ctx, "a/b", 1, nop); err == nil {
		t.Error("a slash in the resource should fail")
	}
	done := make(chan error, 1)
	go func() { done <- a.Own(ctx, "r", 2, nop) }()
	eventually(t, 10*time.Second, "Own runs", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.resources["r"] != nil
	})
	if err := a.Own(ctx, "r", 2, nop); err == nil {
		t.Error("owning a resource twice should fail")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("Own after Close: %v", err)
	}
	if err := a.Own(ctx, "x", 1, nop); !errors.Is(err, ErrClosed) {
		t.Errorf("Own on a closed coordinator: %v", err)
	}
}

// Without etcd the coordinator reports itself unhealthy, runs nothing,
// and Close does not hang.
func TestEtcdUnreachableFromTheStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	a := newWorker(t, "http://"+addr, "/x/", "worker-a", 2*time.Second)
	var ran atomic.Bool
	stop := a.own(t, "r", 1, func(context.Context, int) { ran.Store(true) })
	eventually(t, 15*time.Second, "Healthy reports etcd unreachable", func() bool {
		err := a.Healthy()
		return err != nil && !errors.Is(err, errNoSession)
	})
	t.Logf("Healthy: %v", a.Healthy())
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if ran.Load() {
		t.Error("a partition ran without a session")
	}
}

func TestClientConfigCredentials(t *testing.T) {
	c, err := clientConfig([]string{"https://root:s3cret@e1:2379", "https://root:s3cret@e2:2379"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Username != "root" || c.Password != "s3cret" || !slices.Equal(c.Endpoints, []string{"https://e1:2379", "https://e2:2379"}) {
		t.Errorf("got %q %q %v", c.Username, c.Password, c.Endpoints)
	}
	c, err = clientConfig([]string{"e1:2379", "unix:///run/etcd.sock"})
	if err != nil || c.Username != "" || !slices.Equal(c.Endpoints, []string{"e1:2379", "unix:///run/etcd.sock"}) {
		t.Errorf("got %v %+v", err, c.Endpoints)
	}
	for _, bad := range [][]string{
		{"https://root:a@e1:2379", "https://root:b@e2:2379"},
		{"https://root:a@e1:2379", "https://e2:2379"},
		{"https://e1:2379", "https://root:a@e2:2379"},
	} {
		if _, err := clientConfig(bad); err == nil {
			t.Errorf("%v: different credentials accepted", bad)
		}
	}
}

// proxy forwards TCP connections to an address until cut, which closes
// them all and refuses new ones until restore: etcd becomes unreachable
// for the clients behind it.
type proxy struct {
	t      *testing.T
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Go(p.serve)
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		for _, pair := range [][2]net.Conn{{c, up}, {up, c}} {
			p.wg.Go(func() {
				_, _ = io.Copy(pair[0], pair[1])
				pair[0].Close()
				pair[1].Close()
			})
		}
	}
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range maps.Keys(p.conns) {
		c.Close()
	}
	clear(p.conns)
}

func (p *proxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}
