package discovery

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/axon-hs/axon/matrix/id"
)

// Scheme is the URL scheme of the requests a Transport carries: the host
// of matrix-fed://<server name>/<path> is a server name, resolved as the
// spec says, and the request goes out over verified HTTPS.
const Scheme = "matrix-fed"

// Defaults of [TransportConfig].
const (
	DefaultMaxConns                   = 512
	DefaultMaxConnsPerDestination     = 8
	DefaultMaxIdleConnsPerDestination = 2
	DefaultIdleConnTimeout            = 90 * time.Second
	DefaultDialTimeout                = 10 * time.Second
	DefaultTLSHandshakeTimeout        = 10 * time.Second
	DefaultResponseHeaderTimeout      = 5 * time.Minute
)

// ErrUnsupportedURL: a request given to the Transport is not a
// matrix-fed://<server name>/ URL.
var ErrUnsupportedURL = errors.New("unsupported URL")

// TransportConfig bounds a Transport. Zero (or negative) fields take their
// defaults.
type TransportConfig struct {
	// MaxConns bounds the connections open or being dialled, over all
	// destinations (default 512, at least 2). A dial beyond it waits for
	// one to close, or for its request's context to end.
	MaxConns int
	// MaxConnsPerDestination bounds the connections to one destination
	// (default 8); requests beyond it wait for a connection of theirs.
	MaxConnsPerDestination int
	// MaxIdleConns bounds the idle connections kept over all destinations
	// (default MaxConns/2, at most MaxConns-1), so that idle connections
	// never hold every slot of MaxConns: when one more would go idle, the
	// least recently used idle one is closed.
	MaxIdleConns int
	// MaxIdleConnsPerDestination bounds the idle connections kept for one
	// destination (default 2).
	MaxIdleConnsPerDestination int
	// IdleConnTimeout closes a connection idle for that long (default 90s).
	IdleConnTimeout time.Duration
	// DialTimeout bounds the TCP connect to one address (default 10s); the
	// next address is tried after it.
	DialTimeout time.Duration
	// TLSHandshakeTimeout bounds one TLS handshake (default 10s).
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for a response's headers once
	// the request is written (default 5 min, a backstop: callers set the
	// deadline of each request in its context).
	ResponseHeaderTimeout time.Duration
}

func (c TransportConfig) withDefaults() TransportConfig {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MaxConns, DefaultMaxConns)
	c.MaxConns = max(c.MaxConns, 2)
	def(&c.MaxConnsPerDestination, DefaultMaxConnsPerDestination)
	def(&c.MaxIdleConns, c.MaxConns/2)
	c.MaxIdleConns = min(c.MaxIdleConns, c.MaxConns-1)
	def(&c.MaxIdleConnsPerDestination, DefaultMaxIdleConnsPerDestination)
	defDur(&c.IdleConnTimeout, DefaultIdleConnTimeout)
	defDur(&c.DialTimeout, DefaultDialTimeout)
	defDur(&c.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout)
	defDur(&c.ResponseHeaderTimeout, DefaultResponseHeaderTimeout)
	return c
}

// Transport is the http.RoundTripper of federation requests. It carries
// requests for matrix-fed://<server name>/<path> URLs: it resolves the
// server name with its Resolver, sends the Host header of the Result, and
// connects to the Result's addresses in order with TLS, verifying the
// certificate for the Result's TLSName with the Resolver's roots.
// Connections are pooled per destination and bounded as TransportConfig
// says. HTTP/1.1 only.
type Transport struct {
	r      *Resolver
	cfg    TransportConfig
	inner  *http.Transport
	slots  chan struct{} // one per connection open or being dialled
	log    *slog.Logger
	tlsSes tls.ClientSessionCache
}

var _ http.RoundTripper = (*Transport)(nil)

// NewTransport returns a Transport resolving with r. It does no I/O.
func NewTransport(r *Resolver, cfg TransportConfig) *Transport {
	cfg = cfg.withDefaults()
	t := &Transport{
		r:      r,
		cfg:    cfg,
		slots:  make(chan struct{}, cfg.MaxConns),
		log:    r.log,
		tlsSes: tls.NewLRUClientSessionCache(min(cfg.MaxConns, 1024)),
	}
	t.inner = &http.Transport{
		DialTLSContext:        t.dialTLS,
		MaxConnsPerHost:       cfg.MaxConnsPerDestination,
		MaxIdleConns:          cfg.MaxIdleConns,
		MaxIdleConnsPerHost:   cfg.MaxIdleConnsPerDestination,
		IdleConnTimeout:       cfg.IdleConnTimeout,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
	}
	return t
}

// RoundTrip sends req, whose URL must be matrix-fed://<server name>/...
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	name, err := destination(req)
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	tg, err := t.r.target(req.Context(), name)
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	rt := t.r.route(tg)

	// The inner transport pools connections by URL host: an encoding of
	// the target, so that each destination (and delegation) has its own
	// pool and dialTLS knows what to dial. The request context travels
	// along, so that a dial waiting for a slot stops when it ends.
	out := req.Clone(context.WithValue(req.Context(), requestContextKey{}, req.Context()))
	out.URL.Scheme = "https"
	out.URL.Host = encodeTarget(tg)
	out.Host = rt.host
	resp, err := t.inner.RoundTrip(out)
	if resp != nil {
		resp.Request = req
	}
	return resp, err
}

// destination checks that req is for matrix-fed://<server name>/.
func destination(req *http.Request) (id.ServerName, error) {
	u := req.URL
	if u == nil || u.Scheme != Scheme || u.Opaque != "" || u.User != nil {
		return "", fmt.Errorf("discovery: %w (want %s://<server name>/<path>)", ErrUnsupportedURL, Scheme)
	}
	return parseServerName(u.Host)
}

// CloseIdleConnections closes the idle connections and cancels the dials
// in progress that no request waits for; for shutdown, after the last
// request.
func (t *Transport) CloseIdleConnections() { t.inner.CloseIdleConnections() }

// Conns returns the connections open or being dialled (a gauge for
// metrics).
func (t *Transport) Conns() int { return len(t.slots) }

type requestContextKey struct{}

const keyPort = ":443" // canonical port of the inner transport's https URLs

// encodeTarget and decodeTarget carry a target through the inner
// transport's URL host; hex keeps it a valid host that no resolver sees.
func encodeTarget(tg target) string {
	return hex.EncodeToString([]byte(string(tg.server) + " " + string(tg.delegated)))
}

func decodeTarget(addr string) (target, error) {
	b, err := hex.DecodeString(strings.TrimSuffix(addr, keyPort))
	if err != nil {
		return target{}, fmt.Errorf("discovery: bad dial address %q", addr)
	}
	server, delegated, _ := strings.Cut(string(b), " ")
	return target{server: id.ServerName(server), delegated: id.ServerName(delegated)}, nil
}

// dialTLS is the inner transport's dialer: it takes a connection slot,
// resolves the target's addresses and returns the first verified TLS
// connection among them. The slot is given back when the connection
// closes, or at once when no address could be reached.
func (t *Transport) dialTLS(ctx context.Context, _, addr string) (net.Conn, error) {
	tg, err := decodeTarget(addr)
	if err != nil {
		return nil, err
	}
	// The inner transport detaches dials from their request; waiting for a
	// slot and dialling stop when that request ends.
	reqCtx, ok := ctx.Value(requestContextKey{}).(context.Context)
	if ok {
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		stop := context.AfterFunc(reqCtx, func() { cancel(context.Cause(reqCtx)) })
		defer stop()
		defer cancel(nil)
	} else {
		reqCtx = ctx
	}
	if err := t.acquire(ctx, tg); err != nil {
		return nil, err
	}
	// A slot freed just as the request gave up may be taken before the
	// cancellation above arrives: the request's own context says at once.
	if reqCtx.Err() != nil {
		t.release()
		return nil, fmt.Errorf("discovery: %s: %w", tg.server, context.Cause(reqCtx))
	}
	conn, err := t.connect(ctx, tg)
	if err != nil {
		t.release()
		return nil, err
	}
	return conn, nil
}

func (t *Transport) acquire(ctx context.Context, tg target) error {
	select {
	case t.slots <- struct{}{}:
		return nil
	default:
	}
	t.log.Debug("connection limit reached, dial waits", "destination", string(tg.server), "max_conns", t.cfg.MaxConns)
	select {
	case t.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("discovery: %s: waiting for one of %d connections: %w",
			tg.server, t.cfg.MaxConns, context.Cause(ctx))
	}
}

// release gives a slot back. It never blocks: a slot given back twice is
// a bug that must not also stop every later dial.
func (t *Transport) release() {
	select {
	case <-t.slots:
	default:
		t.log.Error("discovery: connection slot released twice; connection count is off")
	}
}

func (t *Transport) connect(ctx context.Context, tg target) (*tls.Conn, error) {
	res, err := t.r.resolveTarget(ctx, tg)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		RootCAs:            t.r.rootCAs,
		ServerName:         res.TLSName, // an IP address means no SNI and an IP SAN check
		MinVersion:         tls.VersionTLS12,
		NextProtos:         []string{"http/1.1"},
		ClientSessionCache: t.tlsSes,
	}
	var errs []error
	for _, addr := range res.Addrs {
		conn, err := t.connectOne(ctx, addr, cfg)
		if err == nil {
			return conn, nil
		}
		t.log.Debug("connecting failed", "destination", string(tg.server), "addr", addr, "error", err)
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("discovery: connecting to %s (%s): %w", tg.server, res.Method, errors.Join(errs...))
}

func (t *Transport) connectOne(ctx context.Context, addr string, cfg *tls.Config) (*tls.Conn, error) {
	d := net.Dialer{Timeout: t.cfg.DialTimeout}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	sc := &slotConn{Conn: raw, release: t.release}
	conn := tls.Client(sc, cfg)
	hsCtx, cancel := context.WithTimeout(ctx, t.cfg.TLSHandshakeTimeout)
	defer cancel()
	if err := conn.HandshakeContext(hsCtx); err != nil {
		raw.Close() // the slot stays with the dial, which may try another address
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	sc.owned.Store(true)
	return conn, nil
}

// slotConn gives its connection slot back when it is closed, once the
// connection owns the slot. Until the handshake succeeds the dial owns
// it: crypto/tls closes the connection itself when a handshake is
// interrupted, and that close must not give back a slot the dial still
// holds (it would be given back twice, and the next release would block
// forever).
type slotConn struct {
	net.Conn
	owned   atomic.Bool
	once    sync.Once
	release func()
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	if c.owned.Load() {
		c.once.Do(c.release)
	}
	return err
}
