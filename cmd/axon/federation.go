package main

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/axon-hs/axon/internal/config"
	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/metrics"
	"github.com/axon-hs/axon/matrix/acl"
	"github.com/axon-hs/axon/matrix/id"
	"github.com/axon-hs/axon/matrix/keys"
	"github.com/axon-hs/axon/matrix/roomversion"
	"github.com/axon-hs/axon/services/accounts"
	"github.com/axon-hs/axon/services/federation"
	"github.com/axon-hs/axon/services/federation/discovery"
	"github.com/axon-hs/axon/services/federation/fedclient"
	"github.com/axon-hs/axon/services/keyserver"
	"github.com/axon-hs/axon/services/roomserver"
	"github.com/prometheus/client_golang/prometheus"
)

// notaries turns trusted_key_servers into the key server's notaries.
func notaries(cfg *config.Config) ([]keyserver.Notary, error) {
	byName := map[string]*keyserver.Notary{}
	var out []keyserver.Notary
	for _, e := range cfg.TrustedKeyServers {
		t, err := config.ParseTrustedKeyServer(e)
		if err != nil {
			return nil, err // Validate checked them
		}
		n := byName[t.ServerName]
		if n == nil {
			out = append(out, keyserver.Notary{ServerName: t.ServerName, Keys: map[keys.KeyID]ed25519.PublicKey{}})
			n = &out[len(out)-1]
			byName[t.ServerName] = n
		}
		n.Keys[t.KeyID] = t.Key
	}
	return out, nil
}

// federationHandler is the Server-Server API listener's handler: the key
// endpoints and /version, which need no request signature, and the
// authenticated API.
func (s *server) federationHandler(ctx context.Context, reg prometheus.Registerer, ks *keyserver.Service) (http.Handler, error) {
	acc, err := accounts.New(s.db, accounts.Config{ServerName: s.cfg.ServerName, Registration: string(s.cfg.Registration), Logger: s.log.With("role", "federation")})
	if err != nil {
		return nil, err
	}
	rd := roomserver.NewReader(s.db)
	api, err := federation.New(federation.Config{
		ServerName: string(s.cfg.ServerName), Keys: ks, Logger: s.log.With("role", "federation"),
		Profile: func(ctx context.Context, userID string) (string, string, error) {
			return acc.Profile(ctx, id.UserID(userID))
		},
		RoomForAlias: func(ctx context.Context, alias string) (string, []string, error) {
			roomID, err := rd.RoomForAlias(ctx, alias)
			if err != nil || roomID == "" {
				return "", nil, err
			}
			servers, err := rd.ResidentServers(ctx, roomID)
			return roomID, servers, err
		},
		DB: s.db,
		RoomVersion: func(ctx context.Context, roomID string) (*roomversion.Version, error) {
			info, err := rd.Room(ctx, roomID)
			if errors.Is(err, roomserver.ErrNotFound) {
				return nil, nil
			}
			return info.Version, err
		},
		Extremities: func(ctx context.Context, roomID string) ([]string, error) {
			info, err := rd.Room(ctx, roomID)
			return info.Extremities, err
		},
		Submit:  s.sub.Submit,
		Client:  s.fedClient,
		Reader:  rd,
		Key:     ks.SigningKey(),
		Invites: roomserver.NewInvites(s.db, s.bus, func() int64 { return time.Now().UnixMilli() }),
		EDUs:    s.eduReceiver(ctx),
		Lookups: s.federationLookups(ctx),
		ServerACL: func(ctx context.Context, roomID string) (*acl.ACL, error) {
			info, err := rd.Room(ctx, roomID)
			if err != nil {
				return nil, err
			}
			ev, err := rd.StateEvent(ctx, info.Version, roomID, info.HeadSeq, "m.room.server_acl", "")
			if errors.Is(err, roomserver.ErrNotFound) {
				return nil, nil
			}
			if err != nil {
				return nil, err
			}
			return acl.Parse(ev.Content()), nil
		},
	})
	if err != nil {
		return nil, err
	}
	s.goRole("federation-janitor", func() error { api.RunJanitor(ctx, time.Hour); return nil })
	mux := http.NewServeMux()
	mux.Handle("GET /livez", http.HandlerFunc(s.livez))
	mux.Handle("GET /readyz", http.HandlerFunc(s.readyz))
	ks.Routes(mux)
	api.Routes(mux)
	mux.Handle("GET /_matrix/federation/v1/version", httpx.Handle(func(w http.ResponseWriter, r *http.Request) error {
		return httpx.WriteJSON(w, http.StatusOK, map[string]any{"server": map[string]string{"name": "Axon", "version": versionString()}})
	}))
	httpm := metrics.NewHTTP(reg, "federation")
	maxRequests, _ := s.cfg.MaxRequests.Int()
	return httpx.Chain(
		httpx.RequestID,
		httpm.Middleware,
		httpx.InFlight(maxRequests, 0, nil),
		httpx.AccessLog(s.log),
		httpx.Recover(s.log),
		httpx.BodyLimit(federation.DefaultBodyLimit),
	)(metrics.CaptureRoute(httpx.WrapMux(mux))), nil
}

// federationTLS returns the federation listener's TLS configuration (nil
// for plain HTTP behind a proxy). The certificate is read again when its
// files change, so a renewed certificate needs no restart.
func federationTLS(cfg *config.Config) (*tls.Config, error) {
	if cfg.FederationTLSCert == "" {
		return nil, nil
	}
	cr := &certReloader{certFile: cfg.FederationTLSCert, keyFile: cfg.FederationTLSKey}
	if _, err := cr.load(); err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: cr.get}, nil
}

// certReloader serves a certificate from files, reloading them at most
// once a minute when their modification time changes.
type certReloader struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time
	checked time.Time
}

func (c *certReloader) load() (*tls.Certificate, error) {
	st, err := os.Stat(c.certFile)
	if err != nil {
		return nil, fmt.Errorf("federation_tls_cert: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return nil, fmt.Errorf("federation_tls_cert/federation_tls_key: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cert, c.modTime, c.checked = &cert, st.ModTime(), time.Now()
	return &cert, nil
}

func (c *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	cert, stale := c.cert, time.Since(c.checked) > time.Minute
	if stale {
		c.checked = time.Now()
	}
	mod := c.modTime
	c.mu.Unlock()
	if !stale {
		return cert, nil
	}
	if st, err := os.Stat(c.certFile); err == nil && !st.ModTime().Equal(mod) {
		if fresh, err := c.load(); err == nil {
			return fresh, nil
		}
		// A half-written renewal: keep serving the certificate we have.
	}
	return cert, nil
}

// federationClient builds the client this process reaches other servers
// with: discovery over the system's DNS (or s.fedDNS in tests), TLS
// verified against the system roots plus federation_ca_file.
func (s *server) federationClient(key *keys.SigningKey) (*fedclient.Client, error) {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if f := s.cfg.FederationCAFile; f != "" {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("federation_ca_file: %w", err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("federation_ca_file %s: no PEM certificate in it", f)
		}
	}
	res := discovery.NewResolver(discovery.Config{DNS: s.fedDNS, RootCAs: roots, Logger: s.log.With("area", "discovery")})
	tr := discovery.NewTransport(res, discovery.TransportConfig{})
	s.onClose = append(s.onClose, func() {
		tr.CloseIdleConnections()
		res.Close()
	})
	return fedclient.New(fedclient.Config{ServerName: string(s.cfg.ServerName), Key: key, Transport: tr, Logger: s.log.With("area", "fedclient")})
}

// remoteJoiner joins local users to rooms on other servers, invites users
// of other servers and rejects their invites.
func (s *server) remoteJoiner(key *keys.SigningKey, ks *keyserver.Service) *federation.Joiner {
	return &federation.Joiner{ServerName: string(s.cfg.ServerName), Key: key, Client: s.fedClient, Keys: ks,
		Submit: s.sub.Submit, Reader: roomserver.NewReader(s.db),
		Invites: roomserver.NewInvites(s.db, s.bus, func() int64 { return time.Now().UnixMilli() }),
		Logger:  s.log.With("area", "federation-join")}
}

// remoteAlias resolves an alias of another server with its
// /query/directory.
func (s *server) remoteAlias(ctx context.Context, alias string) (string, []string, error) {
	al, err := id.ParseRoomAlias(alias)
	if err != nil {
		return "", nil, httpx.InvalidParam("not a room alias: " + alias)
	}
	var resp struct {
		RoomID  string   `json:"room_id"`
		Servers []string `json:"servers"`
	}
	err = s.fedClient.GetJSON(ctx, string(al.Server()), "/_matrix/federation/v1/query/directory?room_alias="+url.QueryEscape(alias), &resp)
	var fe *fedclient.Error
	if errors.As(err, &fe) && fe.Status == http.StatusNotFound {
		return "", nil, httpx.NotFound("no room has the alias " + alias)
	}
	if err != nil {
		return "", nil, err
	}
	if _, err := id.ParseRoomID(resp.RoomID); err != nil {
		return "", nil, fmt.Errorf("the directory of %s answered an invalid room ID for %s", al.Server(), alias)
	}
	return resp.RoomID, append([]string{string(al.Server())}, resp.Servers...), nil
}
