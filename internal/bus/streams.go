package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream names a JetStream stream defined by this package.
type Stream string

// The streams between roles. Their subjects are "<prefix>.<partition>".
const (
	// RoomInput carries writes (client sends, federation PDUs, joins, …)
	// to the room partition owner. Subjects: axon.room.input.<partition>.
	RoomInput Stream = "ROOM_INPUT"
	// RoomEvents carries committed room events from the outbox relay to
	// sync, federation sender, appservices and push.
	// Subjects: axon.room.events.<partition>.
	RoomEvents Stream = "ROOM_EVENTS"
)

// Streams lists every stream that EnsureStreams manages.
func Streams() []Stream { return []Stream{RoomInput, RoomEvents} }

// SubjectPrefix returns the subject prefix of s ("" for an unknown stream).
func (s Stream) SubjectPrefix() string {
	switch s {
	case RoomInput:
		return "axon.room.input"
	case RoomEvents:
		return "axon.room.events"
	}
	return ""
}

// Subject returns the subject of partition p of s.
func (s Stream) Subject(p int) string {
	return s.SubjectPrefix() + "." + strconv.Itoa(p)
}

// StreamLimits bounds one stream. Zero fields take the defaults.
type StreamLimits struct {
	MaxBytes   int64         // default 1 GiB
	MaxAge     time.Duration // default 24h (RoomInput), 7 days (RoomEvents)
	MaxMsgSize int32         // default 1 MiB (NATS's default max_payload)
	Duplicates time.Duration // de-duplication window, default 2 minutes
}

// StreamsConfig describes the streams. The zero value is the embedded
// default: 64 partitions, one replica.
type StreamsConfig struct {
	Partitions int // power of two, default DefaultPartitions
	Replicas   int // default 1; use 3 in a cluster
	RoomInput  StreamLimits
	RoomEvents StreamLimits
}

func (c StreamsConfig) withDefaults() StreamsConfig {
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	c.RoomInput = c.RoomInput.withDefaults(24 * time.Hour)
	c.RoomEvents = c.RoomEvents.withDefaults(7 * 24 * time.Hour)
	return c
}

func (l StreamLimits) withDefaults(maxAge time.Duration) StreamLimits {
	if l.MaxBytes == 0 {
		l.MaxBytes = 1 << 30
	}
	if l.MaxAge == 0 {
		l.MaxAge = maxAge
	}
	if l.MaxMsgSize == 0 {
		l.MaxMsgSize = 1 << 20
	}
	if l.Duplicates == 0 {
		l.Duplicates = 2 * time.Minute
	}
	return l
}

func (c StreamsConfig) validate() error {
	if err := ValidPartitions(c.Partitions); err != nil {
		return err
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		return fmt.Errorf("bus: replicas %d not in [1, 5]", c.Replicas)
	}
	return nil
}

// streamConfig is the single definition of each stream's JetStream config.
func (c StreamsConfig) streamConfig(s Stream) (jetstream.StreamConfig, error) {
	cfg := jetstream.StreamConfig{
		Name:              string(s),
		Subjects:          []string{s.SubjectPrefix() + ".*"},
		Storage:           jetstream.FileStorage,
		Replicas:          c.Replicas,
		MaxMsgs:           -1,
		MaxMsgsPerSubject: -1,
	}
	var l StreamLimits
	switch s {
	case RoomInput:
		l = c.RoomInput
		cfg.Description = "Axon room input, partitioned by room ID"
		cfg.Retention = jetstream.WorkQueuePolicy
		cfg.Discard = jetstream.DiscardNew
	case RoomEvents:
		l = c.RoomEvents
		cfg.Description = "Axon committed room events, partitioned by room ID"
		cfg.Retention = jetstream.LimitsPolicy
		cfg.Discard = jetstream.DiscardOld
	default:
		return cfg, fmt.Errorf("bus: unknown stream %q", s)
	}
	cfg.MaxBytes = l.MaxBytes
	cfg.MaxAge = l.MaxAge
	cfg.MaxMsgSize = l.MaxMsgSize
	cfg.Duplicates = l.Duplicates
	return cfg, nil
}

// EnsureStreams creates the streams or updates them to the current
// configuration. A NATS cluster that is still forming (no meta leader
// yet, too few peers for the replicas, a request timing out) is waited
// for: every failure is retried with backoff until ctx ends, when the last
// error is returned. Only a configuration this package refuses fails at
// once.
func (b *Bus) EnsureStreams(ctx context.Context) error {
	retry := backoff(250*time.Millisecond, 5*time.Second)
	for attempt := 0; ; attempt++ {
		err := b.ensureStreams(ctx)
		var cfgErr configError
		if err == nil || errors.As(err, &cfgErr) {
			return err
		}
		if ctx.Err() != nil {
			return err
		}
		d := retry(attempt)
		b.log.Warn("bus: streams not ready; retrying", "err", err, "attempt", attempt+1, "retry_in", d)
		sleep(ctx, d)
		if ctx.Err() != nil {
			return err
		}
	}
}

// configError is a stream configuration this package refuses.
type configError struct{ error }

func (b *Bus) ensureStreams(ctx context.Context) error {
	for _, s := range Streams() {
		cfg, err := b.streams.streamConfig(s)
		if err != nil {
			return configError{err}
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = b.js.CreateOrUpdateStream(rctx, cfg)
		cancel()
		if err != nil {
			return fmt.Errorf("bus: ensure stream %s: %w", s, err)
		}
	}
	return nil
}

// StreamInfo returns the server's view of stream s (message count,
// sequences, bytes); useful for lag metrics and tests.
func (b *Bus) StreamInfo(ctx context.Context, s Stream) (*jetstream.StreamInfo, error) {
	st, err := b.js.Stream(ctx, string(s))
	if err != nil {
		return nil, fmt.Errorf("bus: stream %s: %w", s, err)
	}
	return st.Info(ctx)
}
