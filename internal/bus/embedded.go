package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// EmbeddedOptions configures the in-process NATS server.
type EmbeddedOptions struct {
	// StoreDir is the JetStream file store directory (required); in the
	// embedded default it sits in the data directory.
	StoreDir string
	// ListenLoopback opens a client port on 127.0.0.1. Off by default:
	// clients then connect only in process (Embedded.Connect).
	ListenLoopback bool
	// Port is the loopback port when ListenLoopback is set; 0 picks a
	// random free port.
	Port int
	// ServerName names the server (default "axon-embedded").
	ServerName string
	// MaxStore bounds JetStream file storage in bytes; 0 lets the server
	// choose from the free disk space.
	MaxStore int64
	// MaxMemory bounds JetStream memory storage in bytes; default 256 MiB.
	MaxMemory int64
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
}

// Embedded is an in-process nats-server with JetStream.
type Embedded struct {
	srv *server.Server
}

// StartEmbedded starts the server and waits until it accepts connections
// and JetStream is ready, or ctx expires (default limit 30s).
func StartEmbedded(ctx context.Context, o EmbeddedOptions) (*Embedded, error) {
	if o.StoreDir == "" {
		return nil, errors.New("bus: embedded: StoreDir is required")
	}
	if o.ServerName == "" {
		o.ServerName = "axon-embedded"
	}
	if o.MaxMemory == 0 {
		o.MaxMemory = 256 << 20
	}
	sopts := &server.Options{
		ServerName:         o.ServerName,
		Host:               "127.0.0.1",
		Port:               server.RANDOM_PORT,
		DontListen:         !o.ListenLoopback,
		HTTPPort:           0, // no monitoring port
		NoSigs:             true,
		JetStream:          true,
		StoreDir:           o.StoreDir,
		JetStreamMaxMemory: o.MaxMemory,
		JetStreamMaxStore:  o.MaxStore,
	}
	if o.ListenLoopback && o.Port != 0 {
		sopts.Port = o.Port
	}
	if o.MaxStore == 0 {
		sopts.JetStreamMaxStore = -1
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("bus: embedded: %w", err)
	}
	if o.Logger != nil {
		srv.SetLoggerV2(slogAdapter{o.Logger.With("component", "nats-server")}, false, false, false)
	}
	srv.Start()

	wait := 30 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		wait = time.Until(dl)
	}
	if !srv.ReadyForConnections(wait) || !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, errors.New("bus: embedded: server not ready")
	}
	return &Embedded{srv: srv}, nil
}

// ClientURL returns the loopback URL, or "" when the server does not listen.
func (e *Embedded) ClientURL() string {
	if e.srv.Addr() == nil {
		return ""
	}
	return e.srv.ClientURL()
}

// Connect opens a Bus on the embedded server through an in-process
// connection (no TCP).
func (e *Embedded) Connect(ctx context.Context, o Options) (*Bus, error) {
	return connect(ctx, "", o, nats.InProcessServer(e.srv))
}

// Shutdown stops the server and waits until it has stopped and flushed its
// store. Close the Buses connected to it first.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}
