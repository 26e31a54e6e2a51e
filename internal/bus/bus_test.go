package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func eventually(t *testing.T, d time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func startEmbedded(t *testing.T, dir string) *Embedded {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := StartEmbedded(ctx, EmbeddedOptions{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func testOptions() Options {
	return Options{Streams: StreamsConfig{Partitions: 8}}
}

func connectEmbedded(t *testing.T, e *Embedded) *Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := e.Connect(ctx, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	return b
}

// newBus starts an embedded server with streams and returns a connected Bus;
// both are stopped at cleanup.
func newBus(t *testing.T) *Bus {
	t.Helper()
	e := startEmbedded(t, t.TempDir())
	b := connectEmbedded(t, e)
	t.Cleanup(func() { b.Close(); e.Shutdown() })
	return b
}

func publishN(t *testing.T, b *Bus, s Stream, p, from, to int) {
	t.Helper()
	ctx := context.Background()
	for i := from; i < to; i++ {
		if _, err := b.Publish(ctx, s.Subject(p), fmt.Appendf(nil, "m%d", i), fmt.Sprintf("id-%d-%d", p, i)); err != nil {
			t.Fatal(err)
		}
	}
}

// consumeUntil runs Consume in a goroutine and stops it once stop returns
// true; it returns the data received, in order.
func consumeUntil(t *testing.T, b *Bus, p int, o ConsumeOptions, h Handler, stop func(got []string) bool) []string {
	t.Helper()
	if o.PollWait == 0 {
		o.PollWait = 200 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var got []string
	done := make(chan error, 1)
	go func() {
		done <- b.Consume(ctx, RoomInput, p, fmt.Sprintf("room-input-%d", p), func(hctx context.Context, m Msg) error {
			if h != nil {
				if err := h(hctx, m); err != nil {
					return err
				}
			}
			mu.Lock()
			got = append(got, string(m.Data))
			mu.Unlock()
			return nil
		}, o)
	}()
	eventually(t, 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return stop(got) }, "consumer progress")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Consume: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Consume did not stop after cancel")
	}
	mu.Lock()
	defer mu.Unlock()
	return append([]string(nil), got...)
}

func TestStartStopAndStateCallback(t *testing.T) {
	e := startEmbedded(t, t.TempDir())
	if e.ClientURL() != "" {
		t.Errorf("embedded server listens by default: %q", e.ClientURL())
	}
	var ups, downs atomic.Int32
	o := testOptions()
	o.OnStateChange = func(up bool) {
		if up {
			ups.Add(1)
		} else {
			downs.Add(1)
		}
	}
	b, err := e.Connect(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !b.Connected() || ups.Load() != 1 {
		t.Fatalf("Connected() = %v, ups = %d", b.Connected(), ups.Load())
	}
	b.Close()
	if b.Connected() || downs.Load() != 1 {
		t.Fatalf("after Close: Connected() = %v, downs = %d", b.Connected(), downs.Load())
	}
	e.Shutdown()
}

func TestConnectOverLoopback(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := StartEmbedded(ctx, EmbeddedOptions{StoreDir: t.TempDir(), ListenLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown()
	url := e.ClientURL()
	if url == "" {
		t.Fatal("no client URL")
	}
	b, err := Connect(ctx, []string{url + ", " + url}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.PublishRoom(ctx, RoomEvents, "!a:b", []byte("x"), "e1"); err != nil {
		t.Fatal(err)
	}
}

func TestConnectGivesUpWithContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	// Port 1 on loopback: nothing listens there.
	if _, err := Connect(ctx, []string{"nats://127.0.0.1:1"}, testOptions()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
}

func TestEnsureStreamsIdempotent(t *testing.T) {
	b := newBus(t)
	ctx := context.Background()
	publishN(t, b, RoomEvents, 3, 0, 2)
	for range 3 {
		if err := b.EnsureStreams(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range Streams() {
		info, err := b.StreamInfo(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.Duplicates != 2*time.Minute || info.Config.Replicas != 1 || len(info.Config.Subjects) != 1 {
			t.Errorf("%s: unexpected config %+v", s, info.Config)
		}
	}
	info, _ := b.StreamInfo(ctx, RoomEvents)
	if info.State.Msgs != 2 {
		t.Errorf("messages lost by EnsureStreams: %d", info.State.Msgs)
	}
}

func TestInvalidConfig(t *testing.T) {
	e := startEmbedded(t, t.TempDir())
	defer e.Shutdown()
	if _, err := e.Connect(context.Background(), Options{Streams: StreamsConfig{Partitions: 48}}); err == nil {
		t.Fatal("48 partitions accepted")
	}
}

func TestPublishDeduplicates(t *testing.T) {
	b := newBus(t)
	ctx := context.Background()
	subj := RoomInput.Subject(PartitionOf("!room:example.org", b.Partitions()))
	a1, err := b.Publish(ctx, subj, []byte("hello"), "txn-1")
	if err != nil || a1.Duplicate || a1.Seq != 1 || a1.Stream != string(RoomInput) {
		t.Fatalf("first publish: %+v, %v", a1, err)
	}
	a2, err := b.Publish(ctx, subj, []byte("hello"), "txn-1")
	if err != nil || !a2.Duplicate || a2.Seq != a1.Seq {
		t.Fatalf("second publish: %+v, %v", a2, err)
	}
	if _, err := b.Publish(ctx, subj, []byte("x"), ""); err == nil {
		t.Fatal("empty msg ID accepted")
	}
	info, err := b.StreamInfo(ctx, RoomInput)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("stream has %d messages, want 1", info.State.Msgs)
	}
}

func TestConsumeInOrder(t *testing.T) {
	b := newBus(t)
	publishN(t, b, RoomInput, 5, 0, 100)
	publishN(t, b, RoomInput, 6, 0, 3) // another partition: must not be seen
	var lastSeq uint64
	got := consumeUntil(t, b, 5, ConsumeOptions{}, func(_ context.Context, m Msg) error {
		if m.StreamSeq <= lastSeq || m.Subject != RoomInput.Subject(5) || m.MsgID == "" || m.NumDelivered != 1 {
			return Permanent(fmt.Errorf("bad message %+v after seq %d", m, lastSeq))
		}
		lastSeq = m.StreamSeq
		return nil
	}, func(got []string) bool { return len(got) >= 100 })
	if len(got) != 100 {
		t.Fatalf("got %d messages", len(got))
	}
	for i, d := range got {
		if d != fmt.Sprintf("m%d", i) {
			t.Fatalf("message %d = %q", i, d)
		}
	}
}

func TestConsumeRetriesThenSucceeds(t *testing.T) {
	b := newBus(t)
	publishN(t, b, RoomInput, 1, 0, 2)
	var deliveries []uint64
	got := consumeUntil(t, b, 1, ConsumeOptions{RetryBase: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond},
		func(_ context.Context, m Msg) error {
			if string(m.Data) == "m0" {
				deliveries = append(deliveries, m.NumDelivered)
				if m.NumDelivered < 3 {
					return errors.New("transient")
				}
			}
			return nil
		}, func(got []string) bool { return len(got) >= 2 })
	if fmt.Sprint(got) != "[m0 m1]" || fmt.Sprint(deliveries) != "[1 2 3]" {
		t.Fatalf("got %v, deliveries of m0 %v", got, deliveries)
	}
}

func TestConsumeTerminatesPoisonMessage(t *testing.T) {
	b := newBus(t)
	publishN(t, b, RoomInput, 2, 0, 3)
	var m0, m1 atomic.Int32
	got := consumeUntil(t, b, 2, ConsumeOptions{MaxDeliver: 3, RetryBase: 5 * time.Millisecond, RetryMax: 10 * time.Millisecond},
		func(_ context.Context, m Msg) error {
			switch string(m.Data) {
			case "m0":
				m0.Add(1)
				return errors.New("always fails")
			case "m1":
				m1.Add(1)
				return Permanent(errors.New("bad input"))
			}
			return nil
		}, func(got []string) bool { return len(got) >= 1 })
	if fmt.Sprint(got) != "[m2]" || m0.Load() != 3 || m1.Load() != 1 {
		t.Fatalf("got %v, m0 tried %d, m1 tried %d", got, m0.Load(), m1.Load())
	}
}

func TestRestartKeepsMessagesAndPosition(t *testing.T) {
	dir := t.TempDir()
	e := startEmbedded(t, dir)
	b := connectEmbedded(t, e)
	publishN(t, b, RoomInput, 0, 0, 10)
	got := consumeUntil(t, b, 0, ConsumeOptions{}, nil, func(got []string) bool { return len(got) >= 4 })
	b.Close()
	e.Shutdown()

	e = startEmbedded(t, dir)
	defer e.Shutdown()
	b = connectEmbedded(t, e)
	defer b.Close()
	info, err := b.StreamInfo(context.Background(), RoomInput)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(10 - len(got)); info.State.Msgs != want {
		t.Fatalf("after restart the stream has %d messages, want %d", info.State.Msgs, want)
	}
	rest := consumeUntil(t, b, 0, ConsumeOptions{}, nil, func(r []string) bool { return len(got)+len(r) >= 10 })
	all := append(got, rest...)
	for i, d := range all {
		if d != fmt.Sprintf("m%d", i) {
			t.Fatalf("after restart: %v", all)
		}
	}
}

func TestConsumeStopsOnCancelWhileIdle(t *testing.T) {
	b := newBus(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- b.Consume(ctx, RoomInput, 3, "idle", func(context.Context, Msg) error { return nil }, ConsumeOptions{PollWait: 300 * time.Millisecond})
	}()
	time.Sleep(100 * time.Millisecond) // let it block in a pull request
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Consume did not stop")
	}
	if err := b.Consume(context.Background(), RoomInput, 8, "x", nil, ConsumeOptions{}); err == nil {
		t.Fatal("partition out of range accepted")
	}
}
