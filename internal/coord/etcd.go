package coord

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// DefaultTTL is the default lifetime of an etcd session's lease: how long
// the partitions of a worker that vanished without a word (SIGKILL, a
// network partition) stay with it before the others take them.
const DefaultTTL = 10 * time.Second

// DefaultPrefix is the default key prefix of EtcdConfig. A deployment
// should use its own (serve uses /axon/<server name>/coord/), so that
// several can share one etcd.
const DefaultPrefix = "/axon/coord/"

// Timings of the session and of etcd requests.
const (
	opTimeout      = 5 * time.Second        // one etcd request
	retryMin       = 100 * time.Millisecond // first retry after a failure
	retryMax       = 5 * time.Second        // retries back off up to this
	keepaliveRetry = 200 * time.Millisecond // after a failed keep-alive
	runCooldown    = time.Second            // before re-running a partition whose run returned on its own
)

// ErrClosed is returned by Own when the coordinator was closed first, and
// reported by Healthy after Close.
var ErrClosed = errors.New("coord: the etcd coordinator is closed")

// errNoSession is Healthy's answer before the first session.
var errNoSession = errors.New("coord: no etcd session yet")

// EtcdConfig configures NewEtcd.
type EtcdConfig struct {
	// Endpoints of the etcd cluster: http://, https://, unix://,
	// unixs:// URLs or host:port. user:password@ in a URL authenticates
	// (every endpoint must carry the same credentials); https:// and
	// unixs:// verify the server against the system's CAs.
	Endpoints []string
	// Prefix of every key (default DefaultPrefix); "/" is appended if
	// missing.
	Prefix string
	// TTL of the session lease (default DefaultTTL). etcd rounds it up to
	// whole seconds and to its own minimum (2 s by default).
	TTL time.Duration
	// ID names this worker in etcd (default: host name, process ID and a
	// random suffix). It must be unique among the workers of a prefix.
	ID string
	// Logger receives ownership and session changes; nil discards them.
	Logger *slog.Logger
	// Registerer gets the metrics; nil exports none.
	Registerer prometheus.Registerer
}

// Etcd is the cluster-mode Coordinator: workers share partitions through
// leases in etcd (see the package documentation for the protocol and its
// guarantees). Create it with NewEtcd, then Close it once every Own has
// returned.
type Etcd struct {
	cfg  EtcdConfig
	ccfg clientv3.Config
	log  *slog.Logger
	m    *etcdMetrics

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	done   chan struct{}  // closed when maintain has returned
	wg     sync.WaitGroup // revokers of ended sessions
	cli    *clientv3.Client
	// abandon makes Close skip revoking the lease, as a crash would
	// (tests).
	abandon   atomic.Bool
	closeOnce sync.Once
	closeErr  error

	mu        sync.Mutex
	sess      *session      // the live session, nil while there is none
	changed   chan struct{} // closed and replaced whenever sess changes
	health    error
	resources map[string]*resource // those under Own
}

var _ Coordinator = (*Etcd)(nil)

// NewEtcd returns a coordinator on the etcd cluster of cfg. It does not
// wait for etcd: a session is established in the background, and again
// whenever it is lost, for as long as the coordinator lives; Healthy
// says whether one is up.
func NewEtcd(cfg EtcdConfig) (*Etcd, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("coord: etcd: no endpoints")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.ID == "" {
		cfg.ID = workerID()
	}
	if strings.Contains(cfg.ID, "/") {
		return nil, fmt.Errorf("coord: etcd: worker ID %q contains a slash", cfg.ID)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ccfg, err := clientConfig(cfg.Endpoints)
	if err != nil {
		return nil, err
	}
	m, err := newEtcdMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Etcd{cfg: cfg, ccfg: ccfg, log: cfg.Logger.With("worker", cfg.ID), m: m, ctx: ctx, cancel: cancel,
		done: make(chan struct{}), changed: make(chan struct{}), health: errNoSession,
		resources: map[string]*resource{}}
	go e.maintain()
	return e, nil
}

// clientConfig turns the endpoints into the etcd client's configuration,
// taking credentials out of the URLs.
func clientConfig(endpoints []string) (clientv3.Config, error) {
	c := clientv3.Config{
		// The client's own logs would duplicate ours (and go to stderr
		// unstructured); what matters is logged by the coordinator.
		Logger: zap.NewNop(),
		// Bounds the authentication that New does when credentials are
		// given (the connection itself is made in the background).
		DialTimeout: opTimeout,
		// Notice a dead connection while a watch is open. etcd refuses
		// pings more often than every 5 s (--grpc-keepalive-min-time)
		// and pings without a stream, answering them with GOAWAY.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
	}
	for i, ep := range endpoints {
		if !strings.Contains(ep, "://") {
			c.Endpoints = append(c.Endpoints, ep)
			continue
		}
		u, err := url.Parse(ep)
		if err != nil {
			return c, fmt.Errorf("coord: etcd endpoint %d: %w", i+1, err)
		}
		if u.User != nil {
			pw, _ := u.User.Password()
			if i > 0 && (c.Username != u.User.Username() || c.Password != pw) {
				return c, fmt.Errorf("coord: etcd endpoint %d: every endpoint must carry the same credentials", i+1)
			}
			c.Username, c.Password = u.User.Username(), pw
			u.User = nil
		} else if c.Username != "" {
			return c, fmt.Errorf("coord: etcd endpoint %d: every endpoint must carry the same credentials", i+1)
		}
		c.Endpoints = append(c.Endpoints, u.String())
	}
	return c, nil
}

// workerID is a name unique to this process: host, PID and 4 random
// bytes (a restarted pod keeps its host name and often its PID).
func workerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	host = strings.ReplaceAll(host, "/", "_")
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// ID returns the worker ID of this process in etcd.
func (e *Etcd) ID() string { return e.cfg.ID }

// Healthy reports nil while a session is up, else why there is none
// (for /readyz).
func (e *Etcd) Healthy() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.health
}

// Owned implements Coordinator: the partitions of the resource that this
// process holds and runs now (not those whose run is being stopped).
func (e *Etcd) Owned(name string) []int {
	e.mu.Lock()
	r := e.resources[name]
	e.mu.Unlock()
	if r == nil {
		return nil
	}
	return r.ownedNow()
}

// Own implements Coordinator. Runs start as the partitions are acquired
// and are cancelled when handed over, when the session is lost, when ctx
// ends or at Close. While there is no session nothing runs, and Own
// waits for the next one. It returns nil once ctx has ended and every
// run has returned, or ErrClosed if Close came first.
func (e *Etcd) Own(ctx context.Context, name string, n int, run func(ctx context.Context, partition int)) error {
	if n < 1 {
		return fmt.Errorf("coord: %s: %d partitions", name, n)
	}
	if name == "" || strings.Contains(name, "/") {
		return fmt.Errorf("coord: bad resource name %q", name)
	}
	r := &resource{e: e, name: name, n: n, run: run, prefix: e.cfg.Prefix + name + "/",
		log: e.log.With("resource", name)}
	e.mu.Lock()
	if e.ctx.Err() != nil {
		e.mu.Unlock()
		return ErrClosed
	}
	if _, dup := e.resources[name]; dup {
		e.mu.Unlock()
		return fmt.Errorf("coord: %s is already owned by this process", name)
	}
	e.resources[name] = r
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.resources, name)
		e.mu.Unlock()
		e.m.forget(name)
	}()
	r.log.Info("coord: sharing partitions through etcd", "partitions", n)
	for {
		s := e.waitSession(ctx)
		if s == nil {
			break
		}
		r.serve(ctx, s)
	}
	if ctx.Err() != nil {
		return nil
	}
	return ErrClosed
}

// waitSession returns the live session, waiting for one; nil once ctx
// ends or the coordinator is closed.
func (e *Etcd) waitSession(ctx context.Context) *session {
	for {
		e.mu.Lock()
		s, changed := e.sess, e.changed
		e.mu.Unlock()
		if ctx.Err() != nil || e.ctx.Err() != nil {
			return nil
		}
		if s != nil && s.ctx.Err() == nil {
			return s
		}
		select {
		case <-ctx.Done():
		case <-e.ctx.Done():
		case <-changed:
		}
	}
}

// setSession publishes the live session (nil: none, because of health).
func (e *Etcd) setSession(s *session, health error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sess, e.health = s, health
	close(e.changed)
	e.changed = make(chan struct{})
}

// Close ends the coordinator: every run is cancelled, Close waits for
// them to return, then revokes the session's lease, which deletes this
// worker's keys so that the others take its partitions at once rather
// than after the TTL. Call it after the roles have stopped (their Own
// calls have returned); an Own still running returns ErrClosed.
func (e *Etcd) Close() error {
	e.closeOnce.Do(func() {
		e.cancel()
		<-e.done
		e.wg.Wait()
		if e.cli != nil {
			e.closeErr = e.cli.Close()
		}
	})
	return e.closeErr
}

// maintain keeps a session up for as long as the coordinator lives:
// establish one, keep it alive, and when it is lost (every run is
// cancelled with it) start over, backing off while etcd is unreachable.
func (e *Etcd) maintain() {
	defer close(e.done)
	delay := retryMin
	for e.ctx.Err() == nil {
		s, err := e.open()
		if err != nil {
			if e.ctx.Err() != nil {
				break
			}
			e.setSession(nil, fmt.Errorf("coord: no etcd session: %w", err))
			e.log.Warn("coord: etcd unreachable; retrying", "err", err, "retry_in", delay)
			if !sleep(e.ctx, delay) {
				break
			}
			delay = min(2*delay, retryMax)
			continue
		}
		delay = retryMin
		e.m.sessions.Inc()
		e.m.up.Set(1)
		e.setSession(s, nil)
		e.log.Info("coord: etcd session established", "lease", fmt.Sprintf("%x", int64(s.lease)), "ttl", s.ttl)

		cause := e.keep(s)
		s.cancel(cause)
		s.end()
		e.m.up.Set(0)
		e.wg.Go(func() { e.revokeWhenDrained(s) })
		if e.ctx.Err() != nil {
			break
		}
		e.setSession(nil, fmt.Errorf("coord: etcd session lost: %w", cause))
		e.log.Warn("coord: etcd session lost; every partition is given up and will be acquired again", "err", cause)
	}
	e.setSession(nil, ErrClosed)
}

// open connects (once) and establishes a session.
func (e *Etcd) open() (*session, error) {
	if e.cli == nil {
		cli, err := clientv3.New(e.ccfg)
		if err != nil {
			return nil, fmt.Errorf("etcd client: %w", err)
		}
		e.cli = cli
	}
	ctx, cancel := context.WithTimeout(e.ctx, opTimeout)
	defer cancel()
	sent := time.Now()
	g, err := e.cli.Grant(ctx, int64((e.cfg.TTL+time.Second-1)/time.Second))
	if err != nil {
		return nil, fmt.Errorf("granting a lease (etcd at %s): %w", strings.Join(e.ccfg.Endpoints, ","), err)
	}
	sctx, scancel := context.WithCancelCause(e.ctx)
	ttl := time.Duration(g.TTL) * time.Second
	return &session{cli: e.cli, lease: g.ID, ttl: ttl, expiry: sent.Add(ttl), ctx: sctx, cancel: scancel,
		check: make(chan struct{}, 1), drained: make(chan struct{})}, nil
}

// keep renews the session's lease until it is lost or the coordinator
// closes, and returns why it ended.
//
// It renews every TTL/4 with single keep-alive requests and keeps its
// own deadline: the lease is known to live until the send time of the
// last renewal that was answered plus the TTL granted (etcd renewed it
// later than that, so it expires later). The session is declared lost
// TTL/8 before that deadline, so that the runs are cancelled before
// anyone else can have the partitions and have that long to drain. etcd
// answering that the lease is gone (it expired, or someone revoked it)
// ends the session at once.
func (e *Etcd) keep(s *session) error {
	interval, margin := s.ttl/4, s.ttl/8
	renew := time.NewTimer(interval)
	defer renew.Stop()
	var lastErr error
	for {
		lostAt := s.expiry.Add(-margin)
		left := time.Until(lostAt)
		if left <= 0 {
			return fmt.Errorf("no lease renewal answered in time: %w", lastErr)
		}
		deadline := time.NewTimer(left)
		select {
		case <-e.ctx.Done():
			deadline.Stop()
			return ErrClosed
		case <-deadline.C:
			continue
		case <-s.check:
		case <-renew.C:
		}
		deadline.Stop()
		sent := time.Now()
		until := sent.Add(interval)
		if lostAt.Before(until) {
			until = lostAt
		}
		ctx, cancel := context.WithDeadline(e.ctx, until)
		resp, err := s.cli.KeepAliveOnce(ctx, s.lease)
		cancel()
		switch {
		case err == nil:
			s.expiry = sent.Add(time.Duration(resp.TTL) * time.Second)
			lastErr = nil
			renew.Reset(interval)
		case errors.Is(err, rpctypes.ErrLeaseNotFound):
			return errors.New("the lease is gone (expired or revoked)")
		case e.ctx.Err() != nil:
			return ErrClosed
		default:
			lastErr = err
			e.log.Debug("coord: renewing the lease failed; retrying", "err", err)
			renew.Reset(keepaliveRetry)
		}
	}
}

// revokeWhenDrained revokes an ended session's lease once its runs have
// returned: its keys go at once instead of when the lease expires (which
// it may have already). Not for an abandoned coordinator (a simulated
// crash).
func (e *Etcd) revokeWhenDrained(s *session) {
	<-s.drained
	if e.abandon.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if _, err := s.cli.Revoke(ctx, s.lease); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		e.log.Warn("coord: revoking an ended session's lease failed; it expires within its TTL", "err", err)
	}
}

// sleep waits for d or ctx, whichever comes first; false if ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// session is one lease and what runs under it. Its context ends when the
// lease is lost or the coordinator closes, which cancels every run.
type session struct {
	cli    *clientv3.Client
	lease  clientv3.LeaseID
	ttl    time.Duration
	expiry time.Time // the lease lives at least until then (keep only)
	ctx    context.Context
	cancel context.CancelCauseFunc
	check  chan struct{} // asks keep for a renewal now: something looks wrong

	mu      sync.Mutex
	runs    int           // runs started under the session and not returned
	ended   bool          // no more runs may start
	drained chan struct{} // closed once ended and runs == 0
}

// suspect asks for an immediate renewal, which finds out whether the
// lease still exists.
func (s *session) suspect() {
	select {
	case s.check <- struct{}{}:
	default:
	}
}

// addRun counts a run about to start; false once the session has ended.
func (s *session) addRun() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || s.ctx.Err() != nil {
		return false
	}
	s.runs++
	return true
}

// runDone counts a run that has returned.
func (s *session) runDone() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs--
	if s.ended && s.runs == 0 {
		close(s.drained)
	}
}

// end forbids new runs; drained closes once the last one returns.
func (s *session) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	s.ended = true
	if s.runs == 0 {
		close(s.drained)
	}
}
