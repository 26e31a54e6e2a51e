package devcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/axon-hs/axon/internal/signingkey"
)

// workerGrace is how long a worker may take to exit after SIGTERM: axon's
// readiness grace (5 s) and HTTP drain (20 s), its consumers' drain, and
// slack for a busy machine.
const workerGrace = 45 * time.Second

// Options configures Start. The zero value is one worker of every role.
type Options struct {
	// Dir is the state directory: data, logs, binaries and the state file
	// (created if missing). It must not hold a running cluster.
	Dir string
	// Repo is the root of the axon module (default: found from the working
	// directory upwards): ./cmd/axon and the pinned nats-server are built
	// from it, and scripts/ensure-debs.sh installs missing packages.
	Repo string
	// Axon is a prebuilt axon binary; empty builds ./cmd/axon into Dir/bin.
	Axon string
	// Workers is the number of workers per role at start (missing roles:
	// 1; 0 runs none).
	Workers map[Role]int
	// Slots is the number of proxy slots per HTTP role (default: the most
	// workers of a role, plus 2, at least 4). A replacement or an added
	// worker needs a free slot.
	Slots int
	// ServerName is the Matrix server name (default "localhost").
	ServerName string
	// NATSReplicas is the streams' replica count; 0 picks 3 when axon
	// serve has --nats-replicas, else the streams stay at 1 replica.
	NATSReplicas int
	// LogLevel of the workers (default "info").
	LogLevel string
	// ExtraArgs are appended to every worker's serve flags.
	ExtraArgs []string
	// Detach starts every process in a session of its own, so that the
	// cluster outlives the command (axon dev cluster up). Otherwise every
	// process dies with this one, whatever kills it.
	Detach bool
	// NoEtcd runs the workers without --etcd: each then has its
	// in-process coordinator, so every room worker consumes every
	// partition (only the compare-and-set on a room's head keeps them
	// apart) and every sync worker runs an indexer of its own (they race,
	// and /sync can skip events). For comparisons only; etcd still runs.
	NoEtcd bool
	// Progress, if set, receives one line per step of Start.
	Progress func(string)
}

// Cluster is a running local cluster. Its methods are safe for concurrent
// use; the disturbances (KillWorker, StopNATS …) are meant to be called one
// at a time by a test.
type Cluster struct {
	opts Options
	dir  string
	axon string

	replicasFlag bool // axon serve has --nats-replicas
	natsReplicas int
	signingKey   string

	mu       sync.Mutex
	ports    ports
	pg       *postgres
	nats     []*natsNode
	etcd     *etcdServer
	hap      *haproxy
	slots    []*slot
	workers  []*Worker // live, in start order
	draining []*Worker // replaced, not yet known to have exited
	seq      map[Role]int
}

// Start builds what it needs, starts PostgreSQL, a 3-node NATS JetStream
// cluster, etcd, the axon workers (after `axon migrate`) and haproxy in
// front of them, and waits until the proxy routes to every worker. On
// error, everything started is stopped again.
func Start(ctx context.Context, opts Options) (c *Cluster, err error) {
	if opts.Dir == "" {
		return nil, errors.New("devcluster: Options.Dir is required")
	}
	if opts.ServerName == "" {
		opts.ServerName = "localhost"
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "info"
	}
	counts := map[Role]int{}
	most := 0
	for _, r := range Roles() {
		n, ok := opts.Workers[r]
		if !ok {
			n = 1
		}
		counts[r] = n
		most = max(most, n)
	}
	for r := range opts.Workers {
		if !r.valid() {
			return nil, fmt.Errorf("devcluster: unknown role %q", r)
		}
	}
	if opts.Slots == 0 {
		opts.Slots = max(4, most+2)
	}
	if opts.Repo == "" {
		if opts.Repo, err = findRepo(); err != nil {
			return nil, err
		}
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	c = &Cluster{opts: opts, dir: dir, seq: map[Role]int{}}
	defer func() {
		if err != nil {
			_ = c.Stop()
			c = nil
		}
	}()
	progress := func(format string, args ...any) {
		if opts.Progress != nil {
			opts.Progress(fmt.Sprintf(format, args...))
		}
	}
	if err := c.prepareDir(); err != nil {
		return c, err
	}

	// Tools: Debian packages, then the Go builds.
	pgBin, err := postgresBinDir(opts.Repo)
	if err != nil {
		return c, err
	}
	if err := ensureEtcd(opts.Repo); err != nil {
		return c, err
	}
	if err := ensureHAProxy(opts.Repo); err != nil {
		return c, err
	}
	c.axon = opts.Axon
	if c.axon == "" {
		progress("building axon")
		c.axon = filepath.Join(dir, "bin", "axon")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", c.axon, "./cmd/axon")
		cmd.Dir, cmd.Env = opts.Repo, childEnv()
		if out, err := cmd.CombinedOutput(); err != nil {
			return c, fmt.Errorf("go build ./cmd/axon: %w\n%s", err, out)
		}
	}
	progress("building nats-server")
	natsBin := filepath.Join(dir, "bin", "nats-server")
	if err := buildNATS(ctx, opts.Repo, natsBin); err != nil {
		return c, err
	}
	if c.replicasFlag, err = serveHasFlag(ctx, c.axon, "--nats-replicas"); err != nil {
		return c, err
	}
	c.natsReplicas = opts.NATSReplicas
	switch {
	case c.natsReplicas == 0 && c.replicasFlag:
		c.natsReplicas = 3
	case c.natsReplicas == 0:
		c.natsReplicas = 1
	case c.natsReplicas != 1 && !c.replicasFlag:
		return c, fmt.Errorf("devcluster: %d NATS replicas asked for, but axon serve has no --nats-replicas", c.natsReplicas)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	// PostgreSQL.
	progress("starting PostgreSQL")
	pgPort, err := c.ports.next()
	if err != nil {
		return c, err
	}
	if c.pg, err = newPostgres(pgBin, filepath.Join(dir, "postgres"), c.logPath("postgres"), pgPort, opts.Detach); err != nil {
		return c, err
	}
	if err := c.pg.initdb(ctx); err != nil {
		return c, err
	}
	if err := c.pg.start(ctx); err != nil {
		return c, err
	}
	// etcd.
	progress("starting etcd")
	c.etcd = &etcdServer{dir: filepath.Join(dir, "etcd"), log: c.logPath("etcd"), detach: opts.Detach}
	if c.etcd.client, err = c.ports.next(); err != nil {
		return c, err
	}
	if c.etcd.peer, err = c.ports.next(); err != nil {
		return c, err
	}
	if err := c.etcd.start(ctx); err != nil {
		return c, err
	}
	// NATS.
	progress("starting a 3-node NATS JetStream cluster")
	for i := range 3 {
		n := &natsNode{name: fmt.Sprintf("nats-%d", i), bin: natsBin, detach: opts.Detach}
		n.conf = filepath.Join(dir, "nats", n.name+".conf")
		n.store = filepath.Join(dir, "nats", n.name)
		n.log = c.logPath(n.name)
		for _, p := range []*int{&n.port, &n.cluster, &n.monit} {
			if *p, err = c.ports.next(); err != nil {
				return c, err
			}
		}
		c.nats = append(c.nats, n)
	}
	for _, n := range c.nats {
		if err := n.writeConf(c.nats); err != nil {
			return c, err
		}
		if err := n.start(); err != nil {
			return c, err
		}
	}
	for _, n := range c.nats {
		if err := n.healthy(ctx, 90*time.Second); err != nil {
			return c, err
		}
	}
	c.saveStateLocked()

	// The schema, once, and one signing key for every worker.
	progress("axon migrate")
	mig := exec.CommandContext(ctx, c.axon, "migrate", "--database", c.pg.DSN(), "--data-dir", filepath.Join(dir, "workers", "migrate"), "--log-level", "warn")
	mig.Env = childEnv()
	if out, err := mig.CombinedOutput(); err != nil {
		return c, fmt.Errorf("axon migrate: %w\n%s", err, out)
	}
	c.signingKey = filepath.Join(dir, "signing.key")
	if _, _, err := signingkey.LoadOrCreate(c.signingKey, nil); err != nil {
		return c, err
	}

	// Proxy slots with fixed ports, and the proxy.
	for _, role := range backendRoles {
		for i := range opts.Slots {
			s := &slot{role: role, index: i}
			ps := []*int{&s.listen, &s.metrics}
			if role == RoleFederation {
				ps = append(ps, &s.fed)
			}
			for _, p := range ps {
				if *p, err = c.ports.next(); err != nil {
					return c, err
				}
			}
			c.slots = append(c.slots, s)
		}
	}
	c.hap = &haproxy{conf: filepath.Join(dir, "haproxy.cfg"), socket: filepath.Join(dir, "haproxy.sock"), log: c.logPath("haproxy"), detach: opts.Detach}
	if c.hap.port, err = c.ports.next(); err != nil {
		return c, err
	}
	if err := os.WriteFile(c.hap.conf, []byte(haproxyConfig(c.hap.port, c.hap.socket, c.slots)), 0o644); err != nil {
		return c, err
	}

	// Workers, all at once, then the proxy.
	progress("starting axon workers")
	var started []*Worker
	for _, role := range Roles() {
		for range counts[role] {
			var sl *slot
			if role.behindProxy() {
				if sl, err = c.freeSlot(role); err != nil {
					return c, err
				}
			}
			w, err := c.launchWorker(role, sl)
			if err != nil {
				return c, err
			}
			started = append(started, w)
			// The first worker creates the streams alone: several axon
			// serve creating replicated streams at once on a fresh NATS
			// cluster time out (EnsureStreams, 5 s) and exit.
			if len(started) == 1 {
				if err := c.awaitWorker(ctx, w); err != nil {
					return c, err
				}
			}
		}
	}
	c.saveStateLocked()
	for _, w := range started {
		if err := c.awaitWorker(ctx, w); err != nil {
			return c, err
		}
	}
	progress("starting haproxy")
	if err := c.hap.start(ctx); err != nil {
		return c, err
	}
	c.saveStateLocked()
	for _, w := range started {
		if err := c.awaitWorker(ctx, w); err != nil {
			return c, err
		}
	}
	// Unused slots must be DOWN before the first request.
	if err := poll(ctx, "haproxy marks unused slots DOWN", 30*time.Second, 100*time.Millisecond, c.hap.proc, func(ctx context.Context) error {
		st, err := c.hap.stats(ctx)
		if err != nil {
			return err
		}
		for _, s := range c.slots {
			if s.worker != nil {
				continue
			}
			if up, status := serverUp(st, string(s.role), s.server()); up || !strings.HasPrefix(status, "DOWN") {
				return fmt.Errorf("%s/%s is %s", s.role, s.server(), status)
			}
		}
		return nil
	}); err != nil {
		return c, err
	}
	progress("cluster ready: %s", c.hap.url())
	return c, nil
}

// prepareDir creates the state directory. PostgreSQL runs as its own user
// when we are root, so the directory must be traversable by others.
func (c *Cluster) prepareDir() error {
	if st, err := readState(c.dir); err == nil && st.anyAlive() {
		return fmt.Errorf("devcluster: %s holds a running cluster (stop it first)", c.dir)
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return err
	}
	// What a previous cluster left (its binaries stay: they are rebuilt
	// from the build cache anyway).
	for _, old := range []string{"postgres", "etcd", "nats", "workers", "logs", stateFile, "haproxy.cfg", "haproxy.sock", "signing.key"} {
		if err := os.RemoveAll(filepath.Join(c.dir, old)); err != nil {
			return err
		}
	}
	for _, sub := range []string{"bin", "logs", "nats", "workers"} {
		if err := os.MkdirAll(filepath.Join(c.dir, sub), 0o755); err != nil {
			return err
		}
	}
	return os.Chmod(c.dir, 0o755)
}

func (c *Cluster) logPath(name string) string { return filepath.Join(c.dir, "logs", name+".log") }

// findRepo walks up from the working directory to the axon module's root.
func findRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for range 64 {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/axon-hs/axon\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", errors.New("devcluster: not inside the axon module (set Options.Repo)")
}

// serveHasFlag reports whether `axon serve --help` lists flag.
func serveHasFlag(ctx context.Context, axon, flag string) (bool, error) {
	cmd := exec.CommandContext(ctx, axon, "serve", "--help")
	cmd.Env = childEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return false, fmt.Errorf("axon serve --help: %w\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == flag {
			return true, nil
		}
	}
	return false, nil
}

// Stop stops everything, workers first (gracefully, in parallel), then the
// proxy, etcd, NATS and PostgreSQL. Every process is stopped by its PID;
// one that does not exit in time is killed.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	ws := append(append([]*Worker(nil), c.workers...), c.draining...)
	c.mu.Unlock()
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.proc.Stop(syscall.SIGTERM, workerGrace); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.workers, c.draining = nil, nil
	if c.hap != nil {
		errs = append(errs, c.hap.stop())
	}
	if c.etcd != nil {
		errs = append(errs, c.etcd.stop())
	}
	for _, n := range c.nats {
		errs = append(errs, n.stop())
	}
	if c.pg != nil {
		errs = append(errs, c.pg.stop())
	}
	c.saveStateLocked()
	return joinErrs(errs)
}

func joinErrs(errs []error) error { return errors.Join(errs...) }

// Dir is the state directory.
func (c *Cluster) Dir() string { return c.dir }

// ClientURL is the proxy's URL: the homeserver's base URL for clients.
func (c *Cluster) ClientURL() string { return c.hap.url() }

// DatabaseURL is PostgreSQL's URL.
func (c *Cluster) DatabaseURL() string { return c.pg.DSN() }

// NATSReplicas is the streams' replica count the workers were given.
func (c *Cluster) NATSReplicas() int { return c.natsReplicas }

// ReplicasConfigurable reports whether axon serve had --nats-replicas.
func (c *Cluster) ReplicasConfigurable() bool { return c.replicasFlag }

// ProxyStats are haproxy's server statistics.
func (c *Cluster) ProxyStats(ctx context.Context) ([]ServerStat, error) { return c.hap.stats(ctx) }

// Log is the path of a process's log file ("postgres", "etcd", "nats-0",
// "haproxy", or a worker's name).
func (c *Cluster) Log(name string) string { return c.logPath(name) }

// NATSNodes is the number of NATS servers.
func (c *Cluster) NATSNodes() int { return len(c.nats) }

// StopNATS stops NATS node i (SIGTERM).
func (c *Cluster) StopNATS(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nats[i].stop()
}

// StartNATS starts NATS node i again, on its ports and store, and waits
// until it is healthy.
func (c *Cluster) StartNATS(ctx context.Context, i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nats[i]
	if n.proc != nil && !n.proc.Exited() {
		return fmt.Errorf("%s is running", n.name)
	}
	if err := n.start(); err != nil {
		return err
	}
	c.saveStateLocked()
	return n.healthy(ctx, 90*time.Second)
}

// StopAllNATS stops every NATS node at once.
func (c *Cluster) StopAllNATS() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	errs := make([]error, len(c.nats))
	var wg sync.WaitGroup
	for i, n := range c.nats {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = n.stop() }()
	}
	wg.Wait()
	return joinErrs(errs)
}

// StartAllNATS starts every stopped NATS node and waits until all are
// healthy.
func (c *Cluster) StartAllNATS(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nats {
		if n.proc == nil || n.proc.Exited() {
			if err := n.start(); err != nil {
				return err
			}
		}
	}
	c.saveStateLocked()
	for _, n := range c.nats {
		if err := n.healthy(ctx, 120*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// RestartPostgres stops PostgreSQL (fast shutdown: every session is
// ended) and starts it again on the same port and data.
func (c *Cluster) RestartPostgres(ctx context.Context) error {
	if err := c.StopPostgres(); err != nil {
		return err
	}
	return c.StartPostgres(ctx)
}

// StopPostgres stops PostgreSQL (fast shutdown).
func (c *Cluster) StopPostgres() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pg.stop()
}

// StartPostgres starts the stopped PostgreSQL and waits until it accepts
// connections.
func (c *Cluster) StartPostgres(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.pg.start(ctx)
	c.saveStateLocked()
	return err
}

// StopEtcd stops etcd (SIGTERM).
func (c *Cluster) StopEtcd() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.etcd.stop()
}

// StartEtcd starts etcd again, on its ports and data, and waits until it
// is healthy.
func (c *Cluster) StartEtcd(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.etcd.start(ctx)
	c.saveStateLocked()
	return err
}
