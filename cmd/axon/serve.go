package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/axon-hs/axon/internal/bus"
	"github.com/axon-hs/axon/internal/config"
	"github.com/axon-hs/axon/internal/coord"
	"github.com/axon-hs/axon/internal/httpx"
	"github.com/axon-hs/axon/internal/metrics"
	"github.com/axon-hs/axon/internal/ratelimit"
	"github.com/axon-hs/axon/internal/signingkey"
	"github.com/axon-hs/axon/internal/store"
	"github.com/axon-hs/axon/matrix/id"
	"github.com/axon-hs/axon/services/accounts"
	"github.com/axon-hs/axon/services/clientapi"
	"github.com/axon-hs/axon/services/federation"
	"github.com/axon-hs/axon/services/federation/discovery"
	"github.com/axon-hs/axon/services/federation/fedclient"
	"github.com/axon-hs/axon/services/keyserver"
	"github.com/axon-hs/axon/services/pushrules"
	"github.com/axon-hs/axon/services/roomserver"
	"github.com/axon-hs/axon/services/sender"
	"github.com/axon-hs/axon/services/syncapi"
	"github.com/axon-hs/axon/services/userdata"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// Shutdown budget (DESIGN.md "Graceful everything"): readiness fails
// first while serving continues for readinessGrace, so that load balancers
// stop sending new requests; then long-polls end, HTTP drains within
// drainTimeout, consumers drain and the process exits. The Helm chart's
// terminationGracePeriodSeconds is derived from the sum.
const (
	readinessGrace = 5 * time.Second
	drainTimeout   = 20 * time.Second
)

// allMigrations are the migration sets of every area, in one version space.
func allMigrations() []fs.FS {
	return []fs.FS{accounts.Migrations(), roomserver.Migrations(), syncapi.Migrations(), clientapi.Migrations(), userdata.Migrations(), pushrules.Migrations(), keyserver.Migrations(), federation.Migrations(), sender.Migrations()}
}

// cmdServe runs the server until SIGTERM or SIGINT.
func cmdServe(ctx context.Context, args, env []string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(args, env, os.ReadFile)
	if err != nil {
		return exitForLoadError(err, stdout, stderr, config.PrintDefaults)
	}
	log := newLogger(cfg, stderr)
	s := &server{cfg: cfg, log: log, readinessGrace: readinessGrace, drainTimeout: drainTimeout}
	if err := s.start(ctx); err != nil {
		log.Error("axon: start-up failed", "err", err)
		s.close()
		return exitFailed
	}
	<-ctx.Done()
	s.shutdown()
	return exitOK
}

// server is one axon process: its dependencies, roles and listeners.
type server struct {
	cfg *config.Config
	log *slog.Logger

	db    *store.DB
	emb   *bus.Embedded
	bus   *bus.Bus
	sub   *roomserver.Submitter
	rooms *roomserver.Server // the room role, when this process has it
	snd   *sender.Sender     // the sender role, when this process has it
	sync  *syncapi.API
	http  []*http.Server
	addrs []string // bound addresses, in the order of http

	readinessGrace, drainTimeout time.Duration
	shutdownOnce                 sync.Once
	// bcryptCost overrides the password hashing cost (tests; 0 = the
	// accounts default).
	bcryptCost int
	// fedDNS, when set, answers the federation client's DNS lookups
	// (tests; nil = the system's resolver).
	fedDNS discovery.DNS
	// fedClient reaches other servers.
	fedClient *fedclient.Client
	// onClose runs at close, after the roles have stopped.
	onClose []func()
	// coord is the etcd coordinator in cluster mode (--etcd), nil with
	// the in-process one; coordTTL overrides its lease TTL (tests; 0 =
	// coord.DefaultTTL).
	coord    *coord.Etcd
	coordTTL time.Duration

	draining atomic.Bool
	roles    sync.WaitGroup
	stopRole context.CancelFunc
}

func (s *server) start(ctx context.Context) error {
	cfg, log := s.cfg, s.log
	if err := checkClusterMode(cfg); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	ks, created, err := signingkey.LoadOrCreate(cfg.SigningKeyPath, nil)
	if err != nil {
		return fmt.Errorf("signing key: %w", err)
	}
	if created {
		log.Info("axon: generated a new signing key", "path", cfg.SigningKeyPath, "key_id", ks[0].ID)
	}
	reg := metrics.NewRegistry()

	// Database: the embedded SQLite default migrates itself; a shared
	// PostgreSQL/CockroachDB is migrated by `axon migrate` (once per
	// rollout, under a lock), and this process waits for it.
	if cfg.DatabaseKind() == config.DatabaseSQLite {
		if err := os.MkdirAll(filepath.Dir(cfg.Database), 0o700); err != nil {
			return fmt.Errorf("database directory: %w", err)
		}
	}
	dbm, err := store.NewMetrics(reg)
	if err != nil {
		return err
	}
	opts := store.Options{ApplicationName: "axon", Logger: log, Migrations: allMigrations(),
		OnRetry: dbm.OnRetry, OnStatementTimeout: dbm.OnStatementTimeout}
	if s.db, err = openRetrying(ctx, cfg.Database, opts, log); err != nil {
		return err
	}
	if err := dbm.Observe(reg, s.db); err != nil {
		return err
	}
	if cfg.DatabaseKind() == config.DatabaseSQLite {
		if err := s.db.Migrate(ctx); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	} else if err := waitSchema(ctx, s.db, log); err != nil {
		return err
	}

	// NATS: embedded unless servers are given.
	bopts := bus.Options{Name: "axon", Logger: log, Streams: bus.StreamsConfig{Replicas: cfg.StreamReplicas()}}
	if len(cfg.NATS) == 0 {
		s.emb, err = bus.StartEmbedded(ctx, bus.EmbeddedOptions{StoreDir: filepath.Join(cfg.DataDir, "nats"), Logger: log})
		if err != nil {
			return fmt.Errorf("embedded NATS: %w", err)
		}
		s.bus, err = s.emb.Connect(ctx, bopts)
	} else {
		s.bus, err = bus.Connect(ctx, cfg.NATS, bopts)
	}
	if err != nil {
		return fmt.Errorf("NATS: %w", err)
	}
	if err := s.bus.EnsureStreams(ctx); err != nil {
		return fmt.Errorf("NATS streams: %w", err)
	}
	if err := bus.RegisterMetrics(reg, s.bus); err != nil {
		return err
	}

	roleCtx, stopRole := context.WithCancel(context.WithoutCancel(ctx))
	s.stopRole = stopRole
	co, err := s.coordinator(reg)
	if err != nil {
		return err
	}
	key := ks[0]
	server := string(cfg.ServerName)
	nots, err := notaries(cfg)
	if err != nil {
		return err
	}
	if s.fedClient, err = s.federationClient(key); err != nil {
		return err
	}
	keySrv, err := keyserver.New(s.db, keyserver.Config{ServerName: server, Keys: ks, Notaries: nots, Fetcher: s.fedClient, Logger: log.With("area", "keys")})
	if err != nil {
		return err
	}

	if cfg.HasRole(config.RoleRoom) {
		rm, err := roomserver.NewMetrics(reg)
		if err != nil {
			return err
		}
		rs, err := roomserver.New(s.db, s.bus, roomserver.Config{ServerName: server, Key: key, Logger: log.With("role", "room"), Metrics: rm})
		if err != nil {
			return err
		}
		s.goRole("room", func() error { return rs.Run(roleCtx, co) })
		s.rooms = rs
	}

	if cfg.HasRole(config.RoleSender) {
		snd := sender.New(s.db, s.bus, sender.Config{ServerName: server, Client: s.fedClient,
			Reader: roomserver.NewReader(s.db), Logger: log.With("role", "sender")})
		// Through co the sender owns the queue consumer (one partition)
		// and the destination partitions it delivers.
		s.goRole("sender", func() error { return snd.Run(roleCtx, co) })
		s.snd = snd
	}

	// The sync role's wake-ups travel over NATS so that every sync worker
	// hears every indexer; this process's own long-polls are woken
	// directly.
	notifier := syncapi.NewNotifier()
	var local *syncapi.Notifier
	if cfg.HasRole(config.RoleSync) {
		local = notifier
	}
	wakes, err := syncapi.NewWakePublisher(s.bus.Conn(), local, log)
	if err != nil {
		return err
	}
	if cfg.HasRole(config.RoleSync) {
		if err := syncapi.RegisterMetrics(reg, notifier); err != nil {
			return err
		}
		if _, err := s.bus.Conn().Subscribe(syncapi.WakeSubject, wakes.Handler()); err != nil {
			return fmt.Errorf("NATS: subscribe to sync wake-ups: %w", err)
		}
		ix := syncapi.NewIndexer(s.db, s.bus, log.With("role", "sync"), wakes.Wake)
		s.goRole("sync-indexer", func() error {
			return co.Own(roleCtx, syncapi.IndexerResource, 1, func(ctx context.Context, _ int) {
				if err := ix.Run(ctx); err != nil {
					log.Error("sync: indexer stopped", "err", err)
				}
			})
		})
	}

	mux := http.NewServeMux()
	mux.Handle("GET /livez", http.HandlerFunc(s.livez))
	mux.Handle("GET /readyz", http.HandlerFunc(s.readyz))
	if cfg.HasRole(config.RoleClient) || cfg.HasRole(config.RoleSync) || cfg.HasRole(config.RoleFederation) {
		if s.sub, err = roomserver.NewSubmitter(s.bus); err != nil {
			return err
		}
		if s.rooms != nil {
			s.rooms.ReplyLocally(s.sub)
		}
	}
	if cfg.HasRole(config.RoleClient) || cfg.HasRole(config.RoleSync) {
		// The account hooks need the room endpoints, which need the
		// account service's authentication: tie the knot through rooms.
		var rooms *clientapi.API
		var ud *userdata.Service
		out := s.senderQueue()
		acc, err := accounts.New(s.db, accounts.Config{
			ServerName:   cfg.ServerName,
			Registration: string(cfg.Registration),
			SharedSecret: cfg.RegistrationSharedSecret.Reveal(),
			BcryptCost:   s.bcryptCost,
			Logger:       log.With("area", "accounts"),
			OnProfileChange: func(ctx context.Context, userID id.UserID, name, avatar string) error {
				return rooms.ProfileChanged(ctx, string(userID), name, avatar)
			},
			OnDeactivate: func(ctx context.Context, userID id.UserID) error {
				return rooms.LeaveAll(ctx, string(userID))
			},
			OnDevicesDeleted: func(ctx context.Context, userID id.UserID, devices []string) error {
				var errs []error
				for _, d := range devices {
					errs = append(errs, ud.DeleteDevice(ctx, string(userID), d))
				}
				return errors.Join(errs...)
			},
			OnDeviceListChange: func(ctx context.Context, userID id.UserID, changes []accounts.DeviceChange) error {
				return deviceListChanged(ctx, ud, out, string(userID), changes)
			},
		})
		if err != nil {
			return err
		}
		s.goRole("accounts-janitor", func() error { acc.RunJanitor(roleCtx, 10*time.Minute); return nil })
		authn := func(r *http.Request) (clientapi.Device, error) {
			d, err := acc.Authenticate(r)
			if err != nil {
				return clientapi.Device{}, err
			}
			return clientapi.Device{UserID: string(d.UserID), DeviceID: d.DeviceID, IsGuest: d.IsGuest}, nil
		}
		profile := func(ctx context.Context, userID string) (string, string, error) {
			return acc.Profile(ctx, id.UserID(userID))
		}
		userLimit, err := newLimiter(cfg.RateLimitUser)
		if err != nil {
			return err
		}
		joiner := s.remoteJoiner(key, keySrv)
		rooms = clientapi.New(s.db, s.sub, authn, profile, clientapi.Config{
			ServerName: server, Key: key, Logger: log.With("role", "client"),
			LimitUser: func(userID string) (bool, time.Duration) { return userLimit.Allow(userID) },
			Capabilities: func(d clientapi.Device) map[string]any {
				return acc.Capabilities(&accounts.Device{UserID: id.UserID(d.UserID), DeviceID: d.DeviceID, IsGuest: d.IsGuest})
			},
			RemoteJoin:   joiner.Join,
			RemoteAlias:  s.remoteAlias,
			RemoteInvite: joiner.Invite,
			RejectInvite: joiner.RejectInvite,
			RemoteKnock:  joiner.Knock,
			Backfill:     joiner.Backfill,
		})
		ud, err = s.userData(roleCtx, authn, notifier, wakes, acc, out)
		if err != nil {
			return err
		}
		push := pushrules.New(s.db, func(r *http.Request) (pushrules.Device, error) {
			d, err := authn(r)
			if err == nil && d.IsGuest {
				err = httpx.GuestAccessForbidden("guests have no push rules")
			}
			return pushrules.Device{UserID: d.UserID}, err
		}, pushrules.Config{Logger: log.With("area", "pushrules")})
		if cfg.HasRole(config.RoleClient) {
			acc.Routes(mux)
			rooms.Routes(mux)
			ud.Routes(mux)
			push.Routes(mux)
		}
		syncAPI := syncapi.NewAPI(s.db, notifier, func(r *http.Request) (string, string, error) {
			d, err := authn(r)
			return d.UserID, d.DeviceID, err
		}, syncapi.Config{Logger: log.With("role", "sync"), UserData: ud, PushRules: push.Rules})
		syncAPI.FilterRoutes(mux)
		if cfg.HasRole(config.RoleSync) {
			s.sync = syncAPI
			s.sync.Routes(mux)
		}
	}

	httpm := metrics.NewHTTP(reg, "client")
	ipLimit, err := newLimiter(cfg.RateLimitIP)
	if err != nil {
		return err
	}
	// Validate checked both bounds.
	maxRequests, _ := cfg.MaxRequests.Int()
	maxLongPolls, _ := cfg.MaxLongPolls.Int()
	handler := httpx.Chain(
		httpx.RequestID,
		httpm.Middleware,
		httpx.InFlight(maxRequests, maxLongPolls, func(r *http.Request) bool {
			return strings.HasSuffix(r.URL.Path, "/sync")
		}),
		ratelimit.Middleware(ipLimit, ratelimit.IPKey(cfg.TrustedProxyPrefixes())),
		httpx.AccessLog(log),
		httpx.Recover(log),
		httpx.CORS,
		httpx.BodyLimit(httpx.DefaultBodyLimit),
	)(metrics.CaptureRoute(httpx.WrapMux(mux)))
	if err := s.listen(cfg.Listen, handler); err != nil {
		return err
	}
	if cfg.HasRole(config.RoleFederation) {
		tlsCfg, err := federationTLS(cfg)
		if err != nil {
			return err
		}
		fh, err := s.federationHandler(roleCtx, reg, keySrv)
		if err != nil {
			return err
		}
		if err := s.listenTLS(cfg.FederationListen, fh, tlsCfg); err != nil {
			return err
		}
	}
	if cfg.MetricsListen != "" {
		mm := http.NewServeMux()
		mm.Handle("GET /metrics", metrics.Handler(reg, metrics.WithErrorLogger(log)))
		mm.Handle("GET /livez", http.HandlerFunc(s.livez))
		mm.Handle("GET /readyz", http.HandlerFunc(s.readyz))
		// Profiles for operators, on the metrics listener only (keep it
		// off the public network).
		mm.HandleFunc("GET /debug/pprof/", pprof.Index)
		mm.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mm.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
		if err := s.listen(cfg.MetricsListen, mm); err != nil {
			return err
		}
	}
	log.Info("axon: serving", "server_name", server, "client_api", s.addrs[0], "roles", fmt.Sprint(cfg.Roles),
		"database", cfg.DatabaseKind(), "nats", natsMode(cfg), "coordinator", coordMode(s.coord))
	return nil
}

// checkClusterMode refuses --etcd without what the processes sharing
// partitions must also share: with an embedded NATS server each process
// would only ever see its own writes (those for partitions owned elsewhere
// would wait forever), and with SQLite each would have its own rooms.
func checkClusterMode(cfg *config.Config) error {
	if len(cfg.Etcd) == 0 {
		return nil
	}
	if len(cfg.NATS) == 0 {
		return errors.New("--etcd needs --nats: the processes that share partitions must share one NATS cluster, not each an embedded server")
	}
	if cfg.DatabaseKind() == config.DatabaseSQLite {
		return errors.New("--etcd needs a postgres:// --database: the processes that share partitions must share one database, not each a SQLite file")
	}
	return nil
}

// coordinator decides which partitions this process owns (room
// partitions, sender destinations, the sync indexer): with --etcd, shared
// with the other processes of the deployment through etcd, under
// /axon/<server name>/coord/ so that deployments can share an etcd;
// otherwise this process owns them all. A process whose roles own no
// partitions (client, federation, prober) does not connect to etcd, so
// that losing etcd does not make it unready for nothing.
func (s *server) coordinator(reg prometheus.Registerer) (coord.Coordinator, error) {
	cfg := s.cfg
	if len(cfg.Etcd) == 0 || !(cfg.HasRole(config.RoleRoom) || cfg.HasRole(config.RoleSender) || cfg.HasRole(config.RoleSync)) {
		return coord.NewLocal(s.log), nil
	}
	co, err := coord.NewEtcd(coord.EtcdConfig{
		Endpoints:  cfg.Etcd,
		Prefix:     "/axon/" + string(cfg.ServerName) + "/coord/",
		TTL:        s.coordTTL,
		Logger:     s.log.With("area", "coord"),
		Registerer: reg,
	})
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	s.coord = co
	s.log.Info("axon: sharing partitions through etcd", "worker", co.ID())
	return co, nil
}

// newLimiter builds a limiter from a rate limit setting (nil when off).
func newLimiter(rl config.RateLimit) (*ratelimit.Limiter, error) {
	rate, burst, err := rl.Parse()
	if err != nil || rate == 0 {
		return nil, err
	}
	return ratelimit.New(ratelimit.Config{Rate: rate, Burst: burst}), nil
}

// senderQueue is the queue of local users' EDUs for other servers: it
// writes the sender's tables, then pokes the destinations' owners, directly
// when this process runs the sender role and owns them, else over NATS
// (sender.PokeSubject), so the client role needs no sender role in its
// process.
func (s *server) senderQueue() *sender.Queue {
	nc := s.bus.Conn()
	return sender.NewQueue(s.db, sender.QueueConfig{
		ServerName: string(s.cfg.ServerName),
		Reader:     roomserver.NewReader(s.db),
		Poke: func(dests []string) {
			if s.snd != nil {
				s.snd.Poke(dests)
				return
			}
			if err := nc.Publish(sender.PokeSubject, sender.EncodePoke(dests)); err != nil {
				s.log.Warn("sender: poking the sender role failed; its sweep will find the EDUs", "err", err)
			}
		},
		Logger: s.log.With("area", "sender-queue"),
	})
}

// deviceListChanged announces a local user's device changes: in the
// device_lists of the users sharing a room with them, and in an
// m.device_list_update EDU per change to the other servers of their rooms.
func deviceListChanged(ctx context.Context, ud *userdata.Service, out *sender.Queue, userID string, changes []accounts.DeviceChange) error {
	edus := make([]sender.DeviceListChange, len(changes))
	for i, c := range changes {
		edus[i] = sender.DeviceListChange{DeviceID: c.DeviceID, DisplayName: c.DisplayName,
			Deleted: c.Deleted, StreamID: c.StreamID, PrevID: c.PrevID}
	}
	return errors.Join(ud.LocalDeviceListChanged(ctx, userID, changes[len(changes)-1].StreamID),
		out.DeviceListUpdate(ctx, userID, edus...))
}

// userData wires services/userdata: its wake-ups reach every sync worker
// over NATS; typing updates travel between processes on their own subject.
// Local users' EDUs for other servers go into the sender's queues through
// out (senderQueue).
func (s *server) userData(ctx context.Context, authn func(*http.Request) (clientapi.Device, error), n *syncapi.Notifier, wakes *syncapi.WakePublisher, acc *accounts.Service, out *sender.Queue) (*userdata.Service, error) {
	nc := s.bus.Conn()
	rd := roomserver.NewReader(s.db)
	ud := s.newUserData(rd, wakes, acc, func(r *http.Request) (userdata.Device, error) {
		d, err := authn(r)
		return userdata.Device{UserID: d.UserID, DeviceID: d.DeviceID, IsGuest: d.IsGuest}, err
	}, func(c *userdata.Config) {
		c.Logger = s.log.With("area", "userdata")
		c.LocalWake = func(users, rooms []string) {
			n.Notify(syncapi.Wake{Users: users, Rooms: rooms})
		}
		c.Outbound = out
	})
	if _, err := nc.Subscribe(userdata.TypingSubject, func(m *nats.Msg) { ud.ReceiveTyping(m.Data) }); err != nil {
		return nil, fmt.Errorf("NATS: subscribe to typing: %w", err)
	}
	s.goRole("userdata", func() error { ud.Run(ctx); return nil })
	return ud, nil
}

// newUserData builds a userdata service on the room role's tables: its
// wake-ups reach every sync worker over NATS, typing changes are published
// on userdata.TypingSubject; mod sets what differs between the client
// role's service and the federation role's.
func (s *server) newUserData(rd *roomserver.Reader, wakes *syncapi.WakePublisher, acc *accounts.Service,
	authn userdata.Authenticator, mod func(*userdata.Config)) *userdata.Service {
	nc := s.bus.Conn()
	cfg := userdata.Config{
		ServerName: string(s.cfg.ServerName),
		Devices:    acc.DeviceIDs,
		Rooms: func(ctx context.Context, userID string) ([]string, error) {
			return rd.RoomsOf(ctx, userID, "join")
		},
		PublishTyping: func(data []byte) error { return nc.Publish(userdata.TypingSubject, data) },
	}
	mod(&cfg)
	return userdata.New(s.db, authn,
		func(ctx context.Context, roomID, userID string) (bool, error) {
			m, err := rd.MembershipOf(ctx, roomID, userID)
			return m.Membership == "join", err
		},
		rd.JoinedMembersOf,
		func(users, rooms []string) {
			// A room's wake-up reaches its members' long-polls already.
			if len(rooms) > 0 {
				users = nil
			}
			wakes.Wake(syncapi.Wake{Users: users, Rooms: rooms})
		},
		cfg)
}

func coordMode(c *coord.Etcd) string {
	if c == nil {
		return "in-process"
	}
	return "etcd"
}

func natsMode(cfg *config.Config) string {
	if len(cfg.NATS) == 0 {
		return "embedded"
	}
	return "external"
}

func (s *server) goRole(name string, run func() error) {
	s.roles.Add(1)
	go func() {
		defer s.roles.Done()
		if err := run(); err != nil {
			s.log.Error("axon: role stopped with an error", "role", name, "err", err)
		}
	}()
}

func (s *server) listen(addr string, h http.Handler) error { return s.listenTLS(addr, h, nil) }

// listenTLS serves h on addr, over TLS when tlsCfg is set.
func (s *server) listenTLS(addr string, h http.Handler, tlsCfg *tls.Config) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      90 * time.Second, // above the longest /sync long-poll
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.http = append(s.http, srv)
	s.addrs = append(s.addrs, ln.Addr().String())
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("axon: HTTP server failed", "addr", addr, "err", err)
		}
	}()
	return nil
}

// livez checks the process only: a liveness probe that checked NATS or the
// database would turn a blip of theirs into a restart storm.
func (s *server) livez(w http.ResponseWriter, _ *http.Request) {
	_ = httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "alive"})
}

// readyz includes the dependencies and the draining flag.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	problems := map[string]string{}
	if s.draining.Load() {
		problems["process"] = "draining"
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.db.Ping(ctx); err != nil {
		problems["database"] = "unreachable"
	} else if err := s.db.CheckSchema(ctx, s.db.LatestVersion()); err != nil {
		problems["database"] = "schema older than this binary: run axon migrate"
	}
	if !s.bus.Connected() {
		problems["nats"] = "disconnected"
	}
	degraded := map[string]string{}
	if s.coord != nil {
		coordinatorReadiness(s.cfg, s.coord.Healthy(), problems, degraded)
	}
	if len(problems) > 0 {
		_ = httpx.WriteJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unready", "problems": problems})
		return
	}
	if len(degraded) > 0 {
		_ = httpx.WriteJSON(w, http.StatusOK, map[string]any{"status": "ready", "degraded": degraded})
		return
	}
	_ = httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// coordinatorReadiness files the coordinator's health err. Ownership
// through the coordinator is how the room and sender roles work; the
// client, federation and sync roles serve without it (only the sync
// indexer waits for it), so losing etcd does not take a process with only
// those out of the load balancer: it is reported, as degraded.
func coordinatorReadiness(cfg *config.Config, err error, problems, degraded map[string]string) {
	switch {
	case err == nil:
	case cfg.HasRole(config.RoleRoom) || cfg.HasRole(config.RoleSender):
		problems["coordinator"] = err.Error()
	default:
		degraded["coordinator"] = err.Error()
	}
}

// shutdown: readiness fails first while serving continues, long-polls end
// early, HTTP drains, consumers drain, then everything closes.
func (s *server) shutdown() { s.shutdownOnce.Do(s.doShutdown) }

func (s *server) doShutdown() {
	s.log.Info("axon: shutting down", "readiness_grace", s.readinessGrace, "drain_timeout", s.drainTimeout)
	s.draining.Store(true)
	time.Sleep(s.readinessGrace)
	if s.sync != nil {
		s.sync.Drain()
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.drainTimeout)
	defer cancel()
	for _, h := range s.http {
		if err := h.Shutdown(ctx); err != nil {
			s.log.Warn("axon: HTTP drain incomplete", "err", err)
		}
	}
	s.close()
	s.log.Info("axon: stopped")
}

func (s *server) close() {
	if s.stopRole != nil {
		s.stopRole()
		s.roles.Wait()
	}
	// The roles have drained and released their partitions one by one;
	// revoking the lease removes whatever is left at once, so that the
	// other workers take over now rather than after the TTL.
	if s.coord != nil {
		if err := s.coord.Close(); err != nil {
			s.log.Warn("axon: closing the etcd coordinator", "err", err)
		}
	}
	if s.sub != nil {
		_ = s.sub.Close()
	}
	for _, f := range s.onClose {
		f()
	}
	if s.bus != nil {
		_ = s.bus.Close()
	}
	if s.emb != nil {
		s.emb.Shutdown()
	}
	if s.db != nil {
		_ = s.db.Close()
	}
}

// openRetrying opens the database, retrying with backoff while it is
// unreachable (reconnect forever), until ctx ends.
func openRetrying(ctx context.Context, dsn string, opts store.Options, log *slog.Logger) (*store.DB, error) {
	delay := 500 * time.Millisecond
	for {
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		db, err := store.Open(octx, dsn, opts)
		cancel()
		if err == nil {
			return db, nil
		}
		log.Warn("axon: database unreachable; retrying", "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("database: %w", err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Second)
	}
}

// waitSchema waits until `axon migrate` has brought the schema up to what
// this binary needs.
func waitSchema(ctx context.Context, db *store.DB, log *slog.Logger) error {
	for {
		err := db.CheckSchema(ctx, db.LatestVersion())
		if err == nil {
			return nil
		}
		log.Warn("axon: waiting for the database schema; run `axon migrate`", "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("database schema: %w", err)
		case <-time.After(2 * time.Second):
		}
	}
}
