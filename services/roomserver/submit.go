package roomserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/axon-hs/axon/internal/bus"
	"github.com/nats-io/nats.go"
)

// ErrNoReply means the room role did not answer within the deadline. The
// input may still be applied later; a client retry with the same
// transaction ID is safe.
var ErrNoReply = errors.New("roomserver: no answer from the room role in time")

// Submitter is the writers' side of ROOM_INPUT: it publishes an Input to
// the room's partition and waits for the room role's Result. One per
// process; safe for concurrent use.
type Submitter struct {
	bus     *bus.Bus
	prefix  string
	sub     *nats.Subscription
	next    atomic.Uint64
	mu      sync.Mutex
	waiting map[string]chan Result
	// Timeout bounds a Submit whose ctx has no deadline (default 30s).
	Timeout time.Duration
}

// NewSubmitter subscribes to this process's reply subjects.
func NewSubmitter(b *bus.Bus) (*Submitter, error) {
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	s := &Submitter{bus: b, prefix: "axon.reply." + hex.EncodeToString(rnd[:]), waiting: make(map[string]chan Result), Timeout: 30 * time.Second}
	sub, err := b.Conn().Subscribe(s.prefix+".*", s.onReply)
	if err != nil {
		return nil, fmt.Errorf("roomserver: subscribe to replies: %w", err)
	}
	s.sub = sub
	return s, nil
}

// Close stops receiving replies.
func (s *Submitter) Close() error { return s.sub.Unsubscribe() }

func (s *Submitter) onReply(m *nats.Msg) {
	var res Result
	if err := json.Unmarshal(m.Data, &res); err != nil {
		return
	}
	s.deliver(m.Subject, res)
}

// deliver hands res to the Submit call waiting on subject. It reports
// whether subject is one of this Submitter's (whose caller may have given
// up waiting meanwhile).
func (s *Submitter) deliver(subject string, res Result) bool {
	if len(subject) <= len(s.prefix) || subject[:len(s.prefix)] != s.prefix || subject[len(s.prefix)] != '.' {
		return false
	}
	s.mu.Lock()
	ch := s.waiting[subject]
	delete(s.waiting, subject)
	s.mu.Unlock()
	if ch != nil {
		ch <- res // buffered
	}
	return true
}

// Submit publishes in and waits for its Result.
//
// Each call publishes under a message ID of its own (the reply subject),
// so the bus's retries of this one publish are stored once, but two calls
// are two inputs: a client retrying a send is de-duplicated by the room
// role through its transaction ID, and still gets an answer. (De-duplicating
// the retry in the stream instead would leave the second caller waiting for
// a reply that never comes.)
func (s *Submitter) Submit(ctx context.Context, in *Input) (Result, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.Timeout)
		defer cancel()
	}
	subject := s.prefix + "." + strconv.FormatUint(s.next.Add(1), 36)
	ch := make(chan Result, 1)
	s.mu.Lock()
	s.waiting[subject] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.waiting, subject)
		s.mu.Unlock()
	}()
	in.ReplyTo = subject
	data, err := in.Encode()
	if err != nil {
		return Result{}, err
	}
	if _, err := s.bus.PublishRoom(ctx, bus.RoomInput, in.RoomID, data, subject); err != nil {
		return Result{}, err
	}
	select {
	case res := <-ch:
		return res, nil
	case <-ctx.Done():
		return Result{}, fmt.Errorf("%w: %w", ErrNoReply, ctx.Err())
	}
}
