package discovery

import (
	"container/list"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/axon-hs/axon/matrix/id"
)

// Well-known limits and cache times; doc.go explains them.
const (
	wellKnownPath     = "/.well-known/matrix/server"
	maxWellKnownBody  = 64 << 10
	maxRedirects      = 10
	wellKnownDialWait = 5 * time.Second // per address

	minCacheTTL     = 5 * time.Minute
	defaultCacheTTL = 24 * time.Hour
	maxCacheTTL     = 48 * time.Hour

	firstBackoff = 2 * time.Minute
	maxBackoff   = time.Hour
)

var (
	errWellKnownStatus = errors.New("well-known: status is not 200")
	errWellKnownBody   = errors.New("well-known: invalid document")
	errFetchBusy       = errors.New("well-known: too many fetches in progress")
	errRedirectLoop    = errors.New("well-known: redirect loop")
	errTooManyRedirect = errors.New("well-known: too many redirects")
	errInsecureRedir   = errors.New("well-known: redirect to a non-https URL")
)

// cacheEntry is the remembered outcome of one hostname's well-known.
type cacheEntry struct {
	host      string
	delegated id.ServerName // "" when the fetch failed or was invalid
	expires   time.Time
	failures  int // consecutive failed fetches, for the backoff
}

// flight is a fetch in progress; everyone asking for its hostname waits
// for it.
type flight struct {
	done      chan struct{} // closed when delegated and err are set
	delegated id.ServerName
	err       error // only when nothing could be learnt (closed, busy)
	waiters   int   // callers that joined, for tests and logs
}

// wellKnown returns the delegated server name of hostname, or "" when
// the algorithm goes on with step 4. Its error is only ever about the
// caller's context, the resolver closing or an overload, never about the
// remote server.
func (r *Resolver) wellKnown(ctx context.Context, hostname string) (id.ServerName, error) {
	now := r.now()
	r.mu.Lock()
	if e := r.cache.get(hostname); e != nil && now.Before(e.expires) {
		r.mu.Unlock()
		return e.delegated, nil
	}
	f := r.flights[hostname]
	if f == nil {
		if r.closed {
			r.mu.Unlock()
			return "", ErrClosed
		}
		f = &flight{done: make(chan struct{})}
		r.flights[hostname] = f
		r.wg.Add(1)
		go r.fetch(hostname, f)
	}
	f.waiters++
	r.mu.Unlock()

	select {
	case <-f.done:
		return f.delegated, f.err
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
}

// fetch runs one well-known fetch for its flight and remembers the
// outcome. It is detached from the callers' contexts so that one caller
// giving up does not fail the others; WellKnownTimeout and Close bound it.
func (r *Resolver) fetch(hostname string, f *flight) {
	defer r.wg.Done()
	ctx, cancel := context.WithTimeout(r.ctx, r.wkTimeout)
	defer cancel()

	delegated, ttl, err := r.fetchWellKnown(ctx, hostname)
	now := r.now()

	r.mu.Lock()
	defer func() {
		delete(r.flights, hostname)
		r.mu.Unlock()
		close(f.done)
	}()
	switch {
	case r.ctx.Err() != nil:
		f.err = ErrClosed
	case errors.Is(err, errFetchBusy):
		f.err = err // our own overload says nothing about the server
	case err == nil:
		f.delegated = delegated
		r.cache.put(&cacheEntry{host: hostname, delegated: delegated, expires: now.Add(ttl)})
		r.log.Debug("well-known found", "destination", hostname, "delegated", string(delegated), "ttl", ttl)
	default:
		failures := 1
		// Consecutive failures back off; an old streak is forgotten.
		if prev := r.cache.get(hostname); prev != nil && prev.delegated == "" && now.Sub(prev.expires) < maxBackoff {
			failures = prev.failures + 1
		}
		wait := backoff(failures)
		r.cache.put(&cacheEntry{host: hostname, expires: now.Add(wait), failures: failures})
		r.log.Debug("no well-known", "destination", hostname, "error", err,
			"failures", failures, "retry_in", wait)
	}
}

// backoff is how long the failures-th consecutive failure is remembered.
func backoff(failures int) time.Duration {
	d := firstBackoff
	for i := 1; i < failures && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// fetchWellKnown GETs https://hostname/.well-known/matrix/server and
// returns the delegated name and how long to remember it.
func (r *Resolver) fetchWellKnown(ctx context.Context, hostname string) (id.ServerName, time.Duration, error) {
	select {
	case r.fetchSlots <- struct{}{}:
		defer func() { <-r.fetchSlots }()
	case <-ctx.Done():
		return "", 0, errFetchBusy
	}
	host := hostname
	if r.wkPort != DefaultWellKnownPort {
		host = net.JoinHostPort(hostname, strconv.Itoa(int(r.wkPort)))
	}
	u := url.URL{Scheme: "https", Host: host, Path: wellKnownPath}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.wkClient.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", 0, fmt.Errorf("%w: %s", errWellKnownStatus, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxWellKnownBody+1))
	if err != nil {
		return "", 0, err
	}
	if len(body) > maxWellKnownBody {
		return "", 0, fmt.Errorf("%w: body larger than %d bytes", errWellKnownBody, maxWellKnownBody)
	}
	delegated, err := parseWellKnown(body)
	if err != nil {
		return "", 0, err
	}
	return delegated, cacheTTL(resp.Header, r.now()), nil
}

// parseWellKnown reads a well-known document: a JSON object whose
// "m.server" (exactly that key) is a string in the server name grammar.
// The Content-Type is not checked; the spec says to assume JSON.
func parseWellKnown(body []byte) (id.ServerName, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("%w: %w", errWellKnownBody, err)
	}
	if doc == nil {
		return "", fmt.Errorf("%w: not a JSON object", errWellKnownBody)
	}
	raw, ok := doc["m.server"]
	if !ok {
		return "", fmt.Errorf("%w: no m.server", errWellKnownBody)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%w: m.server is not a string", errWellKnownBody)
	}
	name, err := id.ParseServerName(s)
	if err != nil {
		return "", fmt.Errorf("%w: m.server: %w", errWellKnownBody, err)
	}
	return name, nil
}

// cacheTTL is how long a well-known answered with header h at now is
// remembered: Cache-Control max-age (less Age), else Expires (from Date),
// else 24 h; no-store or no-cache mean the minimum; always within
// [minCacheTTL, maxCacheTTL].
func cacheTTL(h http.Header, now time.Time) time.Duration {
	ttl, ok := maxAge(h)
	if !ok {
		if exp := h.Get("Expires"); exp != "" {
			ok = true
			if t, err := http.ParseTime(exp); err == nil {
				base := now
				if d, err := http.ParseTime(h.Get("Date")); err == nil {
					base = d
				}
				ttl = t.Sub(base)
			} // an invalid Expires means "already expired" (RFC 9111, 5.3)
		}
	}
	if !ok {
		return defaultCacheTTL
	}
	if age, err := strconv.ParseInt(strings.TrimSpace(h.Get("Age")), 10, 64); err == nil && age > 0 {
		ttl -= time.Duration(min(age, int64(maxCacheTTL/time.Second))) * time.Second
	}
	return min(max(ttl, minCacheTTL), maxCacheTTL)
}

// maxAge reads the Cache-Control directives that bound the lifetime.
func maxAge(h http.Header) (time.Duration, bool) {
	var (
		ttl   time.Duration
		found bool
	)
	for _, line := range h.Values("Cache-Control") {
		for _, d := range strings.Split(line, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "no-cache":
				return 0, true
			case "max-age":
				secs, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(value), `"`), 10, 64)
				if err != nil || secs < 0 {
					return 0, true // RFC 9111, 4.2.1: invalid means stale
				}
				ttl = time.Duration(min(secs, int64(maxCacheTTL/time.Second))) * time.Second
				found = true
			}
		}
	}
	return ttl, found
}

// newWellKnownClient returns the HTTP client of well-known fetches:
// verified TLS with the configured roots, DNS through r.dns, redirects to
// https only, at most maxRedirects of them and no loops, no keep-alive
// (a hostname is fetched at most every few minutes).
func (r *Resolver) newWellKnownClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext: r.dialDirect,
			TLSClientConfig: &tls.Config{
				RootCAs:    r.rootCAs,
				MinVersion: tls.VersionTLS12,
			},
			TLSHandshakeTimeout:    r.wkTimeout,
			DisableKeepAlives:      true,
			MaxResponseHeaderBytes: maxWellKnownBody,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme != "https" {
				return errInsecureRedir
			}
			if len(via) >= maxRedirects {
				return errTooManyRedirect
			}
			for _, v := range via {
				if v.URL.String() == req.URL.String() {
					return errRedirectLoop
				}
			}
			return nil
		},
	}
}

// dialDirect dials host:port, looking host up through r.dns, trying its
// addresses in order.
func (r *Resolver) dialDirect(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else if ips, err = r.dns.LookupNetIP(ctx, "ip", host); err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: wellKnownDialWait}
	var errs []error
	for i, ip := range ips {
		if i == maxCandidates {
			break
		}
		c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.Unmap().String(), port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("%s: %w", host, ErrNoAddress)
	}
	return nil, errors.Join(errs...)
}

// lru is a bounded map of cache entries, least recently used evicted
// first. Its caller holds Resolver.mu.
type lru struct {
	size  int
	order *list.List // of *cacheEntry, most recent at the front
	items map[string]*list.Element
}

func newLRU(size int) *lru {
	return &lru{size: size, order: list.New(), items: make(map[string]*list.Element)}
}

func (c *lru) get(host string) *cacheEntry {
	el, ok := c.items[host]
	if !ok {
		return nil
	}
	c.order.MoveToFront(el)
	return el.Value.(*cacheEntry)
}

func (c *lru) put(e *cacheEntry) {
	if el, ok := c.items[e.host]; ok {
		el.Value = e
		c.order.MoveToFront(el)
		return
	}
	c.items[e.host] = c.order.PushFront(e)
	for c.order.Len() > c.size {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).host)
	}
}

func (c *lru) len() int { return c.order.Len() }
