package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultPublishTimeout bounds a publish whose ctx has no deadline.
const DefaultPublishTimeout = 5 * time.Second

// PubAck is the server's acknowledgement of a publish.
type PubAck struct {
	Stream string
	// Seq is the stream sequence of the message; for a duplicate, the
	// sequence of the message first stored under the same ID.
	Seq uint64
	// Duplicate is true when a message with the same ID was already stored
	// within the stream's de-duplication window. It is not an error: the
	// message is durably in the stream.
	Duplicate bool
}

// Publish stores data on subject and waits for the stream's ack. msgID
// (required) is sent as the Nats-Msg-Id header so that a retried publish
// within the de-duplication window is stored once; derive it from the
// content's identity (event ID, outbox row ID, client txn ID), never from a
// random value per attempt. Retrying after an error is safe.
func (b *Bus) Publish(ctx context.Context, subject string, data []byte, msgID string) (PubAck, error) {
	if msgID == "" {
		return PubAck{}, errors.New("bus: publish: empty message ID")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultPublishTimeout)
		defer cancel()
	}
	ack, err := b.js.Publish(ctx, subject, data,
		jetstream.WithMsgID(msgID),
		jetstream.WithRetryAttempts(3),
		jetstream.WithRetryWait(100*time.Millisecond))
	if err != nil {
		return PubAck{}, fmt.Errorf("bus: publish %s: %w", subject, err)
	}
	return PubAck{Stream: ack.Stream, Seq: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

// PublishRoom publishes to the partition of roomID in stream s.
func (b *Bus) PublishRoom(ctx context.Context, s Stream, roomID string, data []byte, msgID string) (PubAck, error) {
	return b.Publish(ctx, s.Subject(PartitionOf(roomID, b.streams.Partitions)), data, msgID)
}

// Message is one message of PublishAll.
type Message struct {
	Subject string
	Data    []byte
	MsgID   string // required; see Publish
}

// PublishAll publishes msgs in order without waiting for each ack in turn
// (they are pipelined on the connection, which keeps their order), then
// waits for every ack. It returns the first error; messages acked before it
// are stored, and retrying the whole call is safe because of the message
// IDs.
func (b *Bus) PublishAll(ctx context.Context, msgs []Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultPublishTimeout)
		defer cancel()
	}
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		if m.MsgID == "" {
			return errors.New("bus: publish: empty message ID")
		}
		f, err := b.js.PublishAsync(m.Subject, m.Data, jetstream.WithMsgID(m.MsgID))
		if err != nil {
			return fmt.Errorf("bus: publish %s: %w", m.Subject, err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("bus: publish %s: %w", f.Msg().Subject, err)
		case <-ctx.Done():
			return fmt.Errorf("bus: publish: %w", ctx.Err())
		}
	}
	return nil
}

// RoomSubject returns the subject of roomID's partition in stream s.
func (b *Bus) RoomSubject(s Stream, roomID string) string {
	return s.Subject(PartitionOf(roomID, b.streams.Partitions))
}
