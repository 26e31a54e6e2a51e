package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"
)

// orderedReader is a reader that keeps its position as the sync indexer
// does: the last stream sequence it committed.
type orderedReader struct {
	t        *testing.T
	mu       sync.Mutex
	pos      uint64
	got      []int
	failures int // batches still to fail
	batches  int
}

func (r *orderedReader) from(context.Context) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pos + 1, nil
}

func (r *orderedReader) handle(_ context.Context, ms []Msg) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failures > 0 && len(r.got) > 50 {
		r.failures--
		return errors.New("database down")
	}
	r.batches++
	for _, m := range ms {
		if m.StreamSeq != r.pos+1 {
			r.t.Errorf("stream sequence %d handed after %d: not contiguous", m.StreamSeq, r.pos)
		}
		r.pos = m.StreamSeq
		n, _ := strconv.Atoi(string(m.Data))
		r.got = append(r.got, n)
	}
	return nil
}

func (r *orderedReader) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

func (r *orderedReader) run(ctx context.Context, b *Bus) chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.ConsumeOrdered(ctx, RoomEvents, r.from, 64, r.handle,
			ConsumeOptions{PollWait: 200 * time.Millisecond, RetryBase: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond})
	}()
	return done
}

func publishRooms(t *testing.T, b *Bus, from, to int) {
	t.Helper()
	var msgs []Message
	for i := from; i < to; i++ {
		room := "!r" + strconv.Itoa(i%7) + ":x"
		msgs = append(msgs, Message{Subject: b.RoomSubject(RoomEvents, room), Data: []byte(strconv.Itoa(i)), MsgID: fmt.Sprint("m", i)})
	}
	if err := b.PublishAll(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
}

// TestConsumeOrdered reads all partitions contiguously in stream order,
// retries a failing batch in place, resumes from the reader's own stored
// position after a restart, and carries on in order when the server loses
// its consumer.
func TestConsumeOrdered(t *testing.T) {
	b := newBus(t)
	publishRooms(t, b, 0, 200)
	r := &orderedReader{t: t, failures: 2}
	ctx, cancel := context.WithCancel(context.Background())
	done := r.run(ctx, b)
	eventually(t, 10*time.Second, func() bool { return r.count() >= 200 }, "200 messages")
	cancel()
	<-done
	if r.failures != 0 {
		t.Fatalf("%d failures left: the failing batch was not retried", r.failures)
	}
	if r.batches >= 200 {
		t.Fatalf("%d batches for 200 waiting messages: not batching", r.batches)
	}

	// A restart reads from the stored position: nothing handed twice.
	publishRooms(t, b, 200, 300)
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	done = r.run(ctx, b)
	eventually(t, 10*time.Second, func() bool { return r.count() >= 300 }, "300 messages")

	// The server loses the consumer (a NATS node restarted, say): reading
	// goes on from where it was, still contiguous.
	st, err := b.js.Stream(ctx, string(RoomEvents))
	if err != nil {
		t.Fatal(err)
	}
	deleted := 0
	for n := range st.ListConsumers(ctx).Info() {
		if err := st.DeleteConsumer(ctx, n.Name); err != nil {
			t.Fatal(err)
		}
		deleted++
	}
	if deleted == 0 {
		t.Fatal("no consumer on the server to delete")
	}
	publishRooms(t, b, 300, 400)
	eventually(t, 30*time.Second, func() bool { return r.count() >= 400 }, "400 messages")
	cancel()
	<-done
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) != 400 {
		t.Fatalf("got %d messages, want 400", len(r.got))
	}
	for i, n := range r.got {
		if n != i {
			t.Fatalf("message %d is %d: out of order", i, n)
		}
	}
	if err := b.ConsumeOrdered(ctx, RoomEvents, r.from, 0, r.handle, ConsumeOptions{}); err == nil {
		t.Fatal("a zero batch size must be refused")
	}
}

// countHandler counts the records logged at warning level.
type countHandler struct {
	slog.Handler
	mu    sync.Mutex
	warns int
}

func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn {
		h.mu.Lock()
		h.warns++
		h.mu.Unlock()
	}
	return nil
}

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countHandler) WithGroup(string) slog.Handler            { return h }

// TestEnsureStreamsWaits: streams that NATS cannot create yet (here three
// replicas on one server, as on a cluster whose peers have not all joined)
// are retried until the caller's deadline, not given up at the first
// answer.
func TestEnsureStreamsWaits(t *testing.T) {
	e := startEmbedded(t, t.TempDir())
	defer e.Shutdown()
	h := &countHandler{Handler: slog.DiscardHandler}
	o := testOptions()
	o.Streams.Replicas = 3
	o.Logger = slog.New(h)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := e.Connect(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ectx, ecancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer ecancel()
	if err := b.EnsureStreams(ectx); err == nil {
		t.Fatal("three replicas on one server cannot be created")
	}
	if ectx.Err() == nil {
		t.Fatal("EnsureStreams gave up before its deadline")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.warns < 2 {
		t.Fatalf("%d attempts logged, want several", h.warns)
	}
}
