package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Options configures a connection.
type Options struct {
	// Name identifies the client to the server (e.g. "axon-room-7f9c").
	Name string
	// Logger receives connection events; nil discards them.
	Logger *slog.Logger
	// OnStateChange is called (from a NATS callback goroutine) whenever
	// the connection becomes usable (true) or stops being usable (false).
	// Wire readiness and metrics here; it must not block.
	OnStateChange func(connected bool)
	// ReconnectBufSize bounds the bytes buffered while disconnected;
	// default 8 MiB. Publishes beyond it fail fast.
	ReconnectBufSize int
	// ReconnectWaitMax caps the exponential reconnect backoff; default 5s.
	ReconnectWaitMax time.Duration
	// Streams describes the stream layout; see StreamsConfig.
	Streams StreamsConfig
}

// Bus is a connection to NATS JetStream shared by a process's roles. It is
// safe for concurrent use.
type Bus struct {
	nc        *nats.Conn
	js        jetstream.JetStream
	streams   StreamsConfig
	log       *slog.Logger
	connected atomic.Bool
	onState   func(bool)
}

func (b *Bus) setState(up bool) {
	if b.connected.Swap(up) != up && b.onState != nil {
		b.onState(up)
	}
}

// Connect connects to external NATS servers; urls may hold several entries,
// each possibly a comma-separated list. It returns once connected or, if the
// servers are unreachable, as soon as ctx expires (the caller then retries
// or fails start-up). Once connected, it reconnects forever.
func Connect(ctx context.Context, urls []string, o Options) (*Bus, error) {
	var all []string
	for _, u := range urls {
		for _, p := range strings.Split(u, ",") {
			if p = strings.TrimSpace(p); p != "" {
				all = append(all, p)
			}
		}
	}
	if len(all) == 0 {
		return nil, errors.New("bus: no NATS server URL")
	}
	return connect(ctx, strings.Join(all, ","), o)
}

func connect(ctx context.Context, url string, o Options, extra ...nats.Option) (*Bus, error) {
	o.Streams = o.Streams.withDefaults()
	if err := o.Streams.validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ReconnectBufSize == 0 {
		o.ReconnectBufSize = 8 << 20
	}
	if o.ReconnectWaitMax == 0 {
		o.ReconnectWaitMax = 5 * time.Second
	}
	b := &Bus{streams: o.Streams, log: o.Logger.With("component", "bus"), onState: o.OnStateChange}
	setState := b.setState
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(backoff(100*time.Millisecond, o.ReconnectWaitMax)),
		nats.ReconnectBufSize(o.ReconnectBufSize),
		nats.PingInterval(10 * time.Second),
		nats.MaxPingsOutstanding(3),
		nats.Timeout(5 * time.Second),
		nats.ConnectHandler(func(*nats.Conn) {
			b.log.Info("nats connected")
			setState(true)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.log.Info("nats reconnected", "server", nc.ConnectedUrlRedacted())
			setState(true)
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			b.log.Warn("nats disconnected", "err", err)
			setState(false)
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			setState(false)
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			b.log.Warn("nats async error", "subject", subj, "err", err)
		}),
	}
	opts = append(opts, extra...)

	// Retry the initial connection until ctx expires, with the same backoff.
	delay := backoff(100*time.Millisecond, o.ReconnectWaitMax)
	for attempt := 0; ; attempt++ {
		nc, err := nats.Connect(url, opts...)
		if err == nil {
			b.nc = nc
			break
		}
		b.log.Warn("nats connect failed", "attempt", attempt, "err", err)
		t := time.NewTimer(delay(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("bus: connect: %w (last error: %w)", ctx.Err(), err)
		case <-t.C:
		}
	}
	setState(b.nc.IsConnected())
	js, err := jetstream.New(b.nc)
	if err != nil {
		b.nc.Close()
		return nil, fmt.Errorf("bus: jetstream: %w", err)
	}
	b.js = js
	return b, nil
}

// backoff returns exponential backoff from base capped at max, with full
// jitter over the upper half so that a fleet does not reconnect in step.
func backoff(base, max time.Duration) func(attempt int) time.Duration {
	return func(attempt int) time.Duration {
		d := max
		if attempt < 30 {
			d = min(base<<attempt, max)
		}
		half := d / 2
		return half + rand.N(half+1)
	}
}

// Connected reports whether the connection is currently usable.
func (b *Bus) Connected() bool { return b.connected.Load() && b.nc.IsConnected() }

// Partitions returns the configured number of partitions.
func (b *Bus) Partitions() int { return b.streams.Partitions }

// JetStream exposes the underlying JetStream context for uses this package
// does not cover (e.g. key-value buckets). Prefer the helpers.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Conn exposes the core NATS connection, for the request/reply and
// fan-out subjects that are not streams (replies to writers, sync
// wake-ups). Messages there are fire-and-forget: never use it for data
// that must not be lost.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// Close drains the connection (flushing pending publishes and ending
// subscriptions) and closes it. Stop consumers first.
func (b *Bus) Close() error {
	if b.nc.IsClosed() {
		return nil
	}
	if b.nc.IsConnected() {
		done := make(chan struct{})
		b.nc.SetClosedHandler(func(*nats.Conn) { b.setState(false); close(done) })
		if err := b.nc.Drain(); err == nil {
			select {
			case <-done:
				return nil
			case <-time.After(10 * time.Second):
			}
		}
	}
	b.nc.Close()
	b.setState(false)
	return nil
}
