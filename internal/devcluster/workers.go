package devcluster

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Role is an axon role that the cluster runs in processes of its own.
type Role string

// The roles a cluster runs (the prober is not part of it).
const (
	RoleClient     Role = "client"
	RoleSync       Role = "sync"
	RoleFederation Role = "federation"
	RoleRoom       Role = "room"
	RoleSender     Role = "sender"
)

// Roles lists the cluster's roles in start order.
func Roles() []Role {
	return []Role{RoleRoom, RoleSender, RoleSync, RoleClient, RoleFederation}
}

func (r Role) valid() bool {
	for _, x := range Roles() {
		if r == x {
			return true
		}
	}
	return false
}

func (r Role) behindProxy() bool {
	for _, x := range backendRoles {
		if r == x {
			return true
		}
	}
	return false
}

// Worker is one `axon serve --roles=<role>` process.
type Worker struct {
	Role       Role
	Name       string // role-N; N grows with every worker of the role ever started
	Listen     string // host:port of the Client-Server listener (/readyz, /livez)
	Federation string // host:port of the federation listener ("" unless RoleFederation)
	Metrics    string // host:port of /metrics
	proc       *Process
	slot       *slot // the proxy slot it holds (HTTP roles)
}

// Process is the worker's process.
func (w *Worker) Process() *Process { return w.proc }

// PID is the worker's process ID.
func (w *Worker) PID() int { return w.proc.PID }

// Ready asks the worker's /readyz; nil means ready.
func (w *Worker) Ready(ctx context.Context) error { return ProbeReady(ctx, w.Listen) }

// ProbeReady asks /readyz of the axon listener at hostport; nil means
// ready.
func ProbeReady(ctx context.Context, hostport string) error {
	code, body, err := httpGet(ctx, "http://"+hostport+"/readyz")
	if err != nil {
		return err
	}
	if code != 200 {
		return fmt.Errorf("/readyz %d: %s", code, bytes.TrimSpace(body))
	}
	return nil
}

// Scrape reads the worker's /metrics: each sample keyed by its series as
// the text format writes it (`name{label="v"}`), histograms' buckets
// included.
func (w *Worker) Scrape(ctx context.Context) (map[string]float64, error) {
	code, body, err := httpGet(ctx, "http://"+w.Metrics+"/metrics")
	if err != nil {
		return nil, err
	}
	if code != 200 {
		return nil, fmt.Errorf("/metrics: %d", code)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}

// workerArgs are the serve flags of a worker.
func (c *Cluster) workerArgs(w *Worker, dataDir string) []string {
	fed := ""
	if w.Role == RoleFederation {
		fed = w.Federation
	}
	var natsURLs []string
	for _, n := range c.nats {
		natsURLs = append(natsURLs, n.url())
	}
	args := []string{"serve",
		"--roles", string(w.Role),
		"--server-name", c.opts.ServerName,
		"--data-dir", dataDir,
		"--signing-key-path", c.signingKey,
		"--database", c.pg.DSN(),
		"--nats", strings.Join(natsURLs, ","),
		"--listen", w.Listen,
		"--federation-listen", fed,
		"--metrics-listen", w.Metrics,
		"--registration", "open",
		"--rate-limit-ip", "off",
		"--rate-limit-user", "off",
		"--trusted-proxies", host + "/32",
		"--log-level", c.opts.LogLevel,
	}
	if !c.opts.NoEtcd {
		args = append(args, "--etcd", c.etcd.url())
	}
	if c.replicasFlag {
		args = append(args, "--nats-replicas", strconv.Itoa(c.natsReplicas))
	}
	return append(args, c.opts.ExtraArgs...)
}

// launchWorker starts a worker of role, in sl when the role is behind the
// proxy, without waiting for it. Call with c.mu held.
func (c *Cluster) launchWorker(role Role, sl *slot) (*Worker, error) {
	c.seq[role]++
	w := &Worker{Role: role, Name: fmt.Sprintf("%s-%d", role, c.seq[role]-1), slot: sl}
	if sl != nil {
		w.Listen, w.Metrics = addr(sl.listen), addr(sl.metrics)
		if role == RoleFederation {
			w.Federation = addr(sl.fed)
		}
	} else {
		lp, err := c.ports.next()
		if err != nil {
			return nil, err
		}
		mp, err := c.ports.next()
		if err != nil {
			return nil, err
		}
		w.Listen, w.Metrics = addr(lp), addr(mp)
	}
	data := filepath.Join(c.dir, "workers", w.Name)
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}
	p, err := start(spawnSpec{name: w.Name, path: c.axon, args: c.workerArgs(w, data), dir: data,
		log: filepath.Join(c.dir, "logs", w.Name+".log"), detach: c.opts.Detach})
	if err != nil {
		return nil, err
	}
	w.proc = p
	if sl != nil {
		sl.worker = w
	}
	c.workers = append(c.workers, w)
	return w, nil
}

// awaitWorker waits for the worker's /readyz and, behind the proxy, for
// haproxy's health checks to have it UP.
func (c *Cluster) awaitWorker(ctx context.Context, w *Worker) error {
	if err := poll(ctx, w.Name+" ready", 120*time.Second, 100*time.Millisecond, w.proc, w.Ready); err != nil {
		return err
	}
	if w.slot == nil || c.hap == nil || c.hap.proc == nil {
		return nil
	}
	return poll(ctx, w.Name+" UP in haproxy", 30*time.Second, 100*time.Millisecond, w.proc, func(ctx context.Context) error {
		st, err := c.hap.stats(ctx)
		if err != nil {
			return err
		}
		if up, status := serverUp(st, string(w.Role), w.slot.server()); !up {
			return fmt.Errorf("haproxy has %s/%s %s", w.Role, w.slot.server(), status)
		}
		return nil
	})
}

// freeSlot returns a slot of role whose worker is gone. Call with c.mu held.
func (c *Cluster) freeSlot(role Role) (*slot, error) {
	for _, s := range c.slots {
		if s.role == role && (s.worker == nil || s.worker.proc.Exited()) {
			s.worker = nil
			return s, nil
		}
	}
	return nil, fmt.Errorf("no free proxy slot for a %s worker (Options.Slots)", role)
}

// AddWorker starts a worker of role and waits until it is ready (and UP in
// the proxy).
func (c *Cluster) AddWorker(ctx context.Context, role Role) (*Worker, error) {
	if !role.valid() {
		return nil, fmt.Errorf("unknown role %q", role)
	}
	c.mu.Lock()
	var sl *slot
	var err error
	if role.behindProxy() {
		if sl, err = c.freeSlot(role); err != nil {
			c.mu.Unlock()
			return nil, err
		}
	}
	w, err := c.launchWorker(role, sl)
	c.saveStateLocked()
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if err := c.awaitWorker(ctx, w); err != nil {
		return w, err
	}
	return w, nil
}

// RemoveWorker stops w gracefully (SIGTERM: readiness fails, requests and
// long-polls drain, leases are released) and waits for it to exit.
func (c *Cluster) RemoveWorker(w *Worker) error {
	err := w.proc.Stop(syscall.SIGTERM, workerGrace)
	c.forget(w)
	return err
}

// KillWorker kills w with SIGKILL, as a crashed machine would, and waits
// for the exit. Nothing replaces it: AddWorker does, like a Deployment.
func (c *Cluster) KillWorker(w *Worker) error {
	err := w.proc.Kill()
	c.forget(w)
	return err
}

// ReplaceWorker rolls w the way a Deployment with maxSurge 1 and
// maxUnavailable 0 does: a new worker of the same role starts (in another
// proxy slot), and once it is ready and UP in the proxy, w gets SIGTERM.
// It returns the new worker without waiting for w's drain; w.Process().Done()
// tells when w has exited.
func (c *Cluster) ReplaceWorker(ctx context.Context, w *Worker) (*Worker, error) {
	nw, err := c.AddWorker(ctx, w.Role)
	if err != nil {
		return nw, err
	}
	if err := w.proc.Signal(syscall.SIGTERM); err != nil {
		return nw, err
	}
	c.mu.Lock()
	c.removeLocked(w)
	c.draining = append(c.draining, w)
	c.saveStateLocked()
	c.mu.Unlock()
	return nw, nil
}

// WaitDrained waits until every worker replaced by ReplaceWorker has exited,
// killing those still there after the grace period.
func (c *Cluster) WaitDrained() error {
	c.mu.Lock()
	ws := c.draining
	c.draining = nil
	c.mu.Unlock()
	var errs []error
	for _, w := range ws {
		if !w.proc.Wait(workerGrace) {
			errs = append(errs, fmt.Errorf("%s did not exit within %s of SIGTERM; killed", w.Name, workerGrace))
			_ = w.proc.Kill()
		}
	}
	c.mu.Lock()
	c.saveStateLocked()
	c.mu.Unlock()
	return joinErrs(errs)
}

func (c *Cluster) forget(w *Worker) {
	c.mu.Lock()
	c.removeLocked(w)
	c.saveStateLocked()
	c.mu.Unlock()
}

func (c *Cluster) removeLocked(w *Worker) {
	for i, x := range c.workers {
		if x == w {
			c.workers = append(c.workers[:i], c.workers[i+1:]...)
			break
		}
	}
}

// Workers returns the live workers of the given roles (all when none).
func (c *Cluster) Workers(roles ...Role) []*Worker {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Worker
	for _, w := range c.workers {
		if len(roles) == 0 {
			out = append(out, w)
			continue
		}
		for _, r := range roles {
			if w.Role == r {
				out = append(out, w)
			}
		}
	}
	return out
}
