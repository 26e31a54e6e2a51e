package keyserver

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/keys"
)

// Fetcher reaches other servers' key endpoints. The federation client
// implements it; both calls return the response body of a 200 answer and
// an error otherwise.
type Fetcher interface {
	// ServerKeys is GET /_matrix/key/v2/server on server.
	ServerKeys(ctx context.Context, server string) ([]byte, error)
	// QueryKeys is POST /_matrix/key/v2/query on notary with body.
	QueryKeys(ctx context.Context, notary string, body []byte) ([]byte, error)
}

// Notary is a trusted key server and the keys its answers must be signed
// with.
type Notary struct {
	ServerName string
	Keys       map[keys.KeyID]ed25519.PublicKey
}

// Config configures the Service.
type Config struct {
	ServerName string
	// Keys are this server's keys as the key file lists them: those in use
	// first (the first one signs), old ones with their ExpiredTS.
	Keys []*keys.SigningKey
	// Validity is how long a published document says it is valid
	// (default 24h; at least an hour, as the spec recommends).
	Validity time.Duration
	// Notaries are asked, in order, for keys a server did not give itself.
	Notaries []Notary
	// Fetcher reaches other servers; nil means remote keys come from the
	// database only (a process without federation access).
	Fetcher Fetcher
	// RefetchInterval is the least time between two fetches of one
	// server's keys by this process (default 1 minute).
	RefetchInterval time.Duration
	// UnknownKeyRefetchInterval is the least time between two fetches of
	// one server by this process when a key ID never seen is asked for
	// (default DefaultUnknownKeyRefetchInterval): a server that has just
	// rotated its key is believed within seconds, not after a whole
	// RefetchInterval.
	UnknownKeyRefetchInterval time.Duration
	// CacheServers bounds the servers whose keys are kept in memory
	// (default 10,000).
	CacheServers int
	// FetchTimeout bounds one fetch from a server or a notary (default 10s).
	FetchTimeout time.Duration
	Now          func() time.Time
	Logger       *slog.Logger
}

// MaxQueryServers bounds the servers of one notary query.
const MaxQueryServers = 100

// fetchParallel bounds the servers fetched at once for one Keys call.
const fetchParallel = 8

// Service publishes this server's keys and finds other servers' keys.
type Service struct {
	db  *store.DB
	cfg Config
	log *slog.Logger

	own     map[keys.KeyID]keys.VerifyKey
	ownMu   sync.Mutex
	ownDoc  []byte
	ownSign time.Time // when ownDoc was signed

	mu      sync.Mutex
	servers map[string]*remote
}

// remote is what this process knows of one server's keys.
type remote struct {
	loaded   bool // the database was read
	keys     map[keys.KeyID]keys.VerifyKey
	doc      []byte // newest document, canonical, as received
	docUntil int64  // its valid_until_ts
	fetched  time.Time
	attempt  time.Time     // last fetch attempt
	inflight chan struct{} // closed when the running fetch ends
}

// New returns the Service. It does no I/O.
func New(db *store.DB, cfg Config) (*Service, error) {
	if cfg.ServerName == "" {
		return nil, errors.New("keyserver: no server name")
	}
	if cfg.Validity == 0 {
		cfg.Validity = 24 * time.Hour
	}
	if cfg.Validity < time.Hour {
		return nil, fmt.Errorf("keyserver: validity %s is under an hour", cfg.Validity)
	}
	if cfg.RefetchInterval == 0 {
		cfg.RefetchInterval = time.Minute
	}
	if cfg.UnknownKeyRefetchInterval == 0 {
		cfg.UnknownKeyRefetchInterval = DefaultUnknownKeyRefetchInterval
	}
	if cfg.CacheServers == 0 {
		cfg.CacheServers = 10000
	}
	if cfg.FetchTimeout == 0 {
		cfg.FetchTimeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	own := map[keys.KeyID]keys.VerifyKey{}
	inUse := 0
	for _, k := range cfg.Keys {
		vk := keys.VerifyKey{Key: k.Public(), ValidUntilTS: keys.NoExpiry}
		if k.ExpiredTS > 0 {
			vk.ValidUntilTS = k.ExpiredTS
		} else {
			inUse++
		}
		own[k.ID] = vk
	}
	if inUse == 0 || cfg.Keys[0].ExpiredTS != 0 {
		return nil, errors.New("keyserver: the first key must be one in use")
	}
	for _, n := range cfg.Notaries {
		if n.ServerName == "" || len(n.Keys) == 0 {
			return nil, fmt.Errorf("keyserver: notary %q has no name or no keys", n.ServerName)
		}
	}
	return &Service{db: db, cfg: cfg, log: cfg.Logger, own: own, servers: map[string]*remote{}}, nil
}

// SigningKey is the key this server signs with.
func (s *Service) SigningKey() *keys.SigningKey { return s.cfg.Keys[0] }

// ServerName is this server's name.
func (s *Service) ServerName() string { return s.cfg.ServerName }

// OwnDocument returns this server's signed keys document, signing a new
// one when half of the last one's validity has passed.
func (s *Service) OwnDocument() ([]byte, error) {
	now := s.cfg.Now()
	s.ownMu.Lock()
	defer s.ownMu.Unlock()
	if s.ownDoc != nil && now.Sub(s.ownSign) < s.cfg.Validity/2 && !now.Before(s.ownSign) {
		return s.ownDoc, nil
	}
	doc, err := keys.ServerKeysDocument(s.cfg.ServerName, s.cfg.Keys, now.Add(s.cfg.Validity).UnixMilli())
	if err != nil {
		return nil, err
	}
	s.ownDoc, s.ownSign = doc.Canonical(), now
	return s.ownDoc, nil
}

// Request asks for key KeyID of Server, valid at AtTS (ms; 0: at any time,
// as room versions 1-4 check keys).
type Request struct {
	Server string
	KeyID  keys.KeyID
	AtTS   int64
}

// Keys finds the keys of reqs, fetching what is missing or no longer
// valid, and returns a lookup over them. A key that could not be found is
// absent from the lookup (its signatures then fail with keys.ErrNoKey); the
// error is for a failing database or an ended ctx only.
func (s *Service) Keys(ctx context.Context, reqs []Request) (keys.KeyLookup, error) {
	byServer := map[string][]Request{}
	for _, r := range reqs {
		if r.Server != s.cfg.ServerName {
			byServer[r.Server] = append(byServer[r.Server], r)
		}
	}
	found := make(map[string]map[keys.KeyID]keys.VerifyKey, len(byServer))
	var mu sync.Mutex
	err := forEachServer(byServer, func(server string, rs []Request) error {
		ks, err := s.serverKeys(ctx, server, rs)
		mu.Lock()
		defer mu.Unlock()
		found[server] = ks
		return err
	})
	if err != nil {
		return nil, err
	}
	return func(signer string, id keys.KeyID) (keys.VerifyKey, bool) {
		if signer == s.cfg.ServerName {
			vk, ok := s.own[id]
			return vk, ok
		}
		vk, ok := found[signer][id]
		return vk, ok
	}, nil
}

// forEachServer runs f for every server of m, at most fetchParallel at
// once, and returns their errors joined.
func forEachServer[T any](m map[string]T, f func(server string, v T) error) error {
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		errs    []error
		workers = make(chan struct{}, fetchParallel)
	)
	for server, v := range m {
		wg.Add(1)
		workers <- struct{}{}
		go func() {
			defer func() { <-workers; wg.Done() }()
			if err := f(server, v); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// satisfied reports whether ks answers every request of rs.
func satisfied(ks map[keys.KeyID]keys.VerifyKey, rs []Request) bool {
	for _, r := range rs {
		vk, ok := ks[r.KeyID]
		if !ok || (r.AtTS != 0 && vk.ValidUntilTS < r.AtTS) {
			return false
		}
	}
	return true
}

// unknownKey reports whether rs ask for a key ID that ks does not hold.
func unknownKey(ks map[keys.KeyID]keys.VerifyKey, rs []Request) bool {
	for _, r := range rs {
		if _, ok := ks[r.KeyID]; !ok {
			return true
		}
	}
	return false
}

// DefaultUnknownKeyRefetchInterval is Config.UnknownKeyRefetchInterval's
// default.
const DefaultUnknownKeyRefetchInterval = 5 * time.Second

// serverKeys returns what is known of server's keys after making sure, as
// far as the fetch rules allow, that rs are answered.
func (s *Service) serverKeys(ctx context.Context, server string, rs []Request) (map[keys.KeyID]keys.VerifyKey, error) {
	for {
		r, err := s.lockIdle(ctx, server)
		if err != nil {
			return nil, err
		}
		if r.loaded && satisfied(r.keys, rs) {
			ks := maps.Clone(r.keys)
			s.mu.Unlock()
			return ks, nil
		}
		load := !r.loaded
		interval := s.cfg.RefetchInterval
		if r.loaded && unknownKey(r.keys, rs) {
			interval = min(interval, s.cfg.UnknownKeyRefetchInterval)
		}
		fetch := s.cfg.Fetcher != nil && (r.attempt.IsZero() || s.cfg.Now().Sub(r.attempt) >= interval)
		if !load && !fetch {
			ks := maps.Clone(r.keys)
			s.mu.Unlock()
			return ks, nil
		}
		done := make(chan struct{})
		r.inflight = done
		s.mu.Unlock()

		err = s.refresh(ctx, server, r, rs, load, fetch)
		s.mu.Lock()
		r.inflight = nil
		close(done)
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		if load && !fetch {
			continue // the database may have answered; else a fetch is next
		}
		s.mu.Lock()
		ks := maps.Clone(r.keys)
		s.mu.Unlock()
		return ks, nil
	}
}

// lockIdle waits until no fetch of server runs and returns its entry with
// s.mu held.
func (s *Service) lockIdle(ctx context.Context, server string) (*remote, error) {
	for {
		s.mu.Lock()
		r := s.entry(server)
		if r.inflight == nil {
			return r, nil
		}
		wait := r.inflight
		s.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// entry returns server's cache entry, making room for it when the cache is
// full. s.mu is held.
func (s *Service) entry(server string) *remote {
	if r, ok := s.servers[server]; ok {
		return r
	}
	if len(s.servers) >= s.cfg.CacheServers {
		for name, r := range s.servers { // map order: an arbitrary victim
			if r.inflight == nil {
				delete(s.servers, name)
				break
			}
		}
	}
	r := &remote{keys: map[keys.KeyID]keys.VerifyKey{}}
	s.servers[server] = r
	return r
}

// refresh reads server's keys from the database (load) and, when rs are
// still not answered, from the network (fetch). Only the goroutine that
// set r.inflight calls it, so it may update r's fields under s.mu.
func (s *Service) refresh(ctx context.Context, server string, r *remote, rs []Request, load, fetch bool) error {
	if load {
		ks, doc, until, err := s.loadServer(ctx, server)
		if err != nil {
			return err
		}
		s.mu.Lock()
		r.loaded = true
		for id, vk := range ks {
			r.keys[id] = vk
		}
		if doc != nil && until >= r.docUntil {
			r.doc, r.docUntil = doc, until
		}
		ok := satisfied(r.keys, rs)
		s.mu.Unlock()
		if ok || !fetch {
			return nil
		}
	}
	s.mu.Lock()
	r.attempt = s.cfg.Now()
	s.mu.Unlock()
	docs := s.fetchDirect(ctx, server)
	s.mu.Lock()
	got := mergeInto(nil, docs)
	for id, vk := range r.keys {
		if _, ok := got[id]; !ok {
			got[id] = vk
		}
	}
	ok := satisfied(got, rs)
	s.mu.Unlock()
	if !ok {
		docs = append(docs, s.fetchFromNotaries(ctx, server, rs)...)
	}
	return s.remember(ctx, server, r, docs)
}

// fetched is a verified document and when it was fetched.
type fetched struct {
	sk *keys.ServerKeys
	at int64 // ms
}

// mergeInto adds the keys of docs to ks (a new map when nil): a later
// document's view of a key wins.
func mergeInto(ks map[keys.KeyID]keys.VerifyKey, docs []fetched) map[keys.KeyID]keys.VerifyKey {
	if ks == nil {
		ks = map[keys.KeyID]keys.VerifyKey{}
	}
	for _, d := range docs {
		for id := range d.sk.VerifyKeys {
			ks[id], _ = d.sk.Lookup(id, d.at)
		}
		for id := range d.sk.OldKeys {
			ks[id], _ = d.sk.Lookup(id, d.at)
		}
	}
	return ks
}

// fetchDirect asks server for its keys.
func (s *Service) fetchDirect(ctx context.Context, server string) []fetched {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.FetchTimeout)
	defer cancel()
	body, err := s.cfg.Fetcher.ServerKeys(ctx, server)
	at := s.cfg.Now().UnixMilli()
	if err != nil {
		s.log.Info("keyserver: fetching keys failed", "destination", server, "err", err)
		return nil
	}
	sk, err := checkDocument(body, server)
	if err != nil {
		s.log.Warn("keyserver: refused a server's keys", "destination", server, "err", err)
		return nil
	}
	return []fetched{{sk: sk, at: at}}
}

// fetchFromNotaries asks the configured notaries, in order, until one
// answers with the keys of rs.
func (s *Service) fetchFromNotaries(ctx context.Context, server string, rs []Request) []fetched {
	var out []fetched
	for _, n := range s.cfg.Notaries {
		if n.ServerName == server {
			continue
		}
		criteria := cjson.ObjectValue()
		for _, r := range rs {
			min := r.AtTS
			if min == 0 {
				min = s.cfg.Now().UnixMilli()
			}
			criteria = criteria.With(string(r.KeyID), cjson.ObjectValue(cjson.Member{Key: "minimum_valid_until_ts", Value: cjson.IntValue(min)}))
		}
		body := cjson.ObjectValue(cjson.Member{Key: "server_keys", Value: cjson.ObjectValue(cjson.Member{Key: server, Value: criteria})})
		got := s.askNotary(ctx, n, server, body.Canonical())
		out = append(out, got...)
		if satisfied(mergeInto(nil, got), rs) {
			break
		}
	}
	return out
}

func (s *Service) askNotary(ctx context.Context, n Notary, server string, body []byte) []fetched {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.FetchTimeout)
	defer cancel()
	resp, err := s.cfg.Fetcher.QueryKeys(ctx, n.ServerName, body)
	at := s.cfg.Now().UnixMilli()
	if err != nil {
		s.log.Info("keyserver: notary query failed", "notary", n.ServerName, "destination", server, "err", err)
		return nil
	}
	v, err := cjson.Parse(resp, cjson.Strict)
	list := v.Get("server_keys")
	if err != nil || list.Kind() != cjson.Array {
		s.log.Warn("keyserver: notary answered without a server_keys array", "notary", n.ServerName, "err", err)
		return nil
	}
	var out []fetched
	for i := range list.Len() {
		doc := list.Index(i)
		sk, err := keys.ParseServerKeys(doc)
		if err == nil && sk.ServerName != server {
			continue // not asked for: ignored
		}
		if err == nil {
			err = sk.CheckSelfSigned()
		}
		if err == nil {
			err = keys.VerifyJSON(doc, n.ServerName, func(_ string, id keys.KeyID) (keys.VerifyKey, bool) {
				k, ok := n.Keys[id]
				return keys.VerifyKey{Key: k, ValidUntilTS: keys.NoExpiry}, ok
			}, keys.VerifyOptions{})
		}
		if err != nil {
			s.log.Warn("keyserver: refused a notary's document", "notary", n.ServerName, "destination", server, "err", err)
			continue
		}
		// Drop the notary's signature: the stored document is the
		// server's own, which this server signs again as a notary.
		sk.Raw = withoutSigner(doc, n.ServerName)
		out = append(out, fetched{sk: sk, at: at})
	}
	return out
}

// withoutSigner removes signer's signatures from doc.
func withoutSigner(doc cjson.Value, signer string) cjson.Value {
	sigs := doc.Get("signatures")
	if !sigs.Has(signer) {
		return doc
	}
	return doc.With("signatures", sigs.Without(signer))
}

// checkDocument parses body as server's own keys document.
func checkDocument(body []byte, server string) (*keys.ServerKeys, error) {
	v, err := cjson.Parse(body, cjson.Strict)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", keys.ErrServerKeys, err)
	}
	sk, err := keys.ParseServerKeys(v)
	if err != nil {
		return nil, err
	}
	if sk.ServerName != server {
		return nil, fmt.Errorf("%w: document of %q, asked %q", keys.ErrServerKeys, sk.ServerName, server)
	}
	if err := sk.CheckSelfSigned(); err != nil {
		return nil, err
	}
	return sk, nil
}

// remember stores docs and puts their keys in r.
func (s *Service) remember(ctx context.Context, server string, r *remote, docs []fetched) error {
	if len(docs) == 0 {
		return nil
	}
	if err := s.store(ctx, server, docs); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	mergeInto(r.keys, docs)
	for _, d := range docs {
		if d.sk.ValidUntilTS >= r.docUntil {
			r.doc, r.docUntil = d.sk.Raw.Canonical(), d.sk.ValidUntilTS
			r.fetched = time.UnixMilli(d.at)
		}
	}
	return nil
}
