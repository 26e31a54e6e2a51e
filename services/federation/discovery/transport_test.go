package discovery

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/testenv"
)

func (e *env) transport(r *Resolver, cfg TransportConfig) (*Transport, *http.Client) {
	tr := NewTransport(r, cfg)
	e.t.Cleanup(tr.CloseIdleConnections)
	return tr, &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// get requests matrix-fed://server/path and returns what the test server
// saw: its label, the Host header and the SNI.
func get(ctx context.Context, c *http.Client, server, path string) (label, host, sni string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, Scheme+"://"+server+path, nil)
	if err != nil {
		return "", "", "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", "", "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", "", "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", "", "", errors.New(resp.Status + ": " + string(body))
	}
	parts := strings.SplitN(string(body), "|", 3)
	if len(parts) != 3 {
		return "", "", "", errors.New("unexpected body " + string(body))
	}
	return parts[0], parts[1], parts[2], nil
}

// TestTransport sends a request to a server name of each kind and checks
// which server answered and the Host header and SNI it saw.
func TestTransport(t *testing.T) {
	e := newEnv(t)
	_, client := e.transport(e.resolver(nil), TransportConfig{})
	xp := strconv.Itoa(int(e.x.port))
	tests := []struct {
		server    string
		wantLabel string
		wantHost  string
		wantSNI   string // "" for an IP address
		ipv6      bool
	}{
		{lo4 + ":" + xp, "x", lo4 + ":" + xp, "", false},
		{lo4, "d", lo4, "", false},
		{"[::1]:" + xp, "x6", "[::1]:" + xp, "", true},
		{"[::1]", "d6", "[::1]", "", true},
		{"port.test:" + xp, "x", "port.test:" + xp, "port.test", false},
		{"v6only.test:" + xp, "x6", "v6only.test:" + xp, "v6only.test", true},
		{"wk-ip.test", "x", lo4 + ":" + xp, "", false},
		{"wk-ip-noport.test", "d", lo4, "", false},
		{"wk-ip6.test", "x6", "[::1]:" + xp, "", true},
		{"wk-port.test", "x", "deleg.test:" + xp, "deleg.test", false},
		{"wk-redirect.test", "x", "deleg.test:" + xp, "deleg.test", false},
		{"wk-srv.test", "s", "deleg-srv.test", "deleg-srv.test", false},
		{"wk-legacy.test", "l", "deleg-legacy.test", "deleg-legacy.test", false},
		{"wk-plain.test", "d", "deleg.test", "deleg.test", false},
		{"wk-badjson.test", "d", "wk-badjson.test", "wk-badjson.test", false},
		{"srv.test", "s", "srv.test", "srv.test", false},
		{"legacy.test", "l", "legacy.test", "legacy.test", false},
		{"failover.test", "s", "failover.test", "failover.test", false},
		{"plain.test", "d", "plain.test", "plain.test", false},
	}
	for _, tt := range tests {
		t.Run(tt.server, func(t *testing.T) {
			if tt.ipv6 && !e.hasV6 {
				t.Skip("no IPv6 loopback")
			}
			label, host, sni, err := get(t.Context(), client, tt.server, "/_test")
			if err != nil {
				t.Fatal(err)
			}
			if label != tt.wantLabel || host != tt.wantHost || sni != tt.wantSNI {
				t.Errorf("server %q saw Host %q, SNI %q; want server %q, Host %q, SNI %q",
					label, host, sni, tt.wantLabel, tt.wantHost, tt.wantSNI)
			}
		})
	}
}

// TestTransportCertificates checks that a certificate is verified for the
// name the spec says, and that a failure is an error, never a fallback.
func TestTransportCertificates(t *testing.T) {
	e := newEnv(t)
	_, client := e.transport(e.resolver(nil), TransportConfig{})
	np, ep := strconv.Itoa(int(e.wrong.port)), strconv.Itoa(int(e.evil.port))
	const (
		ok = iota
		unknownAuthority
		wrongName
	)
	tests := []struct {
		name   string
		server string
		want   int
	}{
		{"control: right name", "wrong.test:" + np, ok},
		{"wrong name", "victim.test:" + np, wrongName},
		{"ip not in certificate", lo4 + ":" + np, wrongName},
		{"delegated name not in certificate", "wk-to-victim.test", wrongName},
		{"srv target's certificate is not enough", "srv-to-wrong.test", wrongName},
		{"other CA", "evil.test:" + ep, unknownAuthority},
		{"other CA for ip", lo4 + ":" + ep, unknownAuthority},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			label, _, _, err := get(t.Context(), client, tt.server, "/_test")
			switch tt.want {
			case ok:
				if err != nil {
					t.Fatalf("request to %s: %v", tt.server, err)
				}
			case unknownAuthority:
				if _, is := errors.AsType[x509.UnknownAuthorityError](err); !is {
					t.Fatalf("request to %s answered by %q, error %v; want x509.UnknownAuthorityError", tt.server, label, err)
				}
			case wrongName:
				if _, is := errors.AsType[x509.HostnameError](err); !is {
					t.Fatalf("request to %s answered by %q, error %v; want x509.HostnameError", tt.server, label, err)
				}
			}
		})
	}
}

// TestTransportTotalLimit: with room for two connections, a dial to a
// third destination waits while both are busy, gives up when its request
// does, and proceeds once requests finish.
func TestTransportTotalLimit(t *testing.T) {
	e := newEnv(t)
	tr, client := e.transport(e.resolver(nil), TransportConfig{MaxConns: 2})
	xp := strconv.Itoa(int(e.x.port))
	dests := []string{lo4 + ":" + xp, "port.test:" + xp, "deleg.test:" + xp}

	var wg sync.WaitGroup
	for _, d := range dests[:2] {
		wg.Go(func() {
			if _, _, _, err := get(t.Context(), client, d, "/block"); err != nil {
				t.Errorf("blocked request to %s: %v", d, err)
			}
		})
	}
	testenv.Eventually(t, 5*time.Second, "two requests in the handler", func() bool { return e.blocked.Load() == 2 })
	if n := tr.Conns(); n != 2 {
		t.Errorf("Conns() = %d; want 2", n)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, _, _, err := get(ctx, client, dests[2], "/_test")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third destination while two are busy: %v; want it to wait until its deadline", err)
	}
	if n := e.x.conns.Load(); n != 2 {
		t.Errorf("server accepted %d connections; want 2", n)
	}

	e.releaseAll()
	wg.Wait()
	label, _, _, err := get(t.Context(), client, dests[2], "/_test")
	if err != nil || label != "x" {
		t.Fatalf("third destination after the others finished: %q, %v", label, err)
	}
	if n := e.x.conns.Load(); n != 3 {
		t.Errorf("server accepted %d connections; want 3", n)
	}
	if n := tr.Conns(); n > 2 {
		t.Errorf("Conns() = %d; want at most 2", n)
	}
	tr.CloseIdleConnections()
	testenv.Eventually(t, 5*time.Second, "connections closed", func() bool { return tr.Conns() == 0 })
}

// TestTransportPerDestinationLimit: a second request to a destination at
// its limit waits for the connection in use instead of opening another.
func TestTransportPerDestinationLimit(t *testing.T) {
	e := newEnv(t)
	tr, client := e.transport(e.resolver(nil), TransportConfig{MaxConnsPerDestination: 1})
	dest := "port.test:" + strconv.Itoa(int(e.x.port))

	done := make(chan error, 1)
	go func() {
		_, _, _, err := get(t.Context(), client, dest, "/block")
		done <- err
	}()
	testenv.Eventually(t, 5*time.Second, "a request in the handler", func() bool { return e.blocked.Load() == 1 })

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, _, _, err := get(ctx, client, dest, "/_test"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second request at the limit: %v; want it to wait until its deadline", err)
	}
	// Another destination is not held up.
	if _, _, _, err := get(t.Context(), client, "plain.test", "/_test"); err != nil {
		t.Fatalf("other destination: %v", err)
	}
	e.releaseAll()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := get(t.Context(), client, dest, "/_test"); err != nil {
		t.Fatal(err)
	}
	if n := e.x.conns.Load(); n != 1 {
		t.Errorf("server accepted %d connections; want 1 (reused)", n)
	}
	if n := tr.Conns(); n != 2 {
		t.Errorf("Conns() = %d; want 2 (one per destination, idle)", n)
	}
}

func TestTransportRejects(t *testing.T) {
	e := newEnv(t)
	tr, _ := e.transport(e.resolver(nil), TransportConfig{})
	tests := []struct {
		url  string
		want error
	}{
		{"https://" + lo4 + "/_test", ErrUnsupportedURL},
		{"http://plain.test/_test", ErrUnsupportedURL},
		{Scheme + "://user@plain.test/_test", ErrUnsupportedURL},
		{Scheme + ":plain.test", ErrUnsupportedURL},
		{Scheme + ":///_test", ErrInvalidServerName},
		{Scheme + "://bad_name.test/_test", ErrInvalidServerName},
		{Scheme + "://plain.test:99999/_test", ErrInvalidServerName},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			body := &closeRecorder{Reader: strings.NewReader("{}")}
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, tt.url, body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := tr.RoundTrip(req)
			if resp != nil {
				resp.Body.Close()
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("RoundTrip(%s): %v; want %v", tt.url, err, tt.want)
			}
			if !body.closed {
				t.Errorf("RoundTrip(%s) did not close the request body", tt.url)
			}
		})
	}
}

type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error {
	c.closed = true
	return nil
}

func TestTransportConfigDefaults(t *testing.T) {
	tests := []struct {
		in   TransportConfig
		want TransportConfig
	}{
		{TransportConfig{}, TransportConfig{MaxConns: 512, MaxConnsPerDestination: 8, MaxIdleConns: 256,
			MaxIdleConnsPerDestination: 2, IdleConnTimeout: 90 * time.Second, DialTimeout: 10 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second, ResponseHeaderTimeout: 5 * time.Minute}},
		{TransportConfig{MaxConns: 1, MaxIdleConns: 10, MaxConnsPerDestination: -1, DialTimeout: -1},
			TransportConfig{MaxConns: 2, MaxConnsPerDestination: 8, MaxIdleConns: 1,
				MaxIdleConnsPerDestination: 2, IdleConnTimeout: 90 * time.Second, DialTimeout: 10 * time.Second,
				TLSHandshakeTimeout: 10 * time.Second, ResponseHeaderTimeout: 5 * time.Minute}},
		{TransportConfig{MaxConns: 3}, TransportConfig{MaxConns: 3, MaxConnsPerDestination: 8, MaxIdleConns: 1,
			MaxIdleConnsPerDestination: 2, IdleConnTimeout: 90 * time.Second, DialTimeout: 10 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second, ResponseHeaderTimeout: 5 * time.Minute}},
	}
	for _, tt := range tests {
		if got := tt.in.withDefaults(); got != tt.want {
			t.Errorf("%+v.withDefaults()\n got %+v\nwant %+v", tt.in, got, tt.want)
		}
	}
}

func TestTargetEncoding(t *testing.T) {
	for _, tg := range []target{
		{server: "a.test"},
		{server: "a.test", delegated: "[::1]:8448"},
		{server: "[2001:db8::1]:1"},
	} {
		got, err := decodeTarget(encodeTarget(tg) + keyPort)
		if err != nil || got != tg {
			t.Errorf("decodeTarget(encodeTarget(%+v)) = %+v, %v", tg, got, err)
		}
	}
	if _, err := decodeTarget("not-hex:443"); err == nil {
		t.Error("decodeTarget(not-hex) succeeded")
	}
}

// TestTransportInterruptedHandshake: a handshake that times out gives its
// connection slot back exactly once. crypto/tls closes the connection of
// an interrupted handshake itself; counting that close as well once gave
// the slot back twice, and the next release blocked forever.
func TestTransportInterruptedHandshake(t *testing.T) {
	e := newEnv(t)
	silent, err := net.Listen("tcp", lo4+":0") // accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	var held sync.Mutex
	var accepted []net.Conn
	t.Cleanup(func() {
		held.Lock()
		defer held.Unlock()
		for _, c := range accepted {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held.Lock()
			accepted = append(accepted, c)
			held.Unlock()
		}
	}()
	tr, client := e.transport(e.resolver(nil), TransportConfig{MaxConns: 2, TLSHandshakeTimeout: 100 * time.Millisecond})

	// An idle connection holds one slot; the failed dials take the other.
	if _, _, _, err := get(t.Context(), client, "plain.test", "/_test"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, _, _, err := get(t.Context(), client, addr(lo4, portOf(silent)), "/_test"); err == nil {
			t.Fatal("request to a server that never completes the handshake succeeded")
		}
		if n := tr.Conns(); n != 1 {
			t.Fatalf("Conns() after a failed handshake, with one idle connection = %d; want 1", n)
		}
	}
	tr.CloseIdleConnections()
	testenv.Eventually(t, 5*time.Second, "connections closed", func() bool { return tr.Conns() == 0 })
}
