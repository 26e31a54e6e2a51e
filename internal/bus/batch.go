package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// AllPartitions, given as the partition to ConsumeBatch, consumes every
// partition of the stream through one consumer: one total order, the
// stream's, for readers such as the sync indexer.
const AllPartitions = -1

// BatchHandler processes a batch of messages in stream order. It returns
// nil when every message is dealt with (including messages it decided to
// refuse: those are the handler's business, for example an error reply
// to the writer). An error means "nothing in this batch may be considered
// done" — the database or NATS is unreachable — and the same batch is
// handed again after a backoff.
type BatchHandler func(ctx context.Context, msgs []Msg) error

// ConsumeBatch runs the durable pull consumer named durable on one
// partition of s (or on all of them, with AllPartitions) and calls h with
// batches of up to maxBatch messages in stream order: it waits for one
// message, then takes whatever else is already waiting, so a lone message
// is handled at once and a burst is handled in big batches.
//
// Unlike Consume, a failing batch is not NAKed for a later redelivery
// (which could reorder it behind newer messages): it is retried in
// process, with exponential backoff between RetryBase and RetryMax, while
// the messages' ack deadlines are extended, until it succeeds or ctx is
// cancelled. On cancellation the unfinished batch is NAKed at once so the
// next owner of the partition gets it first. A partition whose database is
// down therefore waits rather than skipping messages; poison messages are
// the handler's to refuse.
//
// It blocks until ctx is cancelled and then drains as Consume does.
func (b *Bus) ConsumeBatch(ctx context.Context, s Stream, partition int, durable string, maxBatch int, h BatchHandler, o ConsumeOptions) error {
	if s.SubjectPrefix() == "" {
		return fmt.Errorf("bus: consume: unknown stream %q", s)
	}
	filter := s.SubjectPrefix() + ".*"
	if partition != AllPartitions {
		if partition < 0 || partition >= b.streams.Partitions {
			return fmt.Errorf("bus: consume: partition %d out of range [0, %d)", partition, b.streams.Partitions)
		}
		filter = s.Subject(partition)
	}
	if durable == "" {
		return errors.New("bus: consume: empty durable name")
	}
	if maxBatch < 1 || maxBatch > 10000 {
		return fmt.Errorf("bus: consume: batch size %d out of range [1, 10000]", maxBatch)
	}
	o = o.withDefaults(b)
	log := o.Logger.With("stream", string(s), "filter", filter, "durable", durable)
	cfg := jetstream.ConsumerConfig{
		Durable:       durable,
		FilterSubject: filter,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       batchAckWait,
		MaxDeliver:    -1,
		MaxAckPending: maxBatch,
		MaxWaiting:    16,
	}
	// next is the pull request for the next batch's first message: it is
	// sent as soon as a batch is handled, before its acks, so that a
	// message published meanwhile is on its way already (a writer waiting
	// for its answer sends the next one right away).
	var next jetstream.MessageBatch
	b.pullLoop(ctx, s, cfg, log, func(cons jetstream.Consumer) error {
		first := next
		next = nil
		msgs, err := fetchBatch(cons, first, maxBatch, o.PollWait)
		if len(msgs) > 0 {
			b.handleBatch(ctx, msgs, h, o, log, func() {
				if ctx.Err() == nil {
					next, _ = cons.Fetch(1, jetstream.FetchMaxWait(o.PollWait))
				}
			})
		}
		return err
	})
	// A message the last request delivered after the loop ended goes back
	// at once, rather than waiting out AckWait for the next owner.
	if next != nil {
		for m := range next.Messages() {
			_ = m.Nak()
		}
	}
	return nil
}

// fetchBatch waits up to wait for one message (of first, a request made
// already, if not nil), then takes up to max-1 more that are already
// available.
func fetchBatch(cons jetstream.Consumer, first jetstream.MessageBatch, max int, wait time.Duration) ([]jetstream.Msg, error) {
	if first == nil {
		var err error
		if first, err = cons.Fetch(1, jetstream.FetchMaxWait(wait)); err != nil {
			return nil, err
		}
	}
	var msgs []jetstream.Msg
	for m := range first.Messages() {
		msgs = append(msgs, m)
	}
	if err := first.Error(); err != nil || len(msgs) == 0 || max == 1 {
		return msgs, err
	}
	// Nothing was waiting behind it when it was delivered: asking for
	// more would cost a round trip (most of the time, when one writer
	// waits for each answer before sending again) and find nothing.
	if md, err := msgs[0].Metadata(); err == nil && md.NumPending == 0 {
		return msgs, nil
	}
	rest, err := cons.FetchNoWait(max - 1)
	if err != nil {
		return msgs, nil // the first message is still worth handling
	}
	for m := range rest.Messages() {
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// batchAckWait is the ack deadline of a batch consumer's messages. It is
// short so that the messages a killed worker had taken are redelivered to
// the partition's next owner within seconds (a writer waits for its
// answer for 30 s), not after a whole handler timeout; while a batch is
// being handled, keepInProgress extends the deadline.
const batchAckWait = 10 * time.Second

// keepInProgress tells the server every interval that jms are still being
// worked on, until the returned function is called.
func keepInProgress(jms []jetstream.Msg, interval time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, jm := range jms {
					_ = jm.InProgress()
				}
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// handleBatch runs h on jms until it succeeds (or ctx ends: then they are
// NAKed), then calls handled and acks them.
func (b *Bus) handleBatch(ctx context.Context, jms []jetstream.Msg, h BatchHandler, o ConsumeOptions, log *slog.Logger, handled func()) {
	msgs := make([]Msg, 0, len(jms))
	for _, jm := range jms {
		m, _, err := toMsg(jm)
		if err != nil {
			log.Error("bus: message without metadata", "err", err)
			_ = jm.Term()
			continue
		}
		msgs = append(msgs, m)
	}
	if len(msgs) == 0 {
		return
	}
	stop := keepInProgress(jms, batchAckWait/3)
	ok := retryBatch(ctx, msgs, h, o, log)
	stop()
	if !ok {
		for _, jm := range jms {
			_ = jm.Nak()
		}
		return
	}
	handled()
	actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer acancel()
	// Ack in order; the last one waits for the server's confirmation.
	for i, jm := range jms {
		var err error
		if i == len(jms)-1 {
			err = jm.DoubleAck(actx)
		} else {
			err = jm.Ack()
		}
		if err != nil {
			log.Warn("bus: ack failed", "err", err)
		}
	}
}
