package keyserver

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"

	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/matrix/cjson"
	"github.com/axon-hs/axon/matrix/id"
	"github.com/axon-hs/axon/matrix/keys"
)

// queryBodyLimit bounds a bulk notary query's body.
const queryBodyLimit = 64 << 10

// Routes registers the key endpoints (they need no request signature).
func (s *Service) Routes(mux *http.ServeMux) {
	mux.Handle("GET /_matrix/key/v2/server", httpx.Handle(s.getServer))
	mux.Handle("GET /_matrix/key/v2/query/{serverName}", httpx.Handle(s.getQuery))
	mux.Handle("POST /_matrix/key/v2/query", httpx.Handle(s.postQuery))
}

// raw is a response body encoded already.
type raw []byte

func (r raw) AppendJSON(b []byte) ([]byte, error) { return append(b, r...), nil }

func (s *Service) getServer(w http.ResponseWriter, r *http.Request) error {
	doc, err := s.OwnDocument()
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, raw(doc))
}

func (s *Service) getQuery(w http.ResponseWriter, r *http.Request) error {
	server := r.PathValue("serverName")
	if _, err := id.ParseServerName(server); err != nil {
		return httpx.InvalidParam("serverName is not a valid server name: " + err.Error())
	}
	min := s.cfg.Now().UnixMilli()
	if v := r.URL.Query().Get("minimum_valid_until_ts"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return httpx.InvalidParam("minimum_valid_until_ts is not an integer")
		}
		min = n
	}
	docs, err := s.notarise(r.Context(), map[string]int64{server: min})
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, docs)
}

func (s *Service) postQuery(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		ServerKeys map[string]map[string]struct {
			MinimumValidUntilTS *int64 `json:"minimum_valid_until_ts"`
		} `json:"server_keys"`
	}
	if err := httpx.DecodeJSON(r, queryBodyLimit, &body); err != nil {
		return err
	}
	if body.ServerKeys == nil {
		return httpx.BadJSON("server_keys is missing or not an object")
	}
	if len(body.ServerKeys) > MaxQueryServers {
		return httpx.InvalidParam("at most " + strconv.Itoa(MaxQueryServers) + " servers per query")
	}
	now := s.cfg.Now().UnixMilli()
	want := make(map[string]int64, len(body.ServerKeys))
	for server, criteria := range body.ServerKeys {
		if _, err := id.ParseServerName(server); err != nil {
			return httpx.InvalidParam("server_keys: " + strconv.Quote(server) + " is not a valid server name")
		}
		min := now
		for keyID, c := range criteria {
			if _, err := keys.ParseKeyID(keyID); err != nil {
				return httpx.InvalidParam("server_keys: " + strconv.Quote(keyID) + " is not a key ID")
			}
			if c.MinimumValidUntilTS != nil {
				min = max(min, *c.MinimumValidUntilTS)
			}
		}
		want[server] = min
	}
	docs, err := s.notarise(r.Context(), want)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, docs)
}

// notarised is the answer of both query endpoints.
type notarised struct {
	ServerKeys []json.RawMessage `json:"server_keys"`
}

// notarise returns, for each server of want, the newest document held
// (fetched first when it expires before the wanted time), signed by this
// server.
func (s *Service) notarise(ctx context.Context, want map[string]int64) (notarised, error) {
	out := notarised{ServerKeys: []json.RawMessage{}}
	var mu sync.Mutex
	err := forEachServer(want, func(server string, min int64) error {
		doc, err := s.documentFor(ctx, server, min)
		if err != nil || doc == nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		out.ServerKeys = append(out.ServerKeys, doc)
		return nil
	})
	return out, err
}

// documentFor returns server's document signed by this server, or nil
// when none is known.
func (s *Service) documentFor(ctx context.Context, server string, min int64) ([]byte, error) {
	if server == s.cfg.ServerName {
		return s.OwnDocument()
	}
	doc, until, err := s.storedDocument(ctx, server)
	if err != nil {
		return nil, err
	}
	if (doc == nil || until < min) && s.cfg.Fetcher != nil {
		if err := s.fetchForNotary(ctx, server); err != nil {
			return nil, err
		}
		if doc, _, err = s.storedDocument(ctx, server); err != nil {
			return nil, err
		}
	}
	if doc == nil {
		return nil, nil
	}
	v, err := cjson.Parse(doc, cjson.Strict)
	if err != nil {
		return nil, nil // a stored document always parses; skip it if not
	}
	signed, err := keys.SignJSON(v, s.cfg.ServerName, s.SigningKey())
	if err != nil {
		return nil, err
	}
	return signed.Canonical(), nil
}

// storedDocument returns the newest document held for server.
func (s *Service) storedDocument(ctx context.Context, server string) ([]byte, int64, error) {
	s.mu.Lock()
	r := s.entry(server)
	loaded, doc, until := r.loaded, r.doc, r.docUntil
	s.mu.Unlock()
	if loaded {
		return doc, until, nil
	}
	_, err := s.serverKeys(ctx, server, nil) // loads the database's view
	if err != nil {
		return nil, 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r = s.entry(server)
	return r.doc, r.docUntil, nil
}

// fetchForNotary fetches server's document directly (never through other
// notaries), within the refetch interval rule.
func (s *Service) fetchForNotary(ctx context.Context, server string) error {
	r, err := s.lockIdle(ctx, server)
	if err != nil {
		return err
	}
	if !r.attempt.IsZero() && s.cfg.Now().Sub(r.attempt) < s.cfg.RefetchInterval {
		s.mu.Unlock()
		return nil
	}
	r.attempt = s.cfg.Now()
	done := make(chan struct{})
	r.inflight = done
	s.mu.Unlock()
	err = s.remember(ctx, server, r, s.fetchDirect(ctx, server))
	s.mu.Lock()
	r.inflight = nil
	close(done)
	s.mu.Unlock()
	return err
}
