package cluster

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/devcluster"
)

// The suite's cluster and traffic.
var suiteWorkers = map[devcluster.Role]int{
	devcluster.RoleClient: 2, devcluster.RoleSync: 2, devcluster.RoleFederation: 1,
	devcluster.RoleRoom: 2, devcluster.RoleSender: 2,
}

const (
	numSenders = 6
	numSyncers = 3
	numRooms   = 3
	benchRooms = 12 // rooms of the throughput bursts, spread over the partitions
	warmUp     = 4 * time.Second
	coolDown   = 5 * time.Second
	// recoverWithin bounds every wait for the cluster to process writes
	// end to end again: a deadline, not a speed target.
	recoverWithin = 90 * time.Second
)

// suite is the cluster and the users shared by the cases.
type suite struct {
	c       *devcluster.Cluster
	senders []*client
	syncers []*client
	rooms   []string
	bench   []string // bench room j belongs to senders[j % numSenders]
	rate    time.Duration
	results []*caseResult
}

// TestCluster starts one cluster and runs the fault cases against it in
// order; each case has its own traffic and checks. It prints the table of
// figures at the end.
func TestCluster(t *testing.T) {
	if os.Getenv("AXON_CLUSTER_TESTS") != "1" {
		t.Skip("the cluster fault suite runs with AXON_CLUSTER_TESTS=1 (make test-cluster)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 18*time.Minute)
	defer cancel()
	// Not t.TempDir: PostgreSQL runs as the postgres user when we are
	// root, and the test's temporary directory is closed to others.
	dir, err := os.MkdirTemp("", "axon-cluster-")
	if err != nil {
		t.Fatal(err)
	}
	keep := os.Getenv("AXON_CLUSTER_KEEP") == "1"
	t.Cleanup(func() {
		if keep {
			t.Logf("state and logs kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	start := time.Now()
	c, err := devcluster.Start(ctx, devcluster.Options{Dir: dir, Workers: suiteWorkers,
		// AXON_CLUSTER_NO_ETCD=1 runs the workers with their in-process
		// coordinators (every room worker on every partition): a
		// comparison, and a way to run the suite on a build without etcd.
		NoEtcd:   os.Getenv("AXON_CLUSTER_NO_ETCD") == "1",
		Progress: func(s string) { t.Logf("cluster: %s (%s)", s, time.Since(start).Round(100*time.Millisecond)) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, c)
		}
		if err := c.Stop(); err != nil {
			t.Errorf("stopping the cluster: %v", err)
		}
	})
	s := &suite{c: c, rate: sendInterval()}
	if err := s.setup(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.report(t)

	t.Run("0_routing", func(t *testing.T) { s.checkRouting(ctx, t) })
	t.Run("1_rolling_redeploy", func(t *testing.T) { s.runCase(ctx, t, "1 rolling redeploy", s.caseRolling) })
	t.Run("2_sigkill_each_role", func(t *testing.T) { s.runCase(ctx, t, "2 SIGKILL a worker of each role", s.caseKill) })
	t.Run("3_nats_restarts", func(t *testing.T) { s.runCase(ctx, t, "3 NATS node, then all NATS", s.caseNATS) })
	t.Run("4_postgres_etcd", func(t *testing.T) { s.runCase(ctx, t, "4 PostgreSQL restart, etcd down 30s", s.casePostgresEtcd) })
	t.Run("5_scaling", func(t *testing.T) { s.runCase(ctx, t, "5 scale room 1-3-1, sender 1-2-1", s.caseScaling) })
}

// sendInterval is each sender's interval: AXON_CLUSTER_RATE messages per
// second per sender (default 2).
func sendInterval() time.Duration {
	rate := 2.0
	if v, err := strconv.ParseFloat(os.Getenv("AXON_CLUSTER_RATE"), 64); err == nil && v > 0 {
		rate = v
	}
	return time.Duration(float64(time.Second) / rate)
}

// setup registers the users through the proxy, creates the rooms and joins
// everyone to them.
func (s *suite) setup(ctx context.Context) error {
	hc := newHTTPClient()
	base := s.c.ClientURL()
	for i := range numSenders {
		c, err := register(ctx, base, hc, fmt.Sprintf("sender%d", i))
		if err != nil {
			return err
		}
		s.senders = append(s.senders, c)
	}
	for i := range numSyncers {
		c, err := register(ctx, base, hc, fmt.Sprintf("syncer%d", i))
		if err != nil {
			return err
		}
		s.syncers = append(s.syncers, c)
	}
	for i := range numRooms {
		room, err := s.senders[0].createRoom(ctx, fmt.Sprintf("room %d", i))
		if err != nil {
			return err
		}
		s.rooms = append(s.rooms, room)
		for _, c := range append(append([]*client(nil), s.senders[1:]...), s.syncers...) {
			if err := c.join(ctx, room); err != nil {
				return fmt.Errorf("%s joins %s: %w", c.UserID, room, err)
			}
		}
	}
	for j := range benchRooms {
		room, err := s.senders[j%numSenders].createRoom(ctx, fmt.Sprintf("bench %d", j))
		if err != nil {
			return err
		}
		s.bench = append(s.bench, room)
	}
	return nil
}

// checkRouting checks that the proxy's routes reach a role that serves
// each path: the client API, /sync and the filter API that clients use
// with it, the key server and the federation API.
func (s *suite) checkRouting(ctx context.Context, t *testing.T) {
	c := s.syncers[0]
	var f struct {
		FilterID string `json:"filter_id"`
	}
	if err := c.Call(ctx, "POST", "/user/"+url.PathEscape(c.UserID)+"/filter", map[string]any{"room": map[string]any{"timeline": map[string]any{"limit": 5}}}, &f); err != nil {
		t.Errorf("POST /_matrix/client/v3/user/{userId}/filter through the proxy (routed to the client role): %v", err)
	} else {
		q := url.Values{"filter": {f.FilterID}, "timeout": {"0"}}
		if err := c.Call(ctx, "GET", "/sync?"+q.Encode(), nil, nil); err != nil {
			t.Errorf("GET /sync with an uploaded filter: %v", err)
		}
	}
	for _, path := range []string{"/_matrix/client/versions", "/_matrix/key/v2/server", "/_matrix/federation/v1/version"} {
		req, _ := http.NewRequestWithContext(ctx, "GET", c.Base+path, nil)
		resp, err := c.HC.Do(req)
		if err != nil {
			t.Errorf("GET %s: %v", path, err)
			continue
		}
		_ = resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
}

// caseResult is one row of the report.
type caseResult struct {
	name     string
	duration time.Duration
	v        verdict
	stats    map[string]*phaseStats
	steps    []*stepResult
	notes    []string
	failed   bool
}

type stepResult struct {
	name            string
	start, faultEnd time.Time
	end             time.Time
	recovery        time.Duration
	badSends        int
	recovered       bool
	p99             time.Duration // of the sends scheduled in the step
	failedSend      int           // failed attempts of the sends scheduled in the step
	extra           []string
}

// caseEnv is what a case body works with.
type caseEnv struct {
	ctx context.Context
	t   *testing.T
	s   *suite
	d   *driver
	res *caseResult
	// broken is set when a step did not recover: the later steps of the
	// case are skipped (their figures would mean nothing), the checks
	// still run.
	broken bool
}

// step runs one disturbance: act performs it and calls over (or returns)
// when the fault is over: a process killed, a server back. Then the step
// waits, up to recoverWithin, until writes are processed end to end
// again. Recovery is measured from the fault's end.
func (e *caseEnv) step(name string, act func(over func()) error) *stepResult {
	st := &stepResult{name: name, start: time.Now()}
	if e.broken {
		e.t.Logf("step skipped (an earlier step did not recover): %s", name)
		st.faultEnd, st.end = st.start, st.start
		st.extra = append(st.extra, "skipped")
		return st
	}
	e.res.steps = append(e.res.steps, st)
	e.t.Logf("step: %s", name)
	if err := act(func() { st.faultEnd = time.Now() }); err != nil {
		e.t.Errorf("%s: %v", name, err)
	}
	if st.faultEnd.IsZero() {
		st.faultEnd = time.Now()
	}
	st.recovered = e.waitHealthy(st.faultEnd)
	if !st.recovered {
		e.broken = true
		e.t.Errorf("%s: writes were not processed end to end within %s of the fault's end", name, recoverWithin)
	}
	st.end = time.Now()
	return st
}

// waitHealthy waits until a send scheduled after t went well in every
// room and was seen by every syncer.
func (e *caseEnv) waitHealthy(t time.Time) bool {
	deadline := time.Now().Add(recoverWithin)
	for time.Now().Before(deadline) && e.ctx.Err() == nil {
		if e.d.healthySince(t) {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// runCase drives traffic through a case: warm-up, the disturbance, a
// cool-down, then the checks.
func (s *suite) runCase(ctx context.Context, t *testing.T, name string, body func(*caseEnv)) {
	res := &caseResult{name: name}
	s.results = append(s.results, res)
	run := fmt.Sprintf("r%d", time.Now().UnixNano()%1e9)
	d := newDriver(driverConfig{rate: s.rate}, run, s.senders, s.syncers, s.rooms)
	start := time.Now()
	if err := d.start(ctx); err != nil {
		res.failed = true
		t.Fatal(err)
	}
	e := &caseEnv{ctx: ctx, t: t, s: s, d: d, res: res}
	time.Sleep(warmUp)
	d.setPhase(phaseDist)
	body(e)
	d.setPhase(phaseAfter)
	time.Sleep(coolDown)
	d.stopSenders()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if ok, _ := d.allSeen(); ok {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	d.stop()
	res.duration = time.Since(start)
	res.v = d.verify()
	res.stats = d.stats()
	for i, st := range res.steps {
		to := res.steps[i].end
		if i+1 < len(res.steps) {
			to = res.steps[i+1].start
		}
		st.recovery, st.badSends = d.recovery(st.start, to, st.faultEnd)
		st.p99, st.failedSend = d.window(st.start, to)
	}
	v := res.v
	if !v.ok() {
		t.Errorf("%s: %d lost, %d duplicated, %d out of order, %d mismatched, %d diverged", name, v.lost, v.duplicated, v.misordered, v.mismatched, v.diverged)
	}
	if v.gaveUp > 0 || v.rejected > 0 {
		t.Errorf("%s: %d sends never acknowledged, %d refused", name, v.gaveUp, v.rejected)
	}
	for _, p := range v.problems {
		t.Log(p)
	}
	for _, p := range phases {
		ps := res.stats[p]
		for msg, n := range ps.errs {
			t.Logf("%s: %d× %s", p, n, msg)
		}
	}
	res.failed = t.Failed()
}

// window is the p99 of the sends scheduled in [from, to), and their failed
// attempts.
func (d *driver) window(from, to time.Time) (p99 time.Duration, failedSend int) {
	sends, _ := d.snapshot()
	var lat []time.Duration
	for _, r := range sends {
		if r.scheduled.Before(from) || !r.scheduled.Before(to) {
			continue
		}
		failedSend += r.failed
		if r.eventID != "" {
			lat = append(lat, r.acked.Sub(r.scheduled))
		}
	}
	return percentile(lat, 0.99), failedSend
}

// dumpLogs prints the end of every log of the cluster after a failure.
func dumpLogs(t *testing.T, c *devcluster.Cluster) {
	entries, err := os.ReadDir(c.Dir() + "/logs")
	if err != nil {
		return
	}
	for _, e := range entries {
		data, err := os.ReadFile(c.Dir() + "/logs/" + e.Name())
		if err != nil {
			continue
		}
		// The last warnings and errors, without the access log.
		var keep []string
		for _, l := range strings.Split(string(data), "\n") {
			if (strings.Contains(l, "level=ERROR") || strings.Contains(l, "level=WARN")) && !strings.Contains(l, `msg="http request"`) {
				keep = append(keep, l)
			}
		}
		if len(keep) == 0 {
			continue
		}
		if len(keep) > 15 {
			keep = keep[len(keep)-15:]
		}
		t.Logf("---- %s: last warnings and errors:\n%s", e.Name(), strings.Join(keep, "\n"))
	}
}

// report prints the table of the suite's figures.
func (s *suite) report(t *testing.T) {
	var b strings.Builder
	repl := fmt.Sprintf("streams with %d replica(s)", s.c.NATSReplicas())
	if !s.c.ReplicasConfigurable() {
		repl += " (axon serve has no --nats-replicas)"
	}
	fmt.Fprintf(&b, "\n== cluster fault suite: %d cores; workers %s; NATS 3 nodes, %s;\n", runtime.NumCPU(), workerCounts(), repl)
	fmt.Fprintf(&b, "   traffic: %d senders × %.1f msg/s into %d rooms, %d syncers long-polling through haproxy\n\n",
		numSenders, float64(time.Second)/float64(s.rate), numRooms, numSyncers)
	fmt.Fprintf(&b, "%-38s %6s %6s  %-22s %-22s %4s %4s %4s %4s  %-27s %s\n", "case", "sends", "acked",
		"failed send b|d|a", "failed sync b|d|a", "lost", "dup", "ord", "div", "p99 send b|d|a", "result")
	for _, r := range s.results {
		st := r.stats
		if st == nil {
			fmt.Fprintf(&b, "%-38s (did not run to the end)\n", r.name)
			continue
		}
		f := func(get func(*phaseStats) string) string {
			return get(st[phaseBefore]) + "|" + get(st[phaseDist]) + "|" + get(st[phaseAfter])
		}
		result := "ok"
		if r.failed {
			result = "FAIL"
		}
		fmt.Fprintf(&b, "%-38s %6d %6d  %-22s %-22s %4d %4d %4d %4d  %-27s %s\n", r.name, r.v.sends, r.v.acked,
			f(func(p *phaseStats) string { return fmt.Sprintf("%d/%d", p.sendFailed, p.sendAttempts) }),
			f(func(p *phaseStats) string { return fmt.Sprintf("%d/%d", p.syncFailed, p.syncCalls) }),
			r.v.lost, r.v.duplicated, r.v.misordered, r.v.diverged,
			f(func(p *phaseStats) string { return ms(p.p99) }), result)
		for _, stp := range r.steps {
			rec := ms(stp.recovery)
			if !stp.recovered {
				rec = "not recovered"
			}
			fmt.Fprintf(&b, "    · %-44s fault %-7s recover %-9s p99 %-8s failed sends %d%s\n", stp.name, ms(stp.faultEnd.Sub(stp.start)), rec, ms(stp.p99), stp.failedSend, extra(stp.extra))
		}
		for _, n := range r.notes {
			fmt.Fprintf(&b, "    · %s\n", n)
		}
		if r.v.limited > 0 || r.v.unackedSeen > 0 {
			fmt.Fprintf(&b, "    · %d limited timelines (%d events read back through /messages); %d unacknowledged sends persisted\n", r.v.limited, r.v.gapFill, r.v.unackedSeen)
		}
	}
	fmt.Fprintln(&b, "\n(b|d|a: before | during | after the disturbance; a send counts in the phase it was scheduled in, a request in the one it started in;")
	fmt.Fprintln(&b, " p99 send: scheduled → acknowledged, retries included; fault: how long the disturbance itself lasted;")
	fmt.Fprintln(&b, " recover: from the fault's end to the completion of the last send of the step that failed, or took over 2s to be acknowledged or seen)")
	fmt.Print(b.String())
}

func extra(xs []string) string {
	if len(xs) == 0 {
		return ""
	}
	return "; " + strings.Join(xs, "; ")
}

func workerCounts() string {
	var parts []string
	for _, r := range devcluster.Roles() {
		parts = append(parts, fmt.Sprintf("%s %d", r, suiteWorkers[r]))
	}
	return strings.Join(parts, ", ")
}

func ms(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < 10*time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	default:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
}
