package coord

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestLocalOwnsEverythingUntilCancelled(t *testing.T) {
	l := NewLocal(nil)
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var started []int
	ready := make(chan struct{}, 4)
	done := make(chan error)
	go func() {
		done <- l.Own(ctx, "rooms", 4, func(ctx context.Context, p int) {
			mu.Lock()
			started = append(started, p)
			mu.Unlock()
			ready <- struct{}{}
			<-ctx.Done()
		})
	}()
	for range 4 {
		select {
		case <-ready:
		case <-time.After(5 * time.Second):
			t.Fatal("partitions did not start")
		}
	}
	if got := l.Owned("rooms"); !slices.Equal(got, []int{0, 1, 2, 3}) {
		t.Fatalf("Owned = %v", got)
	}
	if err := l.Own(ctx, "rooms", 4, func(context.Context, int) {}); err == nil {
		t.Fatal("owning a resource twice should fail")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	slices.Sort(started)
	if !slices.Equal(started, []int{0, 1, 2, 3}) {
		t.Fatalf("started %v", started)
	}
	if got := l.Owned("rooms"); len(got) != 0 {
		t.Fatalf("still owned after stop: %v", got)
	}
	if err := l.Own(context.Background(), "x", 0, nil); err == nil {
		t.Fatal("zero partitions should fail")
	}
}
