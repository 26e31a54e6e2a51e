package keyserver

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/internal/store/storetest"
	"github.com/axon-hs/axon/internal/testenv"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/keys"
)

// net routes key requests to other Services' handlers in process, as the
// federation client would over HTTPS.
type net struct {
	mu      sync.Mutex
	servers map[string]http.Handler
	down    map[string]bool
	calls   map[string]int
	// tamper, when set, rewrites a server's answer.
	tamper func(server string, body []byte) []byte
}

func newNet() *net {
	return &net{servers: map[string]http.Handler{}, down: map[string]bool{}, calls: map[string]int{}}
}

func (n *net) do(server, method, path string, body []byte) ([]byte, error) {
	n.mu.Lock()
	n.calls[server]++
	h, down, tamper := n.servers[server], n.down[server], n.tamper
	n.mu.Unlock()
	if h == nil || down {
		return nil, fmt.Errorf("%s is unreachable", server)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, bytes.NewReader(body)))
	if rec.Code != http.StatusOK {
		return nil, fmt.Errorf("%s answered %d", server, rec.Code)
	}
	out := rec.Body.Bytes()
	if tamper != nil {
		out = tamper(server, out)
	}
	return out, nil
}

func (n *net) ServerKeys(_ context.Context, server string) ([]byte, error) {
	return n.do(server, "GET", "/_matrix/key/v2/server", nil)
}

func (n *net) QueryKeys(_ context.Context, notary string, body []byte) ([]byte, error) {
	return n.do(notary, "POST", "/_matrix/key/v2/query", body)
}

func (n *net) count(server string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.calls[server]
}

func (n *net) setDown(server string, down bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.down[server] = down
}

func genKey(t *testing.T, version string) *keys.SigningKey {
	t.Helper()
	k, err := keys.Generate(version, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// world is a few servers, each a Service with its own database, on one net.
type world struct {
	t     *testing.T
	e     testenv.Engine
	net   *net
	clock *testenv.Clock
}

func newWorld(t *testing.T, e testenv.Engine) *world {
	return &world{t: t, e: e, net: newNet(), clock: testenv.NewClock(time.UnixMilli(1_700_000_000_000))}
}

// server starts a Service named name (on db, or a new database when nil)
// and puts it on the net.
func (w *world) server(name string, db *store.DB, cfg Config) (*Service, *store.DB) {
	w.t.Helper()
	if db == nil {
		db = storetest.Open(w.t, w.e, Migrations())
	}
	cfg.ServerName = name
	if cfg.Keys == nil {
		cfg.Keys = []*keys.SigningKey{genKey(w.t, "k1")}
	}
	cfg.Fetcher = w.net
	cfg.Now = w.clock.Now
	s, err := New(db, cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Routes(mux)
	w.net.mu.Lock()
	w.net.servers[name] = mux
	w.net.mu.Unlock()
	return s, db
}

func lookup(t *testing.T, s *Service, reqs ...Request) keys.KeyLookup {
	t.Helper()
	l, err := s.Keys(context.Background(), reqs)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestOwnDocument(t *testing.T) {
	w := newWorld(t, testenv.Engines()[0])
	cur := genKey(t, "new")
	old := genKey(t, "old")
	old.ExpiredTS = w.clock.Now().Add(-time.Hour).UnixMilli()
	s, _ := w.server("a.test", nil, Config{Keys: []*keys.SigningKey{cur, old}})

	get := func() *keys.ServerKeys {
		body, err := w.net.ServerKeys(context.Background(), "a.test")
		if err != nil {
			t.Fatal(err)
		}
		sk, err := checkDocument(body, "a.test")
		if err != nil {
			t.Fatal(err)
		}
		return sk
	}
	sk := get()
	if sk.ValidUntilTS != w.clock.Now().Add(24*time.Hour).UnixMilli() {
		t.Errorf("valid_until_ts = %d", sk.ValidUntilTS)
	}
	if len(sk.VerifyKeys) != 1 || !bytes.Equal(sk.VerifyKeys[cur.ID], cur.Public()) {
		t.Errorf("verify_keys = %v", sk.VerifyKeys)
	}
	if o := sk.OldKeys[old.ID]; !bytes.Equal(o.Key, old.Public()) || o.ExpiredTS != old.ExpiredTS {
		t.Errorf("old_verify_keys = %v", sk.OldKeys)
	}
	// The same document until half its validity has passed, then a new one.
	w.clock.Advance(11 * time.Hour)
	if again := get(); again.ValidUntilTS != sk.ValidUntilTS {
		t.Errorf("re-signed after 11h of 24h")
	}
	w.clock.Advance(2 * time.Hour)
	if again := get(); again.ValidUntilTS != w.clock.Now().Add(24*time.Hour).UnixMilli() {
		t.Errorf("not re-signed after 13h of 24h")
	}
	// Our own keys answer lookups without any fetch.
	l := lookup(t, s, Request{Server: "a.test", KeyID: cur.ID})
	if vk, ok := l("a.test", cur.ID); !ok || vk.ValidUntilTS != keys.NoExpiry {
		t.Errorf("own key lookup = %v %v", vk, ok)
	}
	if vk, ok := l("a.test", old.ID); !ok || vk.ValidUntilTS != old.ExpiredTS {
		t.Errorf("own old key lookup = %v %v", vk, ok)
	}
	if _, err := New(nil, Config{ServerName: "a.test", Keys: []*keys.SigningKey{old}}); err == nil {
		t.Error("New accepted a key file without a key in use")
	}
}

func TestFetchDirectAndRemember(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		w := newWorld(t, e)
		bKey := genKey(t, "b1")
		w.server("b.test", nil, Config{Keys: []*keys.SigningKey{bKey}})
		a, adb := w.server("a.test", nil, Config{})

		now := w.clock.Now().UnixMilli()
		l := lookup(t, a, Request{Server: "b.test", KeyID: bKey.ID, AtTS: now})
		vk, ok := l("b.test", bKey.ID)
		if !ok || !bytes.Equal(vk.Key, bKey.Public()) || vk.ValidUntilTS != now+24*3600*1000 {
			t.Fatalf("b's key = %+v %v", vk, ok)
		}
		if n := w.net.count("b.test"); n != 1 {
			t.Fatalf("fetches = %d", n)
		}
		// Cached: no second fetch.
		lookup(t, a, Request{Server: "b.test", KeyID: bKey.ID, AtTS: now})
		if n := w.net.count("b.test"); n != 1 {
			t.Errorf("fetches after a cached lookup = %d", n)
		}
		// Another process on the same database finds it there.
		a2, _ := w.server("a.test", adb, Config{})
		w.net.setDown("b.test", true)
		if _, ok := lookup(t, a2, Request{Server: "b.test", KeyID: bKey.ID, AtTS: now})("b.test", bKey.ID); !ok {
			t.Error("the key was not found in the database")
		}
		if n := w.net.count("b.test"); n != 1 {
			t.Errorf("fetches by the second process = %d", n)
		}
		// A signature made after the key's validity asks b again, but at
		// most once per refetch interval.
		later := now + 2*24*3600*1000
		w.clock.Advance(2 * time.Minute)
		for range 2 {
			// b is down: the key comes back with the validity it has.
			if vk, ok := lookup(t, a, Request{Server: "b.test", KeyID: bKey.ID, AtTS: later})("b.test", bKey.ID); !ok || vk.ValidUntilTS >= later {
				t.Errorf("with b down: %+v %v", vk, ok)
			}
		}
		if n := w.net.count("b.test"); n != 2 {
			t.Errorf("fetches with b down = %d, want 2 (one attempt per interval)", n)
		}
		w.net.setDown("b.test", false)
		w.clock.Advance(2 * 24 * time.Hour)
		vk, ok = lookup(t, a, Request{Server: "b.test", KeyID: bKey.ID, AtTS: w.clock.Now().UnixMilli()})("b.test", bKey.ID)
		if !ok || vk.ValidUntilTS < w.clock.Now().UnixMilli() {
			t.Errorf("after b is back: %+v %v", vk, ok)
		}
		// An unknown key is simply absent; asking for one fetches again
		// after the shorter interval for unknown keys, not before.
		fetches := w.net.count("b.test")
		if _, ok := lookup(t, a, Request{Server: "b.test", KeyID: "ed25519:nope"})("b.test", "ed25519:nope"); ok {
			t.Error("unknown key found")
		}
		if n := w.net.count("b.test"); n != fetches {
			t.Errorf("an unknown key asked for right after a fetch: %d fetches, want %d", n, fetches)
		}
		w.clock.Advance(DefaultUnknownKeyRefetchInterval)
		lookup(t, a, Request{Server: "b.test", KeyID: "ed25519:nope"})
		if n := w.net.count("b.test"); n != fetches+1 {
			t.Errorf("an unknown key asked for after %v: %d fetches, want %d", DefaultUnknownKeyRefetchInterval, n, fetches+1)
		}
	})
}

// The lookup returns a key with its validity; VerifyJSON, not the lookup,
// skips it for a signature made after it. This checks the window the
// lookup reports for a fetched key is capped at a week.
func TestFetchedValidityCapped(t *testing.T) {
	w := newWorld(t, testenv.Engines()[0])
	bKey := genKey(t, "b1")
	w.server("b.test", nil, Config{Keys: []*keys.SigningKey{bKey}, Validity: 365 * 24 * time.Hour})
	a, _ := w.server("a.test", nil, Config{})
	vk, ok := lookup(t, a, Request{Server: "b.test", KeyID: bKey.ID})("b.test", bKey.ID)
	if want := w.clock.Now().UnixMilli() + keys.MaxKeyValidity; !ok || vk.ValidUntilTS != want {
		t.Errorf("validity = %d, want %d", vk.ValidUntilTS, want)
	}
}

func TestForgedDocumentsRefused(t *testing.T) {
	w := newWorld(t, testenv.Engines()[0])
	bKey := genKey(t, "b1")
	w.server("b.test", nil, Config{Keys: []*keys.SigningKey{bKey}})
	evil := genKey(t, "b1")
	for name, tamper := range map[string]func(string, []byte) []byte{
		"another server's document": func(_ string, body []byte) []byte {
			return bytes.Replace(body, []byte(`"b.test"`), []byte(`"c.test"`), -1)
		},
		"a key swapped": func(_ string, body []byte) []byte {
			return bytes.Replace(body, []byte(bKey.PublicBase64()), []byte(evil.PublicBase64()), 1)
		},
		"signed by another key": func(_ string, body []byte) []byte {
			v, _ := cjson.Parse(body, cjson.Strict)
			v = v.With("signatures", cjson.ObjectValue())
			v = v.With("verify_keys", cjson.ObjectValue(cjson.Member{Key: string(bKey.ID),
				Value: cjson.ObjectValue(cjson.Member{Key: "key", Value: cjson.StringValue(bKey.PublicBase64())})}))
			v, _ = keys.SignJSON(v, "b.test", evil)
			return v.Canonical()
		},
		"not JSON": func(string, []byte) []byte { return []byte("<html>") },
	} {
		t.Run(name, func(t *testing.T) {
			w.net.tamper = tamper
			defer func() { w.net.tamper = nil }()
			a, _ := w.server("a.test", nil, Config{})
			if _, ok := lookup(t, a, Request{Server: "b.test", KeyID: bKey.ID})("b.test", bKey.ID); ok {
				t.Error("a forged document was accepted")
			}
		})
	}
}

func TestNotaries(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		w := newWorld(t, e)
		cKey := genKey(t, "c1")
		w.server("c.test", nil, Config{Keys: []*keys.SigningKey{cKey}})
		nKey := genKey(t, "n1")
		notary, _ := w.server("notary.test", nil, Config{Keys: []*keys.SigningKey{nKey}})
		// The notary learns c's keys while c is up.
		lookup(t, notary, Request{Server: "c.test", KeyID: cKey.ID})
		w.net.setDown("c.test", true)

		trusted := []Notary{{ServerName: "notary.test", Keys: map[keys.KeyID]ed25519.PublicKey{nKey.ID: nKey.Public()}}}
		a, _ := w.server("a.test", nil, Config{Notaries: trusted})
		vk, ok := lookup(t, a, Request{Server: "c.test", KeyID: cKey.ID})("c.test", cKey.ID)
		if !ok || !bytes.Equal(vk.Key, cKey.Public()) {
			t.Fatalf("c's key through the notary = %+v %v", vk, ok)
		}
		// A notary whose signature does not check out is not believed.
		wrong := []Notary{{ServerName: "notary.test", Keys: map[keys.KeyID]ed25519.PublicKey{nKey.ID: genKey(t, "x").Public()}}}
		a2, _ := w.server("a2.test", nil, Config{Notaries: wrong})
		if _, ok := lookup(t, a2, Request{Server: "c.test", KeyID: cKey.ID})("c.test", cKey.ID); ok {
			t.Error("accepted a document from a notary with the wrong key")
		}
		// A server never reached, and known to no notary, stays unknown.
		if _, ok := lookup(t, a, Request{Server: "nowhere.test", KeyID: "ed25519:x"})("nowhere.test", "ed25519:x"); ok {
			t.Error("found a key of a server nobody knows")
		}
	})
}

func TestNotaryEndpoints(t *testing.T) {
	w := newWorld(t, testenv.Engines()[0])
	cKey := genKey(t, "c1")
	w.server("c.test", nil, Config{Keys: []*keys.SigningKey{cKey}})
	nKey := genKey(t, "n1")
	w.server("notary.test", nil, Config{Keys: []*keys.SigningKey{nKey}})
	mux := w.net.servers["notary.test"]

	serve := func(method, path, body string) (int, string, cjson.Value) {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
		v, _ := cjson.Parse(rec.Body.Bytes(), cjson.Strict)
		return rec.Code, v.Get("errcode").StrOr(""), v
	}
	checkNotarised := func(v cjson.Value, server string) {
		t.Helper()
		list := v.Get("server_keys")
		if list.Len() != 1 {
			t.Fatalf("server_keys = %s", list)
		}
		doc := list.Index(0)
		sk, err := keys.ParseServerKeys(doc)
		if err != nil || sk.ServerName != server || sk.CheckSelfSigned() != nil {
			t.Fatalf("document %s: %v", doc, err)
		}
		if err := keys.VerifyJSON(doc, "notary.test", func(string, keys.KeyID) (keys.VerifyKey, bool) {
			return keys.VerifyKey{Key: nKey.Public(), ValidUntilTS: keys.NoExpiry}, true
		}, keys.VerifyOptions{}); err != nil {
			t.Errorf("notary signature: %v", err)
		}
	}
	code, _, v := serve("GET", "/_matrix/key/v2/query/c.test", "")
	if code != 200 {
		t.Fatalf("GET query = %d", code)
	}
	checkNotarised(v, "c.test")
	// c goes away: the notary still answers from what it stored.
	w.net.setDown("c.test", true)
	w.clock.Advance(48 * time.Hour)
	_, _, v = serve("POST", "/_matrix/key/v2/query", `{"server_keys":{"c.test":{"ed25519:c1":{"minimum_valid_until_ts":1}}}}`)
	checkNotarised(v, "c.test")
	// Its own keys, too.
	_, _, v = serve("GET", "/_matrix/key/v2/query/notary.test", "")
	checkNotarised(v, "notary.test")
	// Nobody knows this one: an empty list.
	if code, _, v := serve("POST", "/_matrix/key/v2/query", `{"server_keys":{"nowhere.test":{}}}`); code != 200 || v.Get("server_keys").Len() != 0 {
		t.Errorf("unknown server: %d %s", code, v)
	}
	if code, _, v := serve("POST", "/_matrix/key/v2/query", `{"server_keys":{}}`); code != 200 || v.Get("server_keys").Kind() != cjson.Array {
		t.Errorf("no servers: %d %s", code, v)
	}
	many := make([]string, MaxQueryServers+1)
	for i := range many {
		many[i] = fmt.Sprintf(`"s%d.test":{}`, i)
	}
	for _, c := range []struct{ method, path, body, code string }{
		{"GET", "/_matrix/key/v2/query/bad..name:99999999", "", "M_INVALID_PARAM"},
		{"GET", "/_matrix/key/v2/query/c.test?minimum_valid_until_ts=soon", "", "M_INVALID_PARAM"},
		{"POST", "/_matrix/key/v2/query", `{"server_keys":`, "M_NOT_JSON"},
		{"POST", "/_matrix/key/v2/query", `{}`, "M_BAD_JSON"},
		{"POST", "/_matrix/key/v2/query", `{"server_keys":{"c.test":{"nokeyid":{}}}}`, "M_INVALID_PARAM"},
		{"POST", "/_matrix/key/v2/query", `{"server_keys":{` + strings.Join(many, ",") + `}}`, "M_INVALID_PARAM"},
	} {
		if _, got, _ := serve(c.method, c.path, c.body); got != c.code {
			t.Errorf("%s %s %.40s: errcode %q, want %q", c.method, c.path, c.body, got, c.code)
		}
	}
}

func TestConcurrentLookupsShareOneFetch(t *testing.T) {
	w := newWorld(t, testenv.Engines()[0])
	bKey := genKey(t, "b1")
	w.server("b.test", nil, Config{Keys: []*keys.SigningKey{bKey}})
	a, _ := w.server("a.test", nil, Config{})
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := a.Keys(context.Background(), []Request{{Server: "b.test", KeyID: bKey.ID}})
			if err == nil {
				if _, ok := l("b.test", bKey.ID); !ok {
					err = errors.New("not found")
				}
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := w.net.count("b.test"); n != 1 {
		t.Errorf("fetches = %d, want 1", n)
	}
}
