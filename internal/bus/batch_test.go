package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestPublishAllAndConsumeBatch publishes a burst across partitions with
// PublishAll and reads it back through one all-partitions batch consumer:
// every message arrives once, in stream order, and a batch that fails is
// handed again (in process, not reordered) until it succeeds.
func TestPublishAllAndConsumeBatch(t *testing.T) {
	b := newBus(t)
	ctx := context.Background()
	var msgs []Message
	for i := range 300 {
		room := "!r" + strconv.Itoa(i%7) + ":x"
		msgs = append(msgs, Message{Subject: b.RoomSubject(RoomEvents, room), Data: []byte(strconv.Itoa(i)), MsgID: fmt.Sprint("m", i)})
	}
	if err := b.PublishAll(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	// Publishing the same IDs again stores nothing new.
	if err := b.PublishAll(ctx, msgs[:10]); err != nil {
		t.Fatal(err)
	}
	if err := b.PublishAll(ctx, []Message{{Subject: "x", Data: nil}}); err == nil {
		t.Fatal("a message without an ID must be refused")
	}

	cctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	var got []int
	var lastSeq uint64
	batches, failures := 0, 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.ConsumeBatch(cctx, RoomEvents, AllPartitions, "batch-test", 64, func(_ context.Context, ms []Msg) error {
			mu.Lock()
			defer mu.Unlock()
			if len(ms) > 64 {
				t.Errorf("batch of %d over the limit", len(ms))
			}
			if failures < 2 && len(got) > 100 {
				failures++
				return errors.New("database down")
			}
			batches++
			for _, m := range ms {
				if m.StreamSeq <= lastSeq {
					t.Errorf("stream sequence went from %d to %d", lastSeq, m.StreamSeq)
				}
				lastSeq = m.StreamSeq
				n, _ := strconv.Atoi(string(m.Data))
				got = append(got, n)
			}
			return nil
		}, ConsumeOptions{PollWait: 200 * time.Millisecond, RetryBase: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond})
	}()
	eventually(t, 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 300 }, "300 messages")
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 300 {
		t.Fatalf("got %d messages, want 300", len(got))
	}
	for i, n := range got {
		if n != i {
			t.Fatalf("message %d is %d: out of order", i, n)
		}
	}
	if failures != 2 {
		t.Fatalf("failures = %d, want 2", failures)
	}
	if batches >= 300 {
		t.Fatalf("%d batches for 300 waiting messages: not batching", batches)
	}
	if err := b.ConsumeBatch(ctx, RoomEvents, 99, "x", 1, nil, ConsumeOptions{}); err == nil {
		t.Fatal("a partition out of range must be refused")
	}
	if err := b.ConsumeBatch(ctx, RoomEvents, 0, "x", 0, nil, ConsumeOptions{}); err == nil {
		t.Fatal("a zero batch size must be refused")
	}
}
