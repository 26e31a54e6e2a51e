package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ConsumeOrdered reads every partition of s in stream order, from the
// sequence that from returns, and calls h with batches of up to maxBatch
// messages. It is for a reader that keeps its own position in its own
// database and must see the stream contiguously, such as the sync
// indexer, whose positions are the stream sequences: a message handled
// after a later one would land behind positions clients have already
// read past, and they would never see it.
//
// A durable consumer cannot promise that: a batch whose acks were lost in
// a NATS outage is redelivered after its ack deadline, behind messages
// delivered meanwhile. So no state is kept on the server here: the
// messages come from an ordered consumer (ephemeral, no acks, recreated by
// the client library from the last message delivered when it detects a
// gap or a lost connection), every batch is handed on in stream order,
// and a batch that fails is retried in process with exponential backoff
// between RetryBase and RetryMax until it succeeds or ctx is cancelled.
// If the consumer itself cannot be kept (NATS down for long), reading
// starts again at from's answer, so from must return the position after
// the last batch the reader has committed; messages before it are never
// handed again, messages after it are handed at least once.
//
// It blocks until ctx is cancelled and then returns nil.
func (b *Bus) ConsumeOrdered(ctx context.Context, s Stream, from func(context.Context) (uint64, error), maxBatch int, h BatchHandler, o ConsumeOptions) error {
	if s.SubjectPrefix() == "" {
		return fmt.Errorf("bus: consume: unknown stream %q", s)
	}
	if maxBatch < 1 || maxBatch > 10000 {
		return fmt.Errorf("bus: consume: batch size %d out of range [1, 10000]", maxBatch)
	}
	o = o.withDefaults(b)
	log := o.Logger.With("stream", string(s), "consumer", "ordered")
	retry := backoff(100*time.Millisecond, 5*time.Second)
	for failures := 0; ctx.Err() == nil; failures++ {
		err := b.readOrdered(ctx, s, from, maxBatch, h, o, log)
		if ctx.Err() != nil {
			break
		}
		log.Warn("bus: ordered reading interrupted; starting again from the stored position", "err", err)
		sleep(ctx, retry(min(failures, 10)))
	}
	return nil
}

// readOrdered runs one ordered consumer from from's position until an
// error it cannot recover from, or ctx ends.
func (b *Bus) readOrdered(ctx context.Context, s Stream, from func(context.Context) (uint64, error), maxBatch int, h BatchHandler, o ConsumeOptions, log *slog.Logger) error {
	start, err := from(ctx)
	if err != nil {
		return fmt.Errorf("reading the start position: %w", err)
	}
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{s.SubjectPrefix() + ".*"},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}
	if start > 1 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = start
	}
	cons, err := b.js.OrderedConsumer(ctx, string(s), cfg)
	if err != nil {
		return fmt.Errorf("creating the ordered consumer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(maxBatch))
	if err != nil {
		return fmt.Errorf("starting the ordered consumer: %w", err)
	}
	defer it.Stop()
	// last guards the order on top of the library's checks: a message at
	// or before it is never handed twice within one run.
	last := uint64(0)
	if start > 0 {
		last = start - 1
	}
	for {
		batch, err := nextBatch(ctx, it, maxBatch, o.PollWait, &last, log)
		if len(batch) > 0 && !retryBatch(ctx, batch, h, o, log) {
			return nil // ctx ended
		}
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// nextBatch waits for a message, then takes up to max-1 more while the
// stream says more are pending. It returns what it has along with an
// error that ends this consumer (not a timeout, nor ctx's end).
func nextBatch(ctx context.Context, it jetstream.MessagesContext, max int, wait time.Duration, last *uint64, log *slog.Logger) ([]Msg, error) {
	var batch []Msg
	for len(batch) < max {
		var jm jetstream.Msg
		var err error
		if len(batch) == 0 {
			jm, err = it.Next(jetstream.NextContext(ctx))
		} else {
			jm, err = it.Next(jetstream.NextMaxWait(wait))
		}
		switch {
		case err == nil:
		case ctx.Err() != nil, errors.Is(err, nats.ErrTimeout):
			return batch, nil
		default:
			return batch, err
		}
		m, pending, err := toMsg(jm)
		if err != nil {
			log.Error("bus: message without metadata skipped", "err", err)
			continue
		}
		if m.StreamSeq <= *last {
			continue
		}
		*last = m.StreamSeq
		batch = append(batch, m)
		if pending == 0 {
			break
		}
	}
	return batch, nil
}

// toMsg converts a delivered message, returning also how many messages
// the consumer had left behind it.
func toMsg(jm jetstream.Msg) (Msg, uint64, error) {
	md, err := jm.Metadata()
	if err != nil {
		return Msg{}, 0, err
	}
	return Msg{
		Subject:      jm.Subject(),
		Data:         jm.Data(),
		StreamSeq:    md.Sequence.Stream,
		NumDelivered: md.NumDelivered,
		MsgID:        jm.Headers().Get(jetstream.MsgIDHeader),
		Timestamp:    md.Timestamp,
	}, md.NumPending, nil
}

// retryBatch runs h on msgs until it succeeds (true) or ctx ends (false),
// backing off between attempts; each attempt is bounded by
// o.HandlerTimeout and is not cut short by ctx.
func retryBatch(ctx context.Context, msgs []Msg, h BatchHandler, o ConsumeOptions, log *slog.Logger) bool {
	delay := backoff(o.RetryBase, o.RetryMax)
	for attempt := 0; ; attempt++ {
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.HandlerTimeout)
		err := h(hctx, msgs)
		cancel()
		if err == nil {
			return true
		}
		log.Warn("bus: batch handler failed, will retry", "messages", len(msgs),
			"first_stream_seq", msgs[0].StreamSeq, "attempt", attempt+1, "err", err)
		sleep(ctx, delay(attempt))
		if ctx.Err() != nil {
			return false
		}
	}
}

// DeleteConsumer removes the durable consumer name of s, for a reader
// that no longer uses it; one that does not exist is not an error.
func (b *Bus) DeleteConsumer(ctx context.Context, s Stream, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := b.js.DeleteConsumer(ctx, string(s), name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil
	}
	return err
}
