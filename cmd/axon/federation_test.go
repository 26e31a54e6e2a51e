package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/signingkey"
	"github.com/axon-hs/axon/internal/testenv"
	"github.com/axon-hs/axon/matrix/auth"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/event"
	"github.com/axon-hs/axon/matrix/keys"
	"github.com/axon-hs/axon/matrix/roomversion"
	"github.com/axon-hs/axon/services/federation/fedclient"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "axon test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue writes a certificate for ips and names, and its key, as PEM files
// in dir, and returns their paths.
func (ca *testCA) issue(t *testing.T, dir string, ips []net.IP, names ...string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "axon test server"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: ips, DNSNames: names, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// The federation listener serves this server's keys over HTTPS with the
// configured certificate, and a rotation shows in them after a restart.
func TestFederationKeysOverTLS(t *testing.T) {
	ca := newTestCA(t)
	certFile, keyFile := ca.issue(t, t.TempDir(), []net.IP{net.ParseIP("127.0.0.1")})
	dataDir := t.TempDir()
	extra := []string{"--data-dir", dataDir, "--federation-tls-cert", certFile, "--federation-tls-key", keyFile}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}, Timeout: 10 * time.Second}

	fetch := func(ts *testServer) *keys.ServerKeys {
		t.Helper()
		resp, err := hc.Get("https://" + ts.srv.addrs[1] + "/_matrix/key/v2/server")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		v, err := cjson.Parse(body, cjson.Strict)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%d %s %v", resp.StatusCode, body, err)
		}
		sk, err := keys.ParseServerKeys(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := sk.CheckSelfSigned(); err != nil || sk.ServerName != ts.name {
			t.Fatalf("document of %q: %v", sk.ServerName, err)
		}
		return sk
	}
	ts := startServer(t, backends()[0], extra...)
	first := fetch(ts)
	if len(first.VerifyKeys) != 1 || len(first.OldKeys) != 0 {
		t.Fatalf("keys before rotation: %+v", first)
	}
	// Plain HTTP is refused on a TLS listener.
	if resp, err := http.Get("http://" + ts.srv.addrs[1] + "/_matrix/key/v2/server"); err == nil {
		if resp.StatusCode == 200 {
			t.Error("plain HTTP served on the TLS listener")
		}
		resp.Body.Close()
	}
	resp, err := hc.Get("https://" + ts.srv.addrs[1] + "/_matrix/federation/v1/version")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("version: %v", err)
	}
	resp.Body.Close()
	ts.srv.shutdown()

	code, out, errs := runAxon(t, nil, "key", "rotate", "--data-dir", dataDir)
	if code != exitOK || !strings.Contains(out, "new signing key ed25519:") {
		t.Fatalf("key rotate: %d %q %q", code, out, errs)
	}
	second := fetch(startServer(t, backends()[0], extra...))
	var oldID keys.KeyID
	for id := range first.VerifyKeys {
		oldID = id
	}
	if _, ok := second.VerifyKeys[oldID]; ok || len(second.VerifyKeys) != 1 {
		t.Errorf("verify_keys after rotation: %v", second.VerifyKeys)
	}
	if o, ok := second.OldKeys[oldID]; !ok || o.ExpiredTS <= 0 || o.ExpiredTS > time.Now().UnixMilli() {
		t.Errorf("old_verify_keys after rotation: %v", second.OldKeys)
	}
}

// fakeDNS answers the federation client's lookups for test names, at the
// resolver's interface: SRV records and addresses set as servers start.
type fakeDNS struct {
	mu    sync.Mutex
	srv   map[string][]*net.SRV // by "_service._proto.name"
	hosts map[string][]netip.Addr
}

func newFakeDNS() *fakeDNS {
	return &fakeDNS{srv: map[string][]*net.SRV{}, hosts: map[string][]netip.Addr{}}
}

func (d *fakeDNS) LookupSRV(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	key := "_" + service + "._" + proto + "." + name
	if rs, ok := d.srv[key]; ok {
		return key, rs, nil
	}
	return "", nil, &net.DNSError{Err: "no such host", Name: key, IsNotFound: true}
}

func (d *fakeDNS) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if as, ok := d.hosts[host]; ok {
		return as, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// point makes name's federation traffic go to addr (an SRV record for
// _matrix-fed._tcp and an address for its target).
func (d *fakeDNS) point(name, addr string) {
	ap := netip.MustParseAddrPort(addr)
	d.mu.Lock()
	defer d.mu.Unlock()
	target := "fed." + name
	d.srv["_matrix-fed._tcp."+name] = []*net.SRV{{Target: target + ".", Port: ap.Port()}}
	d.hosts[target] = []netip.Addr{ap.Addr()}
	d.hosts[target+"."] = []netip.Addr{ap.Addr()}
}

// fedWorld is several servers federating over TLS on loopback, each with
// a certificate from one test CA, found through fakeDNS.
type fedWorld struct {
	t      *testing.T
	ca     *testCA
	caFile string
	dns    *fakeDNS
}

func newFedWorld(t *testing.T) *fedWorld {
	ca := newTestCA(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &fedWorld{t: t, ca: ca, caFile: caFile, dns: newFakeDNS()}
}

// start starts a server named name (a hostname under .test).
func (w *fedWorld) start(b backend, name string, extra ...string) *testServer {
	w.t.Helper()
	cert, key := w.ca.issue(w.t, w.t.TempDir(), nil, name)
	args := append([]string{"--server-name", name, "--federation-tls-cert", cert, "--federation-tls-key", key,
		"--federation-ca-file", w.caFile}, extra...)
	ts := startServerWith(w.t, b, func(s *server) { s.fedDNS = w.dns }, args...)
	w.dns.point(name, ts.srv.addrs[1])
	return ts
}

// Two servers find each other through discovery, verify each other's TLS
// certificates and request signatures, and answer queries.
func TestFederationQueriesBetweenServers(t *testing.T) {
	w := newFedWorld(t)
	a := w.start(backends()[0], "a.fed.test")
	b := w.start(backends()[0], "b.fed.test")
	bob := b.register("bob")
	bob.must("PUT", "/profile/"+apiEsc(bob.UserID)+"/displayname", map[string]any{"displayname": "Bob B"})

	ctx := context.Background()
	var prof map[string]string
	err := a.srv.fedClient.GetJSON(ctx, "b.fed.test", "/_matrix/federation/v1/query/profile?user_id="+url.QueryEscape(bob.UserID), &prof)
	if err != nil || prof["displayname"] != "Bob B" {
		t.Fatalf("profile through federation: %v %v", prof, err)
	}
	// b checked a's signature with a's key, fetched from a over TLS.
	var fe *fedclient.Error
	err = a.srv.fedClient.GetJSON(ctx, "b.fed.test", "/_matrix/federation/v1/query/profile?user_id="+url.QueryEscape("@nobody:b.fed.test"), &prof)
	if !errors.As(err, &fe) || fe.Status != 404 || fe.Code != "M_NOT_FOUND" {
		t.Errorf("unknown user: %v", err)
	}
	// A server whose certificate is not from a trusted CA is not talked to.
	other := newTestCA(t)
	cert, key := other.issue(t, t.TempDir(), nil, "c.fed.test")
	c := startServerWith(t, backends()[0], func(s *server) { s.fedDNS = w.dns },
		"--server-name", "c.fed.test", "--federation-tls-cert", cert, "--federation-tls-key", key, "--federation-ca-file", w.caFile)
	w.dns.point("c.fed.test", c.srv.addrs[1])
	err = a.srv.fedClient.GetJSON(ctx, "c.fed.test", "/_matrix/federation/v1/version", &prof)
	var uae x509.UnknownAuthorityError
	if err == nil || !errors.As(err, &uae) {
		t.Errorf("a server with an untrusted certificate: %v", err)
	}
}

// A remote user joins a room here through make_join and send_join, as
// their server would, and sends into it over /send; the other servers'
// DAG reads see the join.
func TestFederationJoinAsResident(t *testing.T) {
	w := newFedWorld(t)
	a := w.start(backends()[0], "a.fed.test")
	b := w.start(backends()[0], "b.fed.test")
	ks, _, err := signingkey.LoadOrCreate(b.srv.cfg.SigningKeyPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	bKey := ks[0]
	alice := a.register("alice")
	room := alice.createRoom(map[string]any{"preset": "public_chat"})
	private := alice.createRoom(map[string]any{"preset": "private_chat"})
	ctx := context.Background()
	fc := b.srv.fedClient
	bob := "@bob:b.fed.test"

	var mj struct {
		RoomVersion string          `json:"room_version"`
		Event       json.RawMessage `json:"event"`
	}
	makeJoin := func(room, user, vers string) error {
		return fc.GetJSON(ctx, "a.fed.test", "/_matrix/federation/v1/make_join/"+apiEsc(room)+"/"+apiEsc(user)+vers, &mj)
	}
	var fe *fedclient.Error
	for _, c := range []struct {
		room, user, vers, code string
	}{
		{private, bob, "?ver=12", "M_FORBIDDEN"},            // invite only
		{room, "@bob:a.fed.test", "?ver=12", "M_FORBIDDEN"}, // not a user of the origin
		{room, bob, "?ver=10&ver=11", "M_INCOMPATIBLE_ROOM_VERSION"},
		{"!nope:a.fed.test", bob, "?ver=12", "M_NOT_FOUND"},
	} {
		if err := makeJoin(c.room, c.user, c.vers); !errors.As(err, &fe) || fe.Code != c.code {
			t.Errorf("make_join %s %s %s: %v, want %s", c.room, c.user, c.vers, err, c.code)
		}
	}
	if err := makeJoin(room, bob, "?ver=11&ver=12"); err != nil || mj.RoomVersion != "12" {
		t.Fatalf("make_join: %v %+v", err, mj)
	}
	v := roomversion.MustLookup(mj.RoomVersion)
	proto, err := cjson.Parse(mj.Event, cjson.Strict)
	if err != nil {
		t.Fatal(err)
	}
	join, err := event.Build(v, proto, "b.fed.test", bKey)
	if err != nil {
		t.Fatal(err)
	}
	var sj struct {
		State     []json.RawMessage `json:"state"`
		AuthChain []json.RawMessage `json:"auth_chain"`
	}
	path := "/_matrix/federation/v2/send_join/" + apiEsc(room) + "/" + apiEsc(join.ID())
	if err := fc.SendJSON(ctx, "a.fed.test", "PUT", path, join.Canonical(), &sj); err != nil {
		t.Fatalf("send_join: %v", err)
	}
	types := map[string]bool{}
	for _, raw := range sj.State {
		ev, err := event.Parse(v, raw)
		if err != nil {
			t.Fatal(err)
		}
		types[ev.Type()] = true
		if ev.ID() == join.ID() {
			t.Error("the state before the join holds the join")
		}
	}
	if !types["m.room.create"] || !types["m.room.power_levels"] || !types["m.room.member"] || len(sj.AuthChain) == 0 {
		t.Errorf("send_join state types %v, auth chain of %d", types, len(sj.AuthChain))
	}
	// Alice sees bob joined.
	members := alice.must("GET", "/rooms/"+apiEsc(room)+"/joined_members", nil)["joined"].(map[string]any)
	if _, ok := members[bob]; !ok {
		t.Fatalf("joined members after send_join: %v", members)
	}

	// Bob speaks through his server's /send.
	stateIDs := map[auth.StateKey]string{}
	for _, raw := range sj.State {
		ev, _ := event.Parse(v, raw)
		sk, _ := ev.StateKey()
		stateIDs[auth.StateKey{Type: ev.Type(), StateKey: sk}] = ev.ID()
	}
	stateIDs[auth.StateKey{Type: "m.room.member", StateKey: bob}] = join.ID()
	content := cjson.ObjectValue(cjson.Member{Key: "msgtype", Value: cjson.StringValue("m.text")}, cjson.Member{Key: "body", Value: cjson.StringValue("hi from b")})
	var authIDs []string
	for _, k := range auth.SelectionFor(v, "m.room.message", bob, "", false, content) {
		if id, ok := stateIDs[k]; ok {
			authIDs = append(authIDs, id)
		}
	}
	msg, err := event.Build(v, cjson.ObjectValue(
		cjson.Member{Key: "type", Value: cjson.StringValue("m.room.message")},
		cjson.Member{Key: "room_id", Value: cjson.StringValue(room)},
		cjson.Member{Key: "sender", Value: cjson.StringValue(bob)},
		cjson.Member{Key: "content", Value: content},
		cjson.Member{Key: "origin_server_ts", Value: cjson.IntValue(time.Now().UnixMilli())},
		cjson.Member{Key: "depth", Value: cjson.IntValue(join.Depth() + 1)},
		cjson.Member{Key: "prev_events", Value: cjson.StringArray([]string{join.ID()})},
		cjson.Member{Key: "auth_events", Value: cjson.StringArray(authIDs)},
	), "b.fed.test", bKey)
	if err != nil {
		t.Fatal(err)
	}
	var sent struct {
		PDUs map[string]struct {
			Error string `json:"error"`
		} `json:"pdus"`
	}
	txn := map[string]any{"origin": "b.fed.test", "origin_server_ts": time.Now().UnixMilli(), "pdus": []json.RawMessage{msg.Canonical()}}
	if err := fc.SendJSON(ctx, "a.fed.test", "PUT", "/_matrix/federation/v1/send/txn1", txn, &sent); err != nil {
		t.Fatal(err)
	}
	if r, ok := sent.PDUs[msg.ID()]; !ok || r.Error != "" {
		t.Fatalf("/send result: %+v", sent)
	}
	msgs := alice.must("GET", "/rooms/"+apiEsc(room)+"/messages?dir=b&limit=5", nil)["chunk"].([]any)
	if len(msgs) == 0 || msgs[0].(map[string]any)["event_id"] != msg.ID() {
		t.Fatalf("alice's newest message is not bob's: %v", msgs)
	}

	// The DAG reads, as b.
	var ids struct {
		PDUIDs []string `json:"pdu_ids"`
	}
	if err := fc.GetJSON(ctx, "a.fed.test", "/_matrix/federation/v1/state_ids/"+apiEsc(room)+"?event_id="+url.QueryEscape(msg.ID()), &ids); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ids.PDUIDs, join.ID()) {
		t.Errorf("state before bob's message lacks his join: %v", ids.PDUIDs)
	}
	var bf struct {
		PDUs []json.RawMessage `json:"pdus"`
	}
	if err := fc.GetJSON(ctx, "a.fed.test", "/_matrix/federation/v1/backfill/"+apiEsc(room)+"?v="+url.QueryEscape(msg.ID())+"&limit=3", &bf); err != nil || len(bf.PDUs) != 3 {
		t.Errorf("backfill: %d events, %v", len(bf.PDUs), err)
	}
	// The private room's DAG is not b's to read.
	if err := fc.GetJSON(ctx, "a.fed.test", "/_matrix/federation/v1/state_ids/"+apiEsc(private)+"?event_id="+url.QueryEscape(join.ID()), &ids); !errors.As(err, &fe) || fe.Status != 403 {
		t.Errorf("state_ids of a room b is not in: %v", err)
	}
}

// A user of one server joins a room of another by ID (with server_name)
// and by alias: the joining server builds the room from send_join's
// answer, and both sides see the membership.
func TestFederationJoinRemoteRoom(t *testing.T) {
	w := newFedWorld(t)
	a := w.start(backends()[0], "a.fed.test")
	b := w.start(backends()[0], "b.fed.test")
	alice := a.register("alice")
	room := alice.createRoom(map[string]any{"preset": "public_chat", "name": "Lobby", "room_alias_name": "lobby"})
	alice.send(room, "before bob")
	bob := b.register("bob")

	// Without a server to ask, the room is unknown here.
	if r := bob.do("POST", "/join/"+apiEsc(room), nil); r.Status != 404 {
		t.Fatalf("join without server_name: %d", r.Status)
	}
	bob.must("POST", "/join/"+apiEsc(room)+"?server_name=a.fed.test", nil)
	members := alice.must("GET", "/rooms/"+apiEsc(room)+"/joined_members", nil)["joined"].(map[string]any)
	if _, ok := members[bob.UserID]; !ok {
		t.Fatalf("alice's server does not list bob: %v", members)
	}
	// Bob's server knows the room now: its state, with the name.
	name := bob.must("GET", "/rooms/"+apiEsc(room)+"/state/m.room.name/", nil)
	if name["name"] != "Lobby" {
		t.Errorf("the room's name on bob's server: %v", name)
	}
	bm := bob.must("GET", "/rooms/"+apiEsc(room)+"/joined_members", nil)["joined"].(map[string]any)
	if _, ok := bm[alice.UserID]; !ok || len(bm) != 2 {
		t.Errorf("bob's server lists %v", bm)
	}
	// The sync role indexes the join after the room role stored it.
	testenv.Eventually(t, 10*time.Second, "bob's /sync shows the room", func() bool {
		_, ok := bob.sync(nil)["rooms"].(map[string]any)["join"].(map[string]any)[room]
		return ok
	})
	// By alias, from a third server: resolved by the alias's server.
	c := w.start(backends()[0], "c.fed.test")
	carol := c.register("carol")
	carol.must("POST", "/join/"+apiEsc("#lobby:a.fed.test"), nil)
	members = alice.must("GET", "/rooms/"+apiEsc(room)+"/joined_members", nil)["joined"].(map[string]any)
	if _, ok := members[carol.UserID]; !ok {
		t.Errorf("carol's join by alias did not reach alice's server: %v", members)
	}
	if r := carol.do("POST", "/join/"+apiEsc("#nope:a.fed.test"), nil); r.Status != 404 {
		t.Errorf("an unknown remote alias: %d", r.Status)
	}
}

// sharedRoom starts two federating servers, a.fed.test and b.fed.test,
// with alice's public room on a which bob of b has joined.
func sharedRoom(t *testing.T) (alice, bob *client, room string) {
	w := newFedWorld(t)
	a := w.start(backends()[0], "a.fed.test")
	b := w.start(backends()[0], "b.fed.test")
	alice = a.register("alice")
	room = alice.createRoom(map[string]any{"preset": "public_chat"})
	bob = b.register("bob")
	bob.must("POST", "/join/"+apiEsc(room)+"?server_name=a.fed.test", nil)
	return alice, bob, room
}

// Once a user of another server has joined, messages go both ways: each
// server's sender delivers its users' events to the other.
func TestFederationMessagesBothWays(t *testing.T) {
	alice, bob, room := sharedRoom(t)

	sees := func(c *client, eventID string) bool {
		chunk := c.must("GET", "/rooms/"+apiEsc(room)+"/messages?dir=b&limit=20", nil)["chunk"].([]any)
		for _, e := range chunk {
			if e.(map[string]any)["event_id"] == eventID {
				return true
			}
		}
		return false
	}
	fromAlice := alice.send(room, "hello bob")
	testenv.Eventually(t, 10*time.Second, "bob's server receives alice's message", func() bool { return sees(bob, fromAlice) })
	fromBob := bob.send(room, "hello alice")
	testenv.Eventually(t, 10*time.Second, "alice's server receives bob's message", func() bool { return sees(alice, fromBob) })
	// A conversation: each side answers the other several times.
	var lastA, lastB string
	for i := range 5 {
		lastA = alice.send(room, fmt.Sprintf("a%d", i))
		lastB = bob.send(room, fmt.Sprintf("b%d", i))
	}
	testenv.Eventually(t, 10*time.Second, "bob's server has alice's last message", func() bool { return sees(bob, lastA) })
	testenv.Eventually(t, 10*time.Second, "alice's server has bob's last message", func() bool { return sees(alice, lastB) })
	// Both servers end with the same state of the room: the members.
	am := alice.must("GET", "/rooms/"+apiEsc(room)+"/joined_members", nil)["joined"].(map[string]any)
	bm := bob.must("GET", "/rooms/"+apiEsc(room)+"/joined_members", nil)["joined"].(map[string]any)
	if len(am) != 2 || len(bm) != 2 {
		t.Errorf("members: %v / %v", am, bm)
	}
}

// A destination that is down gets what it missed, in order, when it comes
// back: the sender keeps its queue and retries with backoff.
func TestFederationCatchUpAfterOutage(t *testing.T) {
	w := newFedWorld(t)
	a := w.start(backends()[0], "a.fed.test")
	bDir := t.TempDir()
	cert, key := w.ca.issue(t, t.TempDir(), nil, "b.fed.test")
	startB := func() *testServer {
		ts := startServerWith(t, backends()[0], func(s *server) { s.fedDNS = w.dns },
			"--server-name", "b.fed.test", "--data-dir", bDir, "--federation-tls-cert", cert, "--federation-tls-key", key,
			"--federation-ca-file", w.caFile)
		w.dns.point("b.fed.test", ts.srv.addrs[1])
		return ts
	}
	b := startB()
	alice := a.register("alice")
	room := alice.createRoom(map[string]any{"preset": "public_chat"})
	bob := b.register("bob")
	bob.must("POST", "/join/"+apiEsc(room)+"?server_name=a.fed.test", nil)

	b.srv.shutdown()
	var sent []string
	for i := range 3 {
		sent = append(sent, alice.send(room, fmt.Sprintf("while b is down %d", i)))
	}
	b = startB()
	bob.ts = b
	testenv.Eventually(t, 30*time.Second, "b receives what it missed", func() bool {
		chunk := bob.must("GET", "/rooms/"+apiEsc(room)+"/messages?dir=b&limit=10", nil)["chunk"].([]any)
		var got []string
		for _, e := range chunk {
			if e.(map[string]any)["type"] == "m.room.message" {
				got = append(got, e.(map[string]any)["event_id"].(string))
			}
		}
		slices.Reverse(got)
		return slices.Equal(got, sent)
	})
}

// Leaving, rejoining and a ban cross servers through each side's sender;
// a gap the rejoining server has is filled with /get_missing_events.
func TestFederationMembershipChanges(t *testing.T) {
	alice, bob, room := sharedRoom(t)
	membership := func(c *client, user string) string {
		r := c.do("GET", "/rooms/"+apiEsc(room)+"/state/m.room.member/"+apiEsc(user), nil)
		if r.Status != 200 {
			return ""
		}
		m, _ := r.Body["membership"].(string)
		return m
	}
	testenv.Eventually(t, 10*time.Second, "alice's server sees bob joined", func() bool { return membership(alice, bob.UserID) == "join" })

	bob.must("POST", "/rooms/"+apiEsc(room)+"/leave", map[string]any{})
	testenv.Eventually(t, 10*time.Second, "alice's server sees bob leave", func() bool { return membership(alice, bob.UserID) == "leave" })
	// While bob is away, alice talks: his server misses it.
	var missed []string
	for i := range 3 {
		missed = append(missed, alice.send(room, fmt.Sprintf("while bob is away %d", i)))
	}
	bob.must("POST", "/join/"+apiEsc(room)+"?server_name=a.fed.test", nil)
	testenv.Eventually(t, 10*time.Second, "alice's server sees bob back", func() bool { return membership(alice, bob.UserID) == "join" })
	after := alice.send(room, "welcome back")
	testenv.Eventually(t, 15*time.Second, "bob's server gets alice's next message and the gap before it", func() bool {
		chunk := bob.must("GET", "/rooms/"+apiEsc(room)+"/messages?dir=b&limit=30", nil)["chunk"].([]any)
		have := map[string]bool{}
		for _, e := range chunk {
			have[e.(map[string]any)["event_id"].(string)] = true
		}
		return have[after] && have[missed[0]] && have[missed[2]]
	})

	alice.must("POST", "/rooms/"+apiEsc(room)+"/ban", map[string]any{"user_id": bob.UserID, "reason": "enough"})
	testenv.Eventually(t, 10*time.Second, "bob's server sees the ban", func() bool { return membership(bob, bob.UserID) == "ban" })
	if r := bob.do("PUT", "/rooms/"+apiEsc(room)+"/send/m.room.message/banned1", map[string]any{"msgtype": "m.text", "body": "x"}); r.Status != 403 {
		t.Errorf("a banned user's send on his own server: %d", r.Status)
	}
}

// Invites across servers: the invitee's server countersigns the invite
// and shows it with the room's identifying state; the invitee joins
// through the inviter's server (a room ID of version 12 names no server);
// a kick reaches the kicked user's server; an invite to a room the
// invitee's server has left is rejected through the inviter's server
// (make_leave, send_leave), which both servers then show.
func TestFederationInvites(t *testing.T) {
	w := newFedWorld(t)
	a := w.start(backends()[0], "a.fed.test")
	b := w.start(backends()[0], "b.fed.test")
	alice := a.register("alice")
	bob := b.register("bob")
	room := alice.createRoom(map[string]any{"preset": "private_chat", "name": "Secret"})
	membership := func(c *client, user string) string {
		r := c.do("GET", "/rooms/"+apiEsc(room)+"/state/m.room.member/"+apiEsc(user), nil)
		if r.Status != 200 {
			return ""
		}
		m, _ := r.Body["membership"].(string)
		return m
	}
	invited := func(s map[string]any) map[string]any {
		ir, _ := s["rooms"].(map[string]any)["invite"].(map[string]any)[room].(map[string]any)
		return ir
	}

	// Not invited: the private room refuses bob.
	if r := bob.do("POST", "/join/"+apiEsc(room)+"?server_name=a.fed.test", nil); r.Status != 403 {
		t.Fatalf("joining the private room uninvited: %d %v", r.Status, r.Body)
	}
	alice.must("POST", "/rooms/"+apiEsc(room)+"/invite", map[string]any{"user_id": bob.UserID})
	if m := membership(alice, bob.UserID); m != "invite" {
		t.Fatalf("alice's server shows bob's membership %q; want invite", m)
	}
	var s map[string]any
	testenv.Eventually(t, 10*time.Second, "bob's /sync shows the invite", func() bool {
		s = bob.sync(nil)
		return invited(s) != nil
	})
	names, mine := "", ""
	for _, e := range invited(s)["invite_state"].(map[string]any)["events"].([]any) {
		ev := e.(map[string]any)
		switch ev["type"] {
		case "m.room.name":
			names, _ = ev["content"].(map[string]any)["name"].(string)
		case "m.room.member":
			if ev["state_key"] == bob.UserID {
				mine, _ = ev["content"].(map[string]any)["membership"].(string)
			}
		}
	}
	if names != "Secret" || mine != "invite" {
		t.Errorf("invite_state: name %q, bob's membership %q: %v", names, mine, invited(s))
	}

	// Bob accepts: no server named, the invite says where to go.
	bob.must("POST", "/join/"+apiEsc(room), nil)
	if m := membership(alice, bob.UserID); m != "join" {
		t.Fatalf("alice's server shows bob's membership %q; want join", m)
	}
	fromBob := bob.send(room, "thanks for the invite")
	testenv.Eventually(t, 10*time.Second, "alice's server gets bob's message", func() bool {
		chunk := alice.must("GET", "/rooms/"+apiEsc(room)+"/messages?dir=b&limit=10", nil)["chunk"].([]any)
		for _, e := range chunk {
			if e.(map[string]any)["event_id"] == fromBob {
				return true
			}
		}
		return false
	})

	// Kicked: bob's server learns it from alice's.
	alice.must("POST", "/rooms/"+apiEsc(room)+"/kick", map[string]any{"user_id": bob.UserID, "reason": "test"})
	testenv.Eventually(t, 10*time.Second, "bob's server sees the kick", func() bool { return membership(bob, bob.UserID) == "leave" })

	// Invited again, now to a room his server has left; he declines.
	alice.must("POST", "/rooms/"+apiEsc(room)+"/invite", map[string]any{"user_id": bob.UserID})
	since := s["next_batch"].(string)
	testenv.Eventually(t, 10*time.Second, "bob's /sync shows the second invite", func() bool {
		s = bob.sync(url.Values{"since": {since}, "timeout": {"0"}})
		return invited(s) != nil
	})
	bob.must("POST", "/rooms/"+apiEsc(room)+"/leave", map[string]any{"reason": "no thanks"})
	if m := membership(alice, bob.UserID); m != "leave" {
		t.Errorf("after bob declined, alice's server shows %q; want leave", m)
	}
	since = s["next_batch"].(string)
	testenv.Eventually(t, 10*time.Second, "bob's /sync shows the room left", func() bool {
		s = bob.sync(url.Values{"since": {since}, "timeout": {"0"}})
		_, left := s["rooms"].(map[string]any)["leave"].(map[string]any)[room]
		return left
	})
	// Declining twice is a no-op; joining without an invite fails again.
	bob.must("POST", "/rooms/"+apiEsc(room)+"/leave", map[string]any{})
	if r := bob.do("POST", "/join/"+apiEsc(room), nil); r.Status != 403 {
		t.Errorf("joining after declining: %d %v", r.Status, r.Body)
	}
}

// A user who joins a room late pages back through its history with
// /messages: past the start of the timeline on their server, the history
// is fetched from a server in the room (/backfill), in order, each event
// once, down to the room's creation.
func TestFederationBackfill(t *testing.T) {
	w := newFedWorld(t)
	a := w.start(backends()[0], "a.fed.test")
	b := w.start(backends()[0], "b.fed.test")
	alice := a.register("alice")
	room := alice.createRoom(map[string]any{"preset": "public_chat", "name": "History"})
	const n = 60
	for i := range n {
		alice.send(room, fmt.Sprintf("m%d", i))
	}
	bob := b.register("bob")
	bob.must("POST", "/join/"+apiEsc(room)+"?server_name=a.fed.test", nil)
	after := alice.send(room, "after bob joined")

	var bodies []string
	var types []string
	var pages [][]string // event IDs of each page
	seen := map[string]bool{}
	from, before := "", ""
	for page := 0; page < 40; page++ {
		q := url.Values{"dir": {"b"}, "limit": {"7"}}
		if from != "" {
			q.Set("from", from)
		}
		var resp map[string]any
		testenv.Eventually(t, 10*time.Second, "a page of bob's /messages", func() bool {
			resp = bob.must("GET", "/rooms/"+apiEsc(room)+"/messages?"+q.Encode(), nil)
			// The first page waits for alice's last message.
			return from != "" || len(resp["chunk"].([]any)) > 0 && resp["chunk"].([]any)[0].(map[string]any)["event_id"] == after
		})
		pages = append(pages, nil)
		for _, e := range resp["chunk"].([]any) {
			ev := e.(map[string]any)
			id := ev["event_id"].(string)
			pages[len(pages)-1] = append(pages[len(pages)-1], id)
			if seen[id] {
				t.Fatalf("event %s came twice", id)
			}
			seen[id] = true
			types = append(types, ev["type"].(string))
			if ev["type"] == "m.room.message" {
				bodies = append(bodies, ev["content"].(map[string]any)["body"].(string))
			}
		}
		end, ok := resp["end"].(string)
		if !ok {
			break
		}
		before, from = from, end
	}
	if len(types) == 0 || types[len(types)-1] != "m.room.create" {
		t.Fatalf("paging back did not reach the room's creation: %d events, the last %v", len(types), types[max(0, len(types)-3):])
	}
	want := []string{"after bob joined"}
	for i := n - 1; i >= 0; i-- {
		want = append(want, fmt.Sprintf("m%d", i))
	}
	if !slices.Equal(bodies, want) {
		t.Errorf("messages paging back, newest first:\n got %v\nwant %v", bodies, want)
	}
	// Paging forward from the last full page's end returns that page's
	// events again, oldest first, and stops where the page began.
	if len(pages) < 2 || before == "" {
		t.Fatalf("too few pages: %d", len(pages))
	}
	q := url.Values{"dir": {"f"}, "limit": {"50"}, "from": {from}, "to": {before}}
	var fwd []string
	for _, e := range bob.must("GET", "/rooms/"+apiEsc(room)+"/messages?"+q.Encode(), nil)["chunk"].([]any) {
		fwd = append(fwd, e.(map[string]any)["event_id"].(string))
	}
	last := slices.Clone(pages[len(pages)-2])
	slices.Reverse(last)
	if !slices.Equal(fwd, last) {
		t.Errorf("paging forward through the history:\n got %v\nwant %v", fwd, last)
	}
}

// History visibility applies to servers: events of a room whose history
// is visible to joined members only reach a server that had no user
// joined at the time redacted.
func TestFederationBackfillVisibility(t *testing.T) {
	w := newFedWorld(t)
	a := w.start(backends()[0], "a.fed.test")
	b := w.start(backends()[0], "b.fed.test")
	alice := a.register("alice")
	room := alice.createRoom(map[string]any{"preset": "public_chat", "initial_state": []any{map[string]any{
		"type": "m.room.history_visibility", "state_key": "", "content": map[string]any{"history_visibility": "joined"}}}})
	secret := alice.send(room, "before bob")
	bob := b.register("bob")
	bob.must("POST", "/join/"+apiEsc(room)+"?server_name=a.fed.test", nil)
	open := alice.send(room, "after bob")

	contents := map[string]map[string]any{}
	testenv.Eventually(t, 10*time.Second, "bob pages back to both messages", func() bool {
		resp := bob.must("GET", "/rooms/"+apiEsc(room)+"/messages?dir=b&limit=50", nil)
		for _, e := range resp["chunk"].([]any) {
			ev := e.(map[string]any)
			contents[ev["event_id"].(string)], _ = ev["content"].(map[string]any)
		}
		_, s := contents[secret]
		_, o := contents[open]
		return s && o
	})
	if body, _ := contents[open]["body"].(string); body != "after bob" {
		t.Errorf("the message after bob's join: %v", contents[open])
	}
	if len(contents[secret]) != 0 {
		t.Errorf("the message before bob's join reached his server unredacted: %v", contents[secret])
	}
}

// A restricted room lets in a user of another server who is joined to an
// allowed room: the resident server names one of its users to authorise
// the join, and signs it.
func TestFederationRestrictedJoin(t *testing.T) {
	w := newFedWorld(t)
	a := w.start(backends()[0], "a.fed.test")
	b := w.start(backends()[0], "b.fed.test")
	alice := a.register("alice")
	space := alice.createRoom(map[string]any{"preset": "public_chat", "name": "Space"})
	restricted := func(allowed string) string {
		return alice.createRoom(map[string]any{"preset": "private_chat", "initial_state": []any{map[string]any{
			"type": "m.room.join_rules", "state_key": "",
			"content": map[string]any{"join_rule": "restricted", "allow": []any{map[string]any{"type": "m.room_membership", "room_id": allowed}}}}}})
	}
	room := restricted(space)
	bob := b.register("bob")

	if r := bob.do("POST", "/join/"+apiEsc(room)+"?server_name=a.fed.test", nil); r.Status != 403 {
		t.Fatalf("joining before being in the allowed room: %d %v", r.Status, r.Body)
	}
	bob.must("POST", "/join/"+apiEsc(space)+"?server_name=a.fed.test", nil)
	bob.must("POST", "/join/"+apiEsc(room)+"?server_name=a.fed.test", nil)
	m := alice.must("GET", "/rooms/"+apiEsc(room)+"/state/m.room.member/"+apiEsc(bob.UserID), nil)
	if m["membership"] != "join" || m["join_authorised_via_users_server"] != alice.UserID {
		t.Errorf("bob's join on alice's server: %v", m)
	}
	if names := bob.must("GET", "/rooms/"+apiEsc(room)+"/joined_members", nil)["joined"].(map[string]any); len(names) != 2 {
		t.Errorf("bob's server lists %v", names)
	}
	// A room whose allowed room alice's server is not in cannot be judged.
	other := restricted("!nowhere:elsewhere.test")
	r := bob.do("POST", "/join/"+apiEsc(other)+"?server_name=a.fed.test", nil)
	if r.Status != 400 || r.Body["errcode"] != "M_UNABLE_TO_AUTHORISE_JOIN" {
		t.Errorf("a room whose allowed rooms are unknown: %d %v", r.Status, r.Body)
	}
}
