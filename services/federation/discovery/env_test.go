package discovery

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/testenv"
)

// The test world: a DNS server, two certificate authorities and HTTPS
// servers, all on loopback. Every hostname is under .test and exists only
// in the test DNS server.

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue returns a server certificate for exactly the given names and IPs.
func (ca *testCA) issue(t *testing.T, names []string, ips ...net.IP) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "test server"},
		DNSNames:     names,
		IPAddresses:  ips,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// wkAnswer is what the well-known server answers for one hostname.
type wkAnswer struct {
	status int // 0 means 200
	body   string
	header map[string]string
	wait   chan struct{} // when set, answer once it is closed
}

type testServer struct {
	label string
	port  uint16
	srv   *httptest.Server
	conns atomic.Int64 // connections accepted
}

type env struct {
	t      *testing.T
	ca     *testCA
	evilCA *testCA
	dns    *testDNS
	clock  *testenv.Clock
	hasV6  bool

	x, d, s, l, w *testServer // explicit port, default port, SRV, legacy SRV, well-known (127.0.0.1)
	x6, d6        *testServer // on ::1 with the ports of x and d; nil without IPv6
	wrong         *testServer // good CA, certificate only for wrong.test
	evil          *testServer // other CA, certificate for evil.test and 127.0.0.1
	deadPort      uint16      // nothing listens there

	mu      sync.Mutex
	wk      map[string]wkAnswer
	fetches map[string]int

	blocked     atomic.Int64 // requests waiting in /block
	release     chan struct{}
	releaseOnce sync.Once
}

const lo4 = "127.0.0.1"

// untrusted names are left out of the good certificate.
var untrusted = map[string]bool{"wk-untrusted.test": true}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{
		t:       t,
		ca:      newCA(t, "test CA"),
		evilCA:  newCA(t, "other CA"),
		dns:     startDNS(t),
		clock:   testenv.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)),
		wk:      make(map[string]wkAnswer),
		fetches: make(map[string]int),
		release: make(chan struct{}),
	}
	if l, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		l.Close()
		e.hasV6 = true
	}
	x4, x6 := e.listenPair()
	d4, d6 := e.listenPair()
	s4, _ := e.listenPair()
	l4, _ := e.listenPair()
	w4, _ := e.listenPair()
	n4, _ := e.listenPair()
	evil4, _ := e.listenPair()
	dead, _ := e.listenPair()
	e.deadPort = portOf(dead)
	dead.Close()

	p := ports{X: portOf(x4), S: portOf(s4), L: portOf(l4), W: portOf(w4), N: portOf(n4)}
	e.zone(p)
	e.wellKnowns(p)

	var names []string
	e.dns.mu.Lock()
	for name := range e.dns.zone {
		name = strings.TrimSuffix(name, ".")
		if !strings.HasPrefix(name, "_") && !untrusted[name] {
			names = append(names, name)
		}
	}
	e.dns.mu.Unlock()
	good := e.ca.issue(t, names, net.ParseIP(lo4), net.IPv6loopback)

	e.x = e.serve("x", x4, good)
	e.d = e.serve("d", d4, good)
	e.s = e.serve("s", s4, good)
	e.l = e.serve("l", l4, good)
	e.w = e.serve("w", w4, good)
	e.wrong = e.serve("wrong", n4, e.ca.issue(t, []string{"wrong.test"}))
	e.evil = e.serve("evil", evil4, e.evilCA.issue(t, []string{"evil.test"}, net.ParseIP(lo4)))
	if e.hasV6 {
		e.x6 = e.serve("x6", x6, good)
		e.d6 = e.serve("d6", d6, good)
	}
	t.Cleanup(e.releaseAll) // runs before the servers close
	return e
}

// ports are the ports of the servers, known before they start.
type ports struct{ X, S, L, W, N uint16 }

func (e *env) zone(p ports) {
	dns, S, L, N := e.dns, p.S, p.L, p.N
	for _, name := range []string{
		"plain.test", "port.test", "deleg.test", "target.test", "dead.test", "wrong.test", "victim.test",
		"evil.test", "srv.test", "legacy.test", "both.test", "multi.test", "failover.test", "dot.test",
		"srv-nxtarget.test", "srv-to-wrong.test", "deleg-srv.test", "deleg-legacy.test", "srv-servfail.test",
	} {
		dns.addIP(name, lo4)
	}
	// Hostnames that tests give well-known answers of their own.
	for i := range 10 {
		dns.addIP("cache"+strconv.Itoa(i)+".test", lo4)
	}
	for _, name := range []string{"flaky.test", "shared.test", "closing.test"} {
		dns.addIP(name, lo4)
	}
	dns.addIP("target2.test", "127.0.0.2")
	dns.addIP("v6only.test", "::1")
	dns.addIP("dual.test", "::1", lo4)

	dns.addSRV("_matrix-fed._tcp.srv.test", "target.test.", S, 10, 1)
	dns.addSRV("_matrix._tcp.legacy.test", "target.test.", L, 10, 1)
	dns.addSRV("_matrix-fed._tcp.both.test", "target.test.", S, 10, 1)
	dns.addSRV("_matrix._tcp.both.test", "target.test.", L, 10, 1)
	dns.addSRV("_matrix-fed._tcp.multi.test", "target2.test.", S, 20, 1)
	dns.addSRV("_matrix-fed._tcp.multi.test", "target.test.", S, 10, 1)
	dns.addSRV("_matrix-fed._tcp.failover.test", "dead.test.", e.deadPort, 10, 1)
	dns.addSRV("_matrix-fed._tcp.failover.test", "target.test.", S, 20, 1)
	dns.addSRV("_matrix-fed._tcp.dot.test", ".", 0, 0, 0)
	dns.addSRV("_matrix-fed._tcp.srv-nxtarget.test", "missing.test.", S, 10, 1)
	dns.addSRV("_matrix-fed._tcp.srv-to-wrong.test", "wrong.test.", N, 10, 1)
	dns.addSRV("_matrix-fed._tcp.deleg-srv.test", "target.test.", S, 10, 1)
	dns.addSRV("_matrix._tcp.deleg-legacy.test", "target.test.", L, 10, 1)
	dns.addSRV("_matrix-fed._tcp.wk-srv-after.test", "target.test.", S, 10, 1)
	dns.addServFail("_matrix-fed._tcp.srv-servfail.test")
}

func (e *env) wellKnowns(p ports) {
	ms := func(v string) string { return `{"m.server":"` + v + `"}` }
	xp, W := strconv.Itoa(int(p.X)), p.W
	wkURL := func(host string) string {
		return "https://" + host + ":" + strconv.Itoa(int(W)) + wellKnownPath
	}
	redirect := func(to string) wkAnswer {
		return wkAnswer{status: http.StatusFound, header: map[string]string{"Location": to}}
	}
	answers := map[string]wkAnswer{
		"wk-ip.test":         {body: ms(lo4 + ":" + xp)},
		"wk-ip-noport.test":  {body: ms(lo4)},
		"wk-ip6.test":        {body: ms("[::1]:" + xp)},
		"wk-ip6-noport.test": {body: ms("[::1]")},
		"wk-port.test":       {body: ms("deleg.test:" + xp)},
		"wk-srv.test":        {body: ms("deleg-srv.test")},
		"wk-legacy.test":     {body: ms("deleg-legacy.test")},
		"wk-plain.test":      {body: ms("deleg.test")},
		"wk-self.test":       {body: ms("wk-self.test")},
		"wk-to-victim.test":  {body: ms("victim.test:" + strconv.Itoa(int(p.N)))},
		"wk-text.test":       {body: ms("deleg.test:" + xp), header: map[string]string{"Content-Type": "text/plain"}},
		"wk-extra.test":      {body: `{"other":[1,{"m.server":"x"}],"m.server":"deleg.test:` + xp + `"}`},
		"wk-redirect.test":   redirect(wkURL("wk-port.test")),
		"wk-redirect2.test":  {status: http.StatusMovedPermanently, header: map[string]string{"Location": wkURL("wk-redirect.test")}},
		"wk-loop.test":       redirect(wkURL("wk-loop.test")),
		"wk-insecure.test":   redirect("http://wk-port.test:" + strconv.Itoa(int(W)) + wellKnownPath),
		"port.test":          {body: ms("deleg.test:1")}, // never fetched: port.test:X has a port
		"wk-badjson.test":    {body: `{"m.server":`},
		"wk-array.test":      {body: `["m.server"]`},
		"wk-null.test":       {body: `null`},
		"wk-string.test":     {body: `"deleg.test"`},
		"wk-number.test":     {body: `{"m.server":5}`},
		"wk-objname.test":    {body: `{"m.server":{"host":"deleg.test"}}`},
		"wk-empty.test":      {body: `{}`},
		"wk-emptyname.test":  {body: ms("")},
		"wk-badname.test":    {body: ms("deleg test")},
		"wk-badport.test":    {body: ms("deleg.test:99999")},
		"wk-badip6.test":     {body: ms("[::1")},
		"wk-utf8.test":       {body: "{\"m.server\":\"d\xffeleg.test\"}"},
		"wk-upper.test":      {body: `{"M.SERVER":"deleg.test:` + xp + `"}`},
		"wk-trailing.test":   {body: ms("deleg.test:"+xp) + ` {}`},
		"wk-404.test":        {status: http.StatusNotFound, body: ms("deleg.test:" + xp)},
		"wk-500.test":        {status: http.StatusInternalServerError, body: ms("deleg.test:" + xp)},
		"wk-big.test":        {body: strings.Repeat(" ", maxWellKnownBody) + ms("deleg.test:"+xp)},
		"wk-slow.test":       {body: ms("deleg.test:" + xp), wait: make(chan struct{})}, // never answers
		"wk-untrusted.test":  {body: ms("deleg.test:" + xp)},                            // bad certificate
		"wk-srv-after.test":  {status: http.StatusNotFound},
	}
	for name, a := range answers {
		e.wk[name] = a
		e.dns.addIP(name, lo4)
	}
}

func portOf(l net.Listener) uint16 { return uint16(l.Addr().(*net.TCPAddr).Port) }

// listenPair listens on 127.0.0.1 and, with IPv6, on ::1 with the same port.
func (e *env) listenPair() (v4, v6 net.Listener) {
	e.t.Helper()
	for range 50 {
		l4, err := net.Listen("tcp4", lo4+":0")
		if err != nil {
			e.t.Fatal(err)
		}
		if !e.hasV6 {
			return l4, nil
		}
		l6, err := net.Listen("tcp6", "[::1]:"+strconv.Itoa(int(portOf(l4))))
		if err == nil {
			return l4, l6
		}
		l4.Close()
	}
	e.t.Fatal("no port free on both 127.0.0.1 and ::1")
	return nil, nil
}

// serve starts an HTTPS server on ln presenting cert. Its handler serves
// the well-known documents of e.wk (by Host), /_test (answers
// "label|Host|SNI") and /block (the same, once e.release is closed).
func (e *env) serve(label string, ln net.Listener, cert tls.Certificate) *testServer {
	ts := &testServer{label: label, port: portOf(ln)}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.handle(ts, w, r)
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are expected
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			ts.conns.Add(1)
		}
	}
	srv.StartTLS()
	ts.srv = srv
	e.t.Cleanup(srv.Close)
	return ts
}

func (e *env) handle(ts *testServer, w http.ResponseWriter, r *http.Request) {
	sni := ""
	if r.TLS != nil {
		sni = r.TLS.ServerName
	}
	switch r.URL.Path {
	case wellKnownPath:
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		e.mu.Lock()
		a, ok := e.wk[host]
		e.fetches[host]++
		e.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		if a.wait != nil {
			select {
			case <-a.wait:
			case <-r.Context().Done():
				return
			}
		}
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(cmp0(a.status, http.StatusOK))
		_, _ = io.WriteString(w, a.body)
	case "/block":
		e.blocked.Add(1)
		defer e.blocked.Add(-1)
		select {
		case <-e.release:
		case <-r.Context().Done():
			return
		}
		fallthrough
	case "/_test":
		fmt.Fprintf(w, "%s|%s|%s", ts.label, r.Host, sni)
	default:
		http.NotFound(w, r)
	}
}

func cmp0(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func (e *env) releaseAll() { e.releaseOnce.Do(func() { close(e.release) }) }

func (e *env) setWellKnown(host string, a wkAnswer) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.wk[host] = a
}

func (e *env) fetchCount(host string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.fetches[host]
}

func testLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// resolver returns a Resolver of the test world: its DNS, its CA, its
// clock, the default port of server d and the well-known port of server w.
func (e *env) resolver(mod func(*Config)) *Resolver {
	cfg := Config{
		DNS:              e.dns.resolver(),
		RootCAs:          e.ca.pool,
		Now:              e.clock.Now,
		Logger:           testLogger(),
		DefaultPort:      e.d.port,
		WellKnownPort:    e.w.port,
		WellKnownTimeout: 500 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	r := NewResolver(cfg)
	e.t.Cleanup(r.Close)
	return r
}

// addr returns host:port for a loopback address and a port.
func addr(ip string, port uint16) string {
	return net.JoinHostPort(ip, strconv.Itoa(int(port)))
}
