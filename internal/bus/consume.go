package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Msg is one delivered message.
type Msg struct {
	Subject string
	Data    []byte
	// StreamSeq is the message's sequence in its stream: a stable,
	// monotonically increasing position (use it in sync tokens and for
	// idempotence checks).
	StreamSeq uint64
	// NumDelivered counts deliveries of this message, 1 on the first.
	NumDelivered uint64
	// MsgID is the Nats-Msg-Id header given at publish.
	MsgID     string
	Timestamp time.Time
}

// Handler processes one message. Returning nil acks it; returning an error
// redelivers it after a backoff, unless the error wraps ErrPermanent or the
// delivery limit is reached, in which case the message is terminated.
// Handlers must be idempotent (delivery is at least once).
type Handler func(ctx context.Context, m Msg) error

// ErrPermanent marks a handler error that no retry can fix.
var ErrPermanent = errors.New("permanent failure")

// Permanent wraps err so that Consume terminates the message instead of
// retrying it.
func Permanent(err error) error { return fmt.Errorf("%w: %w", ErrPermanent, err) }

// ConsumeOptions tunes Consume. Zero fields take the defaults.
type ConsumeOptions struct {
	// MaxDeliver bounds deliveries of one message; default 10.
	MaxDeliver int
	// RetryBase and RetryMax bound the exponential NAK delay;
	// defaults 500ms and 30s.
	RetryBase, RetryMax time.Duration
	// HandlerTimeout bounds one handler call; default 30s. The server's
	// AckWait is HandlerTimeout plus 5s.
	HandlerTimeout time.Duration
	// PollWait is how long one pull request waits on the server for a
	// message; default 2s. Cancelling ctx takes effect when the current
	// request expires, so it also bounds the stop latency (plus the
	// in-flight handler).
	PollWait time.Duration
	// Logger; nil uses the Bus's.
	Logger *slog.Logger
}

func (o ConsumeOptions) withDefaults(b *Bus) ConsumeOptions {
	if o.MaxDeliver == 0 {
		o.MaxDeliver = 10
	}
	if o.RetryBase == 0 {
		o.RetryBase = 500 * time.Millisecond
	}
	if o.RetryMax == 0 {
		o.RetryMax = 30 * time.Second
	}
	if o.HandlerTimeout == 0 {
		o.HandlerTimeout = 30 * time.Second
	}
	if o.PollWait == 0 {
		o.PollWait = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = b.log
	}
	return o
}

// Consume runs the durable pull consumer named durable on one partition of
// stream s and calls h for each message, one at a time, in stream order
// (the consumer has MaxAckPending 1). It blocks until ctx is cancelled and
// then drains: it returns nil once the outstanding pull request has expired
// (at most PollWait) and any message it delivered has been handled and
// acked. The handler's context is not cancelled by ctx, only bounded by
// HandlerTimeout, so in-flight work finishes and the next owner of the
// partition starts right after it.
//
// While NATS is unreachable Consume keeps retrying with backoff; it returns
// an error only for invalid arguments.
func (b *Bus) Consume(ctx context.Context, s Stream, partition int, durable string, h Handler, o ConsumeOptions) error {
	if s.SubjectPrefix() == "" {
		return fmt.Errorf("bus: consume: unknown stream %q", s)
	}
	if partition < 0 || partition >= b.streams.Partitions {
		return fmt.Errorf("bus: consume: partition %d out of range [0, %d)", partition, b.streams.Partitions)
	}
	if durable == "" {
		return errors.New("bus: consume: empty durable name")
	}
	o = o.withDefaults(b)
	log := o.Logger.With("stream", string(s), "partition", partition, "durable", durable)
	cfg := jetstream.ConsumerConfig{
		Durable:       durable,
		FilterSubject: s.Subject(partition),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.HandlerTimeout + 5*time.Second,
		MaxDeliver:    o.MaxDeliver,
		MaxAckPending: 1,
		MaxWaiting:    16,
	}
	b.pullLoop(ctx, s, cfg, log, func(cons jetstream.Consumer) error {
		// The pull request is not tied to ctx on purpose: a request
		// abandoned by the client would leave a message the server has
		// already sent unacked until AckWait, stalling the partition for
		// its next owner. Instead the request expires on the server after
		// PollWait and ctx is checked between requests.
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(o.PollWait))
		if err != nil {
			return err
		}
		for m := range batch.Messages() {
			b.handle(ctx, m, h, o, log)
		}
		return batch.Error()
	})
	return nil
}

func (b *Bus) handle(ctx context.Context, jm jetstream.Msg, h Handler, o ConsumeOptions, log *slog.Logger) {
	md, err := jm.Metadata()
	if err != nil {
		log.Error("bus: message without metadata", "err", err)
		_ = jm.Term()
		return
	}
	m := Msg{
		Subject:      jm.Subject(),
		Data:         jm.Data(),
		StreamSeq:    md.Sequence.Stream,
		NumDelivered: md.NumDelivered,
		MsgID:        jm.Headers().Get(jetstream.MsgIDHeader),
		Timestamp:    md.Timestamp,
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.HandlerTimeout)
	herr := h(hctx, m)
	cancel()
	actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer acancel()
	switch {
	case herr == nil:
		if err := jm.DoubleAck(actx); err != nil {
			// Redelivered after AckWait; the handler is idempotent.
			log.Warn("bus: ack failed", "stream_seq", m.StreamSeq, "err", err)
		}
	case errors.Is(herr, ErrPermanent) || md.NumDelivered >= uint64(o.MaxDeliver):
		log.Error("bus: message dropped after handler failure",
			"stream_seq", m.StreamSeq, "msg_id", m.MsgID, "deliveries", m.NumDelivered, "err", herr)
		if err := jm.TermWithReason(herr.Error()); err != nil {
			log.Warn("bus: term failed", "stream_seq", m.StreamSeq, "err", err)
		}
	default:
		delay := backoff(o.RetryBase, o.RetryMax)(int(md.NumDelivered) - 1)
		log.Warn("bus: handler failed, will retry",
			"stream_seq", m.StreamSeq, "msg_id", m.MsgID, "deliveries", m.NumDelivered, "retry_in", delay, "err", herr)
		if err := jm.NakWithDelay(delay); err != nil {
			log.Warn("bus: nak failed", "stream_seq", m.StreamSeq, "err", err)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// pullLoop keeps the durable consumer cfg on stream s and calls step with
// it until ctx ends. It creates the consumer (again, when the server lost
// it) and backs off after failures, so a NATS outage only delays it.
func (b *Bus) pullLoop(ctx context.Context, s Stream, cfg jetstream.ConsumerConfig, log *slog.Logger, step func(jetstream.Consumer) error) {
	retry := backoff(100*time.Millisecond, 5*time.Second)
	var cons jetstream.Consumer
	failures := 0
	for ctx.Err() == nil {
		if cons == nil {
			c, err := b.js.CreateOrUpdateConsumer(ctx, string(s), cfg)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				log.Warn("bus: create consumer failed", "err", err)
				sleep(ctx, retry(failures))
				failures++
				continue
			}
			cons = c
		}
		err := step(cons)
		switch {
		case err == nil, ctx.Err() != nil, errors.Is(err, jetstream.ErrNoHeartbeat):
			failures = 0
		default:
			if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
				cons = nil
			}
			log.Warn("bus: fetch failed", "err", err)
			sleep(ctx, retry(failures))
			failures++
		}
	}
}
