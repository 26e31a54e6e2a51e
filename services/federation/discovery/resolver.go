package discovery

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/axon-hs/axon/matrix/id"
)

// Defaults of [Config].
const (
	DefaultPort             = 8448 // the federation port of the spec
	DefaultWellKnownPort    = 443  // https
	DefaultWellKnownTimeout = 10 * time.Second
	DefaultCacheSize        = 10_000
	DefaultMaxFetches       = 64
)

// maxCandidates bounds the addresses of one Result, so that a server name
// with many SRV records and addresses cannot keep a dial busy for long.
const maxCandidates = 32

// Errors of Resolve. DNS failures are returned wrapped as they come from
// the [DNS] (a *net.DNSError for the default one).
var (
	// ErrInvalidServerName: the name does not match the server name
	// grammar. It wraps the *id.Error that says why.
	ErrInvalidServerName = errors.New("invalid server name")
	// ErrNoAddress: the lookups ended without an address to connect to.
	ErrNoAddress = errors.New("no address to connect to")
	// ErrClosed: the Resolver was closed.
	ErrClosed = errors.New("resolver closed")
)

// DNS is the part of *net.Resolver that the Resolver uses.
type DNS interface {
	LookupSRV(ctx context.Context, service, proto, name string) (cname string, addrs []*net.SRV, err error)
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

var _ DNS = (*net.Resolver)(nil)

// Config configures a Resolver. The zero value is usable: system DNS,
// system roots, the real clock, no logging.
type Config struct {
	// DNS answers SRV, A and AAAA queries; nil means net.DefaultResolver.
	DNS DNS
	// RootCAs are the authorities trusted for every certificate this
	// package checks (well-known fetches and federation connections); nil
	// means the system roots. There is no way to skip verification.
	RootCAs *x509.CertPool
	// Now is the clock of the well-known cache; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// DefaultPort is the port used when neither the name nor an SRV record
	// gives one (default 8448, as the spec says; tests change it).
	DefaultPort uint16
	// WellKnownPort is the port of https://<hostname>/.well-known/matrix/server
	// (default 443; tests change it). Redirects are followed to the port
	// they name.
	WellKnownPort uint16
	// WellKnownTimeout bounds one well-known fetch, redirects included
	// (default 10s). A fetch that times out counts as "no well-known".
	WellKnownTimeout time.Duration
	// CacheSize bounds the hostnames whose well-known outcome is kept
	// (default 10,000; least recently used first out).
	CacheSize int
	// MaxFetches bounds the well-known fetches in progress at once, over
	// all hostnames (default 64).
	MaxFetches int
}

// Method names the step of the spec's algorithm that gave a Result.
type Method uint8

// The steps of "Resolving server names" (server-server API), in order.
const (
	MethodIPLiteral          Method = iota + 1 // 1: IP literal
	MethodExplicitPort                         // 2: hostname with a port, A/AAAA
	MethodWellKnownIP                          // 3.1: delegated to an IP literal
	MethodWellKnownPort                        // 3.2: delegated to a hostname with a port
	MethodWellKnownSRV                         // 3.3: delegated hostname, SRV _matrix-fed._tcp
	MethodWellKnownLegacySRV                   // 3.4: delegated hostname, SRV _matrix._tcp (deprecated)
	MethodWellKnownDefault                     // 3.5: delegated hostname, A/AAAA, default port
	MethodSRV                                  // 4: SRV _matrix-fed._tcp
	MethodLegacySRV                            // 5: SRV _matrix._tcp (deprecated)
	MethodDefault                              // 6: A/AAAA, default port
)

// String returns the method's name as logged, e.g. "well_known_srv".
func (m Method) String() string {
	switch m {
	case MethodIPLiteral:
		return "ip_literal"
	case MethodExplicitPort:
		return "explicit_port"
	case MethodWellKnownIP:
		return "well_known_ip"
	case MethodWellKnownPort:
		return "well_known_port"
	case MethodWellKnownSRV:
		return "well_known_srv"
	case MethodWellKnownLegacySRV:
		return "well_known_legacy_srv"
	case MethodWellKnownDefault:
		return "well_known_default"
	case MethodSRV:
		return "srv"
	case MethodLegacySRV:
		return "legacy_srv"
	case MethodDefault:
		return "default"
	}
	return "method(" + strconv.Itoa(int(m)) + ")"
}

// Result says where and how to reach a server.
type Result struct {
	// ServerName is the name that was resolved.
	ServerName id.ServerName
	// Delegated is the m.server of the server's well-known document, or
	// "" when none was used.
	Delegated id.ServerName
	// Method is the step of the algorithm that applied.
	Method Method
	// Addrs are the addresses to dial, in order ("192.0.2.1:8448",
	// "[2001:db8::1]:8448"); never empty.
	Addrs []string
	// Host is the value of the Host header of every request.
	Host string
	// TLSName is the name the server's certificate must be valid for: a
	// DNS name, sent as SNI, or an IP address (without brackets), for
	// which no SNI is sent.
	TLSName string
}

// Resolver resolves server names. It is safe for concurrent use; Close
// it to stop the well-known fetches in progress.
type Resolver struct {
	dns         DNS
	rootCAs     *x509.CertPool
	now         func() time.Time
	log         *slog.Logger
	defaultPort uint16
	wkPort      uint16
	wkTimeout   time.Duration
	wkClient    *http.Client
	fetchSlots  chan struct{}

	ctx    context.Context // cancelled by Close; parent of every fetch
	cancel context.CancelFunc
	wg     sync.WaitGroup // fetch goroutines

	mu      sync.Mutex
	closed  bool
	cache   *lru
	flights map[string]*flight
}

// NewResolver returns a Resolver. It does no I/O.
func NewResolver(cfg Config) *Resolver {
	r := &Resolver{
		dns:         cfg.DNS,
		rootCAs:     cfg.RootCAs,
		now:         cfg.Now,
		log:         cfg.Logger,
		defaultPort: cfg.DefaultPort,
		wkPort:      cfg.WellKnownPort,
		wkTimeout:   cfg.WellKnownTimeout,
		flights:     make(map[string]*flight),
	}
	if r.dns == nil {
		r.dns = net.DefaultResolver
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.defaultPort == 0 {
		r.defaultPort = DefaultPort
	}
	if r.wkPort == 0 {
		r.wkPort = DefaultWellKnownPort
	}
	if r.wkTimeout <= 0 {
		r.wkTimeout = DefaultWellKnownTimeout
	}
	size := cfg.CacheSize
	if size <= 0 {
		size = DefaultCacheSize
	}
	fetches := cfg.MaxFetches
	if fetches <= 0 {
		fetches = DefaultMaxFetches
	}
	r.cache = newLRU(size)
	r.fetchSlots = make(chan struct{}, fetches)
	r.wkClient = r.newWellKnownClient()
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

// Close stops the well-known fetches in progress and waits for them; later
// calls to Resolve that need a fetch fail with ErrClosed.
func (r *Resolver) Close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
	r.wkClient.CloseIdleConnections()
}

// Resolve finds where and how to connect to serverName, following the
// spec's algorithm. The well-known outcome is cached; DNS answers are not
// (that is the DNS resolver's business).
func (r *Resolver) Resolve(ctx context.Context, serverName string) (Result, error) {
	name, err := parseServerName(serverName)
	if err != nil {
		return Result{}, err
	}
	t, err := r.target(ctx, name)
	if err != nil {
		return Result{}, err
	}
	return r.resolveTarget(ctx, t)
}

func parseServerName(s string) (id.ServerName, error) {
	name, err := id.ParseServerName(s)
	if err != nil {
		return "", fmt.Errorf("discovery: %w: %w", ErrInvalidServerName, err)
	}
	return name, nil
}

// target is a server name together with the outcome of its well-known
// lookup: all that decides the Host header and the certificate name.
type target struct {
	server    id.ServerName
	delegated id.ServerName // "" when there is no usable delegation
}

// target does steps 1-3 up to the well-known lookup.
func (r *Resolver) target(ctx context.Context, name id.ServerName) (target, error) {
	if _, hasPort := name.Port(); hasPort || name.IsIPLiteral() {
		return target{server: name}, nil // steps 1 and 2: no well-known
	}
	delegated, err := r.wellKnown(ctx, name.Host())
	if err != nil {
		return target{}, fmt.Errorf("discovery: %s: %w", name, err)
	}
	return target{server: name, delegated: delegated}, nil
}

// route is what a target says to do before any DNS lookup.
type route struct {
	method  Method // for hostnames without a port: the SRV step, refined by lookups
	host    string
	tlsName string
	ip      netip.Addr // the IP literal, if it is one
	lookup  string     // the hostname to look up otherwise
	port    uint16
	hasPort bool
}

func (r *Resolver) route(t target) route {
	name, delegated := t.server, t.delegated != ""
	if delegated {
		name = t.delegated
	}
	pick := func(own, viaWellKnown Method) Method {
		if delegated {
			return viaWellKnown
		}
		return own
	}
	port, hasPort := name.Port()
	if ip, ok := name.IP(); ok {
		if !hasPort {
			port = r.defaultPort
		}
		// Steps 1 and 3.1: the Host header is the name as written, with its
		// port if it has one; the certificate is for the address.
		return route{method: pick(MethodIPLiteral, MethodWellKnownIP), host: string(name),
			tlsName: ip.String(), ip: ip, port: port, hasPort: true}
	}
	host := name.Host()
	if hasPort {
		// Steps 2 and 3.2: Host is hostname:port, the certificate for the hostname.
		return route{method: pick(MethodExplicitPort, MethodWellKnownPort), host: string(name),
			tlsName: host, lookup: host, port: port, hasPort: true}
	}
	// Steps 3.3-3.5 and 4-6: Host and certificate are the hostname (the
	// delegated one when there is one), never an SRV target.
	return route{method: pick(MethodSRV, MethodWellKnownSRV), host: host, tlsName: host, lookup: host}
}

// resolveTarget does the DNS part of the algorithm for t.
func (r *Resolver) resolveTarget(ctx context.Context, t target) (Result, error) {
	rt := r.route(t)
	res := Result{ServerName: t.server, Delegated: t.delegated, Method: rt.method, Host: rt.host, TLSName: rt.tlsName}
	var err error
	switch {
	case rt.hasPort && rt.port == 0:
		err = fmt.Errorf("%w: port 0", ErrNoAddress)
	case rt.ip.IsValid():
		res.Addrs = []string{netip.AddrPortFrom(rt.ip, rt.port).String()}
	case rt.hasPort:
		res.Addrs, err = r.lookupHost(ctx, nil, rt.lookup, rt.port)
	default:
		var legacy, found bool
		res.Addrs, legacy, found, err = r.lookupSRV(ctx, rt.lookup)
		switch {
		case err != nil:
		case !found:
			res.Method = MethodDefault
			if t.delegated != "" {
				res.Method = MethodWellKnownDefault
			}
			res.Addrs, err = r.lookupHost(ctx, nil, rt.lookup, r.defaultPort)
		case legacy:
			res.Method = MethodLegacySRV
			if t.delegated != "" {
				res.Method = MethodWellKnownLegacySRV
			}
		}
	}
	if err != nil {
		return Result{}, fmt.Errorf("discovery: %s: %w", t.server, err)
	}
	r.log.Debug("resolved server name", "destination", string(t.server), "method", res.Method.String(),
		"delegated", string(t.delegated), "host", res.Host, "tls_name", res.TLSName, "addrs", res.Addrs)
	return res, nil
}

// lookupHost appends the addresses of host (CNAME, AAAA and A, in the
// resolver's order) with port to addrs.
func (r *Resolver) lookupHost(ctx context.Context, addrs []string, host string, port uint16) ([]string, error) {
	ips, err := r.dns.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return addrs, fmt.Errorf("looking up %s: %w", host, err)
	}
	n := len(addrs)
	for _, ip := range ips {
		if len(addrs) >= maxCandidates {
			break
		}
		a := netip.AddrPortFrom(ip.Unmap(), port).String()
		if !contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == n {
		return addrs, fmt.Errorf("looking up %s: %w", host, ErrNoAddress)
	}
	return addrs, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// SRV service names, in the order the spec looks them up.
const (
	srvService       = "matrix-fed"
	srvLegacyService = "matrix"
)

// lookupSRV looks up _matrix-fed._tcp.host, then _matrix._tcp.host, and
// resolves the targets of the first that has usable records. found is
// false when neither has any; a record whose target is "." (RFC 2782:
// "decidedly not available") or whose port is 0 is not usable.
func (r *Resolver) lookupSRV(ctx context.Context, host string) (addrs []string, legacy, found bool, err error) {
	for _, service := range []string{srvService, srvLegacyService} {
		_, records, err := r.dns.LookupSRV(ctx, service, "tcp", host)
		usable := records[:0:0]
		for _, rec := range records {
			if rec != nil && rec.Target != "." && rec.Target != "" && rec.Port != 0 {
				usable = append(usable, rec)
			}
		}
		if len(usable) == 0 {
			if err != nil && !isNotFound(err) {
				return nil, false, false, fmt.Errorf("looking up SRV _%s._tcp.%s: %w", service, host, err)
			}
			continue
		}
		if err != nil {
			// Some records were dropped as malformed; use the others.
			r.log.Debug("partial SRV answer", "destination", host, "service", service, "error", err)
		}
		var errs []error
		for _, rec := range usable {
			if len(addrs) >= maxCandidates {
				break
			}
			if addrs, err = r.lookupHost(ctx, addrs, rec.Target, rec.Port); err != nil {
				errs = append(errs, err)
			}
		}
		if len(addrs) == 0 {
			return nil, false, true, fmt.Errorf("SRV _%s._tcp.%s: %w", service, host, errors.Join(errs...))
		}
		return addrs, service == srvLegacyService, true, nil
	}
	return nil, false, false, nil
}

func isNotFound(err error) bool {
	dnsErr, ok := errors.AsType[*net.DNSError](err)
	return ok && dnsErr.IsNotFound
}
