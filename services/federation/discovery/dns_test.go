package discovery

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// testDNS is an authoritative DNS server on 127.0.0.1 (UDP, random port)
// answering A, AAAA and SRV queries from a table. Names not in the table
// are NXDOMAIN; a name in the table without records of the asked type gets
// an empty answer.
type testDNS struct {
	conn net.PacketConn
	wg   sync.WaitGroup

	mu   sync.Mutex
	zone map[string]*dnsNode // by lower-case absolute name
}

type dnsNode struct {
	addrs    []netip.Addr
	srv      []net.SRV
	servFail bool // answer SERVFAIL
}

func startDNS(t *testing.T) *testDNS {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &testDNS{conn: conn, zone: make(map[string]*dnsNode)}
	d.wg.Add(1)
	go d.serve()
	t.Cleanup(func() {
		conn.Close()
		d.wg.Wait()
	})
	return d
}

// resolver returns a Go resolver that sends every query to d.
func (d *testDNS) resolver() *net.Resolver {
	addr := d.conn.LocalAddr().String()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dialer net.Dialer
			return dialer.DialContext(ctx, "udp", addr)
		},
	}
}

func (d *testDNS) node(name string) *dnsNode {
	key := strings.ToLower(strings.TrimSuffix(name, ".")) + "."
	n := d.zone[key]
	if n == nil {
		n = &dnsNode{}
		d.zone[key] = n
	}
	return n
}

// addIP adds A or AAAA records to name.
func (d *testDNS) addIP(name string, ips ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.node(name)
	for _, ip := range ips {
		n.addrs = append(n.addrs, netip.MustParseAddr(ip))
	}
}

// addSRV adds an SRV record to name (e.g. "_matrix-fed._tcp.a.test").
func (d *testDNS) addSRV(name, target string, port, priority, weight uint16) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.node(name)
	n.srv = append(n.srv, net.SRV{Target: target, Port: port, Priority: priority, Weight: weight})
}

// addServFail makes every query for name fail with SERVFAIL.
func (d *testDNS) addServFail(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.node(name).servFail = true
}

func (d *testDNS) serve() {
	defer d.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := d.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if resp, err := d.answer(buf[:n]); err == nil {
			_, _ = d.conn.WriteTo(resp, from)
		}
	}
}

func (d *testDNS) answer(query []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	n := d.zone[strings.ToLower(q.Name.String())]
	var node dnsNode
	if n != nil {
		node = *n
	}
	d.mu.Unlock()

	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true,
		RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	switch {
	case n == nil:
		rh.RCode = dnsmessage.RCodeNameError
	case node.servFail:
		rh.RCode = dnsmessage.RCodeServerFailure
	}
	b := dnsmessage.NewBuilder(nil, rh)
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	if rh.RCode != dnsmessage.RCodeSuccess {
		return b.Finish()
	}
	hdr := dnsmessage.ResourceHeader{Name: q.Name, Type: q.Type, Class: dnsmessage.ClassINET, TTL: 60}
	switch q.Type {
	case dnsmessage.TypeA:
		for _, ip := range node.addrs {
			if ip.Is4() {
				if err := b.AResource(hdr, dnsmessage.AResource{A: ip.As4()}); err != nil {
					return nil, err
				}
			}
		}
	case dnsmessage.TypeAAAA:
		for _, ip := range node.addrs {
			if ip.Is6() {
				if err := b.AAAAResource(hdr, dnsmessage.AAAAResource{AAAA: ip.As16()}); err != nil {
					return nil, err
				}
			}
		}
	case dnsmessage.TypeSRV:
		for _, s := range node.srv {
			target, err := dnsmessage.NewName(s.Target)
			if err != nil {
				return nil, err
			}
			if err := b.SRVResource(hdr, dnsmessage.SRVResource{Priority: s.Priority, Weight: s.Weight,
				Port: s.Port, Target: target}); err != nil {
				return nil, err
			}
		}
	}
	return b.Finish()
}

func TestTestDNS(t *testing.T) {
	d := startDNS(t)
	d.addIP("a.test", "127.0.0.1", "::1")
	d.addSRV("_matrix-fed._tcp.a.test", "b.test.", 1234, 10, 5)
	d.addIP("_matrix._tcp.nodata.test", "127.0.0.1") // the name exists, without SRV records
	r := d.resolver()
	ctx := t.Context()

	ips, err := r.LookupNetIP(ctx, "ip", "a.test")
	if err != nil || len(ips) != 2 {
		t.Fatalf("LookupNetIP(a.test) = %v, %v; want two addresses", ips, err)
	}
	_, srvs, err := r.LookupSRV(ctx, "matrix-fed", "tcp", "a.test")
	if err != nil || len(srvs) != 1 || srvs[0].Target != "b.test." || srvs[0].Port != 1234 {
		t.Fatalf("LookupSRV = %v, %v", srvs, err)
	}
	for _, name := range []string{"missing.test", "nodata.test"} { // NXDOMAIN, then NOERROR without answers
		_, _, err = r.LookupSRV(ctx, "matrix", "tcp", name)
		if !isNotFound(err) {
			t.Errorf("LookupSRV(_matrix._tcp.%s) error = %v; want not found", name, err)
		}
	}
}
